"""A hostile tenant cannot cross the isolation (issue 14, items 1-9 and 12).

One attacker and two victims on real kernel stacks (``hostile.build``), one test per
item: the attack is refused or counted, and the victims keep forwarding.  The attacker is
root in its kernel namespace (it crafts frames on its own link) or a client of a control
socket.  The read verbs (item 6) are in test_hostile_reads.py.
"""
import socket
import threading
import time

import pytest

from pyctl import errors, kernel
from pyctl.control.client import ControlClient
from pyctl import Switch
from pyctl.rig import probes
from tests.e2e import hostile as h


# -- 1. a delegated L2's client reaches only kernel namespaces of its subtree ------------

def test_1_delegated_client_names_only_kernel_namespaces_of_its_subtree(tapswitch_factory,
                                                                        make_netns):
    topo, a, b, x = h.build(tapswitch_factory)
    topo.l2("evil", "10.7.0.1/24")
    foreign = make_netns()                       # someone else's: the kernel has it, the model not
    admin = topo.client()
    evil = ControlClient(admin.call("socket-add", namespace="evil")["path"])
    try:
        before = admin.call("ports")
        attempts = [
            ({"netns": a.netns_name}, "delegated client names only kernel namespaces"),
            ({"address": "10.7.0.50/24", "gateway": "10.7.0.1"}, "host namespace"),
            ({"netns": foreign.name}, "the switch did not make it"),
        ]
        for options, why in attempts:
            name = kernel.unique_name("hx")
            with pytest.raises(errors.PermissionDenied) as refused:
                evil.call("port-add", name=name, namespace="evil", options=options)
            assert why in refused.value.message
            assert admin.call("ports") == before                  # nothing changed
            assert not a.netns.has_link(name) and not foreign.has_link(name)
            assert not kernel.host.has_link(name)
        with pytest.raises(errors.PermissionDenied) as refused:   # nor give it to itself
            evil.call("netns-delegate", namespace="evil", netns=foreign.name)
        assert "only the administrator" in refused.value.message
        assert probes.ping(a, b.ip, count=1)                      # the victims still talk

        mine = kernel.unique_name("hxns")                         # new: the switch makes it
        evil.call("port-add", name=kernel.unique_name("hx"), namespace="evil",
                  options={"netns": mine})
        assert mine in kernel.list_netns()
        admin.call("netns-delegate", namespace="evil", netns=foreign.name)
        name = kernel.unique_name("hx")
        evil.call("port-add", name=name, namespace="evil", options={"netns": foreign.name})
        assert foreign.has_link(name)                             # given to it: entered
        evil.call("port-del", name=name)
        admin.call("netns-revoke", namespace="evil", netns=foreign.name)
    finally:
        evil.close()
        admin.close()


# -- 2. pull takes the address from the tenant's kernel too --------------------------------

def test_2_pull_removes_the_address_from_the_tenants_kernel(tapswitch_factory):
    topo, a, b, x = h.build(tapswitch_factory)
    assert "10.0.0.2/24" in a.netns.addresses(a.port)            # the port's address option
    topo.pull("10.0.0.2/24", "victim-a")
    assert "10.0.0.2/24" not in topo.addresses("victim-a")
    assert h.until(lambda: "10.0.0.2/24" not in a.netns.addresses(a.port))
    with pytest.raises(OSError):                                 # nothing to send from
        probes.ping(a, b.ip, count=1, timeout=0.3)
    topo.push("10.0.0.2/24", "victim-a")
    assert h.until(lambda: "10.0.0.2/24" in a.netns.addresses(a.port))
    assert any(r["dst"] == "0.0.0.0/0" and r["gateway"] == h.GATEWAY for r in a.netns.routes())
    assert probes.ping(a, b.ip, count=2)


# -- 3. a limited broadcast reaches the sender's subnet only --------------------------------

def test_3_limited_broadcast_stays_on_the_senders_subnet(tapswitch_factory):
    topo, a, b, x = h.build(tapswitch_factory)
    h.warm(topo, a, b, x)
    with h.receivers(6003, a, b, x) as rx:
        h.send_udp(x, "255.255.255.255", 6003, [b"to everyone"] * 5, broadcast=True)
        h.send_udp(a, "255.255.255.255", 6003, [b"to my subnet"] * 5, broadcast=True)
        got = {name: h.received(s) for name, s in rx.items()}
    assert [p for p, src, _ in got["victim-a"] if src == x.ip] == []
    assert [p for p, src, _ in got["victim-b"] if src == x.ip] == []
    assert [p for p, src, _ in got["victim-b"] if src == a.ip] == [b"to my subnet"] * 5
    assert [p for p, src, _ in got["attacker"] if src == a.ip] == []
    assert h.reasons(topo, "attacker")["no_listener"] >= 5


# -- 4. a directed broadcast from another subnet: off unless the L2 lets it in ---------------

def test_4_directed_broadcast_from_another_subnet_needs_the_option(tapswitch_factory):
    topo, a, b, x = h.build(tapswitch_factory)
    h.warm(topo, a, b, x)
    with h.receivers(6004, a, b) as rx:
        h.send_udp(x, "10.0.0.255", 6004, [b"routed"] * 5, broadcast=True)
        h.send_udp(a, "10.0.0.255", 6004, [b"on-link"] * 5, broadcast=True)
        got = {name: h.received(s) for name, s in rx.items()}
    assert [src for _, src, _ in got["victim-a"] + got["victim-b"] if src == x.ip] == []
    assert [p for p, src, _ in got["victim-b"] if src == a.ip] == [b"on-link"] * 5
    assert h.reasons(topo, "attacker")["directed_broadcast"] == 5
    topo.namespace_set("init", {"directed_broadcast": True})
    with h.receivers(6004, a, b) as rx:
        h.send_udp(x, "10.0.0.255", 6004, [b"routed"] * 5, broadcast=True)
        got = {name: h.received(s) for name, s in rx.items()}
    assert [p for p, _, _ in got["victim-a"]] == [p for p, _, _ in got["victim-b"]] == \
        [b"routed"] * 5


# -- 5. sources no router forwards, and the gateway's, are dropped and counted ---------------

MARTIANS = ["0.0.0.0", "0.1.2.3", "127.0.0.1", "224.0.0.5", "240.0.0.1", "255.255.255.255"]


def test_5_martian_and_gateway_sources_are_dropped(tapswitch_factory):
    topo, a, b, x = h.build(tapswitch_factory)
    h.warm(topo, a, b, x)
    gw, mine = h.switch_mac(topo, x), h.own_mac(x)
    to_a = topo.counters()["namespaces"]["victim-a"]["tx_packets"]
    with h.receivers(6005, a) as rx:
        frames = [h.udp_frame(gw, mine, src, a.ip, 40000, 6005, src.encode())
                  for src in MARTIANS + [h.OTHER_GATEWAY, h.GATEWAY]] * 3
        h.send_frames(x, frames)
        h.send_frames(x, [h.udp_frame(gw, mine, x.ip, a.ip, 40000, 6005, b"honest")])
        got = [p for p, _, _ in h.received(rx["victim-a"])]
    assert got == [b"honest"]
    # the switch forwarded none of them (a victim's kernel may drop some itself)
    assert topo.counters()["namespaces"]["victim-a"]["tx_packets"] == to_a + 1
    counted = h.reasons(topo, "attacker")
    assert counted["martian_source"] == 3 * len(MARTIANS)
    assert counted["spoofed_source"] == 3 * 2
    assert probes.ping(a, b.ip, count=1)


# -- 7. an L2's own subnets are connected routes ---------------------------------------------

def test_7_a_host_on_an_uplink_subnet_is_reached_by_the_connected_route(tapswitch_factory):
    topo, a, b, x = h.build(tapswitch_factory)
    topo.address_add("init", "192.168.50.1/24")                   # the uplink's subnet
    upstream, uplink = kernel.unique_name("hup"), kernel.unique_name("hu")
    with topo.client() as admin:
        admin.call("port-add", name=uplink, namespace="init",
                   options={"netns": upstream, "address": "192.168.50.2/24",
                            "gateway": "192.168.50.1"})
        assert probes.ping(a, "192.168.50.2", count=3, timeout=2.0)
        routes = admin.call("routes", namespace="init")
        assert {"dst": "192.168.50.0/24", "via": None, "port": uplink,
                "connected": True} in routes
        assert not [r for r in routes if not r["connected"]]     # no route was given
        admin.call("port-del", name=uplink)


# -- 8. route-replace: one step, no packet lost ----------------------------------------------

def test_8_route_replace_loses_no_packet_of_a_steady_flow(tapswitch_factory):
    topo, a, b, x = h.build(tapswitch_factory, attacker="10.0.0.9/24")
    far = "10.9.0.5"
    for router in (b, x):                                         # both can take the flow
        router.run(["ip", "addr", "add", f"{far}/32", "dev", "lo"])
    topo.route_add("init", "10.9.0.0/16", via=b.ip)
    h.warm(topo, a, b, x)
    with h.receivers(6008, b, x) as rx:
        for via in (x.ip, b.ip):                                  # both next hops resolved
            topo.route_replace("init", "10.9.0.0/16", via=via)
            h.send_udp(a, far, 6008, [b"warm"])
        time.sleep(0.2)
        for s in rx.values():
            h.received(s, timeout=0.1)
        stop = threading.Event()
        replaced = []

        def flap():
            vias = (x.ip, b.ip)
            while not stop.is_set():
                topo.route_replace("init", "10.9.0.0/16", via=vias[len(replaced) % 2])
                replaced.append(1)
                time.sleep(0.01)
        flapper = threading.Thread(target=flap)
        flapper.start()
        try:
            sock = a.socket(socket.AF_INET, socket.SOCK_DGRAM)
            for k in range(1500):
                sock.sendto(b"%d" % k, (far, 6008))
                time.sleep(0.0005)
            sock.close()
        finally:
            stop.set()
            flapper.join()
        got = [p for s in rx.values() for p, _, _ in h.received(s)]
    assert len(replaced) >= 20                                    # replaced again and again
    assert sorted(got, key=int) == [b"%d" % k for k in range(1500)]


# -- 9. subnet edges, TTL within a subnet, rogue DHCP servers --------------------------------

def test_9_an_address_on_another_subnets_edge_is_refused_by_the_model(tapswitch_factory):
    topo, a, b, x = h.build(tapswitch_factory)
    for address in ("10.0.0.255/16", "10.0.0.0/32"):
        with pytest.raises(errors.AddressInUse) as refused:
            topo.assign_and_push(address, "attacker")
        assert "address of 10.0.0.0/24" in refused.value.message
    assert probes.ping(a, b.ip, count=1)
    sw = Switch()                                 # the Python API: the model itself refuses
    sw.create("t", "l3")
    sw.assign_and_push("10.0.0.2/24", "t")
    with pytest.raises(errors.AddressInUse):
        sw.address_add("init", "10.0.0.255/16")


def test_9_within_a_subnet_the_ttl_is_kept_only_routing_takes_one(tapswitch_factory):
    topo, a, b, x = h.build(tapswitch_factory)
    h.warm(topo, a, b, x)
    with h.receivers(6009, b) as rx:
        h.send_udp(a, b.ip, 6009, [b"switched"], ttl=7)
        h.send_udp(x, b.ip, 6009, [b"routed"], ttl=7)
        got = {p: ttl for p, _, ttl in h.received(rx["victim-b"])}
    assert got == {b"switched": 7, b"routed": 6}


def offer_and_ack(sender, client):
    """A DHCP server's messages: an offer broadcast, an ack to ``client``'s address."""
    h.send_udp(sender, "255.255.255.255", 68, [b"offer " + sender.name.encode()], sport=67,
               broadcast=True)
    h.send_udp(sender, client.ip, 68, [b"ack " + sender.name.encode()], sport=67)


def test_9_dhcp_server_messages_come_only_from_a_trusted_port(tapswitch_factory):
    topo, a, b, x = h.build(tapswitch_factory, attacker="10.0.0.9/24")
    h.warm(topo, a, b, x)
    with h.receivers(68, a, b) as rx:
        offer_and_ack(x, a)                                   # a rogue server on the subnet
        got = {name: [p for p, _, _ in h.received(s)] for name, s in rx.items()}
    assert got == {"victim-a": [], "victim-b": []}
    assert h.reasons(topo, "attacker")["rogue_dhcp"] == 2
    server = topo.tenant("dhcp-srv", "10.0.0.5/24", dhcp_server=True)    # one it trusts
    h.warm(topo, server)
    with h.receivers(68, a, b) as rx, h.receivers(67, server, x) as servers:
        offer_and_ack(server, a)
        discover = h.udp_frame(b"\xff" * 6, h.own_mac(b), "0.0.0.0", "255.255.255.255",
                               68, 67, b"discover")
        h.send_frames(b, [discover])                          # a client: to the servers only
        got = {name: sorted(p for p, _, _ in h.received(s)) for name, s in rx.items()}
        asked = {name: [p for p, _, _ in h.received(s)] for name, s in servers.items()}
    assert got == {"victim-a": [b"ack dhcp-srv", b"offer dhcp-srv"],
                   "victim-b": [b"offer dhcp-srv"]}
    assert asked == {"dhcp-srv": [b"discover"], "attacker": []}


# -- 12. checksum claims end at the port they came in on -------------------------------------

def test_12_a_tenants_checksum_claim_is_not_passed_on(tapswitch_factory, kernel_registry):
    topo, a, b, x = h.build(tapswitch_factory, vnet_hdr=True)
    h.warm(topo, a, b, x)
    send = h.forwarder_with_checked_sums(x, kernel_registry)
    with h.observed_link(topo, a) as link:
        for _ in range(3):
            send(h.tcp_frame(x.ip, a.ip))
        written = []
        h.until(lambda: len(tcp_frames(written, link)) >= 3)
    assert len(written) == 3                                   # forwarded to the victim
    assert all(f[0] & 2 == 0 for f in written)                 # no DATA_VALID claim
    assert probes.ping(a, b.ip, count=1)


def tcp_frames(seen, link):
    """The TCP frames written so far (header + frame), added to ``seen``."""
    seen += [f for f in link.drain() if f[12 + 12:12 + 14] == b"\x08\x00" and f[12 + 23] == 6]
    return seen
