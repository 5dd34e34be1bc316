"""The daemon's neighbour state: its bounds come from [daemon.slowpath], and what the slow
path keeps of a namespace goes when the namespace is destroyed, from the datapath's copy
too, whichever way the change comes (no root needed: no ports, nothing is opened)."""
import dataclasses

import pytest

from pyctl import Switch
from pyctl.config import DaemonSettings, SlowPathLimits
from pyctl.daemon.daemon import Daemon

ROUTER = 0x0A0000FE          # 10.0.0.254
MAC = bytes.fromhex("525400000001")


@pytest.fixture
def daemon(tmp_path):
    d = Daemon(Switch(), DaemonSettings(socket=str(tmp_path / "s.sock")))
    d.start(control=False)
    yield d
    d.close(report=False)


def hold_state(daemon, scope, tenant):
    """What traffic would leave behind: a learned neighbour and a spent ICMP bucket."""
    assert daemon.slowpath.neighbours.learn(scope, ROUTER, MAC, 7, 0.0)
    daemon.slowpath.icmp.buckets.take(tenant, 0.0)
    assert daemon.datapath.neighbour(scope, ROUTER) == MAC


def held(daemon):
    sp = daemon.slowpath
    return len(sp.neighbours), len(sp.icmp.buckets), sp.pending_neighbours


def test_destroy_through_the_api(daemon):
    sw = daemon.switch
    lab = sw.create("lab", kind="l2")
    web = sw.create("web", kind="l3", parent="lab")
    hold_state(daemon, lab.id, web.id)
    sw.destroy("lab", recursive=True)
    assert held(daemon) == (0, 0, 0)


def test_destroy_and_a_new_scope_with_its_id_in_one_change(daemon):
    sw = daemon.switch
    lab = sw.create("lab", kind="l2")
    hold_state(daemon, lab.id, lab.id)
    with daemon.change() as model:
        model.destroy("lab")
        again = model.create("lab2", kind="l2")
    assert again.id == lab.id                    # the datapath keeps the namespace as it was
    assert held(daemon) == (0, 0, 0)
    assert daemon.datapath.neighbour(lab.id, ROUTER) is None


def test_a_refused_change_forgets_nothing(daemon):
    sw = daemon.switch
    lab = sw.create("lab", kind="l2")
    hold_state(daemon, lab.id, lab.id)
    with pytest.raises(RuntimeError):
        with daemon.change() as model:
            model.destroy("lab")
            raise RuntimeError("refused")
    assert held(daemon) == (1, 1, 0)
    assert daemon.datapath.neighbour(lab.id, ROUTER) == MAC


def test_namespace_churn_grows_nothing(daemon):
    sw = daemon.switch
    for cycle in range(300):
        lab = sw.create(f"lab{cycle}", kind="l2")
        web = sw.create(f"web{cycle}", kind="l3", parent=lab.name)
        hold_state(daemon, lab.id, web.id)
        sw.destroy(lab.name, recursive=True)
    assert held(daemon) == (0, 0, 0)


def test_the_bounds_come_from_the_config(tmp_path):
    limits = SlowPathLimits(neighbours=500, neighbours_per_scope=50, neighbour_reachable_time=60)
    settings = dataclasses.replace(DaemonSettings(socket=str(tmp_path / "s.sock")), slowpath=limits)
    daemon = Daemon(Switch(), settings)
    try:
        config = daemon.slowpath.config
        assert (config.max_neighbours, config.max_neighbours_per_scope, config.reachable_time) \
            == (500, 50, 60.0)
        assert daemon.stats()["slowpath_holds"]["neighbours"] == 0
    finally:
        daemon.close(report=False)


def test_a_rounds_frames_leave_before_the_fast_path_learns_a_mac(daemon, monkeypatch):
    """The slow path's round sends every output's frames (those that waited for a MAC,
    and frames of the flow handed up before the round) before it writes the peer MACs
    and settles the neighbours it learned: the fast path cannot forward a later frame of
    the flow before them."""
    from pyctl.daemon.output import NeighbourLearned, Output, PeerMac
    calls = []
    outputs = iter([Output([(7, b"x" * 60)], [NeighbourLearned(1, ROUTER, MAC, 7), PeerMac(7, MAC)]),
                    Output([(7, b"y" * 60), (7, b"z" * 60)], [])])

    class Recording:
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def set_peer_mac(self, port_id, mac):
            calls.append(("peer_mac", port_id))

    class Ports:
        open = {7}

    monkeypatch.setattr(daemon, "datapath", Recording(daemon.datapath))
    monkeypatch.setattr(daemon, "ports", Ports())
    monkeypatch.setattr(daemon, "_send", lambda frames: calls.append(("send", len(frames))))
    monkeypatch.setattr(daemon.slowpath, "handle", lambda *args: next(outputs))
    monkeypatch.setattr(daemon.slowpath, "settle", lambda: calls.append(("settle",)))
    daemon._slow_path([(7, 4, b"reply"), (7, 20, b"punted before the round")])
    assert calls == [("send", 1), ("send", 2), ("peer_mac", 7), ("settle",)]
