"""Capabilities (issue 2, point 6): acting as an L3, every configuring verb is
refused and reading its own state works; acting as an L2, only its subtree
is reachable."""
import pytest

from tests.support.model import refused
from pyctl import Switch, errors


@pytest.fixture
def sw():
    sw = Switch()
    sw.address_add("init", "10.0.0.1/24")
    sw.address_add("init", "10.0.0.9/24")
    sw.create("web", kind="l3")
    sw.assign_and_push("10.0.0.5/24", "web")
    sw.port_add("tap-web", "web")
    sw.port_add("uplink0", "init")
    sw.route_add("init", "10.9.0.0/16", via="10.0.0.254")
    sw.create("lab", kind="l2")
    sw.address_add("lab", "10.1.0.1/24")
    sw.port_add("uplink1", "lab")
    sw.create("probe", kind="l3", parent="lab")
    sw.assign_and_push("10.1.0.5/24", "probe")
    sw.create("other", kind="l2")
    sw.address_add("other", "10.2.0.1/24")
    sw.join("239.1.1.1", "web")
    return sw


def configuring_calls(ctx, target):
    """Every configuring verb, aimed at ``target`` (calls that would succeed for an admin
    where possible)."""
    return {
        "create": lambda: ctx.create("x", kind="l3", parent=target),
        "destroy": lambda: ctx.destroy(target),
        "address_add": lambda: ctx.address_add(target, "10.0.0.77/24"),
        "address_del": lambda: ctx.address_del(target, "10.0.0.5/24"),
        "push": lambda: ctx.push("10.0.0.9/24", target),
        "pull": lambda: ctx.pull("10.0.0.5/24", target),
        "assign_and_push": lambda: ctx.assign_and_push("10.0.0.78/24", target),
        "route_add": lambda: ctx.route_add(target, "10.8.0.0/16", via="10.0.0.254"),
        "route_del": lambda: ctx.route_del(target, "10.9.0.0/16"),
        "port_add": lambda: ctx.port_add("tap-x", target),
        "port_del": lambda: ctx.port_del("tap-web"),
    }


@pytest.mark.parametrize("verb", sorted(configuring_calls(None, None)))
@pytest.mark.parametrize("target", ["web", "init", "probe"])
def test_l3_is_refused_every_configuring_verb(sw, verb, target):
    ctx = sw.as_namespace("web")
    err = refused(sw, errors.PermissionDenied, configuring_calls(ctx, target)[verb])
    assert "'web'" in err.message and "NET_ADMIN" in err.message


def test_l3_is_refused_even_with_garbage_arguments(sw):
    ctx = sw.as_namespace("web")
    refused(sw, errors.PermissionDenied, ctx.address_add, "nope", "not an address")
    refused(sw, errors.PermissionDenied, ctx.create, "", kind="l9")


def test_l3_reads_its_own_state(sw):
    ctx = sw.as_namespace("web")
    assert ctx.acting == sw.namespace("web")
    assert ctx.namespace("web") == sw.namespace("web")
    assert [n.name for n in ctx.namespaces()] == ["web"]
    assert ctx.addresses("web") == ["127.0.0.1/8", "::1/128", "10.0.0.5/24"]
    assert ctx.routes("web") == sw.routes("init")          # the parent's, read-only
    assert [p.name for p in ctx.ports()] == ["tap-web"]
    assert ctx.groups("web") == ["239.1.1.1"]
    assert ctx.scope_of("web").name == "init"
    assert ctx.may_send_from("web", "10.0.0.5")
    assert not ctx.may_send_from("web", "10.0.0.1")
    assert ctx.owner("10.0.0.5", "web").name == "web"
    assert ctx.owner("10.0.0.1", "web") is None        # the parent is not visible


@pytest.mark.parametrize("ref", ["init", "lab", "probe", 0])
def test_l3_sees_nothing_else(sw, ref):
    ctx = sw.as_namespace("web")
    err = refused(sw, errors.NotFound, ctx.namespace, ref)
    assert err.message == refused(sw, errors.NotFound, sw.namespace, "no-such").message.replace(
        "'no-such'", repr(ref))
    refused(sw, errors.NotFound, ctx.addresses, ref)
    refused(sw, errors.NotFound, ctx.routes, ref)
    refused(sw, errors.NotFound, ctx.port, "uplink0")


def test_l3_keeps_its_own_multicast_membership(sw):
    ctx = sw.as_namespace("web")
    ctx.join("239.2.2.2", "web")
    ctx.leave("239.1.1.1", "web")
    assert sw.groups("web") == ["239.2.2.2"]
    refused(sw, errors.NotFound, ctx.join, "239.2.2.2", "probe")
    refused(sw, errors.NotFound, ctx.join, "239.2.2.2", "init")


def test_l2_configures_its_subtree(sw):
    ctx = sw.as_namespace("lab")
    ctx.create("db", kind="l3")                       # parent defaults to the actor
    assert sw.namespace("db").parent == sw.namespace("lab").id
    ctx.address_add("lab", "10.1.0.6/24")
    ctx.push("10.1.0.6/24", "db")
    ctx.pull("10.1.0.5/24", "probe")
    ctx.assign_and_push("10.1.0.7/24", "probe")
    ctx.route_add("lab", "default", via="10.1.0.254", port="uplink1")
    ctx.port_add("tap-db", "db")
    ctx.port_del("tap-db")
    ctx.destroy("db")
    assert [n.name for n in ctx.namespaces()] == ["lab", "probe"]
    assert sw.addresses("lab") == ["127.0.0.1/8", "::1/128", "10.1.0.1/24", "10.1.0.5/24",
                                   "10.1.0.6/24"]
    assert [p.name for p in ctx.ports()] == ["uplink1"]
    assert ctx.as_namespace("probe").acting.name == "probe"


@pytest.mark.parametrize("verb", sorted(configuring_calls(None, None)))
@pytest.mark.parametrize("target", ["init", "web", "other"])
def test_l2_cannot_reach_outside_its_subtree(sw, verb, target):
    ctx = sw.as_namespace("lab")
    refused(sw, errors.NotFound, configuring_calls(ctx, target)[verb])


def test_l2_cannot_read_outside_its_subtree(sw):
    ctx = sw.as_namespace("lab")
    for ref in ("init", "web", "other", 0):
        refused(sw, errors.NotFound, ctx.namespace, ref)
        refused(sw, errors.NotFound, ctx.as_namespace, ref)
    assert [n.name for n in ctx.namespaces()] == ["lab", "probe"]
    assert ctx.addresses("lab", tagged=True)[-1] == ("10.1.0.5/24", "probe")


def test_l2_cannot_destroy_itself(sw):
    ctx = sw.as_namespace("lab")
    err = refused(sw, errors.PermissionDenied, ctx.destroy, "lab", recursive=True)
    assert "'lab'" in err.message


def test_acting_as_init_has_full_powers_but_cannot_destroy_the_root(sw):
    ctx = sw.as_namespace("init")
    ctx.destroy("lab", recursive=True)
    refused(sw, errors.PermissionDenied, ctx.destroy, "init")


def test_context_of_a_destroyed_namespace_stops_working(sw):
    ctx = sw.as_namespace("probe")
    sw.destroy("probe")
    sw.create("probe", kind="l3", parent="lab")        # same name, same id
    err = refused(sw, errors.NotFound, ctx.addresses, "probe")
    assert "no longer exists" in err.message


def test_context_transaction_is_the_switch_transaction(sw):
    ctx = sw.as_namespace("lab")
    with pytest.raises(errors.NotFound):
        with ctx.transaction():
            ctx.create("db", kind="l3")
            ctx.destroy("web")                          # not visible: everything undone
    refused(sw, errors.NotFound, sw.namespace, "db")
