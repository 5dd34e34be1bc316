"""Leak tests: a test that fails halfway, a test run stopped by Ctrl-C, and many
topologies made and closed in a loop leave no TAP, kernel namespace, process,
run directory, thread or file descriptor behind.

The first two run a generated test file in a separate ``pytest`` (as a user
of the plugin would); that run records its own threads and descriptors
before and after, and its process tag, by which the kernel objects it made
are found (every kernel name a topology picks holds it)."""
import glob
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from pyctl import kernel

from pyctl.rig import probes
from pyctl.rig.topology import Topology
from tests.support import process_state as process_state_module
from tests.support.process_state import process_state


@pytest.fixture(params=["thread", "process"])
def mode(request):
    return request.param


def appeared(before, after):
    """What is in state ``after`` and was not in ``before``: descriptors opened (a number
    that is new, or that leads elsewhere now), threads started, tasks added.  What went
    away is no leak (garbage collection may close an earlier test's descriptor meanwhile)."""
    threads = list(after["threads"])
    for name in before["threads"]:
        if name in threads:
            threads.remove(name)
    return {"fds": sorted(f"{fd} -> {target}" for fd, target in after["fds"].items()
                          if before["fds"].get(fd) != target),
            "threads": threads,
            "tasks": max(0, after["tasks"] - before["tasks"])}


NO_GROWTH = {"fds": [], "threads": [], "tasks": 0}


def kernel_leftovers(tag):
    """Kernel objects, processes and run directories whose name holds ``tag``."""
    tun = subprocess.run(["ip", "-o", "link", "show", "type", "tun"], capture_output=True,
                         text=True, check=True).stdout
    procs = []
    for cmdline in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            with open(cmdline, "rb") as f:
                args = f.read().decode(errors="replace")
        except OSError:
            continue
        if f"tapswitch-{tag}" in args:
            procs.append(args.replace("\0", " "))
    tap = re.compile(rf"\bt\d+{tag}[0-9a-z]+\b")             # kernel.unique_name(f"t{n}")
    return {"netns": [n for n in kernel.list_netns() if f"-{tag}" in n],   # ts-<tag><n>-<tenant>
            "tun": [line for line in tun.splitlines() if tap.search(line)],
            "processes": procs,
            "rundirs": glob.glob(os.path.join(tempfile.gettempdir(), f"tapswitch-{tag}*"))}


NOTHING = {"netns": [], "tun": [], "processes": [], "rundirs": []}


# ------------------------------------------------------------------ generated runs

_RECORDER = textwrap.dedent('''
    import json, os
    import pytest
    from pyctl import kernel
    from process_state import process_state      # tests/support/process_state.py, copied

    STATE = {"tag": kernel.process_tag()}

    def record(key):
        STATE[key] = process_state()

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(session):
        # after every fixture was torn down, also when the run was interrupted
        record("after")
        with open(os.environ["LEAK_REPORT"], "w") as f:
            json.dump(STATE, f)
''')

_TESTS = textwrap.dedent('''
    import os, threading, time
    from conftest import record
    from pyctl.rig import probes

    def test_0_warm_up(tapswitch_topology):
        # the first topology of a process imports and caches what every later one reuses
        a, b = tapswitch_topology.tenants["a"], tapswitch_topology.tenants["b"]
        assert probes.ping(a, b.ip, count=1)

    def test_1_baseline():
        record("before")

    def test_2_fails_halfway(tapswitch_topology):
        a, b = tapswitch_topology.tenants["a"], tapswitch_topology.tenants["b"]
        assert probes.ping(a, b.ip, count=1)
        if os.environ.get("LEAK_WAIT_FOR_CTRL_C"):
            open(os.environ["LEAK_WAIT_FOR_CTRL_C"], "w").close()
            threading.Event().wait(30)      # Ctrl-C lands here
        assert False, "failing halfway, with the topology up"

    def test_3_runs_after_the_failure(tapswitch_factory):
        topo = tapswitch_factory()
        topo.tenant("c", "10.0.0.4/24")
        topo.start()
''')


def _run_generated(tmp_path, mode, ctrl_c=False):
    (tmp_path / "conftest.py").write_text(_RECORDER)
    (tmp_path / "process_state.py").write_text(Path(process_state_module.__file__).read_text())
    (tmp_path / "test_generated.py").write_text(_TESTS)
    report, ready = tmp_path / "report.json", tmp_path / "ready"
    env = dict(os.environ, LEAK_REPORT=str(report))
    if ctrl_c:
        env["LEAK_WAIT_FOR_CTRL_C"] = str(ready)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "--rootdir",
         str(tmp_path), f"--tapswitch-mode={mode}", "test_generated.py"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        if ctrl_c:
            deadline = time.monotonic() + 60
            while not ready.exists():
                assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0]
                time.sleep(0.02)
            proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert report.exists(), out
    return proc.returncode, out, json.loads(report.read_text())


def test_a_test_that_fails_halfway_leaves_nothing(tmp_path, mode):
    status, out, state = _run_generated(tmp_path, mode)
    assert status == 1, out
    assert "1 failed, 3 passed" in out and "failing halfway" in out, out
    assert appeared(state["before"], state["after"]) == NO_GROWTH, out
    assert kernel_leftovers(state["tag"]) == NOTHING


def test_a_run_stopped_by_ctrl_c_leaves_nothing(tmp_path, mode, ctrl_c):
    status, out, state = _run_generated(tmp_path, mode, ctrl_c=True)
    assert status == 2, out                             # pytest: interrupted
    assert "KeyboardInterrupt" in out and "test_3" not in out, out
    assert appeared(state["before"], state["after"]) == NO_GROWTH, out
    assert kernel_leftovers(state["tag"]) == NOTHING


# ------------------------------------------------------------------ in this process

LOOPS = {"thread": 50, "process": 10}    # a child daemon costs a Python start-up each


def _smallest(mode):
    topo = Topology(mode)
    topo.address_add("init", "10.0.0.1/24")
    a = topo.tenant("a", "10.0.0.2/24")
    return topo, a


def test_many_topologies_in_a_loop_leave_nothing(mode):
    topo, a = _smallest(mode)          # warm-up: imports and one-time caches
    with topo:
        topo.start()
        assert probes.ping(a, "10.0.0.1", count=1)
    before = process_state()
    ids = []
    for _ in range(LOOPS[mode]):
        topo, a = _smallest(mode)
        with topo:
            topo.start()
            assert probes.ping(a, "10.0.0.1", count=1)
        ids.append(topo.id)
        assert topo.leftovers == []
    assert appeared(before, process_state()) == NO_GROWTH
    assert kernel_leftovers(kernel.process_tag()) == NOTHING
    assert len(set(ids)) == len(ids)


def test_appeared_sees_what_came_and_not_what_went():
    before = process_state()
    r, w = os.pipe()
    try:
        grown = appeared(before, process_state())
        assert grown["fds"] == sorted(f"{fd} -> {os.readlink(f'/proc/self/fd/{fd}')}" for fd in (r, w))
    finally:
        os.close(r)
        os.close(w)
    after_close = process_state()
    assert appeared(before, after_close) == NO_GROWTH
    before["fds"]["99999"] = "pipe:[gone]"          # a descriptor that went away is no leak
    assert appeared(before, after_close) == NO_GROWTH
