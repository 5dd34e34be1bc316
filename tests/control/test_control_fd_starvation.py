"""Out of file descriptors for another reason than control clients (TAPs, files): accepting
backs off instead of spinning, the log stays short, and the admin socket still gets in on
the fd kept for it (issue 14 item 15)."""
import json
import os
import socket
import subprocess
import sys
import time

from pyctl.control.client import ControlClient


def _cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_out_of_fds_backs_off_logs_little_and_lets_the_admin_in(tmp_path):
    path = str(tmp_path / "c.sock")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    child = subprocess.Popen([sys.executable, "-m", "tests.support.fd_starved", path, "6"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    clients = []
    try:
        assert child.stdout.readline().strip() == "ready"
        web = str(tmp_path / "ns" / "web.sock")
        for _ in range(20):                 # more than the fds left: the rest stay in backlog
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(web)
            clients.append(sock)
        time.sleep(1.0)
        cpu_before = _cpu_seconds(child.pid)
        time.sleep(2.0)
        cpu_used = _cpu_seconds(child.pid) - cpu_before
        with ControlClient(path, timeout=10.0) as admin:
            assert admin.call("ping") == "pong"
        out, err = child.communicate(timeout=30)
    finally:
        for sock in clients:
            sock.close()
        if child.poll() is None:
            child.kill()
            child.communicate()
    stats = json.loads(out.strip().splitlines()[-1])
    assert stats["accept_errors"] >= 1 and stats["admin_reserve_used"] >= 1
    assert cpu_used < 1.0, f"{cpu_used:.2f} s of CPU in 2 s out of fds: a busy loop"
    lines = err.splitlines()
    assert len(lines) < 30, f"{len(lines)} log lines, e.g. {lines[-3:]}"
