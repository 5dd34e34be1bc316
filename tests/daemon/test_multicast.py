"""The daemon's multicast glue: snooped IGMP becomes model memberships (as the
sending namespace), learned memberships expire, configured ones stay, and the
querier sends what Linux hosts need to keep reporting."""
import pytest

from pyctl import errors

from pyctl.daemon import igmp
from pyctl.daemon import packets as pk
from pyctl.daemon.multicast import STARTUP_QUERY_COUNT, group_counters

from tests.support.multicast import (G1, G2, PEER, Rig, datapaths, ip, make_datapath, v2_leave,
                               v2_report, v3_join, v3_leave, v3_report)

GMI = igmp.IgmpConfig().group_membership_interval
QI = igmp.IgmpConfig().query_interval


@pytest.fixture(params=datapaths(), ids=["core", "ref"])
def rig(request):
    return Rig(request.param)


def origin(rig, scope, group, name, now=0.0):
    rows = rig.mc.memberships(rig.sw, now)[scope][pk.ip_str(group)]
    return next(r for r in rows if r["namespace"] == name)


def igmp_only(frames):
    """The IGMP frames of what the querier sent (each port gets an MLD query too)."""
    return [(pid, f) for pid, f in frames if f[12:14] == b"\x08\x00"]


def mld_only(frames):
    return [(pid, f) for pid, f in frames if f[12:14] == b"\x86\xdd"]


def parse_query(frame):
    eth = pk.parse_ethernet(frame)
    ip4 = pk.parse_ipv4(eth.payload)
    assert ip4 is not None and ip4.proto == pk.IPPROTO_IGMP and ip4.ttl == 1
    assert ip4.header[20:24] == igmp.ROUTER_ALERT
    assert pk.checksum(ip4.payload) == 0 and ip4.payload[0] == igmp.IGMP_QUERY
    return eth, ip4, int.from_bytes(ip4.payload[4:8], "big"), ip4.payload[1] / 10


# -- snooped joins and leaves -------------------------------------------------------------

def test_a_report_makes_the_sender_a_model_member(rig):
    assert rig.send("tap-web", v3_join(PEER["web"], "10.0.0.2", G1), now=0.0) == []
    assert rig.sw.groups("web") == ["239.1.1.1"]
    assert rig.names(rig.group("init", G1)) == ["web"]
    assert [ns.name for ns in rig.sw.members("239.1.1.1", "init")] == ["web"]
    row = origin(rig, "init", G1, "web", now=10.0)
    assert row["origin"] == "learned" and row["expires_in"] == GMI - 10.0
    rig.send("tap-db", v2_report(PEER["db"], "10.0.0.3", G1), now=1.0)
    assert rig.names(rig.group("init", G1)) == ["db", "web"]


def test_a_v3_report_with_several_records_is_one_change(rig):
    version = rig.sw.version
    rig.send("tap-web", v3_report(PEER["web"], "10.0.0.2", (igmp.MODE_IS_EXCLUDE, G1, []),
                                  (igmp.ALLOW_NEW_SOURCES, G2, [ip("10.9.0.1")])), now=0.0)
    assert rig.sw.groups("web") == ["239.1.1.1", "239.2.2.2"]
    assert rig.sw.version == version + 2           # two verbs, one transaction


@pytest.mark.parametrize("leave", [v3_leave, v2_leave])
def test_an_l3_leave_is_fast(rig, leave):
    rig.send("tap-web", v3_join(PEER["web"], "10.0.0.2", G1), now=0.0)
    rig.send("tap-db", v3_join(PEER["db"], "10.0.0.3", G1), now=0.0)
    assert rig.send("tap-web", leave(PEER["web"], "10.0.0.2", G1), now=5.0) == []
    assert rig.sw.groups("web") == []
    assert rig.names(rig.group("init", G1)) == ["db"]
    rig.send("tap-db", leave(PEER["db"], "10.0.0.3", G1), now=6.0)
    assert rig.group("init", G1) is None           # no member: the group is gone


def test_a_repeated_report_refreshes_and_changes_nothing(rig):
    rig.send("tap-web", v3_join(PEER["web"], "10.0.0.2", G1), now=0.0)
    version = rig.sw.version
    rig.send("tap-web", v3_join(PEER["web"], "10.0.0.2", G1), now=100.0)
    assert rig.sw.version == version
    assert origin(rig, "init", G1, "web", now=100.0)["expires_in"] == GMI


def test_learned_memberships_expire_when_reports_stop(rig):
    rig.send("tap-web", v3_join(PEER["web"], "10.0.0.2", G1), now=0.0)
    rig.send("tap-db", v3_join(PEER["db"], "10.0.0.3", G1), now=100.0)
    rig.mc.tick(GMI - 0.1, {})
    assert rig.names(rig.group("init", G1)) == ["db", "web"]
    rig.mc.tick(GMI, {})
    assert rig.sw.groups("web") == [] and rig.sw.groups("db") == ["239.1.1.1"]
    assert rig.names(rig.group("init", G1)) == ["db"]
    rig.mc.tick(100.0 + GMI, {})
    assert rig.group("init", G1) is None
    assert rig.mc.counters["igmp_expired"] == 2


def test_the_sibling_scope_has_its_own_table(rig):
    rig.send("tap-web", v3_join(PEER["web"], "10.0.0.2", G1), now=0.0)
    rig.send("tap-b1", v3_join(PEER["b1"], "10.0.0.2", G1), now=0.0)   # same address, other L2
    assert rig.names(rig.group("init", G1)) == ["web"]
    assert rig.names(rig.group("blue", G1)) == ["b1"]
    rig.send("tap-b1", v3_leave(PEER["b1"], "10.0.0.2", G1), now=1.0)
    assert rig.names(rig.group("init", G1)) == ["web"]
    assert rig.group("blue", G1) is None


# -- configured and learned together ------------------------------------------------------

def test_a_configured_membership_survives_leaves_and_expiry(rig):
    rig.sw.join("239.1.1.1", "db")
    assert origin(rig, "init", G1, "db")["origin"] == "configured"
    rig.send("tap-db", v3_join(PEER["db"], "10.0.0.3", G1), now=0.0)    # a report: stays configured
    rig.send("tap-db", v3_leave(PEER["db"], "10.0.0.3", G1), now=1.0)
    rig.mc.tick(10 * GMI, {})
    assert rig.sw.groups("db") == ["239.1.1.1"]
    assert origin(rig, "init", G1, "db")["expires_in"] is None
    rig.sw.leave("239.1.1.1", "db")                  # only a leave verb removes it
    assert rig.group("init", G1) is None


def test_memberships_of_the_model_before_attach_are_configured():
    rig = Rig()
    rig.mc.detach()
    rig.sw.join("239.2.2.2", "web")
    again = type(rig.mc)(rig.sw, rig.view, rig.compiler.change)
    again.attach()
    assert again.memberships(rig.sw, 0.0)["init"]["239.2.2.2"][0]["origin"] == "configured"


def test_joining_a_learned_group_through_the_api(rig):
    rig.send("tap-web", v3_join(PEER["web"], "10.0.0.2", G1), now=0.0)
    with pytest.raises(errors.AlreadyExists):
        rig.sw.as_namespace("web").join("239.1.1.1", "web")
    assert origin(rig, "init", G1, "web")["origin"] == "learned"
    with rig.sw.transaction():                        # leave + join pins it
        rig.sw.leave("239.1.1.1", "web")
        rig.sw.join("239.1.1.1", "web")
    assert origin(rig, "init", G1, "web")["origin"] == "configured"
    rig.mc.tick(10 * GMI, {})
    assert rig.sw.groups("web") == ["239.1.1.1"]


def test_an_api_leave_of_a_learned_membership_is_final_until_the_next_report(rig):
    rig.send("tap-web", v3_join(PEER["web"], "10.0.0.2", G1), now=0.0)
    rig.sw.leave("239.1.1.1", "web")
    assert rig.mc.memberships(rig.sw, 0.0) == {}
    version = rig.sw.version
    rig.mc.tick(2 * GMI, {})                          # nothing left to expire
    assert rig.sw.version == version
    rig.send("tap-web", v3_join(PEER["web"], "10.0.0.2", G1), now=2 * GMI)
    assert rig.sw.groups("web") == ["239.1.1.1"]


def test_a_destroyed_namespace_leaves_nothing_for_its_id(rig):
    rig.send("tap-web", v3_join(PEER["web"], "10.0.0.2", G1), now=0.0)
    web = rig.ids["web"]
    rig.sw.destroy("web")
    rig.sw.create("again", kind="l3", parent="init")
    assert rig.sw.namespace("again").id == web       # the id is reused
    version = rig.sw.version
    rig.mc.tick(2 * GMI, {})
    assert rig.sw.version == version and rig.sw.groups("again") == []
    assert rig.mc.memberships(rig.sw, 0.0) == {}


def test_a_destroyed_scope_takes_its_table(rig):
    rig.send("tap-b1", v3_join(PEER["b1"], "10.0.0.2", G1), now=0.0)
    rig.sw.destroy("blue", recursive=True)
    assert rig.ids["blue"] not in rig.mc.snooper.tables


# -- what is refused, and what is counted -----------------------------------------------------

def test_a_spoofed_report_is_dropped(rig):
    rig.send("tap-web", v3_join(PEER["web"], "10.0.0.3", G1), now=0.0)     # db's address
    assert rig.sw.groups("web") == [] and rig.sw.groups("db") == []
    assert rig.mc.counters["drop_igmp_spoofed_source"] == 1
    rig.send("tap-web", v3_join(PEER["web"], "0.0.0.0", G1), now=0.0)      # no address yet: fine
    assert rig.sw.groups("web") == ["239.1.1.1"]


def test_malformed_igmp_and_unknown_ports_are_counted(rig):
    frame = bytearray(v3_join(PEER["web"], "10.0.0.2", G1))
    frame[-1] ^= 0xFF                                 # IGMP checksum broken
    rig.send("tap-web", bytes(frame), now=0.0)
    rig.send("tap-web", b"\x01\x00\x5e", now=0.0)
    assert rig.mc.handle(63, v3_join(PEER["web"], "10.0.0.2", G1), 0.0) == []
    assert rig.mc.counters["drop_igmp_malformed"] == 2
    assert rig.mc.counters["drop_igmp_unknown_port"] == 1
    assert rig.sw.groups("web") == []


@pytest.mark.parametrize("base", datapaths(), ids=["core", "ref"])
def test_a_refused_change_leaves_model_datapath_and_table_as_they_were(base):
    class Full(base):
        refuse = False

        def set_group(self, *args):
            if self.refuse:
                raise errors.InvalidArgument("group table full (injected)")
            return super().set_group(*args)

        def remove_group(self, *args):
            if self.refuse:
                raise errors.InvalidArgument("group table refuses (injected)")
            return super().remove_group(*args)

    dp = make_datapath(Full)
    rig = Rig(dp=dp)
    rig.send("tap-web", v3_join(PEER["web"], "10.0.0.2", G1), now=0.0)
    before = rig.sw.snapshot()
    dp.refuse = True
    rig.send("tap-db", v3_join(PEER["db"], "10.0.0.3", G1), now=1.0)
    assert rig.sw.snapshot() == before
    assert rig.names(rig.group("init", G1)) == ["web"]
    assert list(rig.mc.memberships(rig.sw, 1.0)["init"]["239.1.1.1"]) == [
        {"namespace": "web", "origin": "learned", "expires_in": GMI - 1.0}]
    assert rig.mc.counters["igmp_apply_failed"] == 1
    # A leave the datapath refuses is retried: the membership now expires soon.
    rig.send("tap-db", v3_join(PEER["db"], "10.0.0.3", G1), now=2.0)      # refused again
    rig.send("tap-web", v3_leave(PEER["web"], "10.0.0.2", G1), now=3.0)
    assert rig.sw.groups("web") == ["239.1.1.1"]
    dp.refuse = False
    rig.mc.tick(3.0 + igmp.IgmpConfig().last_member_query_time, {})
    assert rig.sw.groups("web") == [] and rig.group("init", G1) is None


# -- L2 ports: no fast leave, group-specific queries --------------------------------------------

def test_an_uplink_leave_asks_before_it_removes(rig):
    rig.send("up0", v3_join(PEER["up0"], "10.0.0.77", G1), now=0.0)
    assert rig.sw.groups("init") == ["239.1.1.1"]
    out = rig.send("up0", v3_leave(PEER["up0"], "10.0.0.77", G1), now=10.0)
    assert [pid for pid, _ in out] == [rig.ports["up0"]]
    eth, ip4, group, max_resp = parse_query(out[0][1])
    assert group == G1 and ip4.dst == G1 and max_resp == 1.0
    assert eth.dst == b"\x01\x00\x5e\x01\x01\x01"
    assert rig.sw.groups("init") == ["239.1.1.1"]   # another host behind it may answer
    rig.mc.tick(11.0, {})
    assert rig.sw.groups("init") == ["239.1.1.1"]
    rig.mc.tick(12.0, {})
    assert rig.sw.groups("init") == []


def test_an_uplink_host_that_answers_stays(rig):
    rig.send("up0", v3_join(PEER["up0"], "10.0.0.77", G1), now=0.0)
    rig.send("up0", v3_leave(PEER["up0"], "10.0.0.77", G1), now=10.0)
    rig.send("up0", v3_report(PEER["up0"], "10.0.0.78", (igmp.MODE_IS_EXCLUDE, G1, [])), now=10.5)
    rig.mc.tick(13.0, {})
    assert rig.sw.groups("init") == ["239.1.1.1"]


# -- the querier ------------------------------------------------------------------------------------

def test_general_queries_at_start_at_startup_interval_and_every_query_interval(rig):
    ports = {rig.ports[name]: object() for name in ("tap-web", "tap-db", "up0")}
    both = rig.mc.tick(0.0, ports)
    first = igmp_only(both)
    assert sorted(pid for pid, _ in first) == sorted(ports)
    assert sorted(pid for pid, _ in mld_only(both)) == sorted(ports)
    assert len(both) == 2 * len(ports)
    for pid, frame in first:
        eth, ip4, group, max_resp = parse_query(frame)
        assert group == 0 and ip4.dst == igmp.ALL_HOSTS and max_resp == 10.0
        assert eth.dst == b"\x01\x00\x5e\x00\x00\x01" and eth.src == rig.view.port_mac(pid)
        assert ip4.src == ip("10.0.0.1")            # the scope's own address on the subnet
        assert len(ip4.payload) == 12               # IGMPv3
    assert rig.mc.tick(1.0, ports) == []
    second = igmp_only(rig.mc.tick(QI / 4, ports))  # the second startup query
    assert sorted(pid for pid, _ in second) == sorted(ports)
    assert rig.mc.tick(QI / 2, ports) == [] and rig.mc.tick(QI - 0.1, ports) == []
    assert sorted(pid for pid, _ in igmp_only(rig.mc.tick(QI, ports))) == sorted(ports)
    assert rig.mc.counters["igmp_general_queries"] == (STARTUP_QUERY_COUNT + 1) * len(ports)
    assert rig.mc.counters["mld_general_queries"] == (STARTUP_QUERY_COUNT + 1) * len(ports)


def test_a_new_or_reopened_port_is_queried_at_once(rig):
    web, db = rig.ports["tap-web"], rig.ports["tap-db"]
    ports = {web: object()}
    rig.mc.tick(0.0, ports)
    ports[db] = object()
    assert [pid for pid, _ in rig.mc.tick(5.0, ports)] == [db, db]      # IGMP and MLD
    ports[web] = object()                          # closed and opened again (a new TAP)
    assert [pid for pid, _ in rig.mc.tick(6.0, ports)] == [web, web]
    del ports[db]
    assert [pid for pid, _ in rig.mc.tick(5.0 + QI / 4, ports)] == []


def test_queries_from_a_scope_without_an_address_come_from_0_0_0_0(rig):
    pid = rig.ports["tap-b1"]
    rig.sw.address_del("blue", "10.0.0.1/24")
    (frame,) = [f for p, f in igmp_only(rig.mc.tick(0.0, {pid: object()})) if p == pid]
    assert parse_query(frame)[1].src == 0


# -- reading ------------------------------------------------------------------------------------------

def test_memberships_show_what_the_reader_sees(rig):
    rig.send("tap-web", v3_join(PEER["web"], "10.0.0.2", G1), now=0.0)
    rig.sw.join("239.1.1.1", "db")
    rig.send("tap-b1", v3_join(PEER["b1"], "10.0.0.2", G2), now=0.0)
    everything = rig.mc.memberships(rig.sw, 60.0)
    assert everything == {
        "init": {"239.1.1.1": [{"namespace": "web", "origin": "learned", "expires_in": GMI - 60},
                               {"namespace": "db", "origin": "configured", "expires_in": None}]},
        "blue": {"239.2.2.2": [{"namespace": "b1", "origin": "learned", "expires_in": GMI - 60}]},
    }
    assert rig.mc.memberships(rig.sw.as_namespace("blue"), 60.0) == {"blue": everything["blue"]}
    assert rig.mc.memberships(rig.sw.as_namespace("web"), 60.0) == {
        "init": {"239.1.1.1": [{"namespace": "web", "origin": "learned", "expires_in": GMI - 60}]}}


def test_group_counters_are_named_and_limited_to_what_the_reader_sees(rig):
    n = rig.ids
    raw = {(0, G1): {"rx_packets": 3, "rx_bytes": 300, "copies": 6},
           (0, G2): {"rx_packets": 1, "rx_bytes": 100, "copies": 1},
           (n["blue"], G1): {"rx_packets": 2, "rx_bytes": 200, "copies": 2}}
    rig.sw.join("239.1.1.1", "web")
    admin = group_counters(raw, rig.sw)
    assert admin == {"init": {"239.1.1.1": raw[(0, G1)], "239.2.2.2": raw[(0, G2)]},
                     "blue": {"239.1.1.1": raw[(n["blue"], G1)]}}
    assert group_counters(raw, rig.sw, namespace="b1") == {"blue": admin["blue"]}
    assert group_counters(raw, rig.sw.as_namespace("blue")) == {"blue": admin["blue"]}
    # an L3, a member or not, sees no group counters: they are its scope's, everybody's
    assert group_counters(raw, rig.sw.as_namespace("web")) == {}
    assert group_counters(raw, rig.sw.as_namespace("db")) == {}
    with pytest.raises(errors.NotFound):
        group_counters(raw, rig.sw.as_namespace("blue"), namespace="web")


def test_ctl_renders_memberships_and_group_counters():
    from pyctl.control.render import multicast as _render_multicast
    from pyctl.control.counters import format_counters
    text = _render_multicast({"init": {"239.1.1.1": [
        {"namespace": "web", "origin": "learned", "expires_in": 200.0},
        {"namespace": "db", "origin": "configured", "expires_in": None}]}})
    lines = text.splitlines()
    assert lines[0].split() == ["SCOPE", "GROUP", "NAMESPACE", "ORIGIN", "EXPIRES", "IN", "(S)"]
    assert lines[1].split() == ["init", "239.1.1.1", "web", "learned", "200.0"]
    assert lines[2].split() == ["init", "239.1.1.1", "db", "configured", "-"]
    assert _render_multicast({}) == "no group memberships"
    table = format_counters({"namespaces": {}, "ports": {}, "reasons": {}, "groups": {
        "blue": {"239.1.1.1": {"rx_packets": 3, "rx_bytes": 300, "copies": 6}}}})
    assert [line.split() for line in table.splitlines()] == [
        ["SCOPE", "GROUP", "RX", "PACKETS", "RX", "BYTES", "COPIES"],
        ["blue", "239.1.1.1", "3", "300", "6"]]
