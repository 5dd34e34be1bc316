"""`tapswitch run` under a service manager: with NOTIFY_SOCKET set, READY=1 comes once the
ports and the control sockets are up, STOPPING=1 when SIGTERM stops it; a file it refuses
never says READY; the shipped unit file is one systemd reads."""
import os
import shutil
import signal
import subprocess
import sys

import pytest

from pyctl import kernel
from pyctl.control.client import ControlClient
from pyctl.rig.subnets import free_subnet
from tests.e2e.daemon_process import DaemonProcess
from tests.support import config_text
from tests.support import REPO
from tests.support.notify import notify_socket, received


def _config(tag, sock, net):
    addr = lambda k: f"{net.network_address + k}/{net.prefixlen}"     # noqa: E731
    return (config_text.daemon(sock) + config_text.root(addr(1))
            + config_text.tenant("a", addr(2), port=f"ta{tag}", netns=f"tsa-{tag}", gateway=None,
                                 socket=True))


@pytest.fixture
def manager(tmp_path):
    with notify_socket(tmp_path) as found:
        yield found


def test_ready_once_serving_and_stopping_on_sigterm(tmp_path, manager):
    path, sock = manager
    tag = kernel.unique_name("n")[-6:]
    ctl_sock = str(tmp_path / "ctl.sock")
    cfg = tmp_path / "t.toml"
    cfg.write_text(_config(tag, ctl_sock, free_subnet()))
    with DaemonProcess(cfg, ctl_sock, netns=[f"tsa-{tag}"], links=[f"ta{tag}"],
                       env={**os.environ, "NOTIFY_SOCKET": path}) as daemon:
        ready = received(sock)
        # READY=1 is sent once everything is up: the sockets answer, the port is up
        assert ready["READY"] == "1" and "1 ports up" in ready["STATUS"]
        with ControlClient(ctl_sock) as client:
            assert client.call("ports")[0]["state"] == "up"
        with ControlClient(str(tmp_path / "ns" / "a.sock")) as client:
            assert client.call("whoami")["namespace"] == "a"
        daemon.proc.send_signal(signal.SIGTERM)
        stopping = received(sock)
        assert stopping["STOPPING"] == "1" and stopping["STATUS"].startswith("stopping")
        status, _, err = daemon.stop()
    assert status == 0, err


def test_a_refused_file_never_says_ready(tmp_path, manager):
    path, sock = manager
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[daemon]\nsocket = "/nonexistent-dir/x/../../ctl.sock"\nbatch_size = 0\n')
    done = subprocess.run([sys.executable, "-m", "pyctl", "run", str(cfg)], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "NOTIFY_SOCKET": path})
    assert done.returncode == 1 and "batch_size" in done.stderr
    sock.settimeout(0.2)
    with pytest.raises(TimeoutError):
        sock.recv(4096)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_unit_file_is_valid(tmp_path):
    unit = (REPO / "contrib" / "tapswitch.service").read_text()
    # systemd-analyze checks that ExecStart's program exists: point it at this interpreter's
    local = tmp_path / "tapswitch.service"
    local.write_text(unit.replace("/usr/local/bin/tapswitch", sys.executable))
    done = subprocess.run(["systemd-analyze", "verify", str(local)], capture_output=True,
                          text=True, timeout=60)
    problems = [line for line in done.stderr.splitlines() if "tapswitch.service" in line]
    assert not problems, done.stderr
