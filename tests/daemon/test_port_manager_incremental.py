"""PortManager.reconcile() costs what changed (issue 14 item 13): after the first call it
looks only at the ports a change named and at the ports of tenants whose addresses
moved; an undone change is looked at again.  No root: the TAPs are fakes."""
import itertools

import pytest

from pyctl import Switch, errors
from pyctl.daemon import port_manager as pm, tap_port
from pyctl.kernel import CleanupRegistry


class FakeTap:
    fds = itertools.count(100)
    kind = "tap"

    def __init__(self, name, **_):
        self.name, self.fd, self.vnet_hdr, self.offloads = name, next(self.fds), False, ()
        self.closed = False

    @property
    def loop_io(self):
        return self.fd

    def close(self):
        self.closed = True


class FakeNetns:
    name = "tenant-ns"


class FakeLoop:
    def __init__(self):
        self.ports = {}

    def add_port(self, pid, fd, vnet_hdr=False):
        self.ports[pid] = fd

    def remove_port(self, pid):
        del self.ports[pid]


@pytest.fixture
def rig(monkeypatch):
    opened, mirrored = [], []
    monkeypatch.setattr(tap_port.TapPort, "open",
                        staticmethod(lambda name, **kw: opened.append(name) or FakeTap(name)))
    monkeypatch.setattr(pm.PortManager, "_mirror_addresses",
                        lambda self, entry, port: mirrored.append(port.name))
    monkeypatch.setattr(pm.PortManager, "_release_netns", lambda self, name: None)
    sw = Switch()
    sw.address_add("init", "10.0.0.1/24")
    for name in ("a", "b", "c"):
        sw.create(name, "l3")
        sw.port_add(f"tap-{name}", name)
    loop = FakeLoop()
    ports = pm.PortManager(sw, loop, CleanupRegistry())
    ports.reconcile()
    for entry in ports.open.values():          # as if each TAP were in a kernel namespace
        entry.netns = FakeNetns()
    yield sw, ports, loop, opened, mirrored
    ports.open.clear()


def test_first_reconcile_looks_at_everything(rig):
    sw, ports, loop, opened, _ = rig
    assert sorted(opened) == ["tap-a", "tap-b", "tap-c"] and len(loop.ports) == 3


def test_a_port_change_touches_that_port_only(rig):
    sw, ports, loop, opened, mirrored = rig
    opened.clear()
    sw.create("d", "l3")
    sw.port_add("tap-d", "d")
    ports.reconcile()
    assert opened == ["tap-d"] and mirrored == []          # (d's TAP is in no namespace)
    sw.port_del("tap-b")
    ports.reconcile()
    assert opened == ["tap-d"] and len(loop.ports) == 3
    assert "tap-b" not in {e.name for e in ports.open.values()}


def test_an_address_change_mirrors_that_tenants_port_only(rig):
    sw, ports, _, opened, mirrored = rig
    opened.clear()
    sw.assign_and_push("10.0.0.5/24", "a")
    sw.route_add("init", "10.9.0.0/16", via="10.0.0.5")      # (no port work)
    ports.reconcile()
    assert mirrored == ["tap-a"] and opened == []
    ports.reconcile()
    assert mirrored == ["tap-a"]                           # nothing left to do


def test_an_undone_change_is_looked_at_again(rig):
    sw, ports, loop, opened, _ = rig
    opened.clear()
    with pytest.raises(RuntimeError):
        with sw.transaction():
            sw.destroy("c")
            ports.reconcile()                  # the daemon applies inside the transaction
            assert len(loop.ports) == 2
            raise RuntimeError("refused later")
    ports.reconcile()
    assert opened == ["tap-c"] and len(loop.ports) == 3


def test_a_failed_open_is_tried_again(rig, monkeypatch):
    sw, ports, loop, opened, _ = rig

    def refuse(name, **kw):
        raise errors.Busy("no TAPs today")
    monkeypatch.setattr(tap_port.TapPort, "open", staticmethod(refuse))
    sw.create("d", "l3")
    sw.port_add("tap-d", "d")
    with pytest.raises(errors.Busy):
        ports.reconcile()
    monkeypatch.setattr(tap_port.TapPort, "open",
                        staticmethod(lambda name, **kw: opened.append(name) or FakeTap(name)))
    opened.clear()
    ports.reconcile()
    assert opened == ["tap-d"]
