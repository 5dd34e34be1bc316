"""Multicast end to end (issue 6): real kernel stacks join and leave a group with
ordinary sockets; the switch learns it from their IGMP and copies a group's
datagrams to exactly the members of the sender's L2.

Two L2 scopes: ``init`` (10.0.0.1/24) with tenants a, b, c, and its sibling
``blue`` (the same 10.0.0.1/24) with d (10.0.0.2, a's address there) and e.
a, b and d join 239.1.1.1; c and e never do.  A kernel delivers only groups
its sockets joined, so "c and d receive nothing" is checked where it is
decided: the switch's counters of frames it sent to each namespace.  Runs for every
port kind of the tenants (``port_kinds``).
"""
import select
import socket
import time

import pytest

from tests.support.waiting import wait_for

GROUP = "239.1.1.1"
PORT = 5007
COUNT = 20
QUIET_S = 0.3           # a round ends when no datagram came for this long
LEAVE_BOUND_S = 2.0      # docs/multicast.md: an L3's leave is applied on its leave report
pytestmark = pytest.mark.port_kinds


def member_socket(tenant):
    """A UDP socket in ``tenant`` that joined GROUP on its TAP (IP_ADD_MEMBERSHIP)."""
    sock = tenant.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((GROUP, PORT))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                    socket.inet_aton(GROUP) + socket.inet_aton(tenant.ip))
    sock.setblocking(False)
    return sock


def drop_membership(sock, tenant):
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_DROP_MEMBERSHIP,
                    socket.inet_aton(GROUP) + socket.inet_aton(tenant.ip))


def sender_socket(tenant):
    sock = tenant.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(tenant.ip))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    return sock


def send_round(sender, receivers, tag):
    """COUNT datagrams from ``sender`` to GROUP; what each receiver socket got until
    nothing more came for QUIET_S (the switch's counters, read afterwards, are exact)."""
    payloads = [f"{tag}-{i}".encode() for i in range(COUNT)]
    for payload in payloads:
        sender.sendto(payload, (GROUP, PORT))
    got = {name: [] for name in receivers}
    start = last = time.monotonic()
    while time.monotonic() - last < QUIET_S and time.monotonic() - start < 2.0:
        ready, _, _ = select.select(list(receivers.values()), [], [], 0.02)
        for name, sock in receivers.items():
            if sock in ready:
                last = time.monotonic()
                while True:
                    try:
                        got[name].append(sock.recv(2048))
                    except BlockingIOError:
                        break
    return payloads, got


class Switch:
    """The running switch, read through its admin control socket."""

    def __init__(self, client):
        self.client = client

    def members(self, scope):
        return set(self.client.call("members", group=GROUP, namespace=scope))

    def counters(self):
        return self.client.call("counters")

    def sent_to(self, before, after):
        """Frames the switch sent to each namespace between two counter reads."""
        return {name: after["namespaces"][name]["tx_packets"] - c["tx_packets"]
                for name, c in before["namespaces"].items() if name in after["namespaces"]}

    @staticmethod
    def group(counters, scope):
        return counters["groups"].get(scope, {}).get(GROUP, {"rx_packets": 0, "copies": 0})


@pytest.fixture
def rig(tapswitch_factory):
    topo = tapswitch_factory()
    topo.address_add("init", "10.0.0.1/24")
    tenants = {name: topo.tenant(name, f"10.0.0.{k}/24") for k, name in enumerate("abc", start=2)}
    topo.l2("blue", "10.0.0.1/24")
    tenants["d"] = topo.tenant("d", "10.0.0.2/24", parent="blue")
    tenants["e"] = topo.tenant("e", "10.0.0.3/24", parent="blue")
    topo.start()
    client = topo.client()
    try:
        yield topo, tenants, Switch(client)
    finally:
        client.close()


def test_group_datagrams_reach_exactly_the_members_of_the_senders_l2(rig):
    topo, t, sw = rig
    sockets = {name: member_socket(t[name]) for name in "abd"}
    senders = {name: sender_socket(t[name]) for name in "ace"}
    try:
        joined = wait_for(lambda: sw.members("init") == {"a", "b"} and sw.members("blue") == {"d"},
                          5.0, "the switch learned the joins from the kernels' IGMP reports")
        print(f"joins learned in {joined * 1000:.0f} ms")
        shown = sw.client.call("multicast")
        assert {r["origin"] for rows in shown.values() for r in rows[GROUP]} == {"learned"}

        # A non-member sends: the two members of its L2, and nobody else.
        before = sw.counters()
        payloads, got = send_round(senders["c"], sockets, "from-c")
        after = sw.counters()
        assert got == {"a": payloads, "b": payloads, "d": []}
        sent = sw.sent_to(before, after)
        assert (sent["a"], sent["b"], sent["c"], sent["d"], sent["e"]) == (COUNT, COUNT, 0, 0, 0)
        init_g = (sw.group(after, "init")["rx_packets"] - sw.group(before, "init")["rx_packets"],
                  sw.group(after, "init")["copies"] - sw.group(before, "init")["copies"])
        assert init_g == (COUNT, 2 * COUNT)
        assert sw.group(after, "blue") == sw.group(before, "blue")

        # A member sends: the other member only, never back to the sender.
        before = sw.counters()
        payloads, got = send_round(senders["a"], sockets, "from-a")
        sent = sw.sent_to(before, sw.counters())
        assert got == {"a": [], "b": payloads, "d": []}
        assert (sent["a"], sent["b"], sent["c"], sent["d"]) == (0, COUNT, 0, 0)

        # The sibling L2 (same addresses): its own member only.
        before = sw.counters()
        payloads, got = send_round(senders["e"], sockets, "from-e")
        sent = sw.sent_to(before, sw.counters())
        assert got == {"a": [], "b": [], "d": payloads}
        assert (sent["a"], sent["b"], sent["c"], sent["d"]) == (0, 0, 0, COUNT)

        # b leaves (IP_DROP_MEMBERSHIP): the switch stops sending to it.
        drop_membership(sockets["b"], t["b"])
        left = wait_for(lambda: sw.members("init") == {"a"}, LEAVE_BOUND_S,
                        "b's leave applied by the switch")
        print(f"IP_DROP_MEMBERSHIP applied in {left * 1000:.0f} ms")
        before = sw.counters()
        payloads, got = send_round(senders["c"], {"a": sockets["a"]}, "after-b-left")
        sent = sw.sent_to(before, sw.counters())
        assert got == {"a": payloads}
        assert (sent["a"], sent["b"]) == (COUNT, 0)

        # a closes its socket (the kernel leaves for it): no member left, counted drops.
        sockets.pop("a").close()
        left = wait_for(lambda: sw.members("init") == set(), LEAVE_BOUND_S,
                        "a's leave (socket closed) applied by the switch")
        print(f"close() applied in {left * 1000:.0f} ms")
        before = sw.counters()
        send_round(senders["c"], {"d": sockets["d"]}, "nobody")
        after = sw.counters()
        sent = sw.sent_to(before, after)
        assert (sent["a"], sent["b"], sent["d"]) == (0, 0, 0)
        assert after["reasons"]["no_listener"] - before["reasons"]["no_listener"] == COUNT
        assert sw.members("blue") == {"d"}
    finally:
        for sock in (*sockets.values(), *senders.values()):
            sock.close()


def test_a_configured_membership_outlives_the_endpoints_leave(rig):
    topo, t, sw = rig
    topo.join(GROUP, "b")                              # set through the API
    sock = member_socket(t["b"])
    sender = sender_socket(t["c"])
    igmp = lambda: sw.client.call("stats")["igmp"]      # noqa: E731
    try:
        wait_for(lambda: igmp().get("igmp_join", 0) >= 1, 5.0, "b's report seen")
        drop_membership(sock, t["b"])
        wait_for(lambda: igmp().get("igmp_leave", 0) >= 1, 5.0, "b's leave seen")
        assert sw.members("init") == {"b"}
        rows = sw.client.call("multicast")["init"][GROUP]
        assert rows == [{"namespace": "b", "origin": "configured", "expires_in": None}]
        before = sw.counters()
        send_round(sender, {}, "configured")
        assert sw.sent_to(before, sw.counters())["b"] == COUNT
        topo.leave(GROUP, "b")
        assert sw.members("init") == set()
    finally:
        sock.close()
        sender.close()
