"""Control-socket exhaustion (issue 14 item 15) against `tapswitch run` as a service
manager starts it: open files limited to 1,024, 5,000 idle connections and connect
bursts on one L3's socket.  The admin socket and the other tenants' sockets keep
answering, the daemon's fds stay bounded, the log does not flood, and nothing spins."""
import os
import resource
import time

from bench.attacks import control_socket_flood
from pyctl.control.client import ControlClient
from tests.e2e.daemon_process import DaemonProcess

CONFIG = """
[daemon]
socket = "{sock}"

[daemon.control]
idle_timeout = 600

[[namespace]]
name = "web"
kind = "l3"
socket = true

[[namespace]]
name = "db"
kind = "l3"
socket = true
"""


def _limit_files():
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))


def _cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_5000_idle_connections_to_an_l3_socket_under_1024_files(tmp_path):
    sock = str(tmp_path / "ctl.sock")
    cfg = tmp_path / "topology.toml"
    cfg.write_text(CONFIG.format(sock=sock))
    log_path = tmp_path / "stderr.log"
    with open(log_path, "w") as log, \
            DaemonProcess(cfg, sock, stderr=log, preexec_fn=_limit_files) as daemon:
        pid = daemon.proc.pid
        web, db = str(tmp_path / "ns" / "web.sock"), str(tmp_path / "ns" / "db.sock")
        fds_before = _fds(pid)
        lines_before = len(log_path.read_text().splitlines())
        with control_socket_flood(web, idle=5000) as flood:
            time.sleep(1.0)
            cpu_before = _cpu_seconds(pid)
            time.sleep(3.0)
            cpu_used = _cpu_seconds(pid) - cpu_before
            for path in (sock, db):          # the admin and another tenant: served at once
                with ControlClient(path, timeout=10.0) as client:
                    assert client.call("ping") == "pong"
            with ControlClient(sock) as admin:
                stats = admin.call("stats")["control"]
            fds_during = _fds(pid)
        assert flood["idle_open"] > 0 and flood["burst_connects"] + flood["refused"] > 0
        assert stats["sockets"]["web"]["connections"] == stats["limits"]["connections_per_socket"]
        assert stats["sockets"]["web"]["full"] >= 1
        assert fds_during <= fds_before + stats["limits"]["connections_per_socket"] + 4
        # a busy loop over a full backlog would take a whole core: 3 s of the attack take little
        assert cpu_used < 1.5, f"the daemon used {cpu_used:.2f} s of CPU in 3 s of attack"
        # the attacker's socket serves again once it lets go
        deadline = time.monotonic() + 10
        with ControlClient(web, timeout=10.0) as client:
            assert client.call("ping") == "pong"
        assert time.monotonic() < deadline
        status, _, _ = daemon.stop()
    assert status == 0
    lines = log_path.read_text().splitlines()[lines_before:]
    assert len(lines) < 200, f"{len(lines)} log lines, e.g. {lines[-3:]}"
    assert not any("Traceback" in line for line in lines)
