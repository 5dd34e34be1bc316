"""MLD snooping, exactly IGMP's for IPv6: v1 reports and dones and v2 records become the
sending namespace's model memberships (compiled into the datapath's IPv6 groups), L3
leaves are fast, an L2's cut short with a group-specific query, learned ones expire, link
scope groups are never tables, bounds per scope are shared with IGMP; the querier's MLDv2
queries come from the port's link-local address with a Router Alert."""
import ipaddress

import pytest
from scapy.layers.inet6 import ICMPv6MLQuery2, IPv6, IPv6ExtHdrHopByHop, RouterAlert
from scapy.layers.l2 import Ether

from pyctl.daemon import igmp, mld
from pyctl.daemon import packets6 as pk6
from pyctl.daemon.multicast import group_counters

from tests.support.multicast import (PEER, Rig, datapaths, link_local, mld1_done, mld1_report,
                                     mld2_join, mld2_leave, mld2_report, v3_join)
from tests.support.slowpath import assert_icmp6_checksum

V6 = ipaddress.IPv6Address
G6, G7 = V6("ff05::1:3"), V6("ff0e::7")
GMI = igmp.IgmpConfig().group_membership_interval


@pytest.fixture(params=datapaths(), ids=["core", "ref"])
def rig(request):
    return Rig(request.param)


def parsed(frame):
    return mld.parse_mld(pk6.parse_ipv6(frame[14:]))


# -- parsing ------------------------------------------------------------------------------

def test_reports_and_dones_become_events():
    mac = PEER["web"]
    assert parsed(mld1_report(mac, str(G6))) == [igmp.IgmpEvent(G6, True)]
    assert parsed(mld1_done(mac, str(G6))) == [igmp.IgmpEvent(G6, False)]
    report = mld2_report(mac, (igmp.MODE_IS_EXCLUDE, "ff05::1:3", []),
                         (igmp.CHANGE_TO_INCLUDE, "ff0e::7", []),
                         (igmp.ALLOW_NEW_SOURCES, "ff0e::8", ["fd00::9"]),
                         (igmp.BLOCK_OLD_SOURCES, "ff0e::9", ["fd00::9"]),
                         (igmp.MODE_IS_INCLUDE, "ff0e::a", ["fd00::9", "fd00::a"]),
                         (igmp.CHANGE_TO_EXCLUDE, "ff02::1:ff00:2", []))      # link scope: ignored
    assert parsed(report) == [igmp.IgmpEvent(G6, True), igmp.IgmpEvent(G7, False),
                              igmp.IgmpEvent(V6("ff0e::8"), True),
                              igmp.IgmpEvent(V6("ff0e::a"), True)]
    assert parsed(mld2_join(mac, "ff05::2", src="::")) == [igmp.IgmpEvent(V6("ff05::2"), True)]
    assert parsed(mld1_report(mac, "ff02::fb")) == []


@pytest.mark.parametrize("frame", [
    mld2_join(PEER["web"], "ff05::1:3", hlim=64),                  # crossed a router
    mld2_join(PEER["web"], "ff05::1:3", src="fd00::2"),            # not from the link
    mld1_report(PEER["web"], "ff05::1:3", src="::"),               # only v2 may use ::
    mld1_report(PEER["web"], "fd00::5"),                           # not a group
    mld2_report(PEER["web"], (7, "ff05::1:3", [])),                # no such record type
    mld2_join(PEER["web"], "fd00::9"),
])
def test_bad_messages_are_malformed(frame):
    assert parsed(frame) is None


def test_truncated_records_are_malformed():
    frame = mld2_report(PEER["web"], (igmp.MODE_IS_EXCLUDE, "ff05::1:3", ["fd00::9"]))
    ip = pk6.parse_ipv6(frame[14:])
    short = bytearray(ip.datagram[:-8])
    short[4:6] = (len(short) - 40).to_bytes(2, "big")
    cut = pk6.parse_ipv6(bytes(short))
    message = bytearray(cut.upper_data)
    message[2:4] = b"\0\0"
    message[2:4] = pk6.icmp6_checksum(cut.src, cut.dst, bytes(message)).to_bytes(2, "big")
    fixed = bytes(short[:cut.upper_offset]) + bytes(message)
    assert mld.parse_mld(pk6.parse_ipv6(fixed)) is None


# -- the querier's queries -------------------------------------------------------------------

def test_a_general_query_is_mldv2_from_the_link_local_address():
    mac = b"\x02\x00\x00\x00\x00\x0a"
    frame = mld.build_query_frame(mac)
    pkt = Ether(frame)
    assert (pkt.src, pkt.dst) == ("02:00:00:00:00:0a", "33:33:00:00:00:01")
    ip = pkt[IPv6]
    assert (ip.src, ip.dst, ip.hlim) == (link_local(mac), "ff02::1", 1)
    assert any(isinstance(o, RouterAlert) for o in pkt[IPv6ExtHdrHopByHop].options)
    query = pkt[ICMPv6MLQuery2]
    assert (query.mrd, query.mladdr, query.QRV, query.QQIC) == (10000, "::", 2, 125)
    assert_icmp6_checksum(frame)


def test_a_group_specific_query_goes_to_the_group():
    frame = mld.build_query_frame(b"\x02\x00\x00\x00\x00\x0a", G6, max_resp_time=1.0)
    pkt = Ether(frame)
    assert pkt.dst == "33:33:00:01:00:03" and pkt[IPv6].dst == "ff05::1:3"
    assert (pkt[ICMPv6MLQuery2].mladdr, pkt[ICMPv6MLQuery2].mrd) == ("ff05::1:3", 1000)


# -- snooping, tied to the model ------------------------------------------------------------------

def test_a_report_makes_the_sender_a_model_member_of_the_ipv6_group(rig):
    assert rig.send("tap-web", mld2_join(PEER["web"], "ff05::1:3"), now=0.0) == []
    assert rig.sw.groups("web") == ["ff05::1:3"]
    assert rig.names(rig.group("init", G6)) == ["web"]
    rig.send("tap-db", mld1_report(PEER["db"], "ff05::1:3"), now=1.0)
    assert rig.names(rig.group("init", G6)) == ["db", "web"]
    rows = rig.mc.memberships(rig.sw, 10.0)["init"]["ff05::1:3"]
    assert rows == [{"namespace": "web", "origin": "learned", "expires_in": GMI - 10.0},
                    {"namespace": "db", "origin": "learned", "expires_in": GMI - 9.0}]
    assert rig.mc.counters["mld_in"] == 2 and rig.mc.counters["mld_join"] == 2


@pytest.mark.parametrize("leave", [mld2_leave, mld1_done])
def test_an_l3_leave_is_fast(rig, leave):
    rig.send("tap-web", mld2_join(PEER["web"], "ff05::1:3"), now=0.0)
    assert rig.send("tap-web", leave(PEER["web"], "ff05::1:3"), now=5.0) == []
    assert rig.sw.groups("web") == [] and rig.group("init", G6) is None


def test_an_uplinks_leave_is_cut_short_with_a_group_specific_query(rig):
    rig.send("up0", mld2_join(PEER["up0"], "ff05::1:3"), now=0.0)
    out = rig.send("up0", mld2_leave(PEER["up0"], "ff05::1:3"), now=1.0)
    (pid, frame), = out
    assert pid == rig.ports["up0"] and Ether(frame)[ICMPv6MLQuery2].mladdr == "ff05::1:3"
    assert rig.mc.counters["mld_group_queries"] == 1
    assert rig.sw.groups("init") == ["ff05::1:3"]
    rig.mc.tick(1.0 + igmp.IgmpConfig().last_member_query_time, {})
    assert rig.sw.groups("init") == []


def test_learned_ipv6_memberships_expire(rig):
    rig.send("tap-web", mld2_join(PEER["web"], "ff05::1:3"), now=0.0)
    rig.mc.tick(GMI - 0.1, {})
    assert rig.sw.groups("web") == ["ff05::1:3"]
    rig.mc.tick(GMI, {})
    assert rig.sw.groups("web") == [] and rig.mc.counters["igmp_expired"] == 1


def test_both_families_in_one_scope_and_sibling_scopes_apart(rig):
    rig.send("tap-web", mld2_join(PEER["web"], "ff05::1:3"), now=0.0)
    rig.send("tap-web", v3_join(PEER["web"], "10.0.0.2", 0xEF010101), now=0.0)
    rig.send("tap-b1", mld2_join(PEER["b1"], "ff05::1:3"), now=0.0)
    assert rig.sw.groups("web") == ["239.1.1.1", "ff05::1:3"]
    assert rig.names(rig.group("init", G6)) == ["web"]
    assert rig.names(rig.group("blue", G6)) == ["b1"]
    everything = rig.mc.memberships(rig.sw, 1.0)
    assert list(everything["init"]) == ["239.1.1.1", "ff05::1:3"]
    raw = {(rig.ids["init"], G6): {"rx_packets": 1, "rx_bytes": 9, "copies": 1},
           (rig.ids["init"], 0xEF010101): {"rx_packets": 2, "rx_bytes": 9, "copies": 2}}
    assert list(group_counters(raw, rig.sw)["init"]) == ["239.1.1.1", "ff05::1:3"]


def test_a_configured_ipv6_membership_survives_dones(rig):
    rig.sw.join("ff05::1:3", "db")
    rig.send("tap-db", mld1_done(PEER["db"], "ff05::1:3"), now=1.0)
    rig.mc.tick(10 * GMI, {})
    assert rig.sw.groups("db") == ["ff05::1:3"]
    assert rig.mc.memberships(rig.sw, 0.0)["init"]["ff05::1:3"][0]["origin"] == "configured"


def test_a_full_scope_refuses_new_ipv6_memberships(rig):
    rig.mc.snooper.config = rig.mc.config = igmp.IgmpConfig(max_memberships=1)
    rig.mc.snooper.tables.clear()
    rig.send("tap-web", v3_join(PEER["web"], "10.0.0.2", 0xEF010101), now=0.0)
    rig.send("tap-db", mld2_join(PEER["db"], "ff05::1:3"), now=0.0)
    assert rig.sw.groups("db") == [] and rig.mc.counters["drop_mld_table_full"] == 1


@pytest.mark.parametrize("frame", [mld2_join(PEER["web"], "ff05::1:3", hlim=2),
                                   b"\x33\x33\x00\x00\x00\x16" + PEER["web"] + b"\x86\xdd" + b"\0" * 20])
def test_malformed_mld_changes_nothing_and_is_counted(rig, frame):
    version = rig.sw.version
    assert rig.send("tap-web", frame, now=0.0) == []
    assert rig.sw.version == version and rig.mc.counters["drop_mld_malformed"] == 1


def test_queries_from_endpoints_teach_nothing(rig):
    from tests.support.multicast import _mld_frame
    query = _mld_frame(PEER["up0"], "ff02::1", ICMPv6MLQuery2())
    version = rig.sw.version
    assert rig.send("up0", query, now=0.0) == [] and rig.sw.version == version
    assert rig.mc.counters["mld_in"] == 1 and rig.mc.counters["mld_join"] == 0
