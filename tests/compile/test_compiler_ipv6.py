"""The compiler's IPv6 plan: the second instance of each address-keyed entry (addresses,
routes, multicast groups), written into a datapath that takes IPv6 with the same
rules and order as IPv4, and kept out of one that does not."""
import copy
import ipaddress

import pytest

from fastpath import Datapath
from fastpath.reference import ReferenceDatapath
from pyctl import Switch, errors
from pyctl.compile.compiler import Compiler
from pyctl.compile.plan import FAMILIES, datapath_families, fast_path_key
from pyctl.compile.plan_builder import compile_plan
from pyctl.daemon.view import PlanView, Route
from pyctl.model.values import Route as ModelRoute

from tests.support.compiler import FailingDatapath, ids
from tests.support.plan_oracle import expected_plan

V6 = ipaddress.IPv6Address
LIMITS = dict(max_namespaces=32, max_ports=32)
# the oracle and the compiled fast path: both take IPv6 through the same methods
DATAPATHS = pytest.mark.parametrize("make", [ReferenceDatapath, Datapath],
                                    ids=["reference", "core"])


def answers(dp, plan):
    """The datapath's answers for every address, group and scope the plan holds."""
    return ({k: dp.lookup_address(*k) for k in plan.addresses},
            {k: dp.lookup_group(*k) for k in plan.multicast},
            {s: dp.routes(s) for s in range(LIMITS["max_namespaces"])})


def synced(sw, make):
    """A datapath of class ``make`` and its compiler, synced with ``sw``."""
    dp = make(**LIMITS)
    comp = Compiler(sw, dp)
    comp.sync()
    return dp, comp


@pytest.fixture
def sw():
    """init: 10.0.0.1/24 and fd00::1/64; web (10.0.0.2, fd00::2) and db (fd00::3) behind
    taps; an uplink up0; a sibling L2 blue reusing fd00::/64 with b1 (fd00::2)."""
    sw = Switch()
    sw.address_add("init", "10.0.0.1/24")
    sw.address_add("init", "fd00::1/64")
    sw.create("web", kind="l3")
    sw.create("db", kind="l3")
    sw.create("blue", kind="l2")
    sw.create("b1", kind="l3", parent="blue")
    for port, ns in (("tap-web", "web"), ("tap-db", "db"), ("up0", "init"), ("tap-b1", "b1")):
        sw.port_add(port, ns)
    sw.assign_and_push("10.0.0.2/24", "web")
    sw.assign_and_push("fd00::2/64", "web")
    sw.assign_and_push("fd00::3/64", "db")
    sw.address_add("blue", "fd00::1/64")
    sw.assign_and_push("fd00::2/64", "b1")
    sw.route_add("init", "default", via="fd00::fe", port="up0")      # ::/0
    sw.route_add("init", "fd00:9::/48", via="fd00::3")                # via a tenant
    sw.route_add("init", "fd00:8::/48", port="up0")                   # on-link
    sw.route_add("init", "10.9.0.0/16", via="10.0.0.2")
    sw.join("ff05::1:3", "web")
    sw.join("ff05::1:3", "db")
    sw.join("ff0e::9", "b1")
    return sw


def test_the_plan_holds_both_families_side_by_side(sw):
    ns, ports = ids(sw)
    plan = compile_plan(sw)
    assert plan.addresses[(0, V6("fd00::2"))] == (ns["web"], 64)     # with its on-link plen
    assert plan.addresses[(0, V6("fd00::1"))] == (0, 64)
    assert plan.addresses[(0, 0x0A000002)] == (ns["web"], 24)         # IPv4's too
    assert plan.addresses[(ns["blue"], V6("fd00::2"))] == (ns["b1"], 64)   # its own scope
    assert plan.ports[ports["tap-web"]][-1] == 1500                  # the IPv6 fast path's bound
    assert plan.routes[(0, V6("::"), 0)] == (ports["up0"], V6("fd00::fe"))
    assert plan.routes[(0, V6("fd00:9::"), 48)] == (ports["tap-db"], V6("fd00::3"))
    assert plan.routes[(0, V6("fd00:8::"), 48)] == (ports["up0"], None)
    assert plan.routes[(0, 0x0A090000, 16)] == (ports["tap-web"], 0x0A000002)
    assert plan.multicast[(0, V6("ff05::1:3"))] == tuple(sorted((ns["web"], ns["db"])))
    assert plan.multicast[(ns["blue"], V6("ff0e::9"))] == (ns["b1"],)
    assert not any(isinstance(k[1], V6) for k in plan.broadcasts)     # IPv6 has none
    assert plan == expected_plan(sw.snapshot())


class Ipv4Only(ReferenceDatapath):
    """A datapath that says it takes IPv4 alone (as one built before IPv6 does by saying
    nothing)."""
    families = (4,)


def test_a_datapath_without_ipv6_gets_the_ipv4_entries_only(sw):
    dp = Ipv4Only(**LIMITS)
    comp = Compiler(sw, dp)
    assert comp.families == (4,)
    plan = comp.sync()
    assert all(isinstance(key[1], int) for table in (plan.addresses, plan.routes, plan.multicast)
               for key in table)
    assert plan == expected_plan(sw.snapshot(), (4,)) == compile_plan(sw, (4,))
    sw.address_add("init", "fd00::7/64")      # an IPv6 change: nothing to write
    recorder = FailingDatapath(dp, fail_at=0)
    comp.datapath = recorder
    comp.sync()
    assert recorder.calls == []


@DATAPATHS
def test_sync_installs_ipv6_and_follows_changes(sw, make):
    ns, ports = ids(sw)
    dp, comp = synced(sw, make)
    assert dp.lookup_address(0, V6("fd00::3")) == ns["db"]
    assert dp.lookup_route(0, V6("fd00:9::1")) == (ports["tap-db"], V6("fd00::3"))
    assert dp.lookup_route(0, V6("2001:db8::1")) == (ports["up0"], V6("fd00::fe"))
    assert dp.lookup_group(0, V6("ff05::1:3")) == sorted((ns["web"], ns["db"]))
    # Pull the gateway of fd00:9::/48 back: the route has no port to go out of.
    sw.pull("fd00::3/64", "db")
    comp.sync()
    assert dp.lookup_address(0, V6("fd00::3")) == 0
    assert (0, V6("fd00:9::"), 48) in comp.plan.unresolved
    assert dp.lookup_route(0, V6("fd00:9::1")) == (ports["up0"], V6("fd00::fe"))   # the default
    sw.push("fd00::3/64", "db")
    sw.destroy("web")                          # its IPv6 address returns, its membership ends
    comp.sync()
    assert dp.lookup_address(0, V6("fd00::2")) == 0
    assert dp.lookup_group(0, V6("ff05::1:3")) == [ns["db"]]
    assert dp.lookup_route(0, V6("fd00:9::1")) == (ports["tap-db"], V6("fd00::3"))
    assert comp.plan == expected_plan(sw.snapshot(), comp.families)
    fresh = make(**LIMITS)
    Compiler(sw, fresh).sync()
    assert answers(dp, comp.plan) == answers(fresh, comp.plan)


@DATAPATHS
def test_an_ipv6_change_writes_its_entries_only(sw, make):
    dp, comp = synced(sw, make)
    comp.datapath = recorder = FailingDatapath(dp, fail_at=0)
    sw.route_add("init", "fd00:7::/48", via="fd00::2")
    comp.sync()
    _, ports = ids(sw)
    assert recorder.calls == [("add_route", (0, V6("fd00:7::"), 48, ports["tap-web"],
                                             V6("fd00::2")))]
    recorder.calls.clear()
    sw.assign_and_push("fd00::22/64", "db")
    comp.sync()
    db = ids(sw)[0]["db"]                       # and db joins the address's solicited-node group
    assert recorder.calls == [("add_address", (0, V6("fd00::22"), db, 64)),
                              ("set_group", (0, V6("ff02::1:ff00:22"), (db,)))]
    assert dp.address_onlink(0, V6("fd00::22")) == 64


@pytest.mark.parametrize("fail_at", range(1, 9))
def test_a_refused_ipv6_write_puts_everything_back(sw, fail_at):
    dp = ReferenceDatapath(**LIMITS)             # its tables as data, to compare whole
    comp = Compiler(sw, dp)
    comp.sync()
    before = (copy.deepcopy(comp.plan), dict(dp.addresses), copy.deepcopy(dp.routes_),
              dict(dp.groups), sw.snapshot())
    comp.datapath = FailingDatapath(dp, fail_at)
    try:
        with sw.transaction():
            sw.destroy("db")                   # its address, its route's port, its membership
            sw.address_add("init", "fd00::44/64")
            sw.join("ff0e::9", "web")
            comp.sync()
    except MemoryError:
        assert (comp.plan, dp.addresses, dp.routes_, dp.groups, sw.snapshot()) == before
    else:
        assert comp.datapath.writes < fail_at
        assert comp.plan == expected_plan(sw.snapshot(), comp.families)


@DATAPATHS
def test_a_new_prefix_length_rewrites_the_address_and_ports_carry_their_mtu(sw, make):
    dp, comp = synced(sw, make)
    with sw.transaction():
        sw.pull("fd00::2/64", "web")
        sw.address_del("init", "fd00::2/64")
        sw.address_add("init", "fd00::2/48")
    comp.sync()
    assert dp.address_onlink(0, V6("fd00::2")) == 48 and dp.lookup_address(0, V6("fd00::2")) == 0
    sw.create("small", kind="l3")
    sw.port_add("tap-small", "small", options={"mtu": 1280})
    comp.sync()
    assert dp.port_mtu(sw.port("tap-small").id) == 1280 and dp.port_mtu(sw.port("up0").id) == 1500


@DATAPATHS
def test_each_l3_is_a_member_of_its_addresses_solicited_node_groups(sw, make):
    ns, _ = ids(sw)
    dp, comp = synced(sw, make)
    assert dp.lookup_group(0, V6("ff02::1:ff00:2")) == [ns["web"]]
    assert dp.lookup_group(0, V6("ff02::1:ff00:3")) == [ns["db"]]
    assert dp.lookup_group(0, V6("ff02::1:ff00:1")) is None       # the switch's: no L3's
    assert dp.lookup_group(ns["blue"], V6("ff02::1:ff00:2")) == [ns["b1"]]   # per scope
    sw.assign_and_push("fd00::1:0:3/64", "web")                   # db's low 24 bits too
    comp.sync()
    assert dp.lookup_group(0, V6("ff02::1:ff00:3")) == sorted((ns["web"], ns["db"]))
    sw.pull("fd00::3/64", "db")
    comp.sync()
    assert dp.lookup_group(0, V6("ff02::1:ff00:3")) == [ns["web"]]
    sw.pull("fd00::1:0:3/64", "web")
    comp.sync()
    assert dp.lookup_group(0, V6("ff02::1:ff00:3")) is None
    assert comp.plan == expected_plan(sw.snapshot(), comp.families)


def test_solicited_node_memberships_are_not_the_models_groups(sw):
    ns, _ = ids(sw)
    sw.quota_set("blue", {"groups": 1})                 # b1's ff0e::9 fills it
    sw.assign_and_push("fd00::7/64", "b1")              # no group to charge
    plan = compile_plan(sw)
    assert plan.multicast[(ns["blue"], V6("ff02::1:ff00:7"))] == (ns["b1"],)
    assert sw.groups("b1") == ["ff0e::9"]
    with pytest.raises(errors.NotFound):
        sw.leave("ff02::1:ff00:7", "b1")                # nothing to leave: it is the address's
    with pytest.raises(errors.InvalidArgument):
        sw.join("ff02::1:ff00:8", "b1")                 # nor to join
    assert compile_plan(sw) == plan == expected_plan(sw.snapshot())


@DATAPATHS
def test_an_l2s_own_ipv6_subnet_is_a_connected_route_as_ipv4s_is(sw, make):
    dp, comp = synced(sw, make)
    sw.port_add("up6", "init", options={"netns": "ns-up6", "address": "fd00:50::2/64"})
    sw.address_add("init", "fd00:50::1/64")
    comp.sync()
    up6 = sw.port("up6").id
    assert [r for r in sw.routes("init") if r.connected and ":" in r.dst] == [
        ModelRoute("fd00::/64", None, None, connected=True),    # no port leads there
        ModelRoute("fd00:50::/64", None, "up6", connected=True)]
    assert comp.plan.routes[(0, V6("fd00:50::"), 64)] == (up6, None)
    assert not {(0, V6("fd00::"), 64)} & (set(comp.plan.routes) | set(comp.plan.unresolved))
    assert dp.lookup_route(0, V6("fd00:50::9")) == (up6, None)   # on-link out of up6
    sw.route_add("init", "fd00:50::/64", via="fd00::3")           # a given route wins
    comp.sync()
    assert dp.lookup_route(0, V6("fd00:50::9")) == (sw.port("tap-db").id, V6("fd00::3"))
    sw.route_del("init", "fd00:50::/64")
    sw.address_del("init", "fd00:50::1/64")                        # its subnet's route goes
    comp.sync()
    assert dp.lookup_route(0, V6("fd00:50::9")) == (sw.port("up0").id, V6("fd00::fe"))
    assert comp.plan == expected_plan(sw.snapshot(), comp.families)


def test_link_local_and_link_scope_groups_never_reach_the_plan(sw):
    ns = ids(sw)[0]
    record = sw._state.namespaces[ns["web"]]
    # models that held them anyway (the verbs refuse both) still compile none: the only
    # link-scope groups of the plan are the solicited-node groups of the L3s' addresses
    record.groups.add(ipaddress.ip_address("ff02::1:ff00:99"))
    record.groups.add(ipaddress.ip_address("ff01::1"))
    plan = compile_plan(sw)
    assert set(plan.multicast) == {(0, V6("ff05::1:3")), (ns["blue"], V6("ff0e::9")),
                                   (0, V6("ff02::1:ff00:2")), (0, V6("ff02::1:ff00:3")),
                                   (ns["blue"], V6("ff02::1:ff00:2"))}
    assert fast_path_key(ipaddress.ip_address("fe80::1")) is None
    assert fast_path_key(ipaddress.ip_address("::1")) is None
    assert fast_path_key(ipaddress.ip_address("fd00::1")) == V6("fd00::1")
    assert fast_path_key(ipaddress.ip_address("10.0.0.1")) == 0x0A000001


def test_datapath_families():
    class Says:
        def __init__(self, families):
            self.families = families
    assert datapath_families(object()) == (4,)
    assert datapath_families(Says((4, 6))) == FAMILIES
    assert datapath_families(ReferenceDatapath(**LIMITS)) == (4, 6)
    assert datapath_families(Datapath(**LIMITS)) == (4, 6)
    for bad in ((), (5,), (4, 8)):
        with pytest.raises(ValueError):
            datapath_families(Says(bad))


def test_the_slow_paths_view_answers_ipv6(sw):
    ns, ports = ids(sw)
    dp = ReferenceDatapath(**LIMITS)
    comp = Compiler(sw, dp)
    comp.sync()
    view = PlanView(comp, dp)
    assert view.owner(0, V6("fd00::2")) == ns["web"]
    assert view.owner(0, V6("fd00::99")) is None
    assert view.route(0, V6("fd00::3")) == Route(ports["tap-db"], V6("fd00::3"))
    assert view.route(0, V6("fd00:9::5")) == Route(ports["tap-db"], V6("fd00::3"))
    assert view.route(0, V6("fd00:8::5")) == Route(ports["up0"], V6("fd00:8::5"))   # on link
    assert view.icmp_source(ports["tap-web"], 6) == V6("fd00::1")
    assert view.icmp_source(ports["tap-web"]) == 0x0A000001
    assert view.icmp_source(ports["tap-db"], 4) == 0x0A000001   # no IPv4 of its own: the lowest
    assert view.icmp_source(ports["tap-b1"], 6) == V6("fd00::1")
    assert view.icmp_source(ports["tap-b1"], 4) is None
    assert view.source_allowed(ports["tap-web"], V6("fd00::2"))
    assert not view.source_allowed(ports["tap-web"], V6("fd00::3"))
    assert view.source_allowed(ports["tap-web"], V6("::"))
    assert view.source_allowed(ports["up0"], V6("2001:db8::5"))       # an L2: anyone's not held
    assert not view.source_allowed(ports["up0"], V6("fd00::2"))
    ref = Ipv4Only(**LIMITS)                           # no IPv6: no route to answer with
    assert PlanView(Compiler(sw, ref), ref).route(0, V6("fd00:9::5")) is None

    class Refusing(ReferenceDatapath):                 # an address no route can lead to
        def lookup_route(self, scope, ip):
            raise errors.InvalidArgument(f"{ip} is not routed")
    dp = Refusing(**LIMITS)
    assert PlanView(Compiler(sw, dp), dp).route(0, V6("ff0e::1")) is None
