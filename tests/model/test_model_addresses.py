"""Addresses (issue 2, points 2, 3 and 5): created in L2 namespaces, push,
pull, assign-and-push, visibility with loopback, the tagged parent view, and
every bad input refused without a change."""
import ipaddress

import pytest

from tests.support.model import refused, tenants
from pyctl import Switch, TaggedAddress, errors

LOOPBACK = ["127.0.0.1/8", "::1/128"]


def test_addresses_are_created_in_l2_namespaces():
    sw = Switch()
    sw.address_add("init", "10.0.0.1/24")
    sw.address_add("init", "fd00::1/64")
    assert sw.addresses("init") == LOOPBACK + ["10.0.0.1/24", "fd00::1/64"]
    sw.address_del("init", "10.0.0.1/24")
    assert sw.addresses("init") == LOOPBACK + ["fd00::1/64"]


def test_adding_in_an_l3_is_refused_with_a_hint():
    sw = tenants()
    err = refused(sw, errors.InvalidArgument, sw.address_add, "web", "10.0.0.9/24")
    assert "'web'" in err.message and "assign_and_push" in err.message
    refused(sw, errors.InvalidArgument, sw.address_del, "web", "10.0.0.5/24")


def test_push_moves_ownership_from_parent_to_l3():
    sw = Switch()
    sw.create("web", kind="l3")
    sw.address_add("init", "10.0.0.5/24")
    sw.push("10.0.0.5/24", "web")
    assert sw.addresses("init") == LOOPBACK
    assert sw.addresses("web") == LOOPBACK + ["10.0.0.5/24"]
    assert sw.owner("10.0.0.5", "init").name == "web"


def test_pull_gives_it_back():
    sw = tenants()
    sw.pull("10.0.0.5/24", "web")
    assert sw.addresses("web") == LOOPBACK
    assert sw.addresses("init") == LOOPBACK + ["10.0.0.1/24", "10.0.0.5/24"]
    assert sw.owner("10.0.0.5", "init").name == "init"


def test_assign_and_push_never_gives_the_parent_the_address():
    sw = Switch()
    sw.create("web", kind="l3")
    seen = []
    sw.subscribe(lambda event: seen.append((event.kind, sw.owner("10.0.0.5", "init"))))
    sw.assign_and_push("10.0.0.5/24", "web")
    assert seen == [("address.assign_and_push", sw.namespace("web"))]
    assert sw.addresses("web") == LOOPBACK + ["10.0.0.5/24"]
    assert sw.addresses("init") == LOOPBACK


def test_ipv6_push_and_pull():
    sw = Switch()
    sw.create("web", kind="l3")
    sw.address_add("init", "fd00::5/64")
    sw.push("fd00::5/64", "web")
    assert sw.addresses("web") == LOOPBACK + ["fd00::5/64"]
    sw.pull("fd00:0::5/64", "web")               # any spelling of the same address
    assert sw.addresses("init") == LOOPBACK + ["fd00::5/64"]


def test_host_bits_are_fine_and_ipaddress_objects_are_accepted():
    sw = Switch()
    sw.address_add("init", ipaddress.ip_interface("10.0.0.5/24"))
    sw.address_add("init", "10.0.1.0/23")          # a host of 10.0.0.0/23
    sw.address_add("init", "10.9.0.0/31")          # /31: both ends are hosts
    sw.address_add("init", "10.8.0.0/32")
    assert sw.addresses("init")[2:] == ["10.0.0.5/24", "10.0.1.0/23", "10.8.0.0/32", "10.9.0.0/31"]


def test_tagged_view_lists_children_and_descendants_by_name():
    sw = tenants()
    sw.create("inner", kind="l2", parent="lab")
    sw.address_add("inner", "192.168.0.1/24")
    assert sw.addresses("init", tagged=True) == [
        TaggedAddress("127.0.0.1/8", "init"), TaggedAddress("::1/128", "init"),
        TaggedAddress("10.0.0.1/24", "init"),
        TaggedAddress("10.0.0.5/24", "web"), TaggedAddress("10.0.0.6/24", "db"),
        TaggedAddress("10.0.0.5/24", "probe"), TaggedAddress("192.168.0.1/24", "inner"),
    ]
    assert sw.addresses("web", tagged=True) == [
        TaggedAddress("127.0.0.1/8", "web"), TaggedAddress("::1/128", "web"),
        TaggedAddress("10.0.0.5/24", "web")]


def test_a_namespace_lists_only_its_own_plus_loopback():
    sw = tenants()
    assert sw.addresses("init") == LOOPBACK + ["10.0.0.1/24"]
    assert sw.addresses("db") == LOOPBACK + ["10.0.0.6/24"]
    assert sw.addresses("lab") == LOOPBACK
    assert sw.addresses("probe") == LOOPBACK + ["10.0.0.5/24"]


def test_sibling_l2_scopes_may_overlap():
    sw = Switch()
    sw.create("red", kind="l2")
    sw.create("blue", kind="l2")
    for name in ("red", "blue"):
        sw.address_add(name, "10.0.0.1/24")
        sw.create(f"{name}-web", kind="l3", parent=name)
        sw.assign_and_push("10.0.0.5/24", f"{name}-web")
    assert sw.owner("10.0.0.5", "red").name == "red-web"
    assert sw.owner("10.0.0.5", "blue-web").name == "blue-web"


# -- bad input ------------------------------------------------------------------

BAD_ADDRESSES = [
    "10.0.0.5", "10.0.0.5/33", "10.0.0.5/-1", "10.0.0.5/", "10.0.0.5/2 4", "10.0.0.5/255.255.255.0",
    "10.0.0.256/24", "10.0.0/24", "010.0.0.5/24", " 10.0.0.5/24", "web", "", "/24",
    "fd00::1/129", "fe80::1%eth0/64", "::ffff:10.0.0.5/120",
    "127.0.0.1/8", "127.0.0.2/8", "::1/128", "224.0.0.5/24", "ff02::1/64",
    "0.0.0.0/0", "0.1.2.3/8", "::/64", "255.255.255.255/32",
    "10.0.0.0/24", "10.0.0.255/24", "10.0.0.4/30",
    None, 167772165, b"10.0.0.5/24", ["10.0.0.5/24"],
]


@pytest.mark.parametrize("address", BAD_ADDRESSES)
def test_invalid_addresses_are_refused_everywhere(address):
    sw = tenants()
    refused(sw, errors.InvalidArgument, sw.address_add, "init", address)
    refused(sw, errors.InvalidArgument, sw.address_del, "init", address)
    refused(sw, errors.InvalidArgument, sw.push, address, "web")
    refused(sw, errors.InvalidArgument, sw.pull, address, "web")
    refused(sw, errors.InvalidArgument, sw.assign_and_push, address, "web")


def test_error_messages_quote_the_input():
    sw = Switch()
    assert "'10.0.0.5'" in refused(sw, errors.InvalidArgument, sw.address_add, "init", "10.0.0.5").message
    assert "33" in refused(sw, errors.InvalidArgument, sw.address_add, "init", "10.0.0.5/33").message
    assert "loopback" in refused(sw, errors.InvalidArgument, sw.push, "127.0.0.1/8", "init").message


def test_duplicate_address_in_the_same_namespace():
    sw = tenants()
    refused(sw, errors.AlreadyExists, sw.address_add, "init", "10.0.0.1/24")
    refused(sw, errors.AlreadyExists, sw.address_add, "init", "10.0.0.1/16")  # same IP


def test_address_held_in_the_scope_is_in_use():
    sw = tenants()
    err = refused(sw, errors.AddressInUse, sw.address_add, "init", "10.0.0.5/24")
    assert "'web'" in err.message
    err = refused(sw, errors.AddressInUse, sw.assign_and_push, "10.0.0.5/24", "db")
    assert "'web'" in err.message
    refused(sw, errors.AlreadyExists, sw.assign_and_push, "10.0.0.5/24", "web")
    refused(sw, errors.AddressInUse, sw.assign_and_push, "10.0.0.1/24", "web")


def test_push_of_an_address_the_parent_does_not_own():
    sw = tenants()
    err = refused(sw, errors.NotFound, sw.push, "10.0.0.9/24", "web")
    assert "'init'" in err.message and "10.0.0.9/24" in err.message
    refused(sw, errors.NotFound, sw.push, "10.0.0.1/16", "web")   # owned, other prefix
    # owned by the parent of another scope only
    refused(sw, errors.NotFound, sw.push, "10.0.0.1/24", "probe")


def test_push_of_an_address_another_namespace_holds():
    sw = tenants()
    err = refused(sw, errors.AddressInUse, sw.push, "10.0.0.6/24", "web")
    assert "'db'" in err.message
    refused(sw, errors.AlreadyExists, sw.push, "10.0.0.5/24", "web")


def test_push_into_an_l2_is_refused():
    sw = tenants()
    err = refused(sw, errors.InvalidArgument, sw.push, "10.0.0.1/24", "lab")
    assert "'lab'" in err.message and "L2" in err.message
    refused(sw, errors.InvalidArgument, sw.push, "10.0.0.1/24", "init")
    refused(sw, errors.InvalidArgument, sw.assign_and_push, "10.0.0.9/24", "lab")


def test_pull_of_an_address_the_l3_does_not_hold():
    sw = tenants()
    refused(sw, errors.NotFound, sw.pull, "10.0.0.6/24", "web")
    refused(sw, errors.NotFound, sw.pull, "10.0.0.1/24", "web")
    refused(sw, errors.NotFound, sw.pull, "10.0.0.5/16", "web")    # held, other prefix
    refused(sw, errors.NotFound, sw.pull, "10.0.0.9/24", "web")
    refused(sw, errors.InvalidArgument, sw.pull, "10.0.0.1/24", "init")


def test_delete_of_missing_or_pushed_address():
    sw = tenants()
    refused(sw, errors.NotFound, sw.address_del, "init", "10.0.0.9/24")
    refused(sw, errors.NotFound, sw.address_del, "init", "10.0.0.1/16")
    err = refused(sw, errors.AddressInUse, sw.address_del, "init", "10.0.0.5/24")
    assert "'web'" in err.message and "pull" in err.message


@pytest.mark.parametrize("verb", ["push", "pull", "assign_and_push"])
def test_address_verbs_on_unknown_namespace(verb):
    sw = tenants()
    refused(sw, errors.NotFound, getattr(sw, verb), "10.0.0.5/24", "nope")


def test_owner_of():
    sw = tenants()
    assert sw.owner("10.0.0.1", "web").name == "init"
    assert sw.owner(0x0A000006, "init").name == "db"
    assert sw.owner("10.0.0.77", "init") is None
    refused(sw, errors.InvalidArgument, sw.owner, "10.0.0.5/24", "init")
