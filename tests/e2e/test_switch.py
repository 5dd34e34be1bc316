"""End-to-end: real kernel network stacks on both sides of tapswitch.

Each test builds its topology with the project's own pytest plugin
(``tapswitch_topology`` / ``tapswitch_factory``), sends traffic only between
the kernel namespaces it made, and leaves nothing behind.  Every test runs once
per port kind of the tenants (tap, veth, xdp: ``port_kinds``, tests/e2e/conftest.py).
"""
import ipaddress
import socket

import pytest

from pyctl import errors

from pyctl.rig import probes
from pyctl.control.client import ControlClient

pytestmark = pytest.mark.port_kinds


def test_icmp_echo_between_tenants_and_to_the_switch(tapswitch_topology):
    a, b = tapswitch_topology.tenants["a"], tapswitch_topology.tenants["b"]
    assert len(probes.ping(a, b.ip, count=3)) == 3
    assert len(probes.ping(b, a.ip, count=3)) == 3
    assert len(probes.ping(a, tapswitch_topology.gateway, count=3)) == 3


def test_tcp_20_mb_arrives_intact(tapswitch_topology):
    a, b = tapswitch_topology.tenants["a"], tapswitch_topology.tenants["b"]
    sent, received, nbytes, _ = probes.tcp_transfer(a, b, b.ip, 20 << 20)
    assert nbytes == 20 << 20
    assert received == sent


def test_udp_both_directions(tapswitch_topology):
    a, b = tapswitch_topology.tenants["a"], tapswitch_topology.tenants["b"]
    for src, dst in ((a, b), (b, a)):
        rx = probes.udp_receiver(dst, dst.ip, 6000)
        try:
            payloads = [b"%s->%s %d" % (src.name.encode(), dst.name.encode(), i) for i in range(50)]
            probes.udp_send(src, dst.ip, 6000, payloads)
            got = probes.drain(rx, 0.5)
        finally:
            rx.close()
        assert sorted(data for data, _ in got) == sorted(payloads)
        assert {addr[0] for _, addr in got} == {src.ip}


@pytest.mark.parametrize("subnet", ["10.0.0.{}/24", "fd00::{}/64"], ids=["ipv4", "ipv6"])
def test_sibling_l2s_with_the_same_subnet_are_isolated(tapswitch_factory, subnet):
    topo = tapswitch_factory()
    topo.l2("red", subnet.format(1))
    topo.l2("blue", subnet.format(1))
    r1 = topo.tenant("r1", subnet.format(2), parent="red")
    r2 = topo.tenant("r2", subnet.format(3), parent="red")
    b1 = topo.tenant("b1", subnet.format(2), parent="blue")
    b2 = topo.tenant("b2", subnet.format(3), parent="blue")
    topo.start()
    receivers = {t.name: probes.udp_receiver(t, t.ip, 6001) for t in (r2, b2)}
    try:
        probes.udp_send(r1, r2.ip, 6001, [b"from red"] * 10)     # r2 and b2 share the address
        probes.udp_send(b1, b2.ip, 6001, [b"from blue"] * 10)
        got = {name: [d for d, _ in probes.drain(s, 0.5)] for name, s in receivers.items()}
    finally:
        for s in receivers.values():
            s.close()
    assert got["r2"] == [b"from red"] * 10
    assert got["b2"] == [b"from blue"] * 10
    assert len(probes.ping(r1, r2.ip)) == 3
    assert len(probes.ping(b1, subnet.format(1).split("/")[0])) == 3     # blue's own switch


def test_spoofed_source_is_dropped_and_counted(tapswitch_factory):
    topo = tapswitch_factory()
    topo.address_add("init", "10.0.0.1/24")
    a = topo.tenant("a", "10.0.0.2/24")
    b = topo.tenant("b", "10.0.0.3/24")
    c = topo.tenant("c", "10.0.0.4/24")
    topo.start()
    # Let a's MAC and the path be known first, so only the source rule can drop.
    assert probes.ping(a, b.ip, count=1)
    rx = probes.udp_receiver(b, b.ip, 6002)
    try:
        probes.send_spoofed_udp(a, c.ip, b.ip, 6002, b"forged", count=7)
        forged = probes.drain(rx, 0.5)
    finally:
        rx.close()
    assert forged == []
    assert topo.counters()["namespaces"]["a"]["reasons"]["spoofed_source"] == 7


def test_live_push_then_destroy_returns_the_address(tapswitch_factory):
    topo = tapswitch_factory()
    topo.address_add("init", "10.0.0.1/24")
    topo.address_add("init", "10.0.0.9/24")
    a = topo.tenant("a", "10.0.0.2/24")
    b = topo.tenant("b", "10.0.0.3/24")
    topo.start()
    # Before the push the address is the switch's own: UDP to it is refused
    # (ICMP port unreachable from the switch).
    errors_seen = probes.icmp_errors(a, lambda: probes.udp_send(a, "10.0.0.9", 6003, [b"early"]))
    assert (3, 3, "10.0.0.9") in errors_seen
    topo.push("10.0.0.9/24", "b")
    rx = probes.udp_receiver(b, "10.0.0.9", 6003)
    try:
        probes.udp_send(a, "10.0.0.9", 6003, [b"after push %d" % i for i in range(10)])
        got = probes.drain(rx, 0.5)
    finally:
        rx.close()
    assert len(got) == 10
    topo.destroy("b")
    own = [str(x) for x in topo.switch.addresses("init")]
    assert "10.0.0.9/24" in own and "10.0.0.3/24" in own
    assert topo.daemon.datapath.lookup_address(0, 0x0A000009) == 0


def test_broadcast_reaches_the_subnet_and_nobody_else(tapswitch_factory):
    topo = tapswitch_factory()
    topo.address_add("init", "10.0.0.1/24")
    topo.address_add("init", "10.0.1.1/24")
    topo.l2("blue", "10.0.0.1/24")
    a = topo.tenant("a", "10.0.0.2/24")
    b = topo.tenant("b", "10.0.0.3/24")
    c = topo.tenant("c", "10.0.0.4/24")
    d = topo.tenant("d", "10.0.1.2/24")                  # same L2, another subnet
    e = topo.tenant("e", "10.0.0.5/24", parent="blue")  # sibling L2, same subnet
    topo.start()
    rx = {t.name: probes.udp_receiver(t, "", 6004) for t in (a, b, c, d, e)}
    try:
        probes.udp_send(a, "10.0.0.255", 6004, [b"directed"] * 3, broadcast=True)
        probes.udp_send(a, "255.255.255.255", 6004, [b"limited"] * 3, broadcast=True)
        got = {name: sorted(x for x, _ in probes.drain(s, 0.5)) for name, s in rx.items()}
    finally:
        for s in rx.values():
            s.close()
    assert got["b"] == got["c"] == sorted([b"directed"] * 3 + [b"limited"] * 3)
    # The sender's own kernel loops its broadcasts back once; a copy from the
    # switch would make it twice.
    assert got["a"] == sorted([b"directed"] * 3 + [b"limited"] * 3)
    assert b"directed" not in got["d"]    # another subnet of the same L2
    assert got["e"] == []                 # another L2: nothing at all


def test_ttl_1_gets_time_exceeded(tapswitch_topology):
    """Only routing takes a TTL (issue 14 item 9): TTL 1 to b's address on another subnet
    is time-exceeded by the gateway; within a subnet it is switched (test_hostile_isolation)."""
    topo = tapswitch_topology
    a = topo.tenants["a"]
    other = ipaddress.ip_network((int(topo.subnet.network_address) ^ 0x100, 24))
    far = f"{other.network_address + 3}/24"
    topo.assign_and_push(far, "b")                      # b on a second subnet: routed there

    def send():
        s = a.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 1)
        s.sendto(b"short-lived", (far.split("/")[0], 6005))
        s.close()
    try:
        assert (11, 0, topo.gateway) in probes.icmp_errors(a, send)
    finally:
        topo.pull(far, "b")
        topo.address_del("init", far)


CONFIGURING = [
    ("create", {"name": "x", "kind": "l3"}),
    ("destroy", {"namespace": "b"}),
    ("address-add", {"namespace": "a", "address": "10.0.0.50/24"}),
    ("push", {"address": "10.0.0.2/24", "namespace": "a"}),
    ("pull", {"address": "10.0.0.2/24", "namespace": "a"}),
    ("assign-and-push", {"address": "10.0.0.51/24", "namespace": "a"}),
    ("route-add", {"namespace": "init", "prefix": "10.9.0.0/16", "via": "10.0.0.3"}),
    ("port-add", {"name": "evil0", "namespace": "a"}),
    ("port-del", {"name": "tap-none"}),
    ("address-del", {"namespace": "init", "address": "10.0.0.1/24"}),
    ("route-del", {"namespace": "init", "prefix": "10.9.0.0/16"}),
]


def test_control_socket_as_l3_is_refused_every_configuring_verb(tapswitch_topology):
    topo = tapswitch_topology
    path = topo.daemon.call(lambda: topo.daemon.control.bind_namespace("a"))
    before = topo.switch.snapshot()
    with ControlClient(path) as client:
        assert client.call("whoami")["namespace"] == "a"
        for verb, args in CONFIGURING:
            with pytest.raises(errors.TapswitchError) as info:
                client.call(verb, **args)
            assert info.value.code == "EPERM", (verb, info.value)
    assert topo.switch.snapshot() == before
