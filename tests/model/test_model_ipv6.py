"""The model takes IPv6 wherever it takes IPv4: mixed addresses, routes (``default`` by
the gateway's family), groups, port options; and refuses what IPv6 keeps to a link."""
import ipaddress

import pytest

from pyctl import Switch, errors
from pyctl.model import addressing
from pyctl.model.port_options import check_port_options, port_gateways, port_interfaces

from tests.support.model import refused


def dual():
    sw = Switch()
    sw.address_add("init", "10.0.0.1/24")
    sw.address_add("init", "fd00::1/64")
    sw.create("web", kind="l3")
    sw.assign_and_push("10.0.0.5/24", "web")
    sw.assign_and_push("fd00::5/64", "web")
    return sw


def test_addresses_mix_families_and_list_ipv4_first():
    sw = dual()
    assert sw.addresses("web") == ["127.0.0.1/8", "::1/128", "10.0.0.5/24", "fd00::5/64"]
    assert sw.owner("fd00::5").name == "web"
    assert sw.owner("fd00::1").name == "init"
    tagged = sw.addresses("init", tagged=True)
    assert ("fd00::5/64", "web") in tagged
    sw.pull("fd00::5/64", "web")
    assert sw.owner("fd00::5").name == "init"
    sw.destroy("web")
    assert "10.0.0.5/24" in sw.addresses("init")


@pytest.mark.parametrize("address", ["fe80::1/64", "fe80::1/10", "febf::5/64"])
def test_link_local_addresses_are_never_held(address):
    sw = dual()
    error = refused(sw, errors.InvalidArgument, sw.address_add, "init", address)
    assert "link-local" in error.message
    refused(sw, errors.InvalidArgument, sw.assign_and_push, address, "web")


@pytest.mark.parametrize("bad", ["::/64", "::1/128", "ff02::1/64", "::ffff:10.0.0.1/120",
                                 "fd00::1%eth0/64", "fd00::1/129"])
def test_other_ipv6_non_hosts_are_refused(bad):
    sw = dual()
    refused(sw, errors.InvalidArgument, sw.address_add, "init", bad)


def test_default_route_takes_the_family_of_its_gateway():
    sw = dual()
    v4 = sw.route_add("init", "default", via="10.0.0.254")
    v6 = sw.route_add("init", "default", via="fd00::fe")
    assert (v4.dst, v6.dst) == ("0.0.0.0/0", "::/0")
    given = [r.dst for r in sw.routes("web") if not r.connected]   # not the IPv4 subnet's
    assert given == ["0.0.0.0/0", "::/0"]
    sw.route_del("init", "default", via="fd00::fe")
    assert [r.dst for r in sw.routes("init") if not r.connected] == ["0.0.0.0/0"]
    sw.route_add("init", "::/0", via="fd00::fe")
    sw.route_del("init", "::/0")
    sw.route_del("init", "default")
    assert [r.dst for r in sw.routes("init")] == ["10.0.0.0/24", "fd00::/64"]   # connected


def test_default_without_a_gateway_is_ipv4():
    sw = dual()
    sw.port_add("up", "init")
    assert sw.route_add("init", "default", port="up").dst == "0.0.0.0/0"
    assert sw.route_add("init", "::/0", port="up").dst == "::/0"
    # Deleting "default" without a gateway names the IPv4 one.
    sw.route_del("init", "default")
    assert [r.dst for r in sw.routes("init") if not r.connected] == ["::/0"]


def test_ipv6_routes():
    sw = dual()
    route = sw.route_add("init", "fd01::/48", via="fd00::fe")
    assert route.to_dict() == {"dst": "fd01::/48", "via": "fd00::fe", "port": None,
                               "connected": False}
    refused(sw, errors.AlreadyExists, sw.route_add, "init", "fd01::/48", via="fd00::fd")
    refused(sw, errors.InvalidArgument, sw.route_add, "init", "fd01::/48", via="10.0.0.254")
    refused(sw, errors.InvalidArgument, sw.route_add, "init", "fd02::1/48", via="fd00::fe")
    refused(sw, errors.NotFound, sw.route_del, "init", "fd01::/48", via="fd00::fd")


@pytest.mark.parametrize("prefix, via", [("fe80::/64", "fd00::fe"), ("fe80::/10", "fd00::fe"),
                                         ("fd01::/48", "fe80::1"), ("default", "fe80::1")])
def test_link_local_is_not_routed(prefix, via):
    sw = dual()
    error = refused(sw, errors.InvalidArgument, sw.route_add, "init", prefix, via=via)
    assert "link-local" in error.message


def test_a_route_covering_link_local_is_fine():
    sw = dual()
    assert sw.route_add("init", "fe00::/7", via="fd00::fe").dst == "fe00::/7"


@pytest.mark.parametrize("group", ["ff02::1", "ff02::1:ff00:5", "ff12::1", "ff01::1", "ff00::1",
                                   "ff32::1"])
def test_link_scope_groups_are_never_joined(group):
    sw = dual()
    error = refused(sw, errors.InvalidArgument, sw.join, group, "web")
    assert "ff02::/16" in error.message


@pytest.mark.parametrize("group", ["ff05::1:3", "ff0e::123", "ff15::9", "ff38::1", "ff03::1"])
def test_wider_ipv6_groups_are_joined(group):
    sw = dual()
    sw.join(group, "web")
    sw.join("239.1.1.1", "web")
    canonical = str(ipaddress.ip_address(group))
    assert sw.groups("web") == ["239.1.1.1", canonical]
    assert [ns.name for ns in sw.members(group, "web")] == ["web"]
    sw.leave(group, "web")
    assert sw.groups("web") == ["239.1.1.1"]


def test_bind_check_allows_link_local_and_own_addresses():
    sw = dual()
    assert sw.may_send_from("web", "fd00::5")
    assert sw.may_send_from("web", "fe80::1234")
    assert sw.may_send_from("web", "::")
    assert sw.may_send_from("web", "ff05::1")            # a group: bindable
    assert not sw.may_send_from("web", "fd00::1")
    assert not sw.may_send_from("web", "fd00::9")        # nobody's: an L3 only sends its own
    assert sw.may_send_from("init", "fd00::9")           # an L2: anything no one else holds


def test_is_link_scope_group():
    yes = ["224.0.0.1", "224.0.0.255", "ff02::1", "ff01::2", "ff00::", "ff12::1", "ff32::5"]
    no = ["224.0.1.1", "239.1.1.1", "ff05::1", "ff0e::1", "ff03::1", "ff38::1"]
    for text in yes:
        assert addressing.is_link_scope_group(ipaddress.ip_address(text)), text
    for text in no:
        assert not addressing.is_link_scope_group(ipaddress.ip_address(text)), text


# -- port options ----------------------------------------------------------------------

def test_port_address_and_gateway_lists():
    options = check_port_options({"netns": "t", "address": ["10.0.0.5/24", "FD00::5/64"],
                                  "gateway": ["fd00::1", "10.0.0.1"], "mtu": 1280})
    assert options["address"] == ["10.0.0.5/24", "fd00::5/64"]
    assert options["gateway"] == ["fd00::1", "10.0.0.1"]
    assert port_interfaces(options) == [ipaddress.ip_interface("10.0.0.5/24"),
                                        ipaddress.ip_interface("fd00::5/64")]
    assert port_gateways(options) == [ipaddress.ip_address("fd00::1"),
                                      ipaddress.ip_address("10.0.0.1")]


def test_port_single_strings_stay_strings():
    options = check_port_options({"address": "fd00::5/64", "gateway": "fd00::1"})
    assert options == {"address": "fd00::5/64", "gateway": "fd00::1"}
    assert port_interfaces(options) == [ipaddress.ip_interface("fd00::5/64")]
    assert port_interfaces({}) == [] and port_gateways({}) == []


def test_a_gateway_may_lie_in_any_subnet_of_its_family():
    options = check_port_options({"address": ["10.0.0.5/24", "10.1.0.5/24"],
                                  "gateway": "10.1.0.1"})
    assert options["gateway"] == "10.1.0.1"


@pytest.mark.parametrize("options, words", [
    ({"address": []}, "empty list"),
    ({"address": ["10.0.0.%d/24" % i for i in range(2, 19)]}, "at most 16"),
    ({"address": ["10.0.0.5/24", "10.0.0.5/16"]}, "twice"),
    ({"address": ["fd00::5/64", "fd00:0::5/48"]}, "twice"),
    ({"address": {"a": 1}}, "a string or a list"),
    ({"address": [5]}, "a string or a list"),
    ({"address": ["fe80::5/64"]}, "link-local"),
    ({"gateway": ["10.0.0.1"]}, "needs option 'address'"),
    ({"address": "10.0.0.5/24", "gateway": "fd00::1"}, "needs an IPv6 address"),
    ({"address": ["10.0.0.5/24", "fd00::5/64"], "gateway": ["fd01::1"]}, "inside fd00::/64"),
    ({"address": ["fd00::5/64"], "gateway": "fd00::5"}, "another address"),
    ({"address": ["10.0.0.5/24"], "gateway": ["10.0.0.1", "10.0.0.2"]}, "two IPv4 gateways"),
    ({"address": ["10.0.0.5/24", "fd00::5/64"], "mtu": 1279}, "1280"),
    ({"address": "fd00::5/64", "mtu": 576}, "1280"),
])
def test_bad_port_address_options(options, words):
    sw = dual()
    error = refused(sw, errors.InvalidArgument, sw.port_add, "p", "web", options=options)
    assert words in error.message


def test_small_mtu_is_fine_for_ipv4_only():
    assert check_port_options({"address": "10.0.0.5/24", "mtu": 576})["mtu"] == 576


# -- an L2's options (router advertisements) --------------------------------------------

def test_namespace_set_changes_the_keys_given():
    sw = dual()
    seen = []
    sw.subscribe(seen.append)
    sw.namespace_set("init", {"advertise": True})
    assert sw.namespace_options("init") == {"advertise": True}
    assert sw.namespace_options("web") == {"advertise": True}     # an L3: its scope's
    assert [e.kind for e in seen] == ["namespace.set"]
    assert seen[0].options == (("advertise", True),) and seen[0].namespace.name == "init"
    sw.namespace_set("init", {})
    assert sw.namespace_options("init") == {"advertise": True}
    sw.namespace_set("init", {"advertise": False})
    assert sw.snapshot()["namespaces"][0]["options"] == {"advertise": False}


def test_a_failed_transaction_takes_the_options_back():
    sw = dual()
    sw.create("lab", kind="l2")
    before = sw.snapshot()
    with pytest.raises(errors.NotFound):
        with sw.transaction():
            sw.namespace_set("init", {"advertise": True})
            sw.namespace_set("lab", {"advertise": True})
            sw.destroy("nowhere")
    assert sw.namespace_options("init") == {} and sw.namespace_options("lab") == {}
    assert sw.snapshot() == before


@pytest.mark.parametrize("namespace, options, error", [
    ("web", {"advertise": True}, errors.InvalidArgument),       # an L3
    ("init", {"advertise": "yes"}, errors.InvalidArgument),
    ("init", {"advertize": True}, errors.InvalidArgument),
    ("init", ["advertise"], errors.InvalidArgument),
    ("nowhere", {"advertise": True}, errors.NotFound),
])
def test_bad_namespace_options(namespace, options, error):
    sw = dual()
    refused(sw, error, sw.namespace_set, namespace, options)


def test_namespace_options_need_config_rights():
    sw = dual()
    sw.create("lab", kind="l2")
    refused(sw, errors.PermissionDenied, sw.as_namespace("web").namespace_set, "init",
            {"advertise": True})
    refused(sw, errors.NotFound, sw.as_namespace("lab").namespace_set, "init", {"advertise": True})
    sw.as_namespace("lab").namespace_set("lab", {"advertise": True})
    assert sw.namespace_options("lab") == {"advertise": True}


def test_port_router_option():
    assert check_port_options({"router": True}) == {"router": True}
    with pytest.raises(errors.InvalidArgument, match="true or false"):
        check_port_options({"router": 1})
