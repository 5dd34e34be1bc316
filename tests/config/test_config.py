"""The TOML topology file: the examples load and apply; every refusal names its key and line;
applying is all or nothing."""
import textwrap

import pytest

from fastpath.reasons import SLOW_SHARES
from pyctl import errors
from pyctl.config import (ConfigError, ControlLimits, DaemonSettings, SlowPathLimits, apply, check,
                          load_config)
from pyctl.model.switch import Switch

from tests.support import EXAMPLES, config_text
from tests.support.model import events_of

BASE = config_text.TENANTS_WEB


def refused(text, **kwargs):
    with pytest.raises(ConfigError) as info:
        load_config(textwrap.dedent(text), **kwargs)
    return info.value


@pytest.mark.parametrize("name", ["two-tenants.toml", "sibling-l2.toml", "dual-stack.toml"])
def test_examples_load_and_apply(name):
    config = load_config(EXAMPLES / name)
    switch = check(config)
    assert {ns.name for ns in config.namespaces} <= {ns.name for ns in switch.namespaces()}
    for ns in config.namespaces:
        if ns.kind == "l3":
            assert set(ns.addresses) <= set(switch.addresses(ns.name))
            assert switch.namespace(ns.parent).kind == "l2"
    assert [p.name for p in switch.ports()] == [p.name for p in config.ports]


def test_two_tenants_example_contents():
    config = load_config(str(EXAMPLES / "two-tenants.toml"))
    assert config.source.endswith("two-tenants.toml")
    assert [(n.name, n.kind, n.parent) for n in config.namespaces] == [
        ("tenants", "l2", "init"), ("web", "l3", "tenants"), ("db", "l3", "tenants")]
    web_port = config.ports[0]
    assert web_port.netns == "tenant-web"
    assert web_port.options == {"vnet_hdr": True, "offloads": ["csum", "tso4", "tso6"],
                                "txqueuelen": 10000, "netns": "tenant-web",
                                "address": "10.1.0.10/24", "gateway": "10.1.0.1"}
    assert config.routes[0].prefix == "0.0.0.0/0" and config.routes[0].port == "tsw-up"
    assert config.namespace_sockets() == ["web"]
    assert config.daemon.namespace_socket_dir == "/run/tapswitch/ns"
    assert config.daemon.slowpath.icmp_errors_per_second == 100


def test_sibling_example_overlapping_addresses():
    switch = check(load_config(EXAMPLES / "sibling-l2.toml"))
    assert switch.owner("10.0.0.10", "blue").name == "blue-a"
    assert switch.owner("10.0.0.10", "red").name == "red-a"


def test_neighbour_limits_are_read():
    config = load_config("[daemon.slowpath]\nneighbours = 500\nneighbours_per_scope = 50\n"
                         "neighbour_reachable_time = 60\n")
    assert config.daemon.slowpath == SlowPathLimits(neighbours=500, neighbours_per_scope=50,
                                                    neighbour_reachable_time=60)
    assert SlowPathLimits().neighbours_per_scope == 4096


def test_slow_path_shares_are_read_and_default_from_the_table():
    config = load_config("[daemon.slowpath]\nicmp_errors_burst = 5\n"
                         "[daemon.slowpath.shares]\narp = [10, 4]\nother = [0, 0]\n")
    shares = config.daemon.slowpath.shares
    assert shares["arp"] == (10, 4) and shares["other"] == (0, 0)
    assert shares["icmp"] == next((s.rate, s.burst) for s in SLOW_SHARES if s.name == "icmp")
    assert set(shares) == {s.name for s in SLOW_SHARES}
    assert config.daemon.slowpath.icmp_errors_burst == 5


def test_control_limits_are_read():
    config = load_config("[daemon.control]\nconnections_per_socket = 4\nidle_timeout = 30\n"
                         "requests_per_second = 0\n")
    assert config.daemon.control == ControlLimits(connections_per_socket=4, idle_timeout=30,
                                                  requests_per_second=0)
    assert load_config("").daemon.control == ControlLimits()


QUOTAS = """
[[namespace]]
name = "t"
kind = "l2"
quota = { namespaces = 2, sockets = 1 }

[[namespace]]
name = "u"
kind = "l2"
parent = "t"
[namespace.quota]
routes = 3

[[namespace]]
name = "a"
kind = "l3"
parent = "u"
socket = true
"""


def test_quotas_are_read_and_applied_parents_first():
    config = load_config(QUOTAS)
    assert [ns.quota for ns in config.namespaces] == [{"namespaces": 2, "sockets": 1},
                                                      {"routes": 3}, {}]
    switch = check(config)
    assert switch.quota("u")["quota"]["routes"] == 3
    assert switch.quota("t")["usage"]["namespaces"] == 2


@pytest.mark.parametrize("change, key, code, fragment", [
    ('quota = { tables = 1 }', "namespace[0].quota.tables", "EINVAL", "unknown key"),
    ('quota = { routes = -1 }', "namespace[0].quota.routes", "EINVAL", "out of range"),
    ('quota = { sockets = 0 }', "namespace[0].quota.sockets", "EDQUOT",
     "1 namespaces below 't' have socket = true (a)"),
])
def test_quota_refusals_name_the_key(change, key, code, fragment):
    error = refused(QUOTAS.replace("quota = { namespaces = 2, sockets = 1 }", change),
                    source="q.toml")
    assert (error.key, error.code) == (key, code) and fragment in error.reason


def test_a_config_past_a_quota_names_the_entry():
    config = load_config(QUOTAS.replace("namespaces = 2", "namespaces = 1"))
    with pytest.raises(ConfigError) as info:
        check(config)
    assert info.value.key == "namespace[2].name" and info.value.code == "EDQUOT"
    assert "quota namespaces=1 of 't'" in info.value.reason


def test_an_l3_has_no_quota():
    error = refused('[[namespace]]\nname = "a"\nkind = "l3"\nquota = { routes = 1 }\n')
    assert error.key == "namespace[0].quota" and "L2" in error.reason


def test_a_child_given_more_than_its_parent_is_refused():
    with pytest.raises(ConfigError) as info:
        check(load_config(QUOTAS.replace("routes = 3", "routes = 3\nnamespaces = 5")))
    assert info.value.key == "namespace[1].quota" and info.value.code == "EDQUOT"


def test_defaults_and_empty_file():
    config = load_config("")
    assert config.namespaces == () and config.daemon == DaemonSettings()
    assert config.daemon.socket == "/run/tapswitch/control.sock"
    assert config.daemon.socket_mode == 0o600
    assert load_config("[daemon]\nsocket = \"/tmp/x/c.sock\"").daemon.namespace_socket_dir == "/tmp/x/ns"


def test_parents_may_come_after_children():
    config = load_config(textwrap.dedent("""\
        [[namespace]]
        name = "web"
        kind = "l3"
        parent = "tenants"
        [[namespace]]
        name = "tenants"
        kind = "l2"
        """))
    assert [n.name for n in config.namespaces] == ["tenants", "web"]
    check(config)


def test_root_addresses_and_socket():
    config = load_config("[root]\naddresses = [\"10.5.0.1/16\"]\nsocket = true\n")
    assert config.namespace_sockets() == ["init"]
    assert "10.5.0.1/16" in check(config).addresses("init")


def test_configured_groups_are_joined():
    config = load_config(BASE + 'groups = ["239.1.1.1", "239.1.1.2"]\n\n'
                         '[root]\ngroups = ["239.9.9.9"]\n')
    switch = check(config)
    assert sorted(switch.groups("web")) == ["239.1.1.1", "239.1.1.2"]
    assert switch.groups("init") == ["239.9.9.9"]
    with pytest.raises(errors.TapswitchError) as refused_group:
        check(load_config(BASE + 'groups = ["10.1.0.99"]\n'))
    assert "namespace[1].groups[0]" in refused_group.value.message


# -- every refusal names its key and its line --------------------------------------

CASES = [
    # (toml, key, line, fragment)
    ("[[namespace]\nname = 1\n", "", 1, "TOML syntax error"),
    ("[daemon]\nsocket = \n", "", 2, "TOML syntax error"),
    ("colour = 1\n", "colour", 1, "unknown key"),
    ("namespace = 5\n", "namespace", 1, "array of tables"),
    ("[namespace]\nname = \"a\"\n", "namespace", 1, "array of tables"),
    ("[[namespace]]\nname = \"a\"\nkind = \"l2\"\nparnet = \"init\"\n",
     "namespace[0].parnet", 4, "unknown key"),
    ("[[namespace]]\nname = 5\nkind = \"l2\"\n", "namespace[0].name", 2, "expected a string"),
    ("[[namespace]]\nname = \"a\"\n", "namespace[0]", 1, "missing required key 'kind'"),
    ("[[namespace]]\nname = \"a b\"\nkind = \"l2\"\n", "namespace[0].name", 2,
     "invalid namespace name"),
    ("[[namespace]]\nname = \"a\"\nkind = \"l4\"\n", "namespace[0].kind", 3, "'l2' or 'l3'"),
    ("[[namespace]]\nname = \"a\"\nkind = \"l2\"\naddresses = \"10.0.0.1/24\"\n",
     "namespace[0].addresses", 4, "expected an array"),
    ("[[namespace]]\nname = \"a\"\nkind = \"l2\"\naddresses = [1]\n",
     "namespace[0].addresses[0]", 4, "expected a string"),
    ("[[namespace]]\nname = \"a\"\nkind = \"l2\"\naddresses = [\n  \"10.0.0.1/24\",\n"
     "  \"10.0.0.300/24\",\n]\n", "namespace[0].addresses[1]", 4, "10.0.0.300"),
    ("[[namespace]]\nname = \"a\"\nkind = \"l2\"\naddresses = [\"10.0.0.1\"]\n",
     "namespace[0].addresses[0]", 4, "prefix length is required"),
    ("[[namespace]]\nname = \"a\"\nkind = \"l2\"\nsocket = \"yes\"\n", "namespace[0].socket", 4,
     "expected a boolean"),
    (BASE + "[[namespace]]\nname = \"db\"\nkind = \"l3\"\nparent = \"tenant\"\n",
     "namespace[2].parent", 14, "unknown namespace 'tenant'"),
    (BASE + "[[namespace]]\nname = \"x\"\nkind = \"l3\"\nparent = \"web\"\n",
     "namespace[2].parent", 14, "L3 namespace"),
    (BASE + "[[namespace]]\nname = \"web\"\nkind = \"l3\"\n", "namespace[2].name", 12,
     "already defined at line 6"),
    ("[[namespace]]\nname = \"init\"\nkind = \"l2\"\n", "namespace[0].name", 2, "built in"),
    ("[[namespace]]\nname = \"a\"\nkind = \"l2\"\nparent = \"b\"\n"
     "[[namespace]]\nname = \"b\"\nkind = \"l2\"\nparent = \"a\"\n",
     "namespace[0].parent", 4, "parent cycle"),
    # ports
    (BASE + "[[port]]\nname = \"p\"\nnamespace = \"nope\"\n", "port[0].namespace", 13,
     "unknown namespace 'nope'"),
    (BASE + "[[port]]\nnamespace = \"web\"\n", "port[0]", 11, "missing required key 'name'"),
    (BASE + "[[port]]\nname = \"a-very-long-port-name\"\nnamespace = \"web\"\n", "port[0].name",
     12, "invalid port name"),
    (BASE + "[[port]]\nname = \"p\"\nnamespace = \"web\"\nmac = \"01:00:5e:00:00:01\"\n",
     "port[0].mac", 14, "multicast MAC"),
    (BASE + "[[port]]\nname = \"p\"\nnamespace = \"web\"\ncolour = \"red\"\n", "port[0].colour",
     14, "unknown key"),
    (BASE + "[[port]]\nname = \"p\"\nnamespace = \"web\"\noffloads = [\"csum\", \"gro\"]\n",
     "port[0].offloads", 14, "unknown offload 'gro'"),
    (BASE + "[[port]]\nname = \"p\"\nnamespace = \"web\"\ntxqueuelen = true\n",
     "port[0].txqueuelen", 14, "must be an integer"),
    (BASE + "[[port]]\nname = \"p\"\nnamespace = \"web\"\ntxqueuelen = -1\n",
     "port[0].txqueuelen", 14, "must be an integer"),
    (BASE + "[[port]]\nname = \"p\"\nnamespace = \"web\"\nkind = \"veth\"\nring_frames = 1000\n",
     "port[0].ring_frames", 15, "power of two in 64 .. 16384"),
    (BASE + "[[port]]\nname = \"p\"\nnamespace = \"web\"\nkind = \"veth\"\nring_frames = 65536\n",
     "port[0].ring_frames", 15, "64"),
    (BASE + "[[port]]\nname = \"p\"\nnamespace = \"web\"\nring_frames = 4096\n",
     "port[0].kind", 11, "for the ring kinds"),        # kind left out: the table's line
    (BASE + "[[port]]\nname = \"p\"\nnamespace = \"web\"\nvnet_hdr = 1\n",
     "port[0].vnet_hdr", 14, "true or false"),
    (BASE + "[[port]]\nname = \"p\"\nnamespace = \"web\"\nkind = \"vxlan\"\n",
     "port[0].kind", 14, "must be one of tap, veth, xdp, attach, auto"),
    (BASE + "[[port]]\nname = \"p\"\nnamespace = \"web\"\nkind = \"attach\"\nnetns = \"t\"\n",
     "port[0].kind", 14, "not for kind attach"),
    (BASE + "[[port]]\nname = \"p\"\nnamespace = \"web\"\nkind = \"veth\"\nvnet_hdr = true\n",
     "port[0].kind", 14, "a TAP's"),
    (BASE + "[[port]]\nname = \"p\"\nnamespace = \"web\"\ngateway = \"10.1.0.1\"\n",
     "port[0].gateway", 14, "only meaningful with netns"),
    (BASE + "[[port]]\nname = \"p\"\nnamespace = \"web\"\nnetns = \"t-web\"\n"
     "address = \"10.1.0.10/24\"\ngateway = \"10.2.0.1\"\n", "port[0].gateway", 16,
     "inside 10.1.0.0/24"),
    (BASE + "[[port]]\nname = \"p\"\nnamespace = \"web\"\nnetns = \"t-web\"\ngateway = \"10.1.0.1\"\n",
     "port[0].gateway", 15, "needs option 'address'"),
    (BASE + "[[port]]\nname = \"p\"\nnamespace = \"web\"\nnetns = \"bad/name\"\n",
     "port[0].netns", 14, "kernel network namespace"),
    (BASE + "[[port]]\nname = \"p\"\nnamespace = \"web\"\n[[port]]\nname = \"p\"\n"
     "namespace = \"tenants\"\n", "port[1].name", 15, "already defined at line 11"),
    (BASE + "[[port]]\nname = \"p\"\nnamespace = \"web\"\n[[port]]\nname = \"q\"\n"
     "namespace = \"web\"\n", "port[1].namespace", 16, "at most one"),
    (BASE + "[[port]]\nname = \"p\"\nnamespace = \"tenants\"\nnetns = \"n1\"\n[[port]]\n"
     "name = \"q\"\nnamespace = \"web\"\nnetns = \"n1\"\n", "port[1].netns", 18, "already used"),
    ("port = [{name = \"p\", namespace = \"zzz\"}]\n" + BASE, "port[0].namespace", 1,
     "unknown namespace"),
    # routes
    (BASE + "[[route]]\nnamespace = \"nope\"\nprefix = \"default\"\nvia = \"10.1.0.254\"\n",
     "route[0].namespace", 12, "unknown namespace"),
    (BASE + "[[route]]\nnamespace = \"web\"\nprefix = \"default\"\nvia = \"10.1.0.254\"\n",
     "route[0].namespace", 12, "routes belong to its parent L2 'tenants'"),
    (BASE + "[[route]]\nnamespace = \"tenants\"\nprefix = \"10.2.0.1/16\"\nvia = \"10.1.0.254\"\n",
     "route[0].prefix", 13, "did you mean 10.2.0.0/16"),
    (BASE + "[[route]]\nnamespace = \"tenants\"\nprefix = \"default\"\nvia = \"10.1.0.999\"\n",
     "route[0].via", 14, "10.1.0.999"),
    (BASE + "[[route]]\nnamespace = \"tenants\"\nprefix = \"default\"\n", "route[0]", 11,
     "needs 'via'"),
    (BASE + "[[route]]\nnamespace = \"tenants\"\nprefix = \"default\"\nport = \"up\"\n",
     "route[0].port", 14, "unknown port 'up'"),
    (BASE + "[[port]]\nname = \"p\"\nnamespace = \"web\"\n[[route]]\nnamespace = \"tenants\"\n"
     "prefix = \"default\"\nport = \"p\"\n", "route[0].port", 17, "not to 'tenants'"),
    (BASE + "[[route]]\nnamespace = \"tenants\"\nprefix = \"default\"\nvia = \"10.1.0.2\"\n"
     "[[route]]\nnamespace = \"tenants\"\nprefix = \"0.0.0.0/0\"\nvia = \"10.1.0.3\"\n",
     "route[1].prefix", 17, "already defined at line 11"),
    # daemon and root
    ("[daemon]\nsockett = \"/x\"\n", "daemon.sockett", 2, "unknown key"),
    ("[daemon]\nsocket = 5\n", "daemon.socket", 2, "expected a string"),
    ("[daemon]\nsocket = \"/" + "x" * 120 + "\"\n", "daemon.socket", 2, "107 bytes"),
    ("[daemon]\nsocket_mode = 0o666\n", "daemon.socket_mode", 2, "every user"),
    ("[daemon]\nbatch_size = 0\n", "daemon.batch_size", 2, "out of range"),
    ("[daemon]\nbatch_size = 1.5\n", "daemon.batch_size", 2, "expected an integer, got a float"),
    ("[daemon.slowpath]\nicmp_errors_per_second = -5\n", "daemon.slowpath.icmp_errors_per_second",
     2, "out of range"),
    ("[daemon]\n[daemon.slowpath]\narp = 1\n", "daemon.slowpath.arp", 3, "unknown key"),
    ("[daemon.slowpath]\nneighbours_per_scope = 0\n", "daemon.slowpath.neighbours_per_scope",
     2, "out of range"),
    ("[daemon.slowpath]\nneighbour_reachable_time = 0\n",
     "daemon.slowpath.neighbour_reachable_time", 2, "out of range"),
    ("[daemon]\nslowpath = { arp = 1 }\n", "daemon.slowpath.arp", 2, "unknown key"),
    ("[daemon.slowpath]\nframes_per_second = 100\n", "daemon.slowpath.frames_per_second", 2,
     "each namespace has its share"),
    ("[daemon.slowpath.shares]\nping = [1, 1]\n", "daemon.slowpath.shares.ping", 2, "unknown key"),
    ("[daemon.slowpath.shares]\narp = 5\n", "daemon.slowpath.shares.arp", 2, "[rate, burst]"),
    ("[daemon.slowpath.shares]\narp = [5, -1]\n", "daemon.slowpath.shares.arp", 2, "0..1000000"),
    ("[daemon.slowpath.shares]\nicmp = [5, 0]\n", "daemon.slowpath.shares.icmp", 2,
     "burst of at least 1"),
    ("[daemon.control]\nrequest_depth = 1000\n", "daemon.control.request_depth", 2, "out of range"),
    ("[daemon.control]\nconnections = 0\n", "daemon.control.connections", 2, "out of range"),
    ("[daemon.control]\nbacklog = 5\n", "daemon.control.backlog", 2, "unknown key"),
    ("[root]\naddresses = [\"127.0.0.2/8\"]\n", "root.addresses[0]", 2, "loopback"),
    ("[root]\nname = \"x\"\n", "root.name", 2, "unknown key"),
]


@pytest.mark.parametrize("text, key, line, fragment", CASES,
                         ids=[f"{i}-{c[1] or 'syntax'}" for i, c in enumerate(CASES)])
def test_refusal_names_key_and_line(text, key, line, fragment):
    error = refused(text, source="topo.toml")
    assert isinstance(error, errors.InvalidArgument) and error.code == "EINVAL"
    assert (error.key, error.line) == (key, line)
    assert fragment in error.message
    prefix = f"topo.toml:{line}: {key}: " if key else f"topo.toml:{line}: "
    assert error.message.startswith(prefix)


def test_unreadable_file(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "missing.toml")
    assert str(tmp_path / "missing.toml") in info.value.message
    assert "cannot read" in info.value.message


def test_error_names_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(BASE + "[[port]]\nname = \"p\"\nnamespace = \"nope\"\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.message.startswith(f"{path}:13: port[0].namespace: ")


# -- applying is all or nothing ------------------------------------------------------

def test_apply_refusal_names_the_entry_and_leaves_nothing():
    text = BASE + "[[namespace]]\nname = \"db\"\nkind = \"l3\"\nparent = \"tenants\"\n" \
                  "addresses = [\"10.1.0.20/24\", \"10.1.0.10/24\"]\n"
    config = load_config(text, source="t.toml")      # each entry is fine on its own
    switch = Switch()
    before = switch.snapshot()
    with pytest.raises(ConfigError) as info:
        apply(config, switch)
    error = info.value
    assert error.code == "EADDRINUSE"
    assert (error.key, error.line) == ("namespace[2].addresses[1]", 15)
    assert error.message.startswith("t.toml:15: namespace[2].addresses[1]: 10.1.0.10 is held by 'web'")
    assert switch.snapshot() == before


def test_apply_onto_a_running_switch_rolls_back():
    switch = Switch()
    switch.create("other", "l2")
    switch.create("web", "l3", parent="other")
    events = events_of(switch)
    before = switch.snapshot()
    with pytest.raises(ConfigError) as info:
        apply(load_config(BASE, source="t.toml"), switch)
    assert info.value.code == "EEXIST"
    assert (info.value.key, info.value.line) == ("namespace[1].name", 7)
    assert switch.snapshot() == before
    assert events == []                 # nothing half-applied was announced


def test_apply_ports_and_routes_in_order():
    config = load_config(BASE + textwrap.dedent("""\
        [[route]]
        namespace = "tenants"
        prefix = "10.9.0.0/16"
        port = "up"
        [[port]]
        name = "up"
        namespace = "tenants"
        mac = "02:00:00:00:00:99"
        """))
    switch = Switch()
    apply(config, switch)
    assert switch.port("up").mac == "02:00:00:00:00:99"
    assert [(r.dst, r.connected) for r in switch.routes("web")] == [
        ("10.1.0.0/24", True), ("10.9.0.0/16", False)]         # tenants' own subnet: connected


def test_apply_as_an_l2_context_stays_in_its_subtree():
    switch = Switch()
    switch.create("tenants", "l2")
    config = load_config('[[namespace]]\nname = "web"\nkind = "l3"\nparent = "init"\n',
                         source="t.toml")
    with pytest.raises(ConfigError) as info:
        apply(config, switch.as_namespace("tenants"))
    assert (info.value.code, info.value.key, info.value.line) == ("ENOENT", "namespace[0].name", 2)
    assert [n.name for n in switch.namespaces()] == ["init", "tenants"]

