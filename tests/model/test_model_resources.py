"""Routes (issue 2, point 7), ports and multicast membership."""
import pytest

from pyctl.model import port_options

from tests.support.model import events_of, refused, tenants
from pyctl import Port, Route, Switch, errors


# -- routes -----------------------------------------------------------------------

def test_routes_belong_to_an_l2_and_its_l3_children_see_them():
    sw = tenants()
    sw.port_add("uplink0", "init")
    assert sw.route_add("init", "10.9.0.0/16", via="10.0.0.254") == Route("10.9.0.0/16", "10.0.0.254")
    sw.route_add("init", "default", via="10.0.0.254", port="uplink0")
    sw.route_add("init", "fd09::/32", port="uplink0")
    expected = [Route("0.0.0.0/0", "10.0.0.254", "uplink0"),
                Route("10.0.0.0/24", connected=True),               # init's own 10.0.0.1/24
                Route("10.9.0.0/16", "10.0.0.254"), Route("fd09::/32", None, "uplink0")]
    assert sw.routes("init") == sw.routes("web") == sw.routes("db") == expected


def test_sibling_l2_routes_are_isolated():
    sw = tenants()
    sw.route_add("init", "10.9.0.0/16", via="10.0.0.254")
    sw.route_add("lab", "10.9.0.0/16", via="10.0.0.253")   # same destination, other scope
    assert sw.routes("lab") == sw.routes("probe") == [Route("10.9.0.0/16", "10.0.0.253")]
    assert sw.routes("init") == [Route("10.0.0.0/24", connected=True),
                                 Route("10.9.0.0/16", "10.0.0.254")]


def test_l3_routes_are_read_only_even_for_the_admin():
    sw = tenants()
    err = refused(sw, errors.InvalidArgument, sw.route_add, "web", "10.9.0.0/16", via="10.0.0.254")
    assert "'web'" in err.message and "'init'" in err.message
    refused(sw, errors.InvalidArgument, sw.route_del, "web", "10.9.0.0/16")


def test_delete_route():
    sw = tenants()
    sw.route_add("init", "10.9.0.0/16", via="10.0.0.254")
    refused(sw, errors.NotFound, sw.route_del, "init", "10.9.0.0/16", via="10.0.0.253")
    refused(sw, errors.NotFound, sw.route_del, "init", "10.9.0.0/16", port="uplink0")
    refused(sw, errors.NotFound, sw.route_del, "init", "10.8.0.0/16")
    refused(sw, errors.NotFound, sw.route_del, "lab", "10.9.0.0/16")
    sw.route_del("init", "10.9.0.0/16", via="10.0.0.254")
    assert sw.routes("init") == [Route("10.0.0.0/24", connected=True)]


def test_replace_route_changes_it_in_one_step():
    sw = tenants()
    sw.port_add("uplink0", "init")
    sw.route_add("init", "10.9.0.0/16", via="10.0.0.254")
    events = events_of(sw)
    version = sw.version
    assert sw.route_replace("init", "10.9.0.0/16", port="uplink0") == \
        Route("10.9.0.0/16", None, "uplink0")
    assert sw.routes("web")[-1] == Route("10.9.0.0/16", None, "uplink0")
    assert sw.version == version + 1                             # one change, one event
    [event] = events
    assert (event.kind, event.previous) == ("route.replace", Route("10.9.0.0/16", "10.0.0.254"))
    # absent: added (and counted as one), like route-add
    sw.route_replace("init", "default", via="10.0.0.254")
    assert sw.routes("init")[0] == Route("0.0.0.0/0", "10.0.0.254")
    assert events[-1].previous is None
    # a static route over a connected subnet wins, and goes again with route-del
    sw.route_replace("init", "10.0.0.0/24", port="uplink0")
    assert Route("10.0.0.0/24", None, "uplink0") in sw.routes("init")
    sw.route_del("init", "10.0.0.0/24")
    assert Route("10.0.0.0/24", connected=True) in sw.routes("init")


def test_replace_route_counts_against_the_quota_only_when_it_adds_one():
    sw = Switch()
    sw.create("t", kind="l2")
    sw.address_add("t", "10.1.0.1/24")
    sw.quota_set("t", {"routes": 1})
    t = sw.as_namespace("t")
    t.route_replace("t", "10.9.0.0/16", via="10.1.0.254")
    t.route_replace("t", "10.9.0.0/16", via="10.1.0.253")        # a change: no new route
    assert sw.quota("t")["usage"]["routes"] == 1
    err = refused(sw, errors.QuotaExceeded, t.route_replace, "t", "10.8.0.0/16",
                  via="10.1.0.254")
    assert err.quota == "routes"


def test_replace_route_is_refused_like_route_add():
    sw = tenants()
    sw.port_add("tap-web", "web")
    sw.route_add("init", "10.9.0.0/16", via="10.0.0.254")
    refused(sw, errors.InvalidArgument, sw.route_replace, "web", "10.9.0.0/16", via="10.0.0.253")
    refused(sw, errors.InvalidArgument, sw.route_replace, "init", "10.9.0.1/16", via="10.0.0.1")
    refused(sw, errors.InvalidArgument, sw.route_replace, "init", "10.9.0.0/16")
    refused(sw, errors.InvalidArgument, sw.route_replace, "init", "10.9.0.0/16", port="tap-web")
    refused(sw, errors.NotFound, sw.route_replace, "init", "10.9.0.0/16", port="nope")
    refused(sw, errors.PermissionDenied, sw.as_namespace("web").route_replace, "init",
            "10.9.0.0/16", via="10.0.0.253")
    refused(sw, errors.NotFound, sw.as_namespace("lab").route_replace, "init",
            "10.9.0.0/16", via="10.0.0.253")
    assert sw.routes("init")[-1] == Route("10.9.0.0/16", "10.0.0.254")


@pytest.mark.parametrize("dst, via, port, error", [
    ("10.9.0.1/16", "10.0.0.254", None, errors.InvalidArgument),        # host bits
    ("10.9.0.0", "10.0.0.254", None, errors.InvalidArgument),           # no prefix
    ("10.9.0.0/33", "10.0.0.254", None, errors.InvalidArgument),
    ("127.0.0.0/8", "10.0.0.254", None, errors.InvalidArgument),
    ("224.0.0.0/4", "10.0.0.254", None, errors.InvalidArgument),
    ("10.9.0.0/16", None, None, errors.InvalidArgument),                # nowhere to go
    ("10.9.0.0/16", "10.0.0.254/24", None, errors.InvalidArgument),
    ("10.9.0.0/16", "fd00::1", None, errors.InvalidArgument),           # family mismatch
    ("10.9.0.0/16", "224.0.0.1", None, errors.InvalidArgument),
    ("10.9.0.0/16", "0.0.0.0", None, errors.InvalidArgument),
    ("10.9.0.0/16", "255.255.255.255", None, errors.InvalidArgument),
    ("10.9.0.0/16", None, "nope", errors.NotFound),
    ("10.9.0.0/16", None, "tap-web", errors.InvalidArgument),           # port of another ns
    ("10.8.0.0/16", "10.0.0.254", None, errors.AlreadyExists),
])
def test_bad_routes(dst, via, port, error):
    sw = tenants()
    sw.port_add("tap-web", "web")
    sw.route_add("init", "10.8.0.0/16", via="10.0.0.253")
    refused(sw, error, sw.route_add, "init", dst, via=via, port=port)


# -- ports --------------------------------------------------------------------------

def test_ports_with_generated_and_given_macs():
    sw = tenants()
    web = sw.port_add("tap-web", "web", options={"vnet_hdr": True, "offloads": ["tso4", "csum"],
                                                 "txqueuelen": 10000, "netns": "ts-web-1",
                                                 "address": "10.0.0.5/24", "gateway": "10.0.0.1"})
    up = sw.port_add("uplink0", "init", mac="02:AA:bb:cc:dd:ee")
    assert web == Port("tap-web", 0, sw.namespace("web").id, "02:74:73:00:00:01",
                       {"vnet_hdr": True, "offloads": ["csum", "tso4"], "txqueuelen": 10000,
                        "netns": "ts-web-1", "address": "10.0.0.5/24", "gateway": "10.0.0.1"})
    assert up.mac == "02:aa:bb:cc:dd:ee" and up.id == 1
    assert sw.ports() == [web, up]
    assert sw.ports("web") == [web]
    assert sw.port("tap-web") == sw.port(0) == sw.port("0") == web
    web.options["mtu"] = 1                      # a copy: the model is untouched
    assert "mtu" not in sw.port("tap-web").options


def test_generated_mac_skips_taken_ones():
    sw = Switch()
    sw.port_add("a", "init", mac="02:74:73:00:00:02")    # what id 1 would get
    assert sw.port_add("b", "init").mac == "02:74:73:00:00:03"


def test_an_l3_has_at_most_one_port_an_l2_many():
    sw = tenants()
    sw.port_add("tap-web", "web")
    err = refused(sw, errors.Busy, sw.port_add, "tap-web2", "web")
    assert "'web'" in err.message and "'tap-web'" in err.message
    sw.port_add("uplink0", "init")
    sw.port_add("uplink1", "init")


def test_delete_port_and_reuse_of_its_id():
    sw = tenants()
    sw.port_add("a", "init")
    sw.port_add("b", "init")
    sw.port_del("a")
    assert sw.port_add("c", "web").id == 0
    refused(sw, errors.NotFound, sw.port_del, "a")


def test_port_used_by_a_route_is_busy():
    sw = tenants()
    sw.port_add("uplink0", "init")
    sw.route_add("init", "default", port="uplink0")
    err = refused(sw, errors.Busy, sw.port_del, "uplink0")
    assert "0.0.0.0/0" in err.message
    sw.route_del("init", "default")
    sw.port_del("uplink0")


def test_destroying_an_l3_removes_its_port():
    sw = tenants()
    sw.port_add("tap-web", "web")
    sw.destroy("web")
    assert sw.ports() == []
    sw.port_add("tap-web", "db")                 # name and MAC free again


@pytest.mark.parametrize("name, mac, options, error", [
    ("", None, None, errors.InvalidArgument),
    ("a" * 16, None, None, errors.InvalidArgument),
    ("tap web", None, None, errors.InvalidArgument),
    ("tap/web", None, None, errors.InvalidArgument),
    ("12", None, None, errors.InvalidArgument),
    (None, None, None, errors.InvalidArgument),
    ("p", "02:00:00:00:00", None, errors.InvalidArgument),
    ("p", "01:00:5e:00:00:01", None, errors.InvalidArgument),
    ("p", "00:00:00:00:00:00", None, errors.InvalidArgument),
    ("p", "02-00-00-00-00-01", None, errors.InvalidArgument),
    ("p", None, {"vnet_header": True}, errors.InvalidArgument),
    ("p", None, {"vnet_hdr": 1}, errors.InvalidArgument),
    ("p", None, {"offloads": "tso4"}, errors.InvalidArgument),
    ("p", None, {"offloads": ["gso"]}, errors.InvalidArgument),
    ("p", None, {"txqueuelen": -1}, errors.InvalidArgument),
    ("p", None, {"txqueuelen": True}, errors.InvalidArgument),
    ("p", None, {"mtu": 67}, errors.InvalidArgument),
    ("p", None, {"netns": "a/b"}, errors.InvalidArgument),
    ("p", None, {"address": "10.0.0.5"}, errors.InvalidArgument),
    ("p", None, {"gateway": "10.0.0.1"}, errors.InvalidArgument),
    ("p", None, {"address": "10.0.0.5/24", "gateway": "10.1.0.1"}, errors.InvalidArgument),
    ("p", None, {"address": "10.0.0.5/24", "gateway": "10.0.0.5"}, errors.InvalidArgument),
    ("p", None, ["vnet_hdr"], errors.InvalidArgument),
    ("p", None, {"kind": "vxlan"}, errors.InvalidArgument),
    ("p", None, {"kind": "veth", "vnet_hdr": True}, errors.InvalidArgument),
    ("p", None, {"kind": "xdp", "offloads": ["csum"]}, errors.InvalidArgument),
    ("p", None, {"kind": "auto", "txqueuelen": 10}, errors.InvalidArgument),
    ("p", None, {"kind": "attach", "netns": "ts-x"}, errors.InvalidArgument),
    ("p", None, {"kind": "attach", "mtu": 9000}, errors.InvalidArgument),
    ("p", None, {"kind": "attach", "address": "10.0.0.5/24"}, errors.InvalidArgument),
    ("p", None, {"kind": "attach", "address": ["10.0.0.5/24", "fd00::5/64"]},
     errors.InvalidArgument),
    ("p", None, {"kind": "veth", "address": "fd00::5/64", "mtu": 1279}, errors.InvalidArgument),
    ("p", None, {"kind": "xdp", "address": ["10.0.0.5/24", "fd00::5/64"],
                 "gateway": ["10.0.0.1", "fd01::1"]}, errors.InvalidArgument),
    ("p", None, {"ring_frames": 1024}, errors.InvalidArgument),        # a TAP's queue: txqueuelen
    ("p", None, {"kind": "auto", "ring_frames": 1024}, errors.InvalidArgument),   # auto may be tap
    ("p", None, {"kind": "veth", "ring_frames": 1000}, errors.InvalidArgument),
    ("p", None, {"kind": "veth", "ring_frames": 32}, errors.InvalidArgument),
    ("p", None, {"kind": "xdp", "ring_frames": 32768}, errors.InvalidArgument),
    ("p", None, {"kind": "attach", "ring_frames": True}, errors.InvalidArgument),
    ("p", None, {"kind": "attach", "ring_frames": "4096"}, errors.InvalidArgument),
    ("p", None, {"dhcp_lease_time": 1}, errors.InvalidArgument),
    ("p", None, {"dhcp_lease_time": 2**31}, errors.InvalidArgument),
    ("uplink0", None, None, errors.AlreadyExists),
    ("p", "02:00:00:00:00:01", None, errors.AddressInUse),
])
def test_bad_ports(name, mac, options, error):
    sw = tenants()
    sw.port_add("uplink0", "init", mac="02:00:00:00:00:01")
    refused(sw, error, sw.port_add, name, "init", mac=mac, options=options)


def test_port_on_unknown_namespace():
    sw = tenants()
    refused(sw, errors.NotFound, sw.port_add, "p", "nope")
    refused(sw, errors.NotFound, sw.ports, "nope")
    refused(sw, errors.NotFound, sw.port, 5)
    refused(sw, errors.InvalidArgument, sw.port, None)


# -- multicast membership ------------------------------------------------------------

def test_join_leave_groups_and_members():
    sw = tenants()
    sw.join("239.1.1.1", "web")
    sw.join("239.1.1.1", "db")
    sw.join("239.1.1.1", "init")
    sw.join("239.1.1.1", "probe")                   # another scope
    sw.join("ff15::1", "web")
    assert sw.groups("web") == ["239.1.1.1", "ff15::1"]
    assert [n.name for n in sw.members("239.1.1.1", "init")] == ["init", "web", "db"]
    assert [n.name for n in sw.members("239.1.1.1", "web")] == ["init", "web", "db"]
    assert [n.name for n in sw.members("239.1.1.1", "lab")] == ["probe"]
    sw.leave("239.1.1.1", "db")
    assert [n.name for n in sw.members("239.1.1.1", "init")] == ["init", "web"]


@pytest.mark.parametrize("group", ["10.0.0.5", "239.1.1.1/32", "", None, "ff15::1%eth0"])
def test_bad_groups(group):
    sw = tenants()
    refused(sw, errors.InvalidArgument, sw.join, group, "web")
    refused(sw, errors.InvalidArgument, sw.leave, group, "web")


def test_duplicate_join_and_leave_without_join():
    sw = tenants()
    sw.join("239.1.1.1", "web")
    refused(sw, errors.AlreadyExists, sw.join, "239.1.1.1", "web")
    refused(sw, errors.NotFound, sw.leave, "239.1.1.1", "db")
    refused(sw, errors.NotFound, sw.join, "239.1.1.1", "nope")


def test_destroy_drops_memberships():
    sw = tenants()
    sw.join("239.1.1.1", "web")
    before = sw.versions["groups"]
    sw.destroy("web")
    assert sw.members("239.1.1.1", "init") == []
    assert sw.versions["groups"] == before + 1


def test_port_kinds_and_dhcp_service():
    sw = tenants()
    sw.create("vm", kind="l3")
    sw.port_add("vnet3", "vm", options={"kind": "attach", "dhcp_lease_time": 60})
    sw.port_add("veth-up", "init", options={"kind": "veth", "mtu": 9000, "netns": "ts-up"})
    assert sw.port("vnet3").options == {"kind": "attach", "dhcp_lease_time": 60}
    assert port_options.dhcp_served(sw.port("vnet3").options, True)
    assert not port_options.dhcp_served(sw.port("veth-up").options, False)    # an L2's uplink
    assert not port_options.dhcp_served({"address": "10.0.0.5/24"}, True)
    assert port_options.dhcp_served({"netns": "ts-x"}, True)
    dual = {"kind": "veth", "netns": "ts-d", "address": ["10.0.0.5/24", "fd00::5/64"],
            "gateway": ["10.0.0.1", "fd00::1"]}
    sw.create("d", kind="l3", parent="init")
    sw.port_add("veth-d", "d", options=dual)         # ring ports take both families as TAPs do
    assert sw.port("veth-d").options == dual
    assert not port_options.dhcp_served(dual, True)
