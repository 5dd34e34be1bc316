"""Reloading `tapswitch run`: SIGHUP and `tapswitch ctl reload` apply the file's difference in
one step while a flow between tenants the change does not touch loses nothing; a file with
errors is refused with every error logged, and nothing changes; the service manager hears
RELOADING=1 then READY=1."""
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from pyctl import errors, kernel
from pyctl.control.client import ControlClient
from pyctl.daemon import port_kinds
from pyctl.rig.subnets import free_subnet
from tests.e2e.daemon_process import DaemonProcess
from tests.support import config_text
from tests.support.notify import notify_socket, received as heard

HOSTS = {"a": 2, "b": 3, "c": 4, "d": 5}
NET6 = "fd00:5e::"          # the tenants' IPv6 subnet (/64): in their own kernels only


class Tenants:
    """L3 tenants in the root L2, each behind a TAP in its own kernel namespace."""

    def __init__(self, tmp_path):
        self.tag = kernel.unique_name("r")[-6:]
        self.net = free_subnet()
        self.sock = str(tmp_path / "ctl.sock")
        self.file = tmp_path / "switch.toml"
        self.host6 = {}                 # a tenant's IPv6 host part, when not its IPv4 one

    def ip(self, name):
        return str(self.net.network_address + HOSTS[name])

    def netns(self, name):
        return f"tsr{name}-{self.tag}"

    def link(self, name):
        return f"tr{name}{self.tag}"

    def ip6(self, name):
        return f"{NET6}{self.host6.get(name, HOSTS[name]):x}"

    def write(self, *names, extra="", sockets=(), ipv6=False, **daemon):
        """The file with these tenants (``sockets``: those with a namespace socket; ``ipv6``:
        dual-stack, each tenant's IPv6 address ``ip6``), ``daemon`` keys, and ``extra`` TOML
        at its end."""
        plen = self.net.prefixlen
        gateway = str(self.net.network_address + 1)
        if not ipv6:
            text = config_text.daemon(self.sock, **daemon) + config_text.root(f"{gateway}/{plen}")
        else:
            text = (config_text.daemon(self.sock, **daemon)
                    + config_text.root(f"{gateway}/{plen}", f"{NET6}1/64"))
        for name in names:
            if not ipv6:
                text += config_text.tenant(name, f"{self.ip(name)}/{plen}", port=self.link(name),
                                           netns=self.netns(name), gateway=gateway,
                                           socket=True if name in sockets else None)
                continue
            both = [f"{self.ip(name)}/{plen}", f"{self.ip6(name)}/64"]
            text += (config_text.namespace(name, "l3", *both,
                                           socket=True if name in sockets else None)
                     + config_text.table("[[port]]", name=self.link(name), namespace=name,
                                         netns=self.netns(name), address=both,
                                         gateway=[gateway, f"{NET6}1"]))
        self.file.write_text(text + extra)

    def daemon(self, **popen):
        return DaemonProcess(self.file, self.sock, netns=[self.netns(n) for n in HOSTS],
                             links=[self.link(n) for n in HOSTS], **popen)

    def ping(self, src, dst, count=1, interval=0.2, background=False, family=4):
        argv = ["ip", "netns", "exec", self.netns(src), "ping", "-q", "-n", "-c", str(count),
                "-i", str(interval), "-W", "5", self.ip(dst) if family == 4 else self.ip6(dst)]
        if background:
            return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True)
        return subprocess.run(argv, capture_output=True, text=True, timeout=60)

    def ports(self):
        with ControlClient(self.sock) as client:
            return {p["name"]: (p["id"], p["namespace"], p["state"]) for p in client.call("ports")}

    def ctl(self, *args):
        return subprocess.run([sys.executable, "-m", "pyctl", "ctl", "-s", self.sock, *args],
                              capture_output=True, text=True, timeout=60)


def received(ping):
    """(transmitted, received) from ping's summary line."""
    found = re.search(r"(\d+) packets transmitted, (\d+) received", ping)
    assert found, ping
    return int(found[1]), int(found[2])


@pytest.fixture
def manager(tmp_path):
    with notify_socket(tmp_path) as found:
        yield found


def netns_names():
    return set(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                              check=True).stdout.split())


def test_sighup_adds_and_removes_a_tenant_while_a_flow_goes_on(tmp_path, manager):
    path, notify = manager
    t = Tenants(tmp_path)
    t.write("a", "b", "d")
    with t.daemon(env={**os.environ, "NOTIFY_SOCKET": path}) as daemon:
        assert heard(notify)["READY"] == "1"
        before = t.ports()
        flow = t.ping("a", "b", count=300, interval=0.01, background=True)
        try:
            time.sleep(0.5)                            # the flow runs before, during, after
            t.write("a", "b", "c")                     # d goes, c comes
            daemon.proc.send_signal(signal.SIGHUP)
            assert heard(notify)["RELOADING"] == "1"
            ready = heard(notify)
            assert ready["READY"] == "1" and ready["STATUS"] == "reloaded: 6 changes", ready
        finally:
            out, _ = flow.communicate(timeout=60)
        sent, got = received(out)
        assert sent == 300 and got == 300, out             # the flow across the reload: all of it
        after = t.ports()
        # a and b were not touched: the same ports (ids) and namespaces; d went, c came
        assert {n: after[n] for n in (t.link("a"), t.link("b"))} == \
               {n: before[n] for n in (t.link("a"), t.link("b"))}
        assert t.link("d") not in after and after[t.link("c")][1:] == ("c", "up")
        assert t.netns("d") not in netns_names() and t.netns("c") in netns_names()
        assert received(t.ping("c", "a", count=2).stdout) == (2, 2)
        # ctl reload of the same file: nothing to do
        done = t.ctl("reload")
        assert done.returncode == 0 and "nothing" in done.stdout, done
        status, _, err = daemon.stop()
    assert status == 0, err
    for text in ("reload: port %s goes" % t.link("d"), "reload: namespace c comes (l3 in init)",
                 "reloaded %s: 6 changes" % t.file):
        assert text in err


def test_a_reload_moves_a_tenants_ipv6_address_and_its_neighbour_keeps_its_port(tmp_path):
    t = Tenants(tmp_path)
    t.write("a", "b", ipv6=True)
    with t.daemon() as daemon:
        assert received(t.ping("a", "b", count=3, family=6).stdout)[1] >= 1    # after ND
        before = t.ports()
        old = t.ip6("b")
        t.host6["b"] = 0x13
        t.write("a", "b", ipv6=True)
        done = t.ctl("reload")
        assert done.returncode == 0, done
        for text in (f"{old}/64 pulled from b", f"{old}/64 of init goes",
                     f"{t.ip6('b')}/64 comes to b", f"port {t.link('b')} goes (changed: it comes back)"):
            assert text in done.stdout, done.stdout
        after = t.ports()
        assert after[t.link("a")] == before[t.link("a")]             # a: untouched
        assert after[t.link("b")][1:] == ("b", "up")
        assert received(t.ping("a", "b", count=3, family=6).stdout)[1] >= 1
        assert received(t.ping("a", "b", count=2).stdout) == (2, 2)    # IPv4 still
        with ControlClient(t.sock) as client:
            assert f"{old}/64" not in str(client.call("show"))
        status, _, err = daemon.stop()
    assert status == 0, err


FIVE_ERRORS = """
[[namespace]]
name = "e"
kind = "l5"

[[port]]
name = "tsw-x"
namespace = "nope"

[[route]]
namespace = "init"
prefix = "10.250.0.0/99"
port = "tsw-y"

[[namespace]]
name = "f"
kind = "l3"
addresses = ["not-an-address"]
"""


def test_a_file_with_errors_changes_nothing_and_every_error_is_logged(tmp_path, manager):
    path, notify = manager
    t = Tenants(tmp_path)
    t.write("a", "b")
    with t.daemon(env={**os.environ, "NOTIFY_SOCKET": path}) as daemon:
        assert heard(notify)["READY"] == "1"
        before = t.ports()
        with ControlClient(t.sock) as client:
            shown = client.call("show")
        t.write("a", "c", extra=FIVE_ERRORS)                 # b would go, c come: refused whole
        daemon.proc.send_signal(signal.SIGHUP)
        assert heard(notify)["RELOADING"] == "1"
        ready = heard(notify)
        assert ready["READY"] == "1" and ready["STATUS"] == "reload refused: EINVAL", ready
        refused = t.ctl("reload")
        assert refused.returncode == 1
        assert len(re.findall(r"switch\.toml:\d+: ", refused.stderr)) == 5, refused.stderr
        assert t.ports() == before
        with ControlClient(t.sock) as client:
            assert client.call("show") == shown
        assert received(t.ping("a", "b", count=2).stdout) == (2, 2)
        assert t.netns("c") not in netns_names()
        # a dry run of a good file says what would change, and changes nothing
        t.write("a", "c", batch_size=32)
        dry = t.ctl("reload", "--dry-run")
        assert dry.returncode == 0 and dry.stdout.startswith("would change"), dry
        assert f"port {t.link('b')} goes" in dry.stdout and "namespace c comes" in dry.stdout
        # [daemon] settings are read at start: a changed one is said, not applied
        assert "[daemon] batch_size changed: it takes effect at the next start" in dry.stdout
        assert t.ports() == before and t.netns("c") not in netns_names()
        status, _, err = daemon.stop()
    assert status == 0, err
    # every error, from SIGHUP and from ctl reload: file:line: key each
    logged = [line for line in err.splitlines() if "tapswitch.reload: reload of" in line]
    assert len(logged) == 10, err
    for key in ("namespace[2].kind", "port[2].namespace", "route[0].prefix", "route[0].port",
                "namespace[3].addresses[0]"):
        assert sum(key in line for line in logged) == 2, (key, err)
    assert err.count("5 errors: nothing changed") == 2


LIMITS = """
[daemon.slowpath.shares]
icmp = [20, 5]

[daemon.control]
idle_timeout = 40
requests_per_second = 50
"""


def test_a_reload_applies_the_limits_while_a_flow_goes_on(tmp_path):
    """[daemon.slowpath] shares, [daemon.control] limits and the metrics listener change
    live with the model's difference; a bad one refuses the reload whole (tests/daemon/test_reload_limits.py
    holds the rest: rates, bounds, slots, the idle timeout)."""
    t = Tenants(tmp_path)
    t.write("a", "b")
    with t.daemon() as daemon:
        flow = t.ping("a", "b", count=150, interval=0.01, background=True)
        try:
            time.sleep(0.3)
            t.write("a", "b", "c", extra=LIMITS)
            done = t.ctl("reload")
        finally:
            out, _ = flow.communicate(timeout=60)
        assert done.returncode == 0, done
        assert "[daemon.slowpath.shares] icmp: [200, 100] -> [20, 5]" in done.stdout
        assert "[daemon.control] idle_timeout: 300 -> 40" in done.stdout
        assert "namespace c comes" in done.stdout and "next start" not in done.stdout
        assert received(out) == (150, 150), out
        with ControlClient(t.sock) as client:
            stats = client.call("stats")
        assert stats["slowpath_shares"]["icmp"] == {"rate": 20.0, "burst": 5.0}
        assert stats["control"]["limits"]["idle_timeout"] == 40
        assert stats["control"]["limits"]["requests_per_second"] == 50
        # the metrics listener comes with a reload, and serves
        port = free_port()
        t.write("a", "b", "c", extra=LIMITS, metrics=f"127.0.0.1:{port}")
        done = t.ctl("reload")
        assert done.returncode == 0 and f"metrics: off -> 127.0.0.1:{port}" in done.stdout, done
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
            assert b"tapswitch_" in reply.read()
        # a bad limit with a model change: refused whole, the limits and tenants as they were
        t.write("a", "b", extra=LIMITS.replace("[20, 5]", "[20, 0]").replace("40", "30"),
                metrics=f"127.0.0.1:{port}")
        refused = t.ctl("reload")
        assert refused.returncode == 1 and "daemon.slowpath.shares.icmp" in refused.stderr
        with ControlClient(t.sock) as client:
            again = client.call("stats")
        assert again["slowpath_shares"] == stats["slowpath_shares"]
        assert again["control"]["limits"] == stats["control"]["limits"]
        assert t.link("c") in t.ports()
        status, _, err = daemon.stop()
    assert status == 0, err


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_reload_that_changes_a_ring_ports_depth_opens_it_anew_with_it(tmp_path):
    """``ring_frames`` of a veth port changed in the file: the reload opens the port again
    with its new ring (``ctl stats`` rings: ``rx_slots``) and the tenant talks through it;
    a value the option refuses changes nothing."""
    if port_kinds.unavailable("veth") is not None:
        pytest.skip(f"veth ports cannot run here: {port_kinds.unavailable('veth')}")
    t = Tenants(tmp_path)
    plen, gateway = t.net.prefixlen, str(t.net.network_address + 1)

    def with_ring(frames):
        t.write("a", extra=config_text.namespace("c", "l3", f"{t.ip('c')}/{plen}")
                + config_text.table("[[port]]", name=t.link("c"), namespace="c",
                                    netns=t.netns("c"), address=f"{t.ip('c')}/{plen}",
                                    gateway=gateway, kind="veth", ring_frames=frames))

    def slots():
        with ControlClient(t.sock) as client:
            return client.call("stats")["rings"][t.link("c")]["rx_slots"]

    with_ring(256)
    with t.daemon() as daemon:
        assert slots() == 256
        assert received(t.ping("c", "a", count=2).stdout) == (2, 2)
        with_ring(2048)
        done = t.ctl("reload")
        assert done.returncode == 0 and f"port {t.link('c')} goes (changed: it comes back)" \
            in done.stdout, done
        assert slots() == 2048
        assert received(t.ping("c", "a", count=2).stdout) == (2, 2)
        with_ring(1000)
        done = t.ctl("reload")
        assert done.returncode != 0 and "power of two" in done.stderr, done
        assert slots() == 2048
        status, _, err = daemon.stop()
    assert status == 0, err


def test_a_reload_needs_the_admin_socket(tmp_path):
    t = Tenants(tmp_path)
    t.write("a", sockets=("a",))
    with t.daemon() as daemon:
        with ControlClient(str(tmp_path / "ns" / "a.sock")) as client:
            with pytest.raises(errors.PermissionDenied) as refused:
                client.call("reload")
        assert "admin socket only" in refused.value.message
        daemon.stop()


def test_a_daemon_not_started_from_a_file_has_nothing_to_reload(tapswitch_factory):
    topo = tapswitch_factory()
    topo.start()
    with ControlClient(topo.socket_path) as admin:
        with pytest.raises(errors.NotSupported) as refused:
            admin.call("reload")
    assert "not started from a topology file" in refused.value.message
