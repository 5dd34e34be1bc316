"""Quotas (issue 14 item 16): what a parent lets an L2's subtree hold, refused with EDQUOT
naming the quota and the L2, other L2s unaffected; never more than the parent has; the
switch's own table sizes refused with ENOSPC naming the table."""
import pytest

from pyctl import errors
from pyctl.model.switch import Switch


@pytest.fixture
def sw():
    """init -> t (L2, 10.1.0.1/24, delegated) -> a (L3); init -> other (L2)."""
    sw = Switch()
    sw.create("t", "l2")
    sw.address_add("t", "10.1.0.1/24")
    sw.create("a", "l3", parent="t")
    sw.create("other", "l2")
    return sw


def _refused(call, *args, quota, namespace, **kwargs):
    with pytest.raises(errors.QuotaExceeded) as caught:
        call(*args, **kwargs)
    assert caught.value.code == "EDQUOT"
    assert caught.value.quota == quota and caught.value.namespace == namespace
    assert f"quota {quota}=" in caught.value.message and f"'{namespace}'" in caught.value.message
    return caught.value


def test_each_quota_is_counted_over_the_subtree_and_refused_past_it(sw):
    sw.quota_set("t", {"namespaces": 3, "addresses": 3, "routes": 1, "ports": 1, "groups": 1})
    t = sw.as_namespace("t")                       # its delegated client
    t.create("u", "l2")                            # namespaces: a, u
    t.create("uu", "l3", parent="u")               # ... and uu, below u: 3
    _refused(t.create, "v", "l3", quota="namespaces", namespace="t")
    t.address_add("u", "10.2.0.1/24")              # addresses: t's, u's
    t.assign_and_push("10.2.0.5/24", "uu")         # ... and uu's: 3
    _refused(t.address_add, "t", "10.1.0.2/24", quota="addresses", namespace="t")
    t.route_add("u", "default", via="10.2.0.254")
    _refused(t.route_add, "t", "10.9.0.0/16", via="10.1.0.254", quota="routes", namespace="t")
    t.port_add("tap-uu", "uu")
    _refused(t.port_add, "tap-a", "a", quota="ports", namespace="t")
    sw.as_namespace("uu").join("239.1.1.1")        # an L3's own membership counts too
    _refused(t.join, "239.1.1.2", "a", quota="groups", namespace="t")
    assert sw.quota("t")["usage"] == {"namespaces": 3, "addresses": 3, "routes": 1,
                                       "ports": 1, "groups": 1, "sockets": 0}


def test_other_l2s_are_unaffected(sw):
    sw.quota_set("t", {"namespaces": 1})
    other = sw.as_namespace("other")
    for name in ("o1", "o2", "o3"):
        other.create(name, "l3")
    assert sw.quota("other")["usage"]["namespaces"] == 3
    assert sw.quota("t")["usage"]["namespaces"] == 1


def test_moving_addresses_inside_the_subtree_costs_nothing(sw):
    sw.quota_set("t", {"addresses": 2})
    sw.address_add("t", "10.1.0.9/24")
    sw.push("10.1.0.9/24", "a")
    sw.pull("10.1.0.9/24", "a")
    sw.push("10.1.0.9/24", "a")
    sw.destroy("a")                                # an L3's addresses return: still held
    assert sw.quota("t")["usage"]["addresses"] == 2


def test_destroying_gives_everything_back(sw):
    sw.quota_set("t", {"namespaces": 3, "routes": 2, "ports": 2})
    t = sw.as_namespace("t")
    t.create("u", "l2")
    t.address_add("u", "10.2.0.1/24")
    t.route_add("u", "default", via="10.2.0.254")
    t.create("uu", "l3", parent="u")
    t.port_add("tap-uu", "uu")
    t.destroy("u", recursive=True)
    assert sw.quota("t")["usage"] == {"namespaces": 1, "addresses": 1, "routes": 0, "ports": 0,
                                       "groups": 0, "sockets": 0}
    assert sw.quota("init")["usage"]["namespaces"] == 3       # t, a, other


def test_a_child_never_gets_more_than_its_parent_has(sw):
    sw.quota_set("t", {"routes": 5})
    t = sw.as_namespace("t")
    t.create("u", "l2")
    t.create("uu", "l2", parent="u")
    _refused(t.quota_set, "u", {"routes": 6}, quota="routes", namespace="u")
    t.quota_set("u", {"routes": 4})
    _refused(t.quota_set, "uu", {"routes": 5}, quota="routes", namespace="uu")   # t's, above u
    t.quota_set("uu", {"routes": 3})
    with pytest.raises(errors.Busy, match="'uu' below 'u' has a quota routes=3"):
        t.quota_set("u", {"routes": 2})            # lowering below a descendant's own
    assert sw.quota("uu")["effective"]["routes"] == 3
    t.quota_set("uu", {"routes": None})            # no quota of its own: u's applies
    assert sw.quota("uu")["quota"]["routes"] is None and sw.quota("uu")["effective"]["routes"] == 4


def test_a_quota_below_what_is_held_is_refused_and_changes_nothing(sw):
    sw.route_add("t", "default", via="10.1.0.254")
    sw.route_add("t", "10.9.0.0/16", via="10.1.0.254")
    before, version = sw.snapshot(), sw.version
    with pytest.raises(errors.Busy, match="already holds 2 routes"):
        sw.quota_set("t", {"ports": 5, "routes": 1})  # all of it or none: ports not set either
    assert sw.snapshot() == before and sw.version == version


def test_who_sets_quotas(sw):
    t = sw.as_namespace("t")
    with pytest.raises(errors.PermissionDenied, match="its own quotas"):
        t.quota_set("t", {"routes": 100})
    with pytest.raises(errors.NotFound):
        t.quota_set("other", {"routes": 1})          # outside its subtree
    with pytest.raises(errors.PermissionDenied):
        sw.as_namespace("a").quota_set("t", {"routes": 1})      # an L3: no NET_ADMIN
    with pytest.raises(errors.PermissionDenied, match="root"):
        sw.quota_set("init", {"routes": 1})
    with pytest.raises(errors.InvalidArgument, match="L3"):
        sw.quota_set("a", {"routes": 1})


@pytest.mark.parametrize("limits, fragment", [
    ({}, "at least one"), (None, "at least one"), ({"tables": 1}, "unknown quota"),
    ({"routes": -1}, "non-negative"), ({"routes": True}, "non-negative"),
    ({"routes": "5"}, "non-negative"),
])
def test_bad_quotas_are_refused(sw, limits, fragment):
    with pytest.raises(errors.InvalidArgument, match=fragment):
        sw.quota_set("t", limits)


def test_a_transaction_past_a_quota_is_refused_as_a_whole(sw):
    sw.quota_set("t", {"namespaces": 3})
    before = sw.snapshot()
    with pytest.raises(errors.QuotaExceeded):
        with sw.transaction():
            for name in ("x1", "x2", "x3"):
                sw.create(name, "l3", parent="t")
    assert sw.snapshot() == before and sw.quota("t")["usage"]["namespaces"] == 1


def test_sockets_are_counted_for_the_ancestors(sw):
    sw.quota_set("t", {"sockets": 1})
    sw.socket_opened("t")                          # t's own socket: its parent's to give
    sw.socket_opened("a")
    sw.create("b", "l3", parent="t")
    _refused(sw.socket_opened, "b", quota="sockets", namespace="t")
    sw.socket_closed(sw.namespace("a").id, sw.as_namespace("a").uid)
    sw.socket_opened("b")
    sw.destroy("b")                                 # its socket goes with it
    assert sw.quota("t")["usage"]["sockets"] == 0


def test_the_switch_tables_are_refused_with_enospc_naming_the_table(sw):
    sw.set_capacity(namespaces=5, ports=1)
    sw.create("x", "l3")                            # init, t, a, other, x
    with pytest.raises(errors.TableFull, match="namespace table is full: it holds 5 of 5") as e:
        sw.create("y", "l3")
    assert e.value.code == "ENOSPC" and e.value.table == "namespace"
    sw.port_add("p1", "a")
    with pytest.raises(errors.TableFull, match="port table"):
        sw.port_add("p2", "x")
    with pytest.raises(errors.TableFull):
        sw.set_capacity(namespaces=4)               # it holds more already


def test_quota_read_of_an_l3_or_outside_the_subtree(sw):
    with pytest.raises(errors.InvalidArgument):
        sw.quota("a")
    with pytest.raises(errors.NotFound):
        sw.as_namespace("t").quota("other")
    assert sw.as_namespace("t").quota()["namespace"] == "t"
