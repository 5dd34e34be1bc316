"""The compiler's multicast table: the model's memberships, and only they, reach
the fast path's group table, as a diff, undone on a refused write."""
import ipaddress

import pytest

from pyctl import Switch, errors
from pyctl.compile.compiler import Compiler
from pyctl.compile.plan_builder import compile_plan

from tests.support.compiler import compiler_over
from tests.support.multicast import G1, G2, build_switch, datapaths, ip, make_datapath


@pytest.fixture(params=datapaths(), ids=lambda cls: cls.__name__)
def dp(request):
    return make_datapath(request.param)


@pytest.fixture
def sw():
    return build_switch()


def ids(sw):
    return {ns.name: ns.id for ns in sw.namespaces()}


def test_plan_multicast_is_per_scope_member_sets(sw):
    n = ids(sw)
    sw.join("239.1.1.1", "web")
    sw.join("239.1.1.1", "db")
    sw.join("239.1.1.1", "init")              # an L2 (its uplinks) may listen too
    sw.join("239.1.1.1", "b1")                # the sibling L2's tenant: its own scope
    sw.join("239.2.2.2", "web")
    sw.join("ff05::1", "web")                 # an IPv6 group: its own entry
    plan = compile_plan(sw)
    assert plan.multicast == {
        (0, G1): tuple(sorted((n["init"], n["web"], n["db"]))),
        (n["blue"], G1): (n["b1"],),
        (0, G2): (n["web"],),
        (0, ipaddress.ip_address("ff05::1")): (n["web"],),
    }
    assert (0, ipaddress.ip_address("ff05::1")) not in compile_plan(sw, (4,)).multicast


def test_link_local_groups_are_never_table_entries(sw):
    with pytest.raises(errors.InvalidArgument, match="link-local"):
        sw.join("224.0.0.251", "web")
    # a model that held one anyway (the verbs refuse it) still compiles none
    sw._state.namespaces[ids(sw)["web"]].groups.add(ipaddress.ip_address("224.0.0.251"))
    assert compile_plan(sw).multicast == {}
    sw.leave("224.0.0.251", "web")
    sw.join("224.0.1.1", "web")               # just above 224.0.0.0/24: an ordinary group
    assert list(compile_plan(sw).multicast) == [(0, ip("224.0.1.1"))]


def test_sync_follows_joins_leaves_and_destroys(sw, dp):
    n = ids(sw)
    comp = Compiler(sw, dp)
    comp.sync()
    assert dp.lookup_group(0, G1) is None
    sw.join("239.1.1.1", "web")
    sw.join("239.1.1.1", "db")
    sw.join("239.1.1.1", "b1")
    comp.sync()
    assert dp.lookup_group(0, G1) == sorted([n["web"], n["db"]])
    assert dp.lookup_group(n["blue"], G1) == [n["b1"]]
    sw.leave("239.1.1.1", "web")
    comp.sync()
    assert dp.lookup_group(0, G1) == [n["db"]]
    sw.destroy("db")                          # the last member goes with its namespace
    comp.sync()
    assert dp.lookup_group(0, G1) is None
    assert dp.lookup_group(n["blue"], G1) == [n["b1"]]
    sw.destroy("blue", recursive=True)        # and a scope's groups with the scope
    comp.sync()
    assert comp.plan.multicast == {}


def test_a_changed_group_is_rewritten_never_removed(sw, dp):
    """db is destroyed and its id goes, in the same sync, to a new namespace of the
    sibling scope that joins there: init's group is narrowed before db's id leaves the
    datapath, blue's is widened after the new namespace exists; neither is removed
    (their counters stay), and no write names a namespace the datapath lacks."""
    n = ids(sw)
    sw.join("239.1.1.1", "web")
    sw.join("239.1.1.1", "db")
    sw.join("239.1.1.1", "b1")
    comp, recorder = compiler_over(sw, dp)
    with sw.transaction():
        sw.destroy("db")
        sw.create("cache", kind="l3", parent="blue")
        sw.join("239.1.1.1", "cache")
    assert ids(sw)["cache"] == n["db"]        # ids are reused, smallest first
    comp.sync()
    assert dp.lookup_group(0, G1) == [n["web"]]
    assert dp.lookup_group(n["blue"], G1) == sorted([n["b1"], n["db"]])
    names = [c[0] for c in recorder.calls]
    group_calls = [c for c in recorder.calls if c[0] in ("set_group", "remove_group")]
    assert group_calls == [("set_group", (0, G1, (n["web"],))),
                           ("set_group", (n["blue"], G1, tuple(sorted((n["b1"], n["db"])))))]
    first_set, second_set = [i for i, c in enumerate(recorder.calls) if c[0] == "set_group"]
    assert first_set < names.index("remove_namespace") < names.index("set_namespace") < second_set


def group_state(dp, scopes):
    return {(s, g): dp.lookup_group(s, g) for s in scopes for g in (G1, G2, ip("239.3.3.3"))}


SWEEP = range(1, 15)


@pytest.mark.parametrize("fail_at", SWEEP)
def test_a_refused_write_leaves_groups_as_they_were(sw, dp, fail_at):
    n = ids(sw)
    sw.join("239.1.1.1", "web")
    sw.join("239.1.1.1", "db")
    sw.join("239.2.2.2", "db")
    sw.join("239.1.1.1", "b1")
    comp, flaky = compiler_over(sw, dp, fail_at)
    scopes = [0, n["blue"]]
    before_dp, before_model = group_state(dp, scopes), sw.snapshot()
    try:
        with sw.transaction():
            sw.destroy("db")                      # G1 shrinks, G2 goes
            sw.create("cache", kind="l3", parent="blue")
            sw.join("239.1.1.1", "cache")         # takes db's id in blue: G1 widened there
            sw.join("239.3.3.3", "cache")         # a new group
            sw.leave("239.1.1.1", "b1")           # the sibling's group goes
            comp.sync()
    except MemoryError:
        assert sw.snapshot() == before_model
        assert group_state(dp, scopes) == before_dp
    else:
        assert flaky.writes < fail_at             # fewer writes than the failure point
        assert group_state(dp, scopes)[(0, G1)] == [n["web"]]


def test_every_group_write_is_reached_by_the_failure_sweep(sw, dp):
    """The sweep above must fail inside the group writes, not only before them."""
    sw.join("239.1.1.1", "web")
    sw.join("239.1.1.1", "db")
    sw.join("239.2.2.2", "db")
    sw.join("239.1.1.1", "b1")
    comp, counting = compiler_over(sw, dp)
    sw.destroy("db")
    sw.create("cache", kind="l3", parent="blue")
    sw.join("239.1.1.1", "cache")
    sw.join("239.3.3.3", "cache")
    sw.leave("239.1.1.1", "b1")
    comp.sync()
    assert counting.writes < SWEEP[-1]
    assert {"set_group", "remove_group"} <= {name for name, _ in counting.calls}


def test_multicast_of_an_empty_switch():
    assert compile_plan(Switch()).multicast == {}
