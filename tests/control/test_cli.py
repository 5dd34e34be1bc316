"""`tapswitch` through main([...]): ctl verbs against a served switch, check, run/demo wiring,
exit codes."""
import importlib
import json
import sys
import types

import pytest

from pyctl.cli import main
from pyctl.model.switch import Switch
from tests.support.control import Served, tenants

from tests.support import EXAMPLES


@pytest.fixture
def ctl(served, capsys):
    def run(*args):
        code = main(["ctl", "--socket", served.path, *args])
        out, err = capsys.readouterr()
        return code, out, err
    return run


def test_namespaces_table_is_a_tree(ctl):
    code, out, err = ctl("namespaces")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "ID  NAME       KIND  PARENT",
        "0   init       l2    -",
        "1     tenants  l2    init",
        "2       web    l3    tenants",
        "3       db     l3    tenants",
        "4     other    l2    init",
    ]


def test_json_output_is_the_raw_result(ctl, served):
    code, out, _ = ctl("--json", "namespaces")
    assert code == 0
    assert [n["name"] for n in json.loads(out)] == ["init", "tenants", "web", "db", "other"]


def test_json_flag_after_the_verb(ctl):
    code, out, _ = ctl("namespaces", "--json")
    assert code == 0
    assert [n["name"] for n in json.loads(out)][:2] == ["init", "tenants"]
    code, out, _ = ctl("addresses", "web", "-j")
    assert code == 0 and "10.1.0.10/24" in json.loads(out)
    code, out, _ = ctl("addresses", "web")                 # without it: a table, not JSON
    assert code == 0 and not out.lstrip().startswith("[")


def test_show(ctl):
    code, out, _ = ctl("show", "web")
    assert code == 0
    assert "namespace: web (id 2, l3)" in out
    assert "parent:    tenants" in out
    assert "  10.1.0.10/24" in out


def test_configuring_verbs_change_the_switch(ctl, served):
    assert ctl("create", "cache", "l3", "--parent", "tenants") == (0, "", "")
    assert ctl("assign-and-push", "10.1.0.30/24", "cache")[0] == 0
    assert "10.1.0.30/24" in served.switch.addresses("cache")
    assert ctl("pull", "10.1.0.30/24", "cache")[0] == 0
    assert ctl("push", "10.1.0.30/24", "cache")[0] == 0
    assert ctl("address-add", "tenants", "10.1.0.40/24")[0] == 0
    assert ctl("address-del", "tenants", "10.1.0.40/24")[0] == 0
    assert ctl("port-add", "tsw-c", "cache", "--mac", "02:00:00:00:00:33", "-o", "vnet_hdr=true",
               "-o", "offloads=csum,tso4", "-o", "txqueuelen=5000", "-o", "netns=ns-c")[0] == 0
    port = served.switch.port("tsw-c")
    assert port.mac == "02:00:00:00:00:33"
    assert port.options == {"vnet_hdr": True, "offloads": ["csum", "tso4"], "txqueuelen": 5000,
                            "netns": "ns-c"}
    code, out, _ = ctl("ports", "cache")
    assert "tsw-c  cache      02:00:00:00:00:33  vnet_hdr=yes offloads=csum,tso4" in out
    assert ctl("route-add", "tenants", "default", "--via", "10.1.0.254", "--port", "tsw-up")[0] == 0
    code, out, _ = ctl("routes", "cache")
    assert out.splitlines() == ["DESTINATION  VIA         PORT    KIND",
                                "0.0.0.0/0    10.1.0.254  tsw-up  static",
                                "10.1.0.0/24  -           -       connected"]
    assert ctl("route-replace", "tenants", "default", "--via", "10.1.0.253")[0] == 0
    code, out, _ = ctl("routes", "tenants")
    assert out.splitlines()[1] == "0.0.0.0/0    10.1.0.253  -     static"
    assert ctl("route-del", "tenants", "default")[0] == 0
    assert ctl("join", "239.1.1.1", "cache")[0] == 0
    assert ctl("groups", "cache")[1] == "239.1.1.1\n"
    assert ctl("members", "239.1.1.1", "tenants")[1] == "cache\n"
    assert ctl("leave", "239.1.1.1", "cache")[0] == 0
    assert ctl("port-del", "tsw-c")[0] == 0
    assert ctl("destroy", "cache")[0] == 0
    assert ctl("owner", "10.1.0.30", "tenants")[1] == "tenants\n"
    code, out, _ = ctl("addresses", "tenants", "--tagged")
    assert "10.1.0.20/24  db" in out.splitlines()
    assert ctl("destroy", "tenants", "--recursive")[0] == 0
    assert [n.name for n in served.switch.namespaces()] == ["init", "other"]


def test_refusal_exits_1_with_code_and_message(ctl, served):
    before = served.switch.snapshot()
    code, out, err = ctl("destroy", "tenants")
    assert (code, out) == (1, "")
    assert err.startswith("tapswitch: EBUSY: cannot destroy 'tenants'")
    code, _, err = ctl("push", "10.9.9.9/24", "web")
    assert code == 1 and err.startswith("tapswitch: ENOENT: ")
    assert served.switch.snapshot() == before


def test_unknown_daemon_verb_exits_1(ctl):
    code, _, err = ctl("counters")
    assert code == 1 and err.startswith("tapswitch: ENOSYS: unknown verb 'counters'")


def test_generic_call(ctl, served):
    code, out, _ = ctl("call", "owner", "address=10.1.0.10", "namespace=tenants")
    assert (code, out) == (0, "web\n")
    code, out, _ = ctl("call", "addresses", "namespace=tenants", "tagged=true")
    assert out.splitlines()[0] == "ADDRESS       OWNER"
    code, _, err = ctl("call", "ping", "oops")
    assert code == 1 and "expected KEY=VALUE" in err


def test_daemon_verb_generic_rendering(tmp_path, capsys):
    from pyctl.control.verbs import standard_dispatcher
    d = standard_dispatcher()
    d.register("stats", lambda s: {"backend": "epoll", "loop": {"batches": 5, "frames": 7},
                                   "uptime_s": 1.5, "slowpath": {"arp": {"requests": 2}}})
    with Served(tmp_path, tenants(Switch()), dispatcher=d) as s:
        assert main(["ctl", "-s", s.path, "stats"]) == 0
        assert capsys.readouterr().out.splitlines() == [
            "backend:  epoll", "uptime_s: 1.5", "loop:", "  batches: 5", "  frames:  7",
            "slowpath:", "  arp:", "    requests: 2"]


def test_whoami_version_verbs_sockets(ctl, served, capsys):
    code, out, _ = ctl("whoami")
    assert code == 0 and "namespace: init" in out and "admin:     yes" in out
    assert "protocol:" in ctl("version")[1]
    verbs = ctl("verbs")[1]
    assert "push             config  address namespace" in verbs
    code, out, _ = ctl("socket-add", "web")
    assert out.strip() == served.server.bindings()["web"]
    assert "web        " + out.strip() in ctl("sockets")[1]
    assert main(["ctl", "-s", served.server.bindings()["web"], "create", "x", "l3"]) == 1
    assert "tapswitch: EPERM: 'web' is an L3 namespace" in capsys.readouterr().err
    assert ctl("socket-del", "web")[0] == 0


def test_ctl_usage_errors_exit_2(ctl, capsys):
    assert ctl()[0] == 2
    assert ctl("create", "x")[0] == 2
    assert ctl("create", "x", "l4")[0] == 2
    assert ctl("frobnicate")[0] == 2
    assert main([]) == 2
    assert main(["run"]) == 2
    capsys.readouterr()


def test_help_exits_0(capsys):
    assert main(["--help"]) == 0
    assert "ctl" in capsys.readouterr().out
    assert main(["ctl", "push", "--help"]) == 0
    assert "address" in capsys.readouterr().out


def test_no_daemon_exits_1(tmp_path, capsys):
    code = main(["ctl", "--socket", str(tmp_path / "none.sock"), "ping"])
    assert code == 1
    assert capsys.readouterr().err.startswith("tapswitch: ECONNREFUSED: cannot connect to ")


def test_socket_from_environment(served, monkeypatch, capsys):
    monkeypatch.setenv("TAPSWITCH_SOCKET", served.path)
    assert main(["ctl", "ping"]) == 0
    assert capsys.readouterr().out == "pong\n"


def test_check(capsys, tmp_path):
    assert main(["check", str(EXAMPLES / "two-tenants.toml")]) == 0
    assert capsys.readouterr().out.endswith(
        "two-tenants.toml: ok: 3 namespaces, 3 addresses, 3 ports, 1 route\n")
    assert main(["check", "--json", str(EXAMPLES / "sibling-l2.toml")]) == 0
    snapshot = json.loads(capsys.readouterr().out)
    assert [n["name"] for n in snapshot["namespaces"]] == ["init", "blue", "blue-a", "blue-b",
                                                           "red", "red-a"]
    bad = tmp_path / "bad.toml"
    bad.write_text('[[namespace]]\nname = "a"\nkind = "l2"\nparent = "b"\n')
    assert main(["check", str(bad)]) == 1
    assert capsys.readouterr().err == (
        f"tapswitch: EINVAL: {bad}:4: namespace[0].parent: unknown namespace 'b'\n")


def _fake_module(monkeypatch, dotted, **attrs):
    """Stand-in for module ``pyctl.<dotted>`` (e.g. "daemon.daemon") while the test runs."""
    package_name, _, name = f"pyctl.{dotted}".rpartition(".")
    package = importlib.import_module(package_name)
    module = types.ModuleType(f"{package_name}.{name}")
    module.__dict__.update(attrs)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(package, name, module, raising=False)


def test_run_and_demo_are_wired(monkeypatch, capsys):
    calls = []
    _fake_module(monkeypatch, "daemon.service",
                 run_config=lambda path, socket=None, cpus=None, poll_us=None:
                 calls.append(("run", path, socket, cpus, poll_us)))
    _fake_module(monkeypatch, "rig.demo", main=lambda: calls.append(("demo",)) or 0)
    assert main(["run", "topo.toml", "--socket", "/tmp/x.sock"]) == 0
    assert main(["run", "topo.toml", "--cpus", "0-1", "--poll-us", "50"]) == 0
    assert main(["demo"]) == 0
    assert calls == [("run", "topo.toml", "/tmp/x.sock", None, None),
                     ("run", "topo.toml", None, "0-1", 50), ("demo",)]


def test_run_reports_a_bad_config(monkeypatch, capsys, tmp_path):
    from pyctl import errors

    def run_config(path, socket=None, cpus=None, poll_us=None):
        raise errors.InvalidArgument(f"{path}:3: namespace[0].kind: kind must be 'l2' or 'l3'")
    _fake_module(monkeypatch, "daemon.service", run_config=run_config)
    assert main(["run", "bad.toml"]) == 1
    assert capsys.readouterr().err.startswith("tapswitch: EINVAL: bad.toml:3: namespace[0].kind")


def test_dual_stack_verbs(ctl, served):
    assert ctl("address-add", "tenants", "fd00:1::1/64")[0] == 0
    assert ctl("create", "v6", "l3", "--parent", "tenants")[0] == 0
    assert ctl("assign-and-push", "fd00:1::30/64", "v6")[0] == 0
    assert ctl("port-add", "tsw-6", "v6", "-o", "netns=ns-6",
               "-o", "address=10.1.0.30/24,fd00:1::30/64", "-o", "gateway=fd00:1::1,10.1.0.1")[0] == 0
    assert served.switch.port("tsw-6").options == {
        "netns": "ns-6", "address": ["10.1.0.30/24", "fd00:1::30/64"],
        "gateway": ["fd00:1::1", "10.1.0.1"]}
    code, out, _ = ctl("ports", "v6")
    assert "address=10.1.0.30/24,fd00:1::30/64" in out
    assert ctl("route-add", "tenants", "default", "--via", "fd00:1::fe")[0] == 0
    assert ctl("route-add", "tenants", "fd00:9::/48", "--via", "fd00:1::fe")[0] == 0
    code, out, _ = ctl("routes", "v6")
    assert out.splitlines() == ["DESTINATION  VIA         PORT  KIND",
                                "10.1.0.0/24  -           -     connected",
                                "::/0         fd00:1::fe  -     static",
                                "fd00:1::/64  -           -     connected",
                                "fd00:9::/48  fd00:1::fe  -     static"]
    assert ctl("route-del", "tenants", "default", "--via", "fd00:1::fe")[0] == 0
    assert ctl("join", "ff05::1:3", "v6")[0] == 0
    assert ctl("groups", "v6")[1] == "ff05::1:3\n"
    assert ctl("members", "ff05::1:3", "tenants")[1] == "v6\n"
    code, _, err = ctl("join", "ff02::1", "v6")
    assert code == 1 and "ff02::/16" in err
    assert ctl("owner", "fd00:1::30", "tenants")[1] == "v6\n"


def test_a_held_port_says_so_in_the_ports_table():
    """``ctl ports``: a port held for what its frames cost (docs/security.md) says so."""
    from pyctl.control import render
    base = {"name": "t0", "namespace": "a", "mac": "02:00:00:00:00:01", "options": {},
            "state": "up", "kind": "tap", "tx_cost_us": 12.5, "tx_cost_held": False,
            "tx_cost_drops": 0}
    rows = [{**base, "id": 1},
            {**base, "id": 2, "name": "t1", "tx_cost_us": 1504.9, "tx_cost_held": True,
             "tx_cost_drops": 47239},
            {**base, "id": 3, "name": "t2", "tx_cost_us": 40.1, "tx_cost_held": True,
             "tx_cost_excess_us": 21250.0, "tx_cost_drops": 12}]
    text = render.ports(rows)
    assert "up (held: 1504.9 us a frame, 47239 dropped)" in text
    assert "up (held: 40.1 us a frame, 21.25 ms beyond the limit, 12 dropped)" in text
    assert text.count("held") == 2
