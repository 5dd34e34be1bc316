"""The daemon as operators run it: `tapswitch run CONFIG.toml`, stopped with
Ctrl-C (SIGINT; SIGTERM is in test_ctl_cli.py), leaving nothing behind; a bad
config file refused with the key named and nothing created."""
import os
import signal
import subprocess
import sys
import time

from pyctl import kernel
from pyctl.client import ControlClient


def _config(tag, sock):
    return f"""
[daemon]
socket = "{sock}"

[root]
addresses = ["10.0.0.1/24"]

[[namespace]]
name = "a"
kind = "l3"
addresses = ["10.0.0.2/24"]

[[namespace]]
name = "b"
kind = "l3"
addresses = ["10.0.0.3/24"]

[[port]]
name = "ta{tag}"
namespace = "a"
netns = "tsa-{tag}"
address = "10.0.0.2/24"
gateway = "10.0.0.1"

[[port]]
name = "tb{tag}"
namespace = "b"
netns = "tsb-{tag}"
address = "10.0.0.3/24"
gateway = "10.0.0.1"
"""


def _wait_for_socket(path, proc, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"daemon exited early: {proc.communicate()}")
        if os.path.exists(path):
            try:
                with ControlClient(path) as client:
                    return client.call("ping")
            except Exception:
                pass
        time.sleep(0.05)
    raise AssertionError("the daemon's control socket never answered")


def _run_daemon(tmp_path, tag):
    sock = str(tmp_path / "ctl.sock")
    cfg = tmp_path / "topology.toml"
    cfg.write_text(_config(tag, sock))
    proc = subprocess.Popen([sys.executable, "-m", "pyctl", "run", str(cfg)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, sock


def _kernel_objects(tag):
    netns = [n for n in kernel.list_netns() if tag in n]
    links = [l for l in kernel.host.links() if tag in l]
    return netns, links


def test_sigint_stops_cleanly_prints_counters_and_leaves_nothing(tmp_path):
    tag = kernel.unique_name("x")[-6:]
    proc, sock = _run_daemon(tmp_path, tag)
    try:
        _wait_for_socket(sock, proc)
        netns, _ = _kernel_objects(tag)
        assert sorted(netns) == sorted([f"tsa-{tag}", f"tsb-{tag}"])
        with ControlClient(sock) as client:
            names = [ns["name"] for ns in client.call("namespaces")]
            assert names == ["init", "a", "b"]
            assert "namespaces" in client.call("counters")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "final counters" in out
    assert _kernel_objects(tag) == ([], [])
    assert not os.path.exists(sock)


def test_a_bad_config_names_the_key_and_leaves_nothing(tmp_path):
    tag = kernel.unique_name("x")[-6:]
    cfg = tmp_path / "bad.toml"
    cfg.write_text(_config(tag, str(tmp_path / "s.sock")).replace(
        'gateway = "10.0.0.1"\n', 'gateway = "10.0.0.1"\nspeed = 10\n', 1))
    proc = subprocess.run([sys.executable, "-m", "pyctl", "run", str(cfg)],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert "speed" in proc.stderr and ":" in proc.stderr
    assert _kernel_objects(tag) == ([], [])
