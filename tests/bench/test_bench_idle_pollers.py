"""The runner holds (SIGSTOP) the peers whose threads poll when idle while another peer is
measured, and continues them for their own samples and at the end."""
import subprocess
import sys
import time
from types import SimpleNamespace

from bench.peers import Peer
from bench.runner import hold_idle_pollers


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def _wait_state(pid: int, want: str) -> str:
    deadline = time.monotonic() + 5
    while _state(pid) != want and time.monotonic() < deadline:
        time.sleep(0.01)
    return _state(pid)


def test_only_the_measured_poller_runs():
    spin = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    quiet = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        pollers = [Peer(name=f"p{i}", procs=[p]) for i, p in enumerate(spin)]
        for peer in pollers:
            peer.polls_when_idle = True
        pairs = {"p0": SimpleNamespace(peer=pollers[0]), "p1": SimpleNamespace(peer=pollers[1]),
                 "q": SimpleNamespace(peer=Peer(name="q", procs=[quiet]))}
        assert hold_idle_pollers(pairs, "q") == ["p0", "p1"]
        assert [_wait_state(p.pid, "T") for p in spin] == ["T", "T"]
        assert _wait_state(quiet.pid, "S") == "S"       # a peer that sleeps is left alone
        assert hold_idle_pollers(pairs, "p1") == ["p0"]
        assert _wait_state(spin[0].pid, "T") == "T" and _wait_state(spin[1].pid, "R") == "R"
        pollers[0].hold(False)
        assert _wait_state(spin[0].pid, "R") == "R"
    finally:
        for p in spin + [quiet]:
            p.kill()
            p.wait()
