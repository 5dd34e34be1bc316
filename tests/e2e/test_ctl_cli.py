"""`tapswitch ctl` against a real `tapswitch run`: both as operators type them
(`python -m pyctl ...`), traffic between two tenants' kernel namespaces, a
namespace socket opened at run time and refused what an L3 may not do, then
SIGTERM: exit 0 and no namespace, TAP or socket left."""
import json
import os
import subprocess
import sys

import pytest

from pyctl import kernel

from pyctl.rig import probes
from tests.e2e.daemon_process import DaemonProcess
from tests.support import config_text

def _config(sock, sock_dir, names):
    return (config_text.daemon(sock, socket_dir=sock_dir)
            + config_text.namespace("tenants", "l2", "10.61.0.1/24")
            + "".join(config_text.tenant(name, f"10.61.0.{n}/24", parent="tenants",
                                         port=names[f"tap_{name}"],
                                         netns=names[f"netns_{name}"], gateway="10.61.0.1")
                      for name, n in (("web", 10), ("db", 20))))


def ctl(sock, *args, status=0):
    """``python -m pyctl ctl --socket SOCK ARGS...``: its stdout; its exit status must be
    ``status``."""
    proc = subprocess.run([sys.executable, "-m", "pyctl", "ctl", "--socket", sock, *args],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == status, (args, proc.returncode, proc.stdout, proc.stderr)
    return proc.stdout if status == 0 else proc.stderr


@pytest.fixture
def daemon(tmp_path):
    names = {"tap_web": kernel.unique_name("tcw"), "tap_db": kernel.unique_name("tcd"),
             "netns_web": kernel.unique_name("tsctlw", 64),
             "netns_db": kernel.unique_name("tsctld", 64)}
    sock, sock_dir = tmp_path / "ctl.sock", tmp_path / "ns"
    config = tmp_path / "topology.toml"
    config.write_text(_config(sock, sock_dir, names))
    with DaemonProcess(config, sock, netns=[names["netns_web"], names["netns_db"]],
                       links=[names["tap_web"], names["tap_db"]]) as d:
        d.names, d.sock_dir = names, sock_dir
        yield d


def test_ctl_drives_a_running_daemon_then_sigterm_leaves_nothing(daemon):
    sock, names = daemon.socket, daemon.names
    assert set(kernel.list_netns()) >= {names["netns_web"], names["netns_db"]}

    assert ctl(sock, "namespaces").splitlines() == [
        "ID  NAME       KIND  PARENT",
        "0   init       l2    -",
        "1     tenants  l2    init",
        "2       web    l3    tenants",
        "3       db     l3    tenants",
    ]
    shown = ctl(sock, "show", "web")
    assert "namespace: web (id 2, l3)" in shown and "  10.61.0.10/24" in shown
    assert names["tap_web"] in shown

    # A new L3 and an address for it in one step; the L2 lists it, tagged with its owner.
    assert ctl(sock, "create", "cache", "l3", "--parent", "tenants") == ""
    assert ctl(sock, "assign-and-push", "10.61.0.30/24", "cache") == ""
    tagged = json.loads(ctl(sock, "--json", "addresses", "tenants", "--tagged"))
    assert {"address": "10.61.0.30/24", "owner": "cache"} in tagged
    assert {"address": "10.61.0.1/24", "owner": "tenants"} in tagged
    assert ctl(sock, "owner", "10.61.0.30", "tenants") == "cache\n"
    assert "EADDRINUSE" in ctl(sock, "assign-and-push", "10.61.0.30/24", "db", status=1)
    assert "10.61.0.30/24" not in ctl(sock, "addresses", "db")

    # Traffic between the two tenants' kernel stacks, then the counters that saw it.
    web = kernel.NetNamespace.attach(names["netns_web"])
    try:
        assert len(probes.ping(web, "10.61.0.20", count=3)) == 3
    finally:
        web.remove()
    counters = json.loads(ctl(sock, "--json", "counters"))
    assert counters["namespaces"]["web"]["rx_packets"] >= 3
    assert counters["namespaces"]["db"]["rx_packets"] >= 3
    assert counters["ports"][names["tap_db"]]["namespace"] == "db"
    assert counters["reasons"]["arp"] >= 1
    table = ctl(sock, "counters", "web").splitlines()
    assert table[0].split() == ["NAMESPACE", "RX", "PACKETS", "RX", "BYTES", "TX", "PACKETS",
                                "TX", "BYTES", "DROPPED", "DROP", "REASONS", "TO", "SLOW", "PATH",
                                "SLOW-PATH", "KINDS"]
    assert table[1].split()[0] == "web" and [r.split()[0] for r in table[3:]] == [
        "PORT", names["tap_web"]]
    only_port = json.loads(ctl(sock, "--json", "counters", "--port", names["tap_db"]))
    assert (only_port["namespaces"], list(only_port["ports"])) == ({}, [names["tap_db"]])
    assert "not in namespace 'web'" in ctl(sock, "counters", "web", "-p", names["tap_db"],
                                           status=1)
    assert "stats" in ctl(sock, "verbs") and "backend:" in ctl(sock, "stats")

    # A socket acting as web, opened at run time: it sees web, and may not configure.
    web_sock = ctl(sock, "socket-add", "web").strip()
    assert web_sock == str(daemon.sock_dir / "web.sock")
    assert json.loads(ctl(web_sock, "--json", "whoami"))["namespace"] == "web"
    assert "EPERM" in ctl(web_sock, "create", "x", "l3", status=1)
    assert "EPERM" in ctl(web_sock, "assign-and-push", "10.61.0.40/24", "web", status=1)
    assert "ENOENT" in ctl(web_sock, "show", "db", status=1)
    assert list(json.loads(ctl(web_sock, "--json", "counters"))["namespaces"]) == ["web"]
    assert ctl(sock, "--json", "addresses", "web") == ctl(web_sock, "--json", "addresses")

    status, out, err = daemon.stop()
    assert status == 0, err
    assert "final counters" in out
    assert not set(kernel.list_netns()) & {names["netns_web"], names["netns_db"]}
    assert not set(kernel.host.links()) & {names["tap_web"], names["tap_db"]}
    assert not os.path.exists(sock) and not os.path.exists(web_sock)
