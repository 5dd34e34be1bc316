"""Placing the daemon: ``[daemon] cpus`` and ``poll_us`` (checked like every other
key: CPUs that exist and are allowed), ``tapswitch run --cpus/--poll-us`` overriding
them, and the packet thread -- the thread that calls ``Daemon.run()`` -- pinned there
(read back with ``os.sched_getaffinity`` of that thread), no other thread touched."""
import os
import threading
import time

import pytest

from pyctl import errors
from pyctl.config import ConfigError, DaemonSettings, load_config
from pyctl.config import cpus as cpus_mod
from pyctl.daemon import daemon as daemon_mod
from pyctl.daemon.daemon import Daemon
from pyctl.model.switch import Switch

ALLOWED = sorted(os.sched_getaffinity(0))


def test_cpus_and_poll_us_are_read():
    cfg = load_config(f"[daemon]\ncpus = [{ALLOWED[-1]}]\npoll_us = 50\n")
    assert cfg.daemon.cpus == (ALLOWED[-1],) and cfg.daemon.poll_us == 50
    assert load_config("").daemon.cpus is None and load_config("").daemon.poll_us == 0


@pytest.mark.parametrize("value, fragment", [
    ("[]", "non-empty list"), ('"1"', "expected an array"), ("[true]", "integers"),
    (f"[{ALLOWED[0]}, {ALLOWED[0]}]", "listed twice"), ("[4096]", "CPU 4096 does not exist here"),
])
def test_bad_cpus_are_refused_with_their_line(value, fragment):
    with pytest.raises(ConfigError) as info:
        load_config(f"[daemon]\nbatch_size = 32\ncpus = {value}\n")
    assert info.value.key == "daemon.cpus" and info.value.line == 3
    assert fragment in info.value.reason


def test_a_cpu_the_daemon_may_not_use_is_refused(monkeypatch):
    monkeypatch.setattr(cpus_mod, "online_cpus", lambda: frozenset({0, 1, 2}))
    monkeypatch.setattr(cpus_mod.os, "sched_getaffinity", lambda pid: {0, 1})
    with pytest.raises(ConfigError, match="CPU 2 is not allowed for this process .allowed: 0-1."):
        load_config("[daemon]\ncpus = [2]\n")


@pytest.mark.parametrize("value", ["-1", "1001", "true"])
def test_poll_us_out_of_range_is_refused(value):
    with pytest.raises(ConfigError) as info:
        load_config(f"[daemon]\npoll_us = {value}\n")
    assert info.value.key == "daemon.poll_us"


def test_cpu_list_text_both_ways():
    assert cpus_mod.parse_cpu_list("0-2,5") == (0, 1, 2, 5)
    assert cpus_mod.cpu_list_text((0, 1, 2, 5)) == "0-2,5"
    for bad in ("", "a", "2-1", "-1"):
        with pytest.raises(errors.InvalidArgument):
            cpus_mod.parse_cpu_list(bad)


def _run_in_thread(daemon):
    """daemon.run() in a new thread, once calls go to it (run() has taken it over)."""
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while daemon._thread is None and time.monotonic() < deadline:
        time.sleep(0.01)
    return thread


def _placement(daemon):
    """daemon.placement() once the packet thread has placed itself."""
    deadline = time.monotonic() + 10
    while (placed := daemon.call(daemon.placement)) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    return placed


def test_the_packet_thread_runs_on_its_cpus_and_no_other_thread_moves():
    cpu = ALLOWED[-1]
    before = os.sched_getaffinity(0)
    daemon = Daemon(Switch(), DaemonSettings(cpus=(cpu,)), max_namespaces=8, max_ports=8)
    try:
        daemon.start(control=False)
        thread = _run_in_thread(daemon)                   # run()'s: the control thread
        placed = _placement(daemon)
        packets = next(t for t in threading.enumerate() if t.name == "tapswitch-packets")
        assert placed["tid"] == packets.native_id != thread.native_id
        assert os.sched_getaffinity(packets.native_id) == {cpu}     # read back, that thread
        assert placed["cpus"] == [cpu] and daemon.call(daemon.stats)["packet_thread"] == placed
        assert os.sched_getaffinity(thread.native_id) == before     # the control thread: not moved
        assert os.sched_getaffinity(0) == before                     # the caller's thread: as it was
    finally:
        daemon.stop()
        thread.join(10)
        daemon.close(report=False)


def test_unpinned_the_packet_thread_keeps_the_process_cpus():
    daemon = Daemon(Switch(), DaemonSettings(), max_namespaces=8, max_ports=8)
    try:
        daemon.start(control=False)
        thread = _run_in_thread(daemon)
        assert _placement(daemon)["cpus"] == ALLOWED
    finally:
        daemon.stop()
        thread.join(10)
        daemon.close(report=False)


def test_run_overrides_are_checked_before_anything_starts(tmp_path, caplog, monkeypatch):
    from pyctl.daemon import service
    started = []
    monkeypatch.setattr(daemon_mod.Daemon, "start", lambda self, *a, **k: started.append(self))
    config = tmp_path / "t.toml"
    config.write_text(f'[daemon]\nsocket = "{tmp_path}/c.sock"\n')
    assert service.run_config(str(config), cpus="4096") == 1
    assert "--cpus: CPU 4096 does not exist here" in caplog.text
    caplog.clear()
    assert service.run_config(str(config), poll_us=5000) == 1
    assert "--poll-us: poll_us is 0 (off) .. 1000" in caplog.text
    assert started == []


def test_polling_is_on_only_for_a_packet_thread_with_cpus_of_its_own():
    for settings, want in ((DaemonSettings(poll_us=50), 0),
                           (DaemonSettings(poll_us=50, cpus=(ALLOWED[-1],)), 50),
                           (DaemonSettings(cpus=(ALLOWED[-1],)), 0)):
        daemon = Daemon(Switch(), settings, max_namespaces=8, max_ports=8)
        try:
            assert daemon.poll_us == daemon.loop.poll_us == want
        finally:
            daemon.close(report=False)
