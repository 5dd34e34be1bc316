"""Router advertisements on a port the switch serves by DHCP (pyctl/daemon/router_adverts.py):
whatever the L2's ``advertise`` option, a router solicitation is answered from the port's
link-local address; the managed and other flags say "ask DHCPv6" while the namespace holds
an address the DHCPv6 server leases, the prefixes are on-link and never autonomous (no
SLAAC), the MTU is the port's; unsolicited ones go out only then, at once again when what
they say changes, and a last one with lifetime 0 when the addresses are all pulled."""
import ipaddress

import pytest
from scapy.layers.inet6 import ICMPv6ND_RA, ICMPv6NDOptMTU, ICMPv6NDOptPrefixInfo, IPv6
from scapy.layers.l2 import Ether

from pyctl.daemon import packets6 as pk6
from pyctl.daemon.dhcp_leases import DhcpPort
from pyctl.daemon.slowpath import Punt, SlowPath
from tests.daemon.test_slowpath_nd import router_solicitation
from tests.support.slowpath import PORT_MAC, FakeClock, StaticView, assert_icmp6_checksum, mac_bytes


def served(*addresses, gateways=("fd00::1/64", "10.0.0.1/24")):
    return DhcpPort(2, mac_bytes(PORT_MAC[10]), 1500, 600,
                    tuple(map(ipaddress.ip_interface, addresses)),
                    tuple(map(ipaddress.ip_interface, gateways)))


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def world(clock):
    """(slow path, {port: DhcpPort}): port 10 (tenant ns 2) is served by DHCP."""
    ports = {10: served("fd00::2/64", "fd09::2/64", "10.0.0.2/24")}
    sp = SlowPath(StaticView(), clock=clock, dhcp_ports=lambda: dict(ports))
    return sp, ports


def adverts(out):
    return [(p, Ether(f)) for p, f in out.frames if Ether(f).haslayer(ICMPv6ND_RA)]


def test_a_solicitation_is_answered_with_ask_dhcpv6_and_no_slaac(world):
    sp, _ = world
    sp.view.advertising.add(1)                       # the L2 advertises SLAAC prefixes elsewhere
    out = sp.handle(10, Punt.ND, router_solicitation(10))
    [(port, pkt)] = adverts(out)
    assert port == 10 and pkt[IPv6].src == str(pk6.link_local_of(mac_bytes(PORT_MAC[10])))
    ra = pkt[ICMPv6ND_RA]
    assert (ra.M, ra.O, ra.routerlifetime) == (1, 1, 1800)
    assert pkt[ICMPv6NDOptMTU].mtu == 1500
    prefixes, layer = [], pkt[ICMPv6NDOptPrefixInfo]
    while isinstance(layer, ICMPv6NDOptPrefixInfo):
        prefixes.append((layer.prefix, layer.prefixlen, layer.L, layer.A))
        layer = layer.payload
    assert prefixes == [("fd00::", 64, 1, 0)]         # fd09::2: no L2 address there, not leased
    assert_icmp6_checksum(bytes(pkt))
    [(_, other)] = adverts(sp.handle(11, Punt.ND, router_solicitation(11)))   # not served:
    assert (other[ICMPv6ND_RA].M, other[ICMPv6NDOptPrefixInfo].A) == (0, 1)  # the L2's own kind


def test_a_served_port_is_answered_whatever_the_l2_says(world):
    sp, ports = world
    assert len(adverts(sp.handle(10, Punt.ND, router_solicitation(10)))) == 1
    assert adverts(sp.handle(11, Punt.ND, router_solicitation(11))) == []
    assert sp.counters["nd_router_solicit_ignored"] == 1
    ports[10] = served("10.0.0.2/24")                 # no IPv6 address: nothing to ask for
    sp.adverts.changed()
    sp.clock.now += 5
    [(_, pkt)] = adverts(sp.handle(10, Punt.ND, router_solicitation(10)))
    ra = pkt[ICMPv6ND_RA]
    assert (ra.M, ra.O, ra.routerlifetime) == (0, 0, 0) and not pkt.haslayer(ICMPv6NDOptPrefixInfo)


def test_unsolicited_ones_follow_what_the_namespace_holds(world, clock):
    sp, ports = world
    assert [p for p, _ in adverts(sp.tick())] == [10]        # served with an address: at once
    clock.now += 20
    assert [p for p, _ in adverts(sp.tick())] == [10]        # the initial ones, 16 s apart
    clock.now += 5
    assert adverts(sp.tick()) == []
    ports[10] = served("fd00::2/64", "fd00::9/64")            # pushed on the same subnet:
    sp.adverts.changed()
    assert adverts(sp.tick()) == []                          # nothing new to say
    ports[10] = served("fd00::2/64", "fd01::5/64", gateways=("fd00::1/64", "fd01::1/64"))
    sp.adverts.changed()                                      # a new subnet: at once
    [(_, pkt)] = adverts(sp.tick())
    assert pkt[ICMPv6NDOptPrefixInfo].payload[ICMPv6NDOptPrefixInfo].prefix == "fd01::"
    clock.now += 1
    assert adverts(sp.tick()) == []
    ports[10] = served()                                      # all pulled: a last one
    sp.adverts.changed()
    [(_, pkt)] = adverts(sp.tick())
    assert (pkt[ICMPv6ND_RA].M, pkt[ICMPv6ND_RA].routerlifetime) == (0, 0)
    assert sp.counters["nd_advert_final"] == 1
    clock.now += 1000
    assert adverts(sp.tick()) == []
    del ports[10]                                             # the port went away
    sp.adverts.changed()
    assert adverts(sp.tick()) == [] and sp.adverts.managed() == {}
