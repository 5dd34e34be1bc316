"""Process-mode topologies hand their model to the child daemon as a TOML file:
the file must rebuild exactly the same model (pyctl.rig.topology_child.config_toml)."""
import pytest

from pyctl import config, errors
from pyctl.model.switch import Switch
from pyctl.rig.topology import Topology
from pyctl.rig.topology_child import config_toml


def _comparable(switch):
    """A snapshot by names: ids and versions depend on history, not on the state."""
    snap = switch.snapshot()
    names = {ns["id"]: ns["name"] for ns in snap["namespaces"]}
    namespaces = {ns["name"]: {"kind": ns["kind"], "parent": names.get(ns["parent"]),
                               "addresses": sorted(ns["addresses"]), "routes": ns["routes"],
                               "ports": sorted(ns["ports"]), "groups": sorted(ns["groups"]),
                               "options": ns["options"], "quota": ns.get("quota")}
                  for ns in snap["namespaces"]}
    ports = {p["name"]: {"ns": names[p["ns"]], "mac": p["mac"], "options": p["options"]}
             for p in snap["ports"]}
    return namespaces, ports


def _rebuilt(switch):
    text, joins = config_toml(switch, socket="/tmp/x/control.sock", batch_size=32)
    cfg = config.load_config(text, source="<topology>")
    assert cfg.daemon.socket == "/tmp/x/control.sock" and cfg.daemon.batch_size == 32
    copy = config.check(cfg)
    for ns, group in joins:
        copy.join(group, ns)
    return copy


def test_a_rich_model_survives_the_round_trip():
    sw = Switch()
    sw.address_add("init", "10.0.0.1/24")
    sw.address_add("init", "10.0.0.9/24")
    sw.create("red", kind="l2", parent="init")
    sw.quota_set("red", {"routes": 3, "namespaces": 5})
    sw.address_add("red", "10.1.0.1/24")
    sw.port_add("up", "red", options={"txqueuelen": 5000})
    sw.route_add("red", "default", via="10.1.0.254", port="up")
    sw.route_add("red", "192.168.0.0/16", via="10.1.0.253")
    sw.create("web", kind="l3", parent="init")
    sw.assign_and_push("10.0.0.2/24", "web")
    sw.push("10.0.0.9/24", "web")
    sw.port_add("tweb", "web", mac="02:00:00:00:00:02",
                options={"netns": "ns-web", "address": "10.0.0.2/24", "gateway": "10.0.0.1",
                         "vnet_hdr": True, "offloads": ["csum", "tso4"], "mtu": 9000})
    sw.create("r1", kind="l3", parent="red")
    sw.assign_and_push("10.1.0.2/24", "r1")
    sw.join("239.1.2.3", "r1")
    sw.create("gone", kind="l3", parent="init")     # ids no longer dense
    sw.destroy("gone")
    assert _comparable(_rebuilt(sw)) == _comparable(sw)


def test_a_dual_stack_model_survives_the_round_trip():
    sw = Switch()
    sw.address_add("init", "10.0.0.1/24")
    sw.address_add("init", "fd00::1/64")
    sw.namespace_set("init", {"advertise": True})
    sw.create("lab", kind="l2")
    sw.namespace_set("lab", {"advertise": False})
    sw.port_add("up", "init", options={"router": True})
    sw.route_add("init", "default", via="fd00::fe", port="up")    # ::/0
    sw.route_add("init", "default", via="10.0.0.254")             # 0.0.0.0/0
    sw.route_add("init", "fd00:9::/48", port="up")
    sw.create("web", kind="l3", parent="init")
    sw.assign_and_push("10.0.0.2/24", "web")
    sw.assign_and_push("fd00::2/64", "web")
    sw.port_add("tweb", "web", options={"netns": "ns-web", "address": ["10.0.0.2/24", "fd00::2/64"],
                                        "gateway": ["10.0.0.1", "fd00::1"]})
    sw.join("ff05::1:3", "web")
    sw.join("239.1.2.3", "web")
    rebuilt = _rebuilt(sw)
    assert _comparable(rebuilt) == _comparable(sw)
    assert [r.dst for r in rebuilt.routes("init") if not r.connected] == [
        "0.0.0.0/0", "::/0", "fd00:9::/48"]


def test_an_empty_model_gives_an_empty_daemon():
    sw = Switch()
    assert _comparable(_rebuilt(sw)) == _comparable(sw)


def test_a_topology_draft_exports_its_tenants():
    topo = Topology("process")
    topo.address_add("init", "10.0.0.1/24")
    a = topo.tenant("a", "10.0.0.2/24")
    topo.l2("blue", "10.0.0.1/24")
    topo.tenant("b", "10.0.0.2/24", parent="blue")
    rebuilt = _rebuilt(topo.switch)
    assert _comparable(rebuilt) == _comparable(topo.switch)
    port = rebuilt.port(a.port)
    assert port.options["netns"] == a.netns_name and port.options["gateway"] == "10.0.0.1"
    topo.close()


def test_a_dual_stack_tenant_draft():
    topo = Topology("process")
    topo.address_add("init", "10.0.0.1/24")
    topo.address_add("init", "fd00::1/64")
    a = topo.tenant("a", "10.0.0.2/24", "fd00::2/64")
    b = topo.tenant("b", ["fd00::3/64", "10.0.0.3/24"])
    c = topo.tenant("c", "fd00::4/64")
    d = topo.tenant("d", "fd00:9::4/64")                # no own address there: no gateway
    e = topo.tenant("e", "10.0.0.5/24", "fd00::5/64", gateway="fd00::1")
    options = {t.name: topo.switch.port(t.port).options for t in (a, b, c, d, e)}
    assert options["a"]["address"] == ["10.0.0.2/24", "fd00::2/64"]
    assert options["a"]["gateway"] == ["10.0.0.1", "fd00::1"]
    assert options["b"]["address"] == ["fd00::3/64", "10.0.0.3/24"]
    assert options["b"]["gateway"] == ["10.0.0.1", "fd00::1"]
    assert (options["c"]["address"], options["c"]["gateway"]) == ("fd00::4/64", "fd00::1")
    assert "gateway" not in options["d"]
    assert options["e"]["gateway"] == "fd00::1"
    assert (a.ip, a.ip4, a.ip6, a.ips) == ("10.0.0.2", "10.0.0.2", "fd00::2", ["10.0.0.2", "fd00::2"])
    assert (b.ip, b.ip4, b.ip6, c.ip4) == ("fd00::3", "10.0.0.3", "fd00::3", None)
    assert b.addresses == ("fd00::3/64", "10.0.0.3/24")
    assert topo.switch.addresses("b")[2:] == ["10.0.0.3/24", "fd00::3/64"]
    assert _comparable(_rebuilt(topo.switch)) == _comparable(topo.switch)
    with pytest.raises(errors.InvalidArgument, match="at least one address"):
        topo.tenant("f", [])
    before = _comparable(topo.switch)
    with pytest.raises(errors.AddressInUse):             # its second address is a's
        topo.tenant("g", "10.0.0.7/24", "fd00::2/64")
    assert _comparable(topo.switch) == before and "g" not in topo.tenants
    topo.close()


def test_refused_draft_steps_change_nothing():
    topo = Topology()
    topo.address_add("init", "10.0.0.1/24")
    topo.tenant("a", "10.0.0.2/24")
    before = _comparable(topo.switch)
    with pytest.raises(errors.AddressInUse):
        topo.tenant("b", "10.0.0.2/24")
    with pytest.raises(errors.InvalidArgument):
        topo.l2("red", "10.5.0.1/24", "not an address")
    assert _comparable(topo.switch) == before and list(topo.tenants) == ["a"]


def test_bad_arguments_are_refused_up_front():
    with pytest.raises(errors.InvalidArgument, match="mode"):
        Topology("fork")
    with pytest.raises(errors.InvalidArgument, match="control"):
        Topology("process", control=False)
    with pytest.raises(errors.InvalidArgument, match="prefix"):
        Topology(prefix="a/b")


def test_a_closed_topology_refuses_work_and_closes_again():
    topo = Topology()
    topo.close()
    topo.close()
    with pytest.raises(errors.InvalidArgument, match="closed"):
        topo.address_add("init", "10.0.0.1/24")
    with pytest.raises(errors.InvalidArgument, match="closed"):
        topo.start()


def test_two_topologies_choose_different_kernel_names():
    one, two = Topology(), Topology()
    a1, a2 = one.tenant("a", "10.0.0.2/24"), two.tenant("a", "10.0.0.2/24")
    assert one.id != two.id
    assert a1.netns_name != a2.netns_name and a1.port != a2.port
    assert len(a1.port) <= 15 and len(a2.port) <= 15


def test_plugin_fixtures_skip_with_the_reason_without_root(tmp_path):
    """The entry-point plugin is loaded by a plain pytest run; without root its
    fixtures skip, saying why (geteuid is faked so this holds when run as root)."""
    import subprocess
    import sys
    (tmp_path / "conftest.py").write_text("import os\nos.geteuid = lambda: 1000\n")
    (tmp_path / "test_x.py").write_text(
        "def test_default(tapswitch_topology):\n    raise AssertionError('ran')\n\n"
        "def test_factory(tapswitch_factory):\n    raise AssertionError('ran')\n")
    run = subprocess.run([sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider",
                          "--rootdir", str(tmp_path), "test_x.py"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 skipped" in run.stdout
    assert "tapswitch topologies need root" in run.stdout
