"""The namespace tree (issue 2, points 1 and 4): root, kinds, ids and names,
creation under L2 only, destroy with address return and recursive destroy."""
import pytest

from tests.support.model import events_of, refused, tenants
from pyctl import Namespace, Switch, errors
from pyctl.model.events import NamespaceDestroyed


def test_root_is_init_l2_with_id_0():
    sw = Switch()
    assert sw.namespaces() == [Namespace(0, "init", "l2", None)]
    assert sw.namespace("init") == sw.namespace(0) == sw.namespace("0")
    assert sw.version == 0


def test_create_returns_namespace_and_both_name_and_id_resolve():
    sw = Switch()
    lan = sw.create("lan", kind="l2", parent="init")
    web = sw.create("web", kind="L3", parent=lan.id)
    assert lan == Namespace(1, "lan", "l2", 0)
    assert web == Namespace(2, "web", "l3", 1)
    assert sw.namespace("web") == sw.namespace(2) == sw.namespace(web) == web
    assert web.is_l3 and lan.is_l2 and str(web) == "web"


def test_parent_defaults_to_root():
    sw = Switch()
    assert sw.create("web", kind="l3").parent == 0


def test_namespaces_in_tree_order():
    sw = Switch()
    sw.create("a", kind="l2")
    sw.create("b", kind="l3")
    sw.create("a1", kind="l3", parent="a")
    sw.create("a2", kind="l2", parent="a")
    sw.create("a21", kind="l3", parent="a2")
    assert [n.name for n in sw.namespaces()] == ["init", "a", "a1", "a2", "a21", "b"]


def test_ids_are_stable_and_smallest_free_is_reused():
    sw = Switch()
    a, b, c = (sw.create(n, kind="l3") for n in "abc")
    sw.destroy("b")
    assert sw.namespace("c").id == c.id == 3
    assert sw.create("d", kind="l3").id == b.id
    assert sw.create("e", kind="l3").id == 4
    assert sw.namespace("a") == a


def test_stale_namespace_value_does_not_resolve_to_its_successor():
    sw = Switch()
    old = sw.create("a", kind="l3")
    sw.destroy(old)
    sw.create("b", kind="l3")                     # takes id 1 again
    refused(sw, errors.NotFound, sw.namespace, old)


def test_create_under_l3_names_both():
    sw = Switch()
    sw.create("web", kind="l3")
    err = refused(sw, errors.InvalidArgument, sw.create, "x", kind="l2", parent="web")
    assert err.message == "cannot create 'x' under 'web': 'web' is an L3 namespace (a leaf)"


@pytest.mark.parametrize("name", ["", "1", "007", "-a", ".a", "a b", "a/b", "x" * 64,
                                  None, 3, "é"])
def test_invalid_names(name):
    sw = Switch()
    refused(sw, errors.InvalidArgument, sw.create, name, kind="l3")


@pytest.mark.parametrize("kind", ["l4", "", None, 2, "layer3"])
def test_invalid_kind(kind):
    sw = Switch()
    refused(sw, errors.InvalidArgument, sw.create, "web", kind=kind)


def test_duplicate_name_anywhere_in_the_tree():
    sw = Switch()
    sw.create("lan", kind="l2")
    sw.create("web", kind="l3", parent="lan")
    err = refused(sw, errors.AlreadyExists, sw.create, "web", kind="l3")
    assert "'web'" in err.message
    refused(sw, errors.AlreadyExists, sw.create, "init", kind="l2")


@pytest.mark.parametrize("ref", ["nope", 7, "7", -1, "²", ""])
def test_unknown_namespace(ref):
    sw = Switch()
    refused(sw, errors.NotFound, sw.namespace, ref)
    refused(sw, errors.NotFound, sw.create, "x", kind="l3", parent=ref)
    refused(sw, errors.NotFound, sw.destroy, ref)
    refused(sw, errors.NotFound, sw.addresses, ref)


@pytest.mark.parametrize("ref", [None, 1.5, True, ["init"]])
def test_namespace_reference_of_wrong_type(ref):
    sw = Switch()
    refused(sw, errors.InvalidArgument, sw.namespace, ref)


def test_destroying_the_root_is_refused():
    sw = Switch()
    err = refused(sw, errors.PermissionDenied, sw.destroy, "init", recursive=True)
    assert "'init'" in err.message
    refused(sw, errors.PermissionDenied, sw.destroy, 0)


def test_destroying_an_l3_pulls_its_addresses_back_to_the_parent():
    sw = tenants()
    sw.assign_and_push("10.0.0.7/24", "web")
    sw.destroy("web")
    assert sw.addresses("init") == ["127.0.0.1/8", "::1/128",
                                    "10.0.0.1/24", "10.0.0.5/24", "10.0.0.7/24"]
    assert [n.name for n in sw.namespaces()] == ["init", "db", "lab", "probe"]
    refused(sw, errors.NotFound, sw.namespace, "web")
    sw.push("10.0.0.5/24", "db")                 # the parent really owns it again


def test_destroying_an_l3_under_a_nested_l2_returns_to_that_l2():
    sw = tenants()
    sw.destroy("probe")
    assert sw.addresses("lab") == ["127.0.0.1/8", "::1/128", "10.0.0.5/24"]
    assert "10.0.0.5/24" not in sw.addresses("init")


def test_destroying_an_l2_with_children_needs_recursive():
    sw = tenants()
    err = refused(sw, errors.Busy, sw.destroy, "lab")
    assert "'lab'" in err.message and "'probe'" in err.message
    refused(sw, errors.Busy, sw.destroy, "lab", recursive=False)


def test_recursive_destroy_removes_the_subtree_and_its_scopes_addresses():
    sw = tenants()
    sw.address_add("lab", "10.0.0.1/24")          # overlaps init: separate scope
    sw.create("inner", kind="l2", parent="lab")
    sw.address_add("inner", "192.168.1.1/24")
    sw.port_add("tap-probe", "probe")
    events = events_of(sw)
    sw.destroy("lab", recursive=True)
    assert [n.name for n in sw.namespaces()] == ["init", "web", "db"]
    assert sw.addresses("init") == ["127.0.0.1/8", "::1/128", "10.0.0.1/24"]
    assert sw.ports() == []
    (event,) = events
    assert isinstance(event, NamespaceDestroyed) and event.kind == "namespace.destroy"
    assert [d.namespace.name for d in event.destroyed] == ["inner", "probe", "lab"]
    assert sorted(map(str, event.removed_addresses)) == ["10.0.0.1/24", "10.0.0.5/24",
                                                         "192.168.1.1/24"]
    assert event.returned == ()
    assert [p.name for p in event.removed_ports] == ["tap-probe"]
    # the names and the scope are free again
    sw.create("lab", kind="l2")
    sw.address_add("lab", "10.0.0.5/24")


def test_empty_l2_destroys_without_recursive():
    sw = Switch()
    sw.create("lab", kind="l2")
    sw.address_add("lab", "10.1.0.1/24")
    sw.destroy("lab")
    assert [n.name for n in sw.namespaces()] == ["init"]


def test_scope_of():
    sw = tenants()
    assert sw.scope_of("web").name == "init"
    assert sw.scope_of("init").name == "init"
    assert sw.scope_of("lab").name == "lab"
    assert sw.scope_of("probe").name == "lab"


@pytest.mark.parametrize("flag", ["false", "yes", 1, None])
def test_flags_must_be_booleans(flag):
    sw = tenants()
    refused(sw, errors.InvalidArgument, sw.destroy, "lab", recursive=flag)
    refused(sw, errors.InvalidArgument, sw.addresses, "lab", tagged=flag)
