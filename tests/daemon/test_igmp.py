"""IGMP snooping: parsing v1/v2/v3 messages built with scapy, membership timers, queries."""
import math

import pytest
from hypothesis import given, settings, strategies as st
from scapy.compat import raw
from scapy.layers.igmp import (IGMP_MQ, IGMP_MR, IGMPv2_LG, IGMPv2_MR, IGMPv3_MQ, IGMPv3_MR,
                               IGMPv3_MR_Group)
from scapy.layers.inet import IP, IPOption_Router_Alert
from scapy.layers.l2 import Ether

from pyctl.daemon import igmp
from pyctl.errors import InvalidArgument
from pyctl.daemon.igmp import Change, IgmpConfig, IgmpEvent, IgmpSnooper, MembershipTable, QueryRequest
from pyctl.daemon.packets import checksum, ip_int

G1, G2, G3 = ip_int("239.1.1.1"), ip_int("239.2.2.2"), ip_int("232.0.0.9")


def v2(itype, group):
    cls = {0x12: IGMP_MR, 0x16: IGMPv2_MR, 0x17: IGMPv2_LG}[itype]
    message = raw(cls(gaddr=group))
    assert message[0] == itype
    return message


def v3(*records):
    return raw(IGMPv3_MR(records=[IGMPv3_MR_Group(rtype=rtype, maddr=group, srcaddrs=list(sources))
                                  for rtype, group, sources in records]))


def datagram(message, src="10.0.0.2", dst="224.0.0.22"):
    return raw(IP(src=src, dst=dst, ttl=1, proto=2, options=[IPOption_Router_Alert()]) / message)


# -- parsing ----------------------------------------------------------------------------

def test_v1_and_v2_reports_and_leave():
    assert igmp.parse_igmp(v2(0x12, "239.1.1.1")) == [IgmpEvent(G1, True)]
    assert igmp.parse_igmp(v2(0x16, "239.1.1.1")) == [IgmpEvent(G1, True)]
    assert igmp.parse_igmp(v2(0x17, "239.1.1.1")) == [IgmpEvent(G1, False)]


@pytest.mark.parametrize("rtype,sources,join", [
    (1, ["10.9.0.1"], True),     # MODE_IS_INCLUDE {S}
    (1, [], False),              # MODE_IS_INCLUDE {}: nothing wanted
    (2, [], True),               # MODE_IS_EXCLUDE {}: the usual join answer to a query
    (2, ["10.9.0.1"], True),     # MODE_IS_EXCLUDE {S}: all but S
    (3, [], False),              # CHANGE_TO_INCLUDE {}: the v3 leave
    (3, ["10.9.0.1"], True),
    (4, [], True),               # CHANGE_TO_EXCLUDE {}: the v3 join
    (5, ["10.9.0.1"], True),     # ALLOW_NEW_SOURCES
])
def test_v3_record_types(rtype, sources, join):
    assert igmp.parse_igmp(v3((rtype, "239.1.1.1", sources))) == [IgmpEvent(G1, join)]


def test_v3_block_and_empty_allow_change_nothing():
    assert igmp.parse_igmp(v3((6, "239.1.1.1", ["10.9.0.1"]), (5, "239.2.2.2", []))) == []


def test_v3_many_records_in_order():
    msg = v3((4, "239.1.1.1", []), (3, "239.2.2.2", []), (2, "232.0.0.9", ["10.9.0.1", "10.9.0.2"]))
    assert igmp.parse_igmp(msg) == [IgmpEvent(G1, True), IgmpEvent(G2, False), IgmpEvent(G3, True)]


def test_v3_aux_data_is_skipped():
    rec1 = bytearray(raw(IGMPv3_MR_Group(rtype=4, maddr="239.1.1.1")))
    rec1[1] = 1                                               # one word of auxiliary data
    body = bytes([0x22, 0, 0, 0, 0, 0, 0, 2]) + bytes(rec1) + b"AUX!" + raw(
        IGMPv3_MR_Group(rtype=4, maddr="239.2.2.2"))
    msg = body[:2] + checksum(body).to_bytes(2, "big") + body[4:]
    assert igmp.parse_igmp(msg) == [IgmpEvent(G1, True), IgmpEvent(G2, True)]


def test_queries_and_link_local_groups_carry_no_event():
    assert igmp.parse_igmp(raw(IGMP_MQ())) == []
    assert igmp.parse_igmp(raw(IGMPv3_MQ(gaddr="239.1.1.1"))) == []
    assert igmp.parse_igmp(v2(0x16, "224.0.0.251")) == []
    assert igmp.parse_igmp(v3((4, "224.0.0.251", []), (4, "239.1.1.1", []))) == [IgmpEvent(G1, True)]


def _recsum(b):
    b = bytearray(b)
    b[2:4] = b"\x00\x00"
    b[2:4] = checksum(bytes(b)).to_bytes(2, "big")
    return bytes(b)


@pytest.mark.parametrize("name,message", [
    ("short", v2(0x16, "239.1.1.1")[:7]),
    ("bad checksum", v2(0x16, "239.1.1.1")[:2] + b"\x12\x34" + v2(0x16, "239.1.1.1")[4:]),
    ("v2 report for a unicast group", v2(0x16, "10.1.1.1")),
    ("v3 record count beyond the message", _recsum(v3((4, "239.1.1.1", []))[:7] + b"\x02" +
                                                   v3((4, "239.1.1.1", []))[8:])),
    ("v3 sources beyond the message", _recsum(v3((1, "239.1.1.1", ["10.9.0.1"]))[:-2])),
    ("v3 record type 7", _recsum(v3((4, "239.1.1.1", [])).replace(b"\x04\x00\x00\x00", b"\x07\x00\x00\x00", 1))),
    ("v3 record for a unicast group", v3((4, "10.1.1.1", []))),
])
def test_malformed_messages(name, message):
    assert igmp.parse_igmp(message) is None, name


# -- the table ------------------------------------------------------------------------

def test_report_expires_after_group_membership_interval():
    t = MembershipTable(IgmpConfig(group_membership_interval=260.0))
    assert t.report(2, G1, now=0.0) == Change(G1, 2, True)
    assert t.report(2, G1, now=100.0) is None                  # refresh, no change
    assert t.members(G1) == {2}
    assert t.next_expiry() == 360.0
    assert t.expire(359.9) == []
    assert t.expire(360.0) == [Change(G1, 2, False)]
    assert t.members(G1) == frozenset() and len(t) == 0 and t.groups() == {}


def test_fast_leave_removes_at_once_slow_leave_after_lmqt():
    t = MembershipTable()
    t.report(2, G1, 0.0)
    t.report(3, G1, 0.0)
    assert t.leave(2, G1, 10.0) == Change(G1, 2, False)
    assert t.leave(2, G1, 10.0) is None                        # not a member any more
    assert t.leave(3, G1, 10.0, fast=False) is None
    assert t.expiry(G1, 3) == 12.0
    t.report(3, G1, 11.0)                                      # someone behind it still listens
    assert t.expire(12.0) == [] and t.members(G1) == {3}


def test_api_memberships_are_permanent():
    t = MembershipTable()
    assert t.join(2, G1) == Change(G1, 2, True)
    t.report(2, G1, 0.0)
    assert t.leave(2, G1, 1.0) is None and t.expire(1e9) == []
    assert t.expiry(G1, 2) == math.inf and t.next_expiry() is None
    t.report(3, G1, 0.0)
    assert t.join(3, G1) is None and t.expiry(G1, 3) == math.inf  # snooped made permanent
    assert t.drop(2, G1) == Change(G1, 2, False)
    assert t.drop(2, G1) is None


@pytest.mark.parametrize("group", [ip_int("10.0.0.1"), ip_int("224.0.0.1"), "239.1.1.1"])
def test_api_refuses_bad_groups(group):
    t = MembershipTable()
    with pytest.raises(InvalidArgument):
        t.join(2, group)
    assert len(t) == 0


def test_table_is_bounded():
    t = MembershipTable(IgmpConfig(max_memberships=2))
    t.report(2, G1, 0.0)
    t.join(3, G1)
    with pytest.raises(OverflowError):
        t.report(4, G1, 0.0)
    with pytest.raises(InvalidArgument, match="max_memberships"):
        t.join(4, G2)
    assert len(t) == 2 and t.members(G1) == {2, 3}


def test_a_namespace_learns_at_most_its_group_limit():
    t = MembershipTable(IgmpConfig(max_groups_per_namespace=2))
    t.report(2, G1, 0.0)
    t.join(2, G2)                                    # configured ones count too
    with pytest.raises(igmp.NamespaceFull):
        t.report(2, G3, 0.0)
    assert t.report(2, G1, 1.0) is None              # a refresh is not a new group
    assert t.report(3, G3, 0.0) == Change(G3, 3, True)   # another namespace: its own limit
    t.drop(2, G2)
    assert t.report(2, G3, 0.0) == Change(G3, 2, True)
    t.remove_namespace(2)
    assert t.report(2, G2, 0.0) == Change(G2, 2, True)


def test_the_snooper_counts_what_is_over_a_namespace_limit():
    s = IgmpSnooper(IgmpConfig(max_groups_per_namespace=2))
    records = [(4, f"239.9.0.{k}", []) for k in range(1, 6)]
    changes, _ = s.handle(1, 2, datagram(v3(*records)), 0.0)
    assert [c.group for c in changes] == [ip_int("239.9.0.1"), ip_int("239.9.0.2")]
    assert s.counters["drop_igmp_namespace_full"] == 3
    assert s.handle(1, 3, datagram(v3(*records[:1])), 0.0)[0] == [Change(ip_int("239.9.0.1"), 3, True)]


def test_remove_namespace():
    t = MembershipTable()
    t.report(2, G1, 0.0)
    t.join(2, G2)
    t.report(3, G1, 0.0)
    assert t.remove_namespace(2) == [Change(G1, 2, False), Change(G2, 2, False)]
    assert t.groups() == {G1: frozenset({3})}


# -- the snooper ----------------------------------------------------------------------

def test_snooper_keeps_scopes_apart():
    s = IgmpSnooper()
    assert s.handle(1, 2, datagram(v3((4, "239.1.1.1", []))), now=0.0) == ([Change(G1, 2, True)], [])
    assert s.handle(5, 6, datagram(v2(0x16, "239.1.1.1"), dst="239.1.1.1"), now=0.0) == (
        [Change(G1, 6, True)], [])
    assert s.table(1).members(G1) == {2} and s.table(5).members(G1) == {6}
    assert s.handle(1, 2, datagram(v2(0x17, "239.1.1.1"), dst="224.0.0.2"), now=1.0) == (
        [Change(G1, 2, False)], [])
    assert s.table(5).members(G1) == {6}
    assert s.counters["igmp_in"] == 3


def test_snooper_slow_leave_asks_for_a_query():
    s = IgmpSnooper()
    s.handle(1, 1, datagram(v2(0x16, "239.1.1.1")), now=0.0)
    changes, queries = s.handle(1, 1, datagram(v2(0x17, "239.1.1.1")), now=5.0, fast_leave=False)
    assert changes == [] and queries == [QueryRequest(1, 1, G1)]
    assert s.expire(7.0) == [(1, Change(G1, 1, False))]


def test_snooper_counts_malformed_and_full():
    s = IgmpSnooper(IgmpConfig(max_memberships=1))
    bad = bytearray(datagram(v2(0x16, "239.1.1.1")))
    bad[-1] ^= 0xFF
    assert s.handle(1, 2, bytes(bad), 0.0) == ([], [])
    assert s.handle(1, 2, raw(IP(src="10.0.0.2", dst="224.0.0.22", proto=17) / (b"x" * 8)), 0.0) == ([], [])
    assert s.handle(1, 2, b"\x45", 0.0) == ([], [])
    assert s.counters["drop_igmp_malformed"] == 3
    s.handle(1, 2, datagram(v3((4, "239.1.1.1", []), (4, "239.2.2.2", []))), 0.0)
    assert s.counters["drop_igmp_table_full"] == 1 and s.table(1).members(G1) == {2}


def test_general_query_timer():
    s = IgmpSnooper(IgmpConfig(query_interval=125.0))
    assert s.general_query_due(0.0)
    assert not s.general_query_due(124.0)
    assert s.general_query_due(125.0)
    assert not s.general_query_due(200.0)


@pytest.mark.parametrize("field", ["group_membership_interval", "last_member_query_time",
                                   "query_interval", "max_memberships",
                                   "max_groups_per_namespace"])
def test_bad_config(field):
    with pytest.raises(InvalidArgument, match=field):
        IgmpConfig(**{field: 0})


# -- queries --------------------------------------------------------------------------

def test_general_query_frame_v3():
    frame = igmp.build_query_frame(bytes.fromhex("02000000000c"), ip_int("10.0.0.1"))
    pkt = Ether(frame)
    assert pkt.dst == "01:00:5e:00:00:01" and pkt.src == "02:00:00:00:00:0c"
    ip = pkt[IP]
    assert (ip.src, ip.dst, ip.ttl, ip.proto, ip.ihl, ip.tos) == ("10.0.0.1", "224.0.0.1", 1, 2, 6, 0xC0)
    assert raw(ip)[20:24] == b"\x94\x04\x00\x00"
    assert checksum(raw(ip)[:24]) == 0
    q = IGMPv3_MQ(raw(ip)[24:])
    assert q.type == 0x11 and q.gaddr == "0.0.0.0" and q.qrv == 2 and q.s == 0
    assert q.qqic == 125 and q.numsrc == 0 and q.mrcode == 100
    assert checksum(raw(ip)[24:]) == 0 and len(raw(ip)) == 36


def test_group_specific_query_frame_v2():
    frame = igmp.build_query_frame(bytes.fromhex("02000000000c"), ip_int("10.0.0.1"), G1,
                                   version=2, max_resp_time=1.0)
    pkt = Ether(frame)
    assert pkt.dst == "01:00:5e:01:01:01" and pkt[IP].dst == "239.1.1.1"
    msg = raw(pkt[IP])[24:]
    assert len(msg) == 8 and checksum(msg) == 0
    q = IGMP_MQ(msg)
    assert (q.type, q.mrcode, q.gaddr) == (0x11, 10, "239.1.1.1")


def test_query_version_is_checked():
    with pytest.raises(InvalidArgument):
        igmp.build_query(version=1)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=80),
                 st.builds(lambda body: _recsum(bytes([0x22, 0]) + body), st.binary(min_size=6, max_size=80))))
def test_parse_never_raises(message):
    events = igmp.parse_igmp(message)
    assert events is None or all(igmp.is_multicast(e.group) for e in events)
    s = IgmpSnooper()
    s.handle(1, 2, datagram(message), 0.0)
    assert s.counters["igmp_in"] + s.counters["drop_igmp_malformed"] == 1
