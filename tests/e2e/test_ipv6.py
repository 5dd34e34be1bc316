"""IPv6 end to end (issue 15): real kernel stacks on both sides of tapswitch.

Tenants are dual-stack (``Topology.tenant(name, "10.x/24", "fd00::x/64")``): their TAPs
get the addresses at once (no duplicate address detection to wait for), IPv6 on and
router advertisements off, a default route per family.  Between them: ping, routing
between two IPv6 subnets with the hop limit decremented and time exceeded when it runs
out, packet too big toward a smaller-MTU port and TCP going through it by path MTU
discovery (200 MB of TCP and UDP up to 65,000 bytes over IPv6, with offloads on and off,
are tests/e2e/test_offloads.py's, overlapping prefixes in sibling L2s test_switch.py's),
spoofed sources dropped and counted (an uplink's host sending from the gateway's
address too), a host on an uplink's subnet reached by the connected route, MLD
membership with kernel sockets, a datagram to
a solicited-node group that reaches its owner only,
a tenant's duplicate address detection seeing a conflict (and none for a free address),
and a rogue router advertisement that reaches nobody and is counted for its sender.
Ping and routing between subnets run for every port kind (``port_kinds``: ring ports
carry IPv6 as TAPs do).
"""
import random
import socket
import struct
import time

import pytest
from scapy.compat import raw
from scapy.layers.inet import UDP
from scapy.layers.inet6 import (ICMPv6ND_NS, ICMPv6ND_RA, ICMPv6ND_RS,
                                ICMPv6NDOptPrefixInfo, ICMPv6NDOptSrcLLAddr, IPv6)
from scapy.layers.l2 import Ether

from pyctl import kernel
from pyctl.control.client import ControlClient
from pyctl.rig import probes
from tests.support.waiting import wait_for

IPV6_RECVHOPLIMIT = 51          # <linux/in6.h>
IPV6_HOPLIMIT = 52
IFA_F_DADFAILED = 0x08          # <linux/if_addr.h>
IFA_F_TENTATIVE = 0x40


def two_subnets(factory):
    """a in fd00:1::/64, b in fd00:2::/64, both of init, whose own addresses there are the
    gateways: every frame between them is routed by the switch."""
    net = random.randint(16, 250)
    topo = factory()
    topo.address_add("init", f"10.{net}.1.1/24")
    topo.address_add("init", f"10.{net}.2.1/24")
    topo.address_add("init", "fd00:1::1/64")
    topo.address_add("init", "fd00:2::1/64")
    return topo, net


def red_and_blue(factory):
    """Two sibling L2s with the same fd00::1/64, tenants fd00::2 and fd00::3 in red,
    fd00::2 in blue: (topology, r1, r2, b1)."""
    topo = factory()
    topo.l2("red", "fd00::1/64")
    topo.l2("blue", "fd00::1/64")
    r1 = topo.tenant("r1", "fd00::2/64", parent="red")
    r2 = topo.tenant("r2", "fd00::3/64", parent="red")
    b1 = topo.tenant("b1", "fd00::2/64", parent="blue")
    return topo, r1, r2, b1


def three_tenants(factory):
    """A started topology: fd00::1/64 in init, IPv6-only tenants a, b, c (::2 .. ::4)."""
    topo = factory()
    topo.address_add("init", "fd00::1/64")
    tenants = [topo.tenant(name, f"fd00::{host}/64")
               for name, host in (("a", 2), ("b", 3), ("c", 4))]
    topo.start()
    return (topo, *tenants)


def eth_of(tenant):
    return tenant.port         # the TAP keeps its name in the tenant's namespace


# -- reachability ----------------------------------------------------------------------------

@pytest.mark.port_kinds       # ring ports (veth, xdp) carry IPv6 as TAPs do
def test_ping6_between_tenants_and_to_the_gateway(tapswitch_topology):
    a, b = tapswitch_topology.tenants["a"], tapswitch_topology.tenants["b"]
    assert len(probes.ping(a, b.ip6, count=3)) == 3
    assert len(probes.ping(b, a.ip6, count=3)) == 3
    assert len(probes.ping(a, "fd00::1", count=3)) == 3
    counters = tapswitch_topology.counters()
    assert counters["namespaces"]["a"]["reasons"]["spoofed_source"] == 0


def test_udp_and_tcp_over_ipv6_in_one_subnet(tapswitch_topology):
    a, b = tapswitch_topology.tenants["a"], tapswitch_topology.tenants["b"]
    rx = probes.udp_receiver(b, b.ip6, 6100)
    try:
        probes.udp_send(a, b.ip6, 6100, [b"six %d" % i for i in range(30)])
        got = probes.drain(rx, 0.5)
    finally:
        rx.close()
    assert sorted(d for d, _ in got) == sorted(b"six %d" % i for i in range(30))
    assert {addr[0] for _, addr in got} == {a.ip6}
    sent, received, nbytes, _ = probes.tcp_transfer(a, b, b.ip6, 20 << 20)
    assert nbytes == 20 << 20 and received == sent


@pytest.mark.port_kinds
def test_routed_between_two_subnets_hop_limit_decremented_then_time_exceeded(tapswitch_factory):
    topo, net = two_subnets(tapswitch_factory)
    a = topo.tenant("a", f"10.{net}.1.2/24", "fd00:1::2/64")
    b = topo.tenant("b", f"10.{net}.2.2/24", "fd00:2::2/64")
    topo.start()
    assert len(probes.ping(a, b.ip6, count=2)) == 2
    with b.socket(socket.AF_INET6, socket.SOCK_DGRAM) as rx, \
            a.socket(socket.AF_INET6, socket.SOCK_DGRAM) as tx:
        rx.bind((b.ip6, 6101))
        rx.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1)
        rx.settimeout(2)
        tx.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 64)
        tx.sendto(b"count the hops", (b.ip6, 6101))
        data, ancillary, _, source = rx.recvmsg(2048, socket.CMSG_SPACE(4))
    hops = [struct.unpack("i", d[:4])[0] for level, kind, d in ancillary
            if (level, kind) == (socket.IPPROTO_IPV6, IPV6_HOPLIMIT)]
    assert (data, source[0], hops) == (b"count the hops", a.ip6, [63])
    errors = probes.icmp_errors(
        a, lambda: probes.udp_send(a, b.ip6, 6101, [b"short-lived"], hops=1),
        family=socket.AF_INET6)
    assert (3, 0, "fd00:1::1") in errors
    assert topo.stats()["slowpath"]["icmp6_sent_3_0"] >= 1


def test_packet_too_big_toward_a_smaller_mtu_port_and_tcp_through_it(tapswitch_factory):
    topo, net = two_subnets(tapswitch_factory)
    a = topo.tenant("a", f"10.{net}.1.2/24", "fd00:1::2/64")
    b = topo.tenant("b", f"10.{net}.2.2/24", "fd00:2::2/64", mtu=1280)
    topo.start()
    # b's own link is 1280 bytes, but it advertises a larger MSS (as a host behind a
    # larger link would): only path MTU discovery keeps a's segments small enough.
    b.run(["ip", "-6", "route", "replace", "fd00:1::/64", "via", "fd00:2::1", "dev", eth_of(b),
           "advmss", "1440"])
    done = {}

    def transfer():
        sent, received, nbytes, _ = probes.tcp_transfer(a, b, b.ip6, 8 << 20, timeout=30)
        done.update(sent=sent, received=received, nbytes=nbytes)
    errors = probes.icmp_errors(a, transfer, family=socket.AF_INET6)
    assert done["nbytes"] == 8 << 20 and done["received"] == done["sent"]
    assert (2, 0, "fd00:1::1", 1280) in errors           # what taught a's kernel the path MTU
    route = a.run(["ip", "-6", "route", "get", b.ip6]).stdout
    assert "mtu 1280" in route, route
    slow = topo.stats()["slowpath"]
    assert slow["too_big_ipv6"] >= 1 and slow["icmp6_sent_2_0"] >= 1


# -- isolation ----------------------------------------------------------------------------------

def test_ipv6_spoofing_is_dropped_and_counted(tapswitch_factory):
    topo = tapswitch_factory()
    topo.address_add("init", "fd00::1/64")
    topo.address_add("init", "fd00:2::1/64")
    a = topo.tenant("a", "fd00::2/64")
    b = topo.tenant("b", "fd00::3/64")
    c = topo.tenant("c", "fd00::4/64")
    d = topo.tenant("d", "fd00:2::2/64")
    topo.start()
    # Neighbours and paths first (up to three tries: the first one crosses the slow path
    # several times), so only the source rule can drop what follows.
    assert probes.ping(a, b.ip6, count=3) and probes.ping(a, d.ip6, count=3)
    rx_b, rx_d = probes.udp_receiver(b, b.ip6, 6103), probes.udp_receiver(d, d.ip6, 6103)
    try:
        probes.send_spoofed_udp(a, c.ip6, b.ip6, 6103, b"forged", count=7)
        probes.send_spoofed_udp(a, "fe80::1234", d.ip6, 6103, b"off-link", count=5)
        probes.udp_send(a, b.ip6, 6103, [b"honest"])
        got_b, got_d = probes.drain(rx_b, 0.5), probes.drain(rx_d, 0.5)
    finally:
        rx_b.close()
        rx_d.close()
    assert [data for data, _ in got_b] == [b"honest"] and got_d == []
    reasons = topo.counters()["namespaces"]["a"]["reasons"]
    assert reasons["spoofed_source"] == 7
    assert reasons["link_local_source_routed"] == 5


def test_neighbour_solicitations_reach_only_the_switch(tapswitch_factory):
    topo, a, b, c = three_tenants(tapswitch_factory)

    def is_nd(frame):
        pkt = Ether(frame)
        return pkt.haslayer(ICMPv6ND_NS) and pkt[ICMPv6ND_NS].tgt in (c.ip6, b.ip6)
    seen_by_b = probes.capture(b, lambda: probes.ping(a, c.ip6, count=2), timeout=0.5,
                               accept=is_nd)
    assert seen_by_b == []
    assert topo.stats()["slowpath"]["nd_advert_sent"] >= 1


def test_an_uplinks_ipv6_subnet_is_connected_and_the_gateways_address_is_the_switchs(
        tapswitch_factory):
    topo = tapswitch_factory()
    topo.address_add("init", "fd00::1/64")
    topo.address_add("init", "fd00:50::1/64")                 # the uplink's subnet
    a = topo.tenant("a", "fd00::2/64")
    topo.start()
    upstream, uplink = kernel.unique_name("hup"), kernel.unique_name("hu")
    with topo.client() as admin:
        admin.call("port-add", name=uplink, namespace="init",
                   options={"netns": upstream, "address": "fd00:50::2/64",
                            "gateway": "fd00:50::1"})
        try:
            # reached by the connected route (no route was given), as IPv4's
            assert {"dst": "fd00:50::/64", "via": None, "port": uplink,
                    "connected": True} in admin.call("routes", namespace="init")
            assert probes.ping(a, "fd00:50::2", count=3, timeout=2.0)
            # the host behind the uplink may not send from the gateway's address
            host = kernel.NetNamespace.attach(upstream)
            rx = probes.udp_receiver(a, a.ip6, 6109)
            try:
                before = topo.counters()["namespaces"]["init"]["reasons"]["spoofed_source"]
                probes.send_spoofed_udp(host, "fd00:50::1", a.ip6, 6109, b"the gateway's", count=4)
                probes.send_spoofed_udp(host, "fd00:50::2", a.ip6, 6109, b"its own")
                got = probes.drain(rx, 0.5)
            finally:
                rx.close()
                host.remove()                                   # the handle only
            assert [d for d, _ in got] == [b"its own"]
            after = topo.counters()["namespaces"]["init"]["reasons"]["spoofed_source"]
            assert after - before == 4
        finally:
            admin.call("port-del", name=uplink)


# -- duplicate address detection --------------------------------------------------------------

def _dad(tenant, cidr, timeout=5.0):
    """Add ``cidr`` to the tenant's link *with* duplicate address detection; its flags
    once DAD is over (tentative gone, or failed)."""
    ifname = eth_of(tenant)
    tenant.netns.set_sysctl(f"net.ipv6.conf.{ifname}.accept_dad", 1)
    tenant.netns.set_sysctl(f"net.ipv6.conf.{ifname}.dad_transmits", 1)
    tenant.run(["ip", "-6", "addr", "add", cidr, "dev", ifname])
    ip = cidr.split("/")[0]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = tenant.run(["ip", "-6", "-o", "addr", "show", "dev", ifname]).stdout
        line = next(l for l in out.splitlines() if f" {ip}/" in l)
        if "dadfailed" in line or "tentative" not in line:
            return line
        time.sleep(0.1)
    pytest.fail(f"DAD of {cidr} did not finish")


def test_dad_sees_a_conflict_and_none_for_a_free_address(tapswitch_factory):
    topo = tapswitch_factory()
    topo.address_add("init", "fd00::1/64")
    a = topo.tenant("a", "fd00::2/64")
    topo.tenant("b", "fd00::3/64")
    topo.start()
    assert "dadfailed" in _dad(a, "fd00::3/64")        # b holds it
    assert "dadfailed" in _dad(a, "fd00::1/64")        # the switch holds it
    free = _dad(a, "fd00::77/64")                      # nobody does (not pushed: a's kernel only)
    assert "dadfailed" not in free and "tentative" not in free


# -- routers ----------------------------------------------------------------------------

def rogue_advertisement(tenant):
    """A router advertisement from ``tenant``'s link-local fe80::bad, as a rogue router sends."""
    mac = tenant.netns.link_info(eth_of(tenant))["address"]
    return raw(Ether(dst="33:33:00:00:00:01", src=mac)
               / IPv6(src="fe80::bad", dst="ff02::1", hlim=255)
               / ICMPv6ND_RA(routerlifetime=9000)
               / ICMPv6NDOptSrcLLAddr(lladdr=mac)
               / ICMPv6NDOptPrefixInfo(prefix="2001:db8:bad::", prefixlen=64))


def test_a_rogue_router_advertisement_reaches_no_other_tenant(tapswitch_topology):
    topo = tapswitch_topology
    a, b = topo.tenants["a"], topo.tenants["b"]
    rogue = rogue_advertisement(a)
    before = topo.stats()["slowpath"].get("drop_rogue_router", 0)
    seen = probes.capture(b, lambda: probes.send_frames(a, [rogue] * 5), timeout=0.5,
                          accept=lambda f: Ether(f).haslayer(ICMPv6ND_RA)
                          and Ether(f)[IPv6].src == "fe80::bad")
    assert seen == []
    assert topo.stats()["slowpath"]["drop_rogue_router"] - before == 5
    assert len(probes.ping(b, a.ip6, count=1)) == 1          # and b still reaches a


def test_the_slow_paths_drops_are_counted_for_the_sender_within_each_readers_scope(
        tapswitch_topology):
    topo = tapswitch_topology
    a = topo.tenants["a"]

    def rogue_drops(counters, name):
        return counters["namespaces"][name]["slowpath_drops"].get("drop_rogue_router", 0)
    probes.send_frames(a, [rogue_advertisement(a)] * 5)
    wait_for(lambda: rogue_drops(topo.counters(), "a") == 5, 2.0, "a's adverts counted as a's")
    assert rogue_drops(topo.counters(), "b") == 0
    assert topo.stats()["slowpath_drops"]["a"]["drop_rogue_router"] == 5
    admin = topo.client()
    own = {name: ControlClient(admin.call("socket-add", namespace=name)["path"]) for name in "ab"}
    try:
        assert own["a"].call("stats")["slowpath_drops"]["a"]["drop_rogue_router"] == 5
        assert rogue_drops(own["a"].call("counters"), "a") == 5
        assert set(own["b"].call("stats")["slowpath_drops"]) <= {"b"}     # a's: not b's to read
        assert list(own["b"].call("counters")["namespaces"]) == ["b"]
        metrics = own["a"].call("counters", format="prometheus").splitlines()
        series = 'tapswitch_namespace_slowpath_drops_total{namespace="a",event="drop_rogue_router"}'
        assert f"{series} 5" in metrics
        assert "drop_rogue_router" not in own["b"].call("counters", format="prometheus")
    finally:
        for client in (admin, *own.values()):
            client.close()


def test_an_advertising_l2_configures_a_host_that_listens(tapswitch_factory):
    topo = tapswitch_factory()
    topo.address_add("init", "fd00:5::1/64")
    topo.namespace_set("init", {"advertise": True})
    a = topo.tenant("a", "fd00:5::2/64")
    topo.start()
    ifname = eth_of(a)
    a.netns.set_sysctl(f"net.ipv6.conf.{ifname}.accept_ra", 1)
    a_mac = a.netns.link_info(ifname)["address"]
    solicit = raw(Ether(dst="33:33:00:00:00:02", src=a_mac)
                  / IPv6(src="fe80::a", dst="ff02::2", hlim=255)
                  / ICMPv6ND_RS() / ICMPv6NDOptSrcLLAddr(lladdr=a_mac))
    # (at most 3 s after the port's first advertisement: RFC 4861's least delay)
    seen = probes.capture(a, lambda: probes.send_frames(a, [solicit]), timeout=4.0,
                          accept=lambda f: Ether(f).haslayer(ICMPv6ND_RA))
    assert seen, "no router advertisement answered the solicitation"
    pkt = Ether(seen[0])
    assert pkt[ICMPv6NDOptPrefixInfo].prefix == "fd00:5::"
    assert pkt[IPv6].hlim == 255 and pkt[IPv6].src.startswith("fe80::")
    # a's kernel took it: a default route via the switch's link-local address there.
    wait_for(lambda: "default via fe80::" in a.run(["ip", "-6", "route"]).stdout, 2.0,
              "a default route from the advertisement")


# -- multicast -------------------------------------------------------------------------------

GROUP6 = "ff05::1:3"


def test_mld_membership_with_kernel_sockets(tapswitch_factory):
    topo, a, b, c = three_tenants(tapswitch_factory)
    index = b.netns.link_index(eth_of(b))
    member = b.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    member.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    member.bind(("::", 6105))
    member.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
                      socket.inet_pton(socket.AF_INET6, GROUP6) + struct.pack("@I", index))
    bystander = probes.udp_receiver(c, "::", 6105)
    sender = a.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sender.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF,
                      a.netns.link_index(eth_of(a)))
    sender.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 8)
    try:
        wait_for(lambda: topo.groups("b") == [GROUP6], 3.0, "b's MLD report learned")
        for i in range(10):
            sender.sendto(b"to the group %d" % i, (GROUP6, 6105))
        got_b = probes.drain(member, 0.5)
        got_c = probes.drain(bystander, 0.3)
        assert sorted(d for d, _ in got_b) == sorted(b"to the group %d" % i for i in range(10))
        assert got_c == []
        member.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_LEAVE_GROUP,
                          socket.inet_pton(socket.AF_INET6, GROUP6) + struct.pack("@I", index))
        wait_for(lambda: topo.groups("b") == [], 2.0, "b's MLD done applied")
        before = topo.counters()["reasons"]["no_listener"]
        sender.sendto(b"nobody", (GROUP6, 6105))
        assert probes.drain(member, 0.3) == []
        wait_for(lambda: topo.counters()["reasons"]["no_listener"] > before, 1.0,
                  "the group's datagram counted as no listener")
    finally:
        for sock in (member, bystander, sender):
            sock.close()
    assert topo.stats()["igmp"]["mld_join"] >= 1


def test_ff02_1_stays_in_the_senders_scope(tapswitch_factory):
    topo, r1, r2, b1 = red_and_blue(tapswitch_factory)
    topo.start()
    echo = raw(Ether(dst="33:33:00:00:00:01", src=r1.netns.link_info(eth_of(r1))["address"])
               / IPv6(src=r1.ip6, dst="ff02::1", hlim=1) / UDP(sport=1, dport=6106)
               / b"all nodes of red")

    def wanted(frame):
        pkt = Ether(frame)
        return pkt.haslayer(UDP) and pkt[UDP].dport == 6106
    assert len(probes.capture(r2, lambda: probes.send_frames(r1, [echo]), accept=wanted)) == 1
    assert probes.capture(b1, lambda: probes.send_frames(r1, [echo]), accept=wanted) == []


def test_a_solicited_node_group_reaches_only_the_owner(tapswitch_factory):
    topo, a, b, c = three_tenants(tapswitch_factory)
    group = "ff02::1:ff00:3"            # fd00::3's: b's kernel joined it with the address
    member = probes.udp_receiver(b, "::", 6108)
    sender = a.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sender.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, a.netns.link_index(eth_of(a)))
    sent = [b"to b's solicited-node group %d" % i for i in range(5)]

    def wanted(frame):
        pkt = Ether(frame)
        return pkt.haslayer(UDP) and pkt[UDP].dport == 6108
    try:
        seen_by_c = probes.capture(c, lambda: [sender.sendto(d, (group, 6108)) for d in sent],
                                   accept=wanted)
        got_b = probes.drain(member, 0.5)
    finally:
        member.close()
        sender.close()
    assert seen_by_c == []
    assert sorted(d for d, _ in got_b) == sorted(sent)
    assert topo.counters()["groups"]["init"][group]["copies"] == len(sent)


def test_echo_to_the_switchs_link_local_address(tapswitch_topology):
    from pyctl.daemon.packets6 import link_local_of
    a = tapswitch_topology.tenants["a"]
    port_mac = bytes.fromhex(tapswitch_topology.switch.port(a.port).mac.replace(":", ""))
    switch_ll = str(link_local_of(port_mac))
    index = a.netns.link_index(eth_of(a))
    sock = a.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    replies = []
    try:
        sock.settimeout(2)
        # (the kernel fills in an ICMPv6 raw socket's checksum)
        sock.sendto(struct.pack("!BBHHH", 128, 0, 0, 9, 1) + b"ll", (switch_ll, 0, 0, index))
        deadline = time.monotonic() + 2
        while not replies and time.monotonic() < deadline:
            data, source = sock.recvfrom(2048)     # neighbour discovery comes first
            if data[0] == 129:
                replies.append((data, source[0].split("%")[0]))
    finally:
        sock.close()
    assert replies and replies[0][1] == switch_ll
    assert replies[0][0][4:] == struct.pack("!HH", 9, 1) + b"ll"


# -- the tenant's kernel side -----------------------------------------------------------------

def test_pushed_ipv6_addresses_are_mirrored_at_once(tapswitch_factory):
    topo = tapswitch_factory()
    topo.address_add("init", "10.0.0.1/24")
    topo.address_add("init", "fd00::1/64")
    a = topo.tenant("a", "10.0.0.2/24")                  # IPv4 only at first
    b = topo.tenant("b", "10.0.0.3/24", "fd00::3/64")
    topo.start()

    def six(tenant):
        out = tenant.run(["ip", "-6", "-o", "addr", "show", "dev", eth_of(tenant)]).stdout
        return {line.split()[3]: line for line in out.splitlines()}
    assert "fd00::3/64" in six(b) and "tentative" not in six(b)["fd00::3/64"]
    assert b.run(["ip", "-6", "route", "show", "default"]).stdout.startswith("default via fd00::1")
    assert b.netns.get_sysctl(f"net.ipv6.conf.{eth_of(b)}.accept_ra") == "0"
    topo.assign_and_push("fd00::2/64", "a")
    assert "fd00::2/64" in six(a) and "tentative" not in six(a)["fd00::2/64"]
    topo.pull("fd00::2/64", "a")
    assert "fd00::2/64" not in six(a)
    with a.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:    # IPv6 stays on, usable
        s.bind(("::", 0))
