"""Port kinds end to end (issue 17): tenants of every kind in one switch; an ``attach``
port on a TAP another process holds (a stand-in for a VM's emulator, whose guest takes
its address by DHCP); refusals with clear errors that change nothing; nothing left
behind -- sockets, ring mappings, XDP programs, veths -- once the switch is gone.
"""
import json
import os
import random
import shutil
import subprocess
import sys

import pytest

from pyctl import errors, kernel
from pyctl.daemon import port_kinds
from pyctl.rig import probes
from tests.e2e.test_dhcp import SCRIPT, kernel_view, udhcpc  # noqa: F401 (a fixture)

KINDS = ("tap", "veth", "xdp", "auto")


def usable(kind):
    return kind == "auto" or port_kinds.unavailable(kind) is None


def process_resources():
    """What this process holds that a port could leak: its fds by kind of file, and
    the mappings of sockets (AF_PACKET rings, AF_XDP rings)."""
    kinds = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        key = target.split(":")[0] if ":" in target else "file"
        if key == "anon_inode":
            key = target
        kinds[key] = kinds.get(key, 0) + 1
    with open("/proc/self/maps") as f:
        mapped = sum(1 for line in f if "socket:" in line or "xdp" in line)
    return kinds, mapped


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_tenants_of_every_kind_talk_in_one_switch(tapswitch_factory, mode):
    kinds = [k for k in KINDS if usable(k)]
    net = random.randint(16, 250)
    topo = tapswitch_factory(mode, vnet_hdr=True)
    topo.address_add("init", f"10.{net}.0.1/24")
    topo.address_add("init", f"10.{net}.1.1/24")
    tenants = [topo.tenant(k, f"10.{net}.{i % 2}.{10 + i}/24", kind=k) for i, k in enumerate(kinds)]
    topo.start()
    for src in tenants:
        for dst in tenants:
            if src is not dst:
                assert len(probes.ping(src, dst.ip, count=1)) == 1, (src.kind, dst.kind)
    by_name = {t.name: t for t in tenants}
    for src, dst in (("veth", "xdp"), ("xdp", "tap"), ("tap", "veth")):
        if src in by_name and dst in by_name:
            a, b = by_name[src], by_name[dst]
            sent, received, nbytes, _ = probes.tcp_transfer(a, b, b.ip, 8 << 20)
            assert nbytes == 8 << 20 and received == sent, (src, dst)
    served = {p["name"]: p.get("kind") for p in topo.ports()} if mode == "process" else \
        {p["name"]: topo.daemon.ports.status(p["id"])["kind"] for p in topo.ports()}
    assert served[by_name["auto"].port] == port_kinds.resolve("auto")
    assert {served[t.port] for t in tenants if t.kind != "auto"} == set(kinds) - {"auto"}
    rings = topo.stats()["rings"]           # each ring port's own kernel counters
    assert set(rings) == {t.port for t in tenants if served[t.port] != "tap"}
    assert {n for n, r in rings.items() if "packets" in r} == \
        {t.port for t in tenants if served[t.port] == "veth"}
    assert all(r["packets"] > 0 for r in rings.values() if "packets" in r)


def test_an_attach_port_serves_a_tap_an_emulator_holds(tapswitch_factory, udhcpc, make_netns):
    net = random.randint(16, 250)
    host_tap, guest_tap = kernel.unique_name("tvm"), kernel.unique_name("tgu")
    emulator = subprocess.Popen([sys.executable, "-m", "tests.support.emulator", host_tap,
                                 guest_tap], stdout=subprocess.PIPE, text=True)
    key = kernel.registry.register(f"emulator {emulator.pid}",
                                   lambda: kernel.stop_process(emulator))
    try:
        assert emulator.stdout.readline().strip() == "ready"
        guest = make_netns(prefix="tsguest")
        kernel.move_link(guest_tap, guest)
        guest.link_up(guest_tap)
        kernel.host.link_up(host_tap)           # the operator's part, as libvirt's
        before = kernel.host.link_info(host_tap)
        topo = tapswitch_factory()
        topo.address_add("init", f"10.{net}.0.1/24")
        b = topo.tenant("b", f"10.{net}.0.3/24", kind="veth" if usable("veth") else "tap")
        topo.attach("vm", host_tap, f"10.{net}.0.5/24", ring_frames=256)
        topo.start()
        assert topo.stats()["rings"][host_tap]["rx_slots"] == 256   # port option ring_frames
        argv, log = udhcpc
        done = guest.run(argv + ["-q", "-n", "-t", "5", "-T", "1", "-i", guest_tap], check=False)
        assert done.returncode == 0, done.stderr
        assert guest.addresses(guest_tap) == [f"10.{net}.0.5/24"]
        out = guest.run(["ping", "-c", "2", "-i", "0.2", "-W", "2", b.ip], check=False)
        assert out.returncode == 0, out.stdout
        assert len(probes.ping(b, f"10.{net}.0.5", count=2)) == 2
        topo.close()
        after = kernel.host.link_info(host_tap)     # neither moved nor reconfigured
        assert (after["index"], after["mtu"], after["up"], after["address"]) == \
            (before["index"], before["mtu"], before["up"], before["address"])
        assert kernel.host.addresses(host_tap) == []
        assert emulator.poll() is None
    finally:
        kernel.stop_process(emulator)
        kernel.registry.forget(key)


def test_refused_ports_change_nothing(tapswitch_factory):
    net = random.randint(16, 250)
    topo = tapswitch_factory()
    topo.address_add("init", f"10.{net}.0.1/24")
    a = topo.tenant("a", f"10.{net}.0.2/24")
    topo.start()
    before = topo.ports()
    with pytest.raises(errors.NotFound, match="no interface"):
        topo.port_add(kernel.unique_name("tnx"), "init", options={"kind": "attach"})
    with pytest.raises(errors.InvalidArgument, match="not for kind attach"):
        topo.port_add("tnx0", "init", options={"kind": "attach", "netns": "x"})
    with pytest.raises(errors.InvalidArgument, match="a TAP's"):
        topo.port_add("tnx1", "init", options={"kind": "veth", "vnet_hdr": True})
    if usable("xdp"):
        with pytest.raises(errors.InvalidArgument, match="MTU is at most"):
            topo.port_add("tnx2", "init", options={"kind": "xdp", "mtu": 9000})
    assert topo.ports() == before
    assert len(probes.ping(a, f"10.{net}.0.1", count=1)) == 1


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_a_ring_port_holds_the_frames_its_option_asks_within_the_bound(tapswitch_factory, mode):
    """``ring_frames``: the receive ring holds that many frames (``ctl stats`` rings:
    ``rx_slots``; 1024 without it); one that would take more than RING_MAX_BYTES of kernel
    memory at its MTU is refused, naming a size that fits, and changes nothing."""
    kinds = [k for k in ("veth", "xdp") if usable(k)]
    if not kinds:
        pytest.skip("neither veth nor xdp ports can run here")
    net = random.randint(16, 250)
    topo = tapswitch_factory(mode)
    topo.address_add("init", f"10.{net}.0.1/24")
    asked = [topo.tenant(k, f"10.{net}.0.{10 + i}/24", kind=k, ring_frames=4096)
             for i, k in enumerate(kinds)]
    plain = topo.tenant("plain", f"10.{net}.0.30/24", kind=kinds[0])
    topo.start()
    rings = topo.stats()["rings"]
    assert {t.port: rings[t.port]["rx_slots"] for t in asked + [plain]} == \
        {**{t.port: 4096 for t in asked}, plain.port: 1024}
    for t in asked:
        assert len(probes.ping(t, plain.ip, count=1)) == 1, t.kind
    before, links = topo.ports(), set(kernel.host.links())
    too_many = r"above the 128 MiB .*\(ring_frames 1024 fits\)"      # 68 KiB slots
    if usable("veth"):
        with pytest.raises(errors.InvalidArgument, match=too_many):
            topo.port_add(kernel.unique_name("tnr"), "init",
                          options={"kind": "veth", "mtu": 65535, "ring_frames": 16384})
        assert topo.ports() == before and set(kernel.host.links()) == links
    ends = kernel.unique_name("tnr"), kernel.unique_name("tnr")   # an attached interface's
    kernel.create_veth(*ends)                                     # slots follow its own MTU
    try:
        kernel.host.set_mtu(ends[0], 65535)
        with pytest.raises(errors.InvalidArgument, match=too_many):
            topo.port_add(ends[0], "init", options={"kind": "attach", "ring_frames": 16384})
        assert topo.ports() == before
        topo.port_add(ends[0], "init", options={"kind": "attach", "ring_frames": 1024})
        assert topo.stats()["rings"][ends[0]]["rx_slots"] == 1024
        topo.port_del(ends[0])
    finally:
        kernel.host.delete_link(ends[0])
    assert topo.ports() == before
    assert len(probes.ping(plain, f"10.{net}.0.1", count=1)) == 1


def test_nothing_is_left_behind(tapswitch_factory):
    kinds = [k for k in ("veth", "xdp") if usable(k)]
    if not kinds:
        pytest.skip("neither veth nor xdp ports can run here")
    held = process_resources()
    host_links = set(kernel.host.links())
    net = random.randint(16, 250)
    topo = tapswitch_factory()
    topo.address_add("init", f"10.{net}.0.1/24")
    tenants = [topo.tenant(k, f"10.{net}.0.{10 + i}/24", kind=k) for i, k in enumerate(kinds)]
    topo.start()
    assert process_resources() != held
    assert len(probes.ping(tenants[0], f"10.{net}.0.1", count=1)) == 1
    topo.close()
    assert process_resources() == held
    assert set(kernel.host.links()) == host_links


def test_xdp_that_cannot_run_is_refused_with_the_reason(tapswitch_factory, monkeypatch):
    """A port-add of kind xdp where AF_XDP cannot run is refused with the probe's reason
    and changes nothing; auto still picks a kind that runs (the probe itself, without
    CAP_BPF: the next test)."""
    why = "creating a BPF map: Operation not permitted (AF_XDP ports need CAP_BPF and CAP_NET_ADMIN)"
    real = port_kinds.unavailable
    monkeypatch.setattr(port_kinds, "unavailable", lambda k: why if k == "xdp" else real(k))
    net = random.randint(16, 250)
    topo = tapswitch_factory()
    topo.address_add("init", f"10.{net}.0.1/24")
    a = topo.tenant("a", f"10.{net}.0.2/24", kind="auto")
    topo.start()
    before = topo.ports()
    with pytest.raises(errors.NotSupported, match=r"port kind xdp cannot run here: creating a "
                                                  r"BPF map: .*CAP_BPF"):
        topo.port_add(kernel.unique_name("tnx"), "init", options={"kind": "xdp"})
    assert topo.ports() == before
    assert len(probes.ping(a, f"10.{net}.0.1", count=1)) == 1


PROBE = """
import json
from pyctl import errors
from pyctl.daemon import port_kinds
out = {k: port_kinds.unavailable(k) for k in port_kinds.KINDS}
try:
    port_kinds.resolve("xdp")
except errors.NotSupported as exc:
    out["refused"] = str(exc)
out["auto"] = port_kinds.resolve("auto")
print(json.dumps(out))
"""


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="no setpriv (util-linux)")
def test_without_cap_bpf_the_probe_names_what_is_missing():
    done = subprocess.run(["setpriv", "--bounding-set=-bpf,-sys_admin", "--inh-caps=-all",
                           sys.executable, "-c", PROBE], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert "CAP_BPF" in out["xdp"] and "Operation not permitted" in out["xdp"]
    assert out["refused"] == f"port kind xdp cannot run here: {out['xdp']}"
    assert out["veth"] is None and out["attach"] is None
    assert out["auto"] == "veth"
