"""The model's isolation rules of issue 14: which kernel namespaces a delegated client may
name (items 1; pyctl/model/kernel_reach.py), addresses on another subnet's edge (item 9;
pyctl/model/subnets.py) and an L2's options (item 4; pyctl/model/namespace_options.py).
Every refusal leaves the model as it was (``refused``)."""
import ipaddress

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyctl import Switch, errors
from tests.support.model import refused


def delegated():
    """init with two delegated L2s, 'red' (with an L3 'r1') and 'blue', and an admin port
    in the kernel namespace 'ctr-admin'."""
    sw = Switch()
    for l2, net in (("red", "10.1.0.1/24"), ("blue", "10.2.0.1/24")):
        sw.create(l2, kind="l2")
        sw.address_add(l2, net)
    sw.create("r1", kind="l3", parent="red")
    sw.port_add("adm0", "init", options={"netns": "ctr-admin"})
    return sw


# -- 1. kernel namespaces a delegated client may name ---------------------------------------

def test_the_administrator_names_any_kernel_namespace():
    sw = delegated()
    sw.port_add("adm1", "red", options={"netns": "ctr-admin"})
    sw.port_add("adm2", "init", options={"address": "10.0.0.2/24", "gateway": "10.0.0.1"})
    assert not sw.netns_must_be_created("ctr-admin")


@pytest.mark.parametrize("options, rule", [
    ({"netns": "ctr-admin"}, "may not put a port into kernel namespace 'ctr-admin'"),
    ({"address": "10.1.0.9/24"}, "may not set address without netns"),
    ({"address": "10.1.0.9/24", "gateway": "10.1.0.1"}, "address and gateway without netns"),
])
def test_a_delegated_client_may_not_reach_outside_its_subtree(options, rule):
    sw = delegated()
    red = sw.as_namespace("red")
    err = refused(sw, errors.PermissionDenied, red.port_add, "p0", "r1", options=options)
    assert rule in err.message and "delegated client names only" in err.message


def test_a_kernel_namespace_a_delegated_client_names_first_is_created_for_its_subtree():
    sw = delegated()
    red, blue = sw.as_namespace("red"), sw.as_namespace("blue")
    red.port_add("p0", "r1", options={"netns": "red-k", "address": "10.1.0.5/24"})
    assert sw.netns_must_be_created("red-k")          # the daemon may not enter an existing one
    red.port_add("p1", "red", options={"netns": "red-k"})   # its subtree may use it again
    refused(sw, errors.PermissionDenied, blue.port_add, "b0", "blue", options={"netns": "red-k"})
    sw.port_add("adm1", "blue", options={"netns": "red-k"})  # the admin may; now shared
    refused(sw, errors.PermissionDenied, red.port_add, "p2", "red", options={"netns": "red-k"})
    for port in ("p0", "p1", "adm1"):
        sw.port_del(port)
    assert not sw.netns_must_be_created("red-k")      # forgotten with its last port
    sw.port_add("adm2", "init", options={"netns": "red-k"})   # now the admin's
    assert not sw.netns_must_be_created("red-k")
    refused(sw, errors.PermissionDenied, red.port_add, "p3", "red", options={"netns": "red-k"})


def test_a_kernel_namespace_the_admin_created_a_port_in_stays_the_admins():
    sw = delegated()
    sw.port_add("adm1", "init", options={"netns": "ctr-b"})
    assert not sw.netns_must_be_created("ctr-b")
    refused(sw, errors.PermissionDenied, sw.as_namespace("red").port_add, "p0", "red",
            options={"netns": "ctr-b"})


def test_a_delegated_kernel_namespace_is_entered_by_its_l2_and_its_ancestors_only():
    sw = delegated()
    sw.create("sub", kind="l2", parent="red")
    sw.netns_delegate("sub", "ctr-c")
    assert sw.netns_delegated("sub") == ["ctr-c"]
    assert not sw.netns_must_be_created("ctr-c")       # existing or not: entered
    sw.as_namespace("sub").port_add("s0", "sub", options={"netns": "ctr-c"})
    sw.as_namespace("red").port_add("s1", "red", options={"netns": "ctr-c"})
    refused(sw, errors.PermissionDenied, sw.as_namespace("blue").port_add, "b0", "blue",
            options={"netns": "ctr-c"})
    err = refused(sw, errors.Busy, sw.netns_revoke, "sub", "ctr-c")
    assert "s0" in err.message and "s1" in err.message
    sw.port_del("s0")
    sw.port_del("s1")
    sw.netns_revoke("sub", "ctr-c")
    assert sw.netns_delegated("sub") == []
    refused(sw, errors.PermissionDenied, sw.as_namespace("sub").port_add, "s0", "sub",
            options={"netns": "ctr-admin"})


def test_delegating_is_refused_clearly():
    sw = delegated()
    red = sw.as_namespace("red")
    refused(sw, errors.InvalidArgument, sw.netns_delegate, "r1", "ctr-d")       # an L3
    refused(sw, errors.InvalidArgument, sw.netns_delegate, "red", "bad name!")
    err = refused(sw, errors.Busy, sw.netns_delegate, "red", "ctr-admin")     # adm0 is there
    assert "adm0" in err.message
    refused(sw, errors.NotFound, sw.netns_revoke, "red", "ctr-d")
    refused(sw, errors.PermissionDenied, sw.as_namespace("r1").netns_delegate, "red", "x")
    sw.netns_delegate("red", "ctr-d")
    refused(sw, errors.AlreadyExists, sw.netns_delegate, "blue", "ctr-d")
    # only the administrator gives kernel namespaces: a client giving a name to itself
    # would have the daemon enter whatever kernel namespace has it, someone else's too
    for name in ("ctr-e", "ctr-admin", "ctr-d"):
        err = refused(sw, errors.PermissionDenied, red.netns_delegate, "red", name)
        assert "only the administrator" in err.message
    refused(sw, errors.PermissionDenied, red.netns_revoke, "red", "ctr-d")
    refused(sw, errors.PermissionDenied, red.netns_delegate, "blue", "ctr-e")


# -- 9. an address on another subnet's edge ----------------------------------------------------

@pytest.mark.parametrize("held, new, edge", [
    ("10.0.0.5/24", "10.0.0.255/16", "broadcast address of 10.0.0.0/24"),
    ("10.0.0.5/24", "10.0.0.0/32", "network address of 10.0.0.0/24"),
    ("10.0.0.255/16", "10.0.0.5/24", "the broadcast address of its subnet 10.0.0.0/24"),
    ("10.0.0.0/6", "10.0.0.5/24", "the network address of its subnet 10.0.0.0/24"),
    ("10.0.2.1/30", "10.0.2.3/24", "broadcast address of 10.0.2.0/30"),
])
def test_an_address_on_the_edge_of_another_held_subnet_is_refused(held, new, edge):
    sw = Switch()
    sw.create("t", kind="l3")
    sw.assign_and_push(held, "t")
    err = refused(sw, errors.AddressInUse, sw.address_add, "init", new)
    assert edge in err.message and "'t'" in err.message
    sw.create("u", kind="l3")
    refused(sw, errors.AddressInUse, sw.assign_and_push, new, "u")
    sw.create("lab", kind="l2")
    sw.address_add("lab", new)                       # another scope: its own address space


def test_subnet_edges_follow_the_address_wherever_it_goes():
    sw = Switch()
    sw.address_add("init", "10.0.0.5/24")
    sw.create("t", kind="l3")
    sw.push("10.0.0.5/24", "t")                      # still held in the scope
    refused(sw, errors.AddressInUse, sw.address_add, "init", "10.0.0.255/16")
    sw.destroy("t")                                   # back with init
    refused(sw, errors.AddressInUse, sw.address_add, "init", "10.0.0.255/16")
    sw.address_del("init", "10.0.0.5/24")
    sw.address_add("init", "10.0.0.255/16")          # nothing on that edge any more
    sw.address_add("init", "10.0.1.1/31")             # /31, /32: no edges
    sw.address_add("init", "10.0.1.0/32")


SUBNETS = ["10.0.0.0/24", "10.0.0.0/16", "10.0.0.0/25", "10.0.0.128/25", "10.0.0.0/30",
           "10.0.0.252/30", "10.0.0.0/31"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["add", "del", "push", "pull"]),
                          st.sampled_from(SUBNETS), st.integers(0, 3)), max_size=25))
def test_no_held_address_is_ever_an_edge_of_another_held_subnet(steps):
    sw = Switch()
    sw.create("t", kind="l3")
    for verb, subnet, k in steps:
        net = ipaddress.ip_network(subnet)
        host = [net.network_address, net.broadcast_address, net.network_address + 1,
                net.broadcast_address - 1][k]
        address = f"{host}/{net.prefixlen}"
        call = {"add": lambda: sw.address_add("init", address),
                "del": lambda: sw.address_del("init", address),
                "push": lambda: sw.push(address, "t"),
                "pull": lambda: sw.pull(address, "t")}[verb]
        try:
            call()
        except errors.TapswitchError:
            pass
    held = [ipaddress.ip_interface(t.address) for t in sw.addresses("init", tagged=True)
            if ipaddress.ip_interface(t.address).version == 4
            and not ipaddress.ip_interface(t.address).is_loopback]
    for a in held:
        for b in held:
            if b.network.prefixlen <= 30:
                assert a.ip not in (b.network.network_address, b.network.broadcast_address), \
                    (a, b)


# -- 4. an L2's options ---------------------------------------------------------------------

def test_an_l2s_options_are_set_by_who_configures_it():
    sw = delegated()
    assert sw.namespace_options("r1") == {}
    sw.as_namespace("red").namespace_set("red", {"directed_broadcast": True})
    assert sw.namespace_options("r1") == {"directed_broadcast": True}   # its scope's
    assert sw.namespace_options("blue") == {}
    refused(sw, errors.InvalidArgument, sw.namespace_set, "red", {"directed_broadcast": 1})
    refused(sw, errors.InvalidArgument, sw.namespace_set, "red", {"directed": True})
    refused(sw, errors.InvalidArgument, sw.namespace_set, "r1", {"directed_broadcast": True})
    refused(sw, errors.PermissionDenied, sw.as_namespace("r1").namespace_set, "red",
            {"directed_broadcast": False})
    refused(sw, errors.NotFound, sw.as_namespace("blue").namespace_set, "red",
            {"directed_broadcast": False})
    sw.namespace_set("red", {"directed_broadcast": False})
    assert sw.namespace_options("red") == {"directed_broadcast": False}


# -- 1, as a property: whatever the order, a delegated client never reaches outside ----------

TREE = {"red": "init", "sub": "red", "r1": "red", "s1": "sub", "blue": "init", "b1": "blue"}
ACTORS = [None, "red", "sub", "blue"]          # None: the administrator
NETNS = ["k0", "k1", "k2"]


def _within(name, top):
    while name is not None:
        if name == top:
            return True
        name = TREE.get(name)
    return False


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["add", "add", "del", "delegate", "revoke"]),
                          st.sampled_from(ACTORS), st.sampled_from(sorted(TREE)),
                          st.sampled_from(NETNS), st.integers(0, 5)), max_size=30))
def test_a_delegated_client_never_puts_a_port_beside_a_stranger(steps):
    sw = Switch()
    for name, parent in TREE.items():
        sw.create(name, kind="l3" if name[-1] == "1" else "l2", parent=parent)
    for verb, actor, ns, netns, k in steps:
        api = sw if actor is None else sw.as_namespace(actor)
        port = f"p{k}"
        before = sw.snapshot()
        beside = {p.name: sw.namespace(p.ns).name for p in sw.ports()
                  if p.options.get("netns") == netns}
        delegated_to = next((l2 for l2 in ("red", "sub", "blue") if netns in
                             sw.netns_delegated(l2)), None)
        try:
            {"add": lambda: api.port_add(port, ns, options={"netns": netns}),
             "del": lambda: sw.port_del(port),
             "delegate": lambda: api.netns_delegate(ns, netns),
             "revoke": lambda: api.netns_revoke(ns, netns)}[verb]()
        except errors.TapswitchError:
            assert sw.snapshot() == before                  # a refusal changes nothing
            continue
        assert actor is None or verb not in ("delegate", "revoke")   # the admin's only
        if actor is None or verb != "add":
            continue
        # it reached only its own subtree: given to it, or nobody else's there
        if delegated_to is not None:
            assert _within(delegated_to, actor), (verb, actor, netns, delegated_to)
        else:
            assert all(_within(holder, actor) for holder in beside.values()), \
                (verb, actor, netns, beside)
