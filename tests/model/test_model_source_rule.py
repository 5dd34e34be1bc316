"""The source-address rule (issue 2, point 8): who may send from which address."""
import pytest

from tests.support.model import refused, tenants
from pyctl import errors


@pytest.mark.parametrize("source", [
    "10.0.0.5", 0x0A000005, "10.0.0.7",                      # own addresses
    "127.0.0.1", "127.3.4.5", "::1",                          # loopback
    "0.0.0.0", "::",                                          # zero net
    "255.255.255.255", "10.0.0.255", "10.0.1.255",            # limited, own subnets' broadcast
    "224.0.0.1", "239.1.1.1", "ff02::1",                      # multicast
    "fd00::5",
])
def test_l3_may_send_from_its_own_and_derivative_addresses(source):
    sw = tenants()
    sw.assign_and_push("10.0.1.7/23", "web")
    sw.pull("10.0.0.5/24", "web")
    sw.push("10.0.0.5/24", "web")
    sw.assign_and_push("fd00::5/64", "web")
    sw.assign_and_push("10.0.0.7/24", "web")
    assert sw.may_send_from("web", source)


@pytest.mark.parametrize("source", [
    "10.0.0.6",            # db's
    "10.0.0.1",            # the parent's
    "10.0.0.9",            # nobody's
    "10.0.0.0",            # network address
    "10.1.0.255",          # a broadcast of a subnet it has no address in
    "192.168.0.1", "fd00::6",
])
def test_l3_may_not_send_from_anything_else(source):
    sw = tenants()
    assert not sw.may_send_from("web", source)


def test_l3_with_a_host_route_has_no_directed_broadcast():
    sw = tenants()
    sw.assign_and_push("10.5.0.1/32", "web")
    sw.assign_and_push("10.6.0.0/31", "web")
    assert not sw.may_send_from("web", "10.6.0.1")
    assert sw.may_send_from("web", "10.5.0.1")


def test_l2_may_send_from_anything_its_scope_does_not_give_to_another():
    sw = tenants()
    assert sw.may_send_from("init", "10.0.0.1")
    assert sw.may_send_from("init", "10.0.0.200")
    assert sw.may_send_from("init", "8.8.8.8")
    assert not sw.may_send_from("init", "10.0.0.5")         # web's
    assert not sw.may_send_from("init", "10.0.0.6")         # db's
    # probe holds 10.0.0.5 in the scope of 'lab': not init's business, but lab's
    assert not sw.may_send_from("lab", "10.0.0.5")
    assert sw.may_send_from("lab", "10.0.0.6")


def test_rule_follows_push_and_pull():
    sw = tenants()
    sw.pull("10.0.0.5/24", "web")
    assert not sw.may_send_from("web", "10.0.0.5")
    assert sw.may_send_from("init", "10.0.0.5")
    sw.push("10.0.0.5/24", "db")
    assert sw.may_send_from("db", "10.0.0.5")
    assert not sw.may_send_from("init", "10.0.0.5")


@pytest.mark.parametrize("source", ["10.0.0.5/24", "nope", None, -1, 2**32, True])
def test_invalid_source(source):
    sw = tenants()
    refused(sw, errors.InvalidArgument, sw.may_send_from, "web", source)
