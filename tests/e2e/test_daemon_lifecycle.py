"""The daemon as operators run it: `tapswitch run CONFIG.toml`, stopped with
Ctrl-C (SIGINT; SIGTERM is in test_ctl_cli.py), leaving nothing behind; a bad
config file refused with the key named and nothing created."""
import os
import signal
import subprocess
import sys

from pyctl import kernel
from pyctl.control.client import ControlClient
from tests.e2e.daemon_process import DaemonProcess
from tests.support import config_text


def _config(tag, sock):
    return (config_text.daemon(sock) + config_text.root("10.0.0.1/24")
            + "".join(config_text.tenant(name, f"10.0.0.{n}/24", port=f"t{name}{tag}",
                                         netns=f"ts{name}-{tag}", gateway="10.0.0.1")
                      for name, n in (("a", 2), ("b", 3))))


def _kernel_objects(tag):
    netns = [n for n in kernel.list_netns() if tag in n]
    links = [l for l in kernel.host.links() if tag in l]
    return netns, links


def test_sigint_stops_cleanly_prints_counters_and_leaves_nothing(tmp_path):
    tag = kernel.unique_name("x")[-6:]
    sock = str(tmp_path / "ctl.sock")
    cfg = tmp_path / "topology.toml"
    cfg.write_text(_config(tag, sock))
    netns, links = [f"tsa-{tag}", f"tsb-{tag}"], [f"ta{tag}", f"tb{tag}"]
    with DaemonProcess(cfg, sock, netns=netns, links=links) as daemon:
        assert sorted(_kernel_objects(tag)[0]) == sorted(netns)
        with ControlClient(sock) as client:
            assert [ns["name"] for ns in client.call("namespaces")] == ["init", "a", "b"]
        status, out, err = daemon.stop(signal.SIGINT)
    assert status == 0, err
    assert "final counters" in out
    assert "-- packet loop at exit --\nframes in " in out
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
