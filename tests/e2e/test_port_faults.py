"""Kernel objects changing under a running `tapswitch run`: a port's TAP deleted
from outside (with `ip` or with pyroute2 inside its namespace), the kernel
namespace it was moved into deleted (`ip netns del`), its TAP set down or its
MTU lowered while traffic flows.  Each time the daemon keeps forwarding between
the other ports, shows the failed port with its reason (`ctl ports`, `ctl
stats`), does not spin on the dead fd, lets the port be deleted and added again
under the same name, and still exits cleanly on SIGTERM leaving nothing behind."""
import contextlib
import os
import subprocess
import threading
import time

import pytest

from pyctl import kernel

from pyctl.rig import probes
from pyctl.control.client import ControlClient
from tests.e2e.daemon_process import DaemonProcess
from tests.e2e.test_ctl_cli import ctl
from tests.support import config_text

TENANTS = {"web": "10.62.0.10", "db": "10.62.0.20", "cache": "10.62.0.30"}

# A busy loop on a dead fd burns a whole core: 2 s of it would be ~2 s of CPU.
IDLE_CPU_LIMIT_S = 0.5


def _cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _port_options(switch, name):
    return [f"netns={switch.netns[name]}", f"address={TENANTS[name]}/24", "gateway=10.62.0.1"]


@pytest.fixture
def switch(tmp_path):
    """A running daemon with tenants web, db and cache, each in its own kernel namespace;
    ``switch.tap[name]``, ``switch.netns[name]``, ``switch.ns(name)`` (a handle)."""
    tag = kernel.unique_name("x")[-6:]
    taps = {name: f"tf{name[0]}{tag}" for name in TENANTS}
    netns = {name: f"tsfault-{name}-{tag}" for name in TENANTS}
    sock = tmp_path / "ctl.sock"
    config = tmp_path / "topology.toml"
    config.write_text(
        config_text.daemon(sock) + config_text.namespace("tenants", "l2", "10.62.0.1/24")
        + "".join(config_text.tenant(name, f"{ip}/24", parent="tenants", port=taps[name],
                                     netns=netns[name], gateway="10.62.0.1")
                  for name, ip in TENANTS.items()))
    with contextlib.ExitStack() as stack:
        daemon = stack.enter_context(DaemonProcess(config, sock, netns=list(netns.values()),
                                                   links=list(taps.values())))
        daemon.tap, daemon.netns = taps, netns

        def ns(name):
            handle = kernel.NetNamespace.attach(netns[name])
            stack.callback(handle.remove)          # the handle only: not ours to delete
            return handle
        daemon.ns = ns
        daemon.client = stack.enter_context(ControlClient(daemon.socket))
        yield daemon


def _ports(switch):
    return {p["name"]: p for p in switch.client.call("ports")}


def _wait_for_state(switch, name, state, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        port = _ports(switch)[switch.tap[name]]
        if port["state"] == state or time.monotonic() > deadline:
            return port
        time.sleep(0.05)


def _assert_idle(switch):
    before = _cpu_seconds(switch.proc.pid)
    time.sleep(2.0)
    used = _cpu_seconds(switch.proc.pid) - before
    assert used < IDLE_CPU_LIMIT_S, f"the daemon used {used:.2f} s of CPU in 2 s"


def _assert_forwards(switch, src, dst):
    assert len(probes.ping(switch.ns(src), TENANTS[dst], count=2)) == 2


def _stop_and_check_nothing_left(switch):
    status, out, err = switch.stop()
    assert status == 0, err
    assert "final counters" in out
    assert "Traceback" not in err, err
    left = set(kernel.list_netns()) & set(switch.netns.values())
    assert not left
    assert not set(kernel.host.links()) & set(switch.tap.values())


def _delete_with_ip(switch, name):
    subprocess.run(["ip", "-n", switch.netns[name], "link", "del", switch.tap[name]], check=True)


def _delete_with_pyroute2(switch, name):
    assert switch.ns(name).delete_link(switch.tap[name])


@pytest.mark.parametrize("delete", [_delete_with_ip, _delete_with_pyroute2], ids=["ip", "pyroute2"])
def test_tap_deleted_from_outside_fails_that_port_only(switch, delete):
    _assert_forwards(switch, "web", "db")
    delete(switch, "db")

    port = _wait_for_state(switch, "db", "failed")
    assert port["state"] == "failed"
    assert port["error"] == "read error EBADFD: the TAP was deleted"
    assert {p["name"]: p["state"] for p in switch.client.call("ports")} == {
        switch.tap["web"]: "up", switch.tap["db"]: "failed", switch.tap["cache"]: "up"}
    table = ctl(switch.socket, "ports")
    assert table.splitlines()[0].split()[-1] == "STATE"
    assert "failed: read error EBADFD: the TAP was deleted" in table
    stats = switch.client.call("stats")
    assert (stats["ports_up"], stats["ports_failed"]) == (2, 1)
    assert stats["loop"]["read_errors"] == 1
    _assert_idle(switch)

    _assert_forwards(switch, "web", "cache")
    _assert_forwards(switch, "cache", "web")
    sent_before = switch.client.call("stats")["loop"]["tx_no_port"]
    assert probes.ping(switch.ns("web"), TENANTS["db"], count=2, timeout=0.3) == []
    assert switch.client.call("stats")["loop"]["tx_no_port"] > sent_before   # counted drops

    # Deleted: gone from the model and the kernel (the daemon made db's namespace).
    switch.client.call("port-del", name=switch.tap["db"])
    assert switch.tap["db"] not in _ports(switch)
    assert switch.netns["db"] not in kernel.list_netns()
    assert switch.client.call("stats")["ports_failed"] == 0
    # Added again under the same name: a new TAP, up, forwarding.
    switch.client.call("port-add", name=switch.tap["db"], namespace="db",
                       options=dict(o.split("=", 1) for o in _port_options(switch, "db")))
    assert _ports(switch)[switch.tap["db"]]["state"] == "up"
    _assert_forwards(switch, "web", "db")
    _stop_and_check_nothing_left(switch)


def test_kernel_namespace_deleted_from_outside_is_let_go(switch, make_netns):
    _assert_forwards(switch, "web", "db")      # no handle on db's namespace in this process
    name = switch.netns["db"]
    held = os.stat(os.path.join(kernel.NETNS_RUN_DIR, name)).st_ino
    subprocess.run(["ip", "netns", "del", name], check=True)

    port = _wait_for_state(switch, "db", "failed")
    assert port["state"] == "failed"
    assert port["error"] == f"kernel namespace {name} was deleted"
    assert switch.client.call("stats")["ports_failed"] == 1
    # The daemon let go of the namespace: nothing keeps it (and db's TAP) alive.
    fds = os.listdir(f"/proc/{switch.proc.pid}/fd")
    links = {os.readlink(f"/proc/{switch.proc.pid}/fd/{fd}") for fd in fds
             if os.path.exists(f"/proc/{switch.proc.pid}/fd/{fd}")}
    assert f"net:[{held}]" not in links
    _assert_idle(switch)
    _assert_forwards(switch, "web", "cache")

    # Someone makes a namespace under the same name: deleting the port leaves it alone.
    theirs = make_netns(name)
    switch.client.call("port-del", name=switch.tap["db"])
    assert name in kernel.list_netns() and theirs.named
    assert switch.client.call("stats")["ports_failed"] == 0
    # Added again: the port enters that existing namespace, and leaves it at exit.
    ctl(switch.socket, "port-add", switch.tap["db"], "db",
        *[a for o in _port_options(switch, "db") for a in ("-o", o)])
    assert _ports(switch)[switch.tap["db"]]["state"] == "up"
    assert theirs.has_link(switch.tap["db"])
    _assert_forwards(switch, "web", "db")
    status, _, err = switch.stop()
    assert status == 0, err
    assert name in kernel.list_netns() and theirs.named
    assert not theirs.has_link(switch.tap["db"])
    assert not set(kernel.list_netns()) & {switch.netns["web"], switch.netns["cache"]}
    assert not set(kernel.host.links()) & set(switch.tap.values())


def test_tap_down_then_up_is_a_counted_outage_not_a_failure(switch):
    db = switch.ns("db")
    _assert_forwards(switch, "web", "db")
    errors_before = switch.client.call("stats")["loop"]["write_errors"]
    db.link_down(switch.tap["db"])
    try:
        assert probes.ping(switch.ns("web"), TENANTS["db"], count=3, timeout=0.3) == []
        _assert_idle(switch)
        stats = switch.client.call("stats")
        assert stats["loop"]["write_errors"] > errors_before       # each frame: a counted drop
        assert stats["ports_failed"] == 0
        assert _ports(switch)[switch.tap["db"]]["state"] == "up"
        _assert_forwards(switch, "web", "cache")
    finally:
        db.link_up(switch.tap["db"])
    _assert_forwards(switch, "web", "db")
    _stop_and_check_nothing_left(switch)


def test_mtu_lowered_during_a_tcp_stream(switch):
    web, db = switch.ns("web"), switch.ns("db")
    result = {}

    def transfer():
        try:
            result["out"] = probes.tcp_transfer(web, db, TENANTS["db"], 64 << 20)
        except BaseException as exc:  # reported by the main thread
            result["error"] = exc
    thread = threading.Thread(target=transfer)
    thread.start()
    try:
        time.sleep(0.3)
        db.set_mtu(switch.tap["db"], 1280)
        web.set_mtu(switch.tap["web"], 1000)
    finally:
        thread.join(90)
    assert "error" not in result, result.get("error")
    sent, received, nbytes, _ = result["out"]
    assert (nbytes, received) == (64 << 20, sent)
    assert all(p["state"] == "up" for p in switch.client.call("ports"))
    _assert_forwards(switch, "db", "web")
    _assert_forwards(switch, "cache", "db")
    _stop_and_check_nothing_left(switch)


def test_removing_a_namespace_leaves_a_new_one_under_its_name_alone(make_netns):
    ours = make_netns()
    subprocess.run(["ip", "netns", "del", ours.name], check=True)
    assert not ours.named
    theirs = make_netns(ours.name)
    ours.remove()
    assert theirs.named and ours.name in kernel.list_netns()
    theirs.remove()
    assert ours.name not in kernel.list_netns()
