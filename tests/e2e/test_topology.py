"""End-to-end: the test-rig API (pyctl.rig.topology) in both modes -- the switch on a
thread of this process, and the switch as a child `tapswitch run` daemon --
through the project's own pytest fixtures.  Traffic stays between the
kernel namespaces each topology made; every test checks what it leaves."""
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading

import pytest

from pyctl import errors, kernel

from pyctl.rig import probes
from pyctl.rig.topology import Topology, TopologyLeak


@pytest.fixture(params=["thread", "process"])
def mode(request):
    return request.param


def _ours(topo):
    """The kernel namespaces of this topology that exist right now."""
    return [n for n in kernel.list_netns() if f"-{topo.id}-" in n]


def _udp(src, dst, port, payload=b"x"):
    rx = probes.udp_receiver(dst, dst.ip, port)
    try:
        probes.udp_send(src, dst.ip, port, [payload])
        return [data for data, _ in probes.drain(rx, 0.5)]
    finally:
        rx.close()


def test_two_tenants_talk_in_both_modes(tapswitch_factory, mode):
    topo = tapswitch_factory(mode)
    topo.address_add("init", "10.0.0.1/24")
    a, b = topo.tenant("a", "10.0.0.2/24"), topo.tenant("b", "10.0.0.3/24")
    topo.start()
    assert sorted(_ours(topo)) == sorted([a.netns_name, b.netns_name])
    assert len(probes.ping(a, b.ip, count=2)) == 2
    assert _udp(b, a, 7001, b"b to a") == [b"b to a"]
    # run / call / socket all land in the tenant's own kernel stack
    assert "10.0.0.2/24" in a.run(["ip", "-4", "-o", "addr", "show"]).stdout
    assert b.call(_kernel_addresses) == ["10.0.0.3"]
    counters = topo.counters()
    assert counters["namespaces"]["a"]["rx_packets"] > 0
    assert set(topo.namespaces()) == {"init", "a", "b"}
    with topo.client() as ctl:
        assert ctl.call("ping") == "pong"


def _kernel_addresses():
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"],
                         capture_output=True, text=True, check=True).stdout
    return [line.split()[3].split("/")[0] for line in out.splitlines()]


def test_live_changes_in_both_modes(tapswitch_factory, mode):
    topo = tapswitch_factory(mode)
    topo.address_add("init", "10.0.0.1/24")
    a = topo.tenant("a", "10.0.0.2/24")
    topo.start()
    b = topo.tenant("b", "10.0.0.3/24")                  # a tenant added live
    assert _udp(a, b, 7002) == [b"x"]
    topo.address_add("init", "10.0.0.9/24")
    topo.push("10.0.0.9/24", "b")
    assert "10.0.0.9" in b.call(_kernel_addresses)       # mirrored into b's kernel stack
    topo.destroy("b")
    assert "b" not in topo.tenants and b.netns_name not in kernel.list_netns()
    assert {"10.0.0.3/24", "10.0.0.9/24"} <= set(topo.addresses("init"))
    with pytest.raises(errors.NotFound):
        b.run(["true"])


def test_a_refused_live_tenant_changes_nothing(tapswitch_factory, mode):
    topo = tapswitch_factory(mode)
    topo.address_add("init", "10.0.0.1/24")
    topo.tenant("a", "10.0.0.2/24")
    topo.start()
    names, netns, own = topo.namespaces(), _ours(topo), topo.addresses("init")
    with pytest.raises(errors.AddressInUse):
        topo.tenant("b", "10.0.0.2/24")                 # a's address
    with pytest.raises(errors.InvalidArgument):
        topo.tenant("c", "10.0.0.4/24", mtu=10)         # the model refuses the port
    assert (topo.namespaces(), _ours(topo), topo.addresses("init")) == (names, netns, own)
    assert list(topo.tenants) == ["a"]


def test_a_kernel_namespace_made_by_someone_else_is_left_alone(tapswitch_factory, mode,
                                                               make_netns):
    topo = tapswitch_factory(mode)
    topo.address_add("init", "10.0.0.1/24")
    a = topo.tenant("a", "10.0.0.2/24")
    taken = make_netns(f"{topo.prefix}-{topo.id}-x")   # the name tenant "x" would get
    with pytest.raises(errors.AlreadyExists, match=taken.name):
        topo.tenant("x", "10.0.0.5/24")
    assert topo.namespaces() == ["init", "a"] and "x" not in topo.tenants
    b = topo.tenant("b", "10.0.0.3/24")
    squatter = make_netns(b.netns_name)     # made by someone else between tenant() and start()
    topo.start()                            # the switch enters it without taking it over
    assert _udp(a, b, 7005) == [b"x"]
    topo.close()
    assert topo.leftovers == []
    assert squatter.alive and b.netns_name in kernel.list_netns()
    assert a.netns_name not in kernel.list_netns()
    assert b.port not in squatter.links()   # the TAP went with the switch's fd


def test_a_failure_while_starting_leaves_nothing(tapswitch_factory, monkeypatch):
    from pyctl.daemon import tap_port as ports
    real_open = ports.TapPort.open.__func__
    opened = []

    def open_then_fail(cls, *args, **kwargs):
        if opened:
            raise errors.Busy("the second TAP fails")
        opened.append(real_open(cls, *args, **kwargs))
        return opened[-1]
    monkeypatch.setattr(ports.TapPort, "open", classmethod(open_then_fail))
    topo = tapswitch_factory("thread")
    topo.address_add("init", "10.0.0.1/24")
    topo.tenant("a", "10.0.0.2/24")
    topo.tenant("b", "10.0.0.3/24")
    fds = len(os.listdir("/proc/self/fd"))
    with pytest.raises(errors.Busy, match="second TAP"):
        topo.start()
    assert opened and opened[0].closed
    assert topo.closed and _ours(topo) == [] and topo.leftovers == []
    assert len(os.listdir("/proc/self/fd")) == fds
    assert not [t for t in threading.enumerate() if topo.id in t.name]


def test_close_is_idempotent_and_final(tapswitch_factory, mode):
    topo = tapswitch_factory(mode)
    topo.tenant("a", "10.0.0.2/24")
    topo.start()
    topo.close()
    topo.close()
    assert _ours(topo) == [] and topo.socket_path is None
    with pytest.raises(errors.InvalidArgument, match="closed"):
        topo.tenant("b", "10.0.0.3/24")


def test_an_exception_in_the_block_still_cleans_up(mode):
    with pytest.raises(ZeroDivisionError):
        with Topology(mode) as topo:
            topo.tenant("a", "10.0.0.2/24")
            topo.start()
            assert _ours(topo)
            1 / 0
    assert topo.closed and _ours(topo) == []


def test_ctrl_c_in_the_block_cleans_up(mode, ctrl_c):
    with pytest.raises(KeyboardInterrupt):
        with Topology(mode) as topo:
            topo.tenant("a", "10.0.0.2/24")
            topo.start()
            os.kill(os.getpid(), signal.SIGINT)
            threading.Event().wait(5)                   # the interrupt lands here
    assert topo.closed and _ours(topo) == []


def test_ctrl_c_during_start_is_held_then_raised(monkeypatch, mode, ctrl_c):
    """A Ctrl-C that arrives while the kernel objects are being made is delivered
    once they are consistent: start() raises KeyboardInterrupt, nothing remains."""
    topo = Topology(mode)
    topo.tenant("a", "10.0.0.2/24")
    if mode == "thread":
        from pyctl.daemon.daemon import Daemon
        real_start = Daemon.start

        def start_interrupted(self, *args, **kwargs):
            os.kill(os.getpid(), signal.SIGINT)
            return real_start(self, *args, **kwargs)
        monkeypatch.setattr(Daemon, "start", start_interrupted)
    else:
        from pyctl.rig.topology_child import ChildDaemon
        real_start = ChildDaemon.start

        def start_interrupted(self, *args, **kwargs):
            os.kill(os.getpid(), signal.SIGINT)
            return real_start(self, *args, **kwargs)
        monkeypatch.setattr(ChildDaemon, "start", start_interrupted)
    with pytest.raises(KeyboardInterrupt):
        topo.start()
    assert topo.closed and _ours(topo) == []
    assert topo.process is None or topo.process.poll() is not None


def test_two_topologies_in_one_process_do_not_collide(tapswitch_factory):
    one, two = tapswitch_factory("thread"), tapswitch_factory("process")
    for topo in (one, two):                           # same names, same addresses
        topo.address_add("init", "10.0.0.1/24")
        topo.tenant("a", "10.0.0.2/24")
        topo.tenant("b", "10.0.0.3/24")
        topo.start()
    for topo in (one, two):
        a, b = topo.tenants["a"], topo.tenants["b"]
        assert _udp(a, b, 7003, topo.id.encode()) == [topo.id.encode()]
    for topo in (one, two):
        assert topo.counters()["namespaces"]["a"]["rx_packets"] >= 1
    assert set(_ours(one)).isdisjoint(_ours(two))


_OTHER_PROCESS = textwrap.dedent("""
    import sys
    from pyctl.rig import probes
    from pyctl.rig.topology import Topology
    with Topology() as topo:
        topo.address_add("init", "10.0.0.1/24")
        a, b = topo.tenant("a", "10.0.0.2/24"), topo.tenant("b", "10.0.0.3/24")
        topo.start()
        print("ready", topo.id, flush=True)
        sys.stdin.readline()                 # the parent's topology runs meanwhile
        rx = probes.udp_receiver(b, b.ip, 7004)
        probes.udp_send(a, b.ip, 7004, [b"other process"])
        print([d for d, _ in probes.drain(rx, 0.5)], flush=True)
        rx.close()
""")


def test_two_topologies_in_two_processes_do_not_collide(tapswitch_factory):
    child = subprocess.Popen([sys.executable, "-c", _OTHER_PROCESS], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = child.stdout.readline().split()
        assert first[:1] == ["ready"], child.stderr.read()
        topo = tapswitch_factory()
        topo.address_add("init", "10.0.0.1/24")
        a, b = topo.tenant("a", "10.0.0.2/24"), topo.tenant("b", "10.0.0.3/24")
        topo.start()
        assert topo.id != first[1]
        assert _udp(a, b, 7004, b"this process") == [b"this process"]
        out, err = child.communicate("go\n", timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 0, err
    assert out.strip() == "[b'other process']"
    assert not [n for n in kernel.list_netns() if f"-{first[1]}-" in n]


def test_a_killed_child_is_swept_and_reported(tapswitch_factory):
    topo = tapswitch_factory("process")
    topo.tenant("a", "10.0.0.2/24")
    topo.start()
    topo.process.kill()
    topo.process.wait()
    assert _ours(topo)                                 # the dead child could not clean up
    with pytest.raises(RuntimeError, match="status -9"):
        topo.close()
    assert _ours(topo) == []
    assert topo.leftovers == [f"netns {topo.tenants['a'].netns_name}"]


def test_a_child_that_ignores_sigterm_is_killed(tapswitch_factory):
    topo = tapswitch_factory("process", stop_timeout=0.5)
    topo.tenant("a", "10.0.0.2/24")
    topo.start()
    os.kill(topo.process.pid, signal.SIGSTOP)          # SIGTERM waits; SIGKILL does not
    with pytest.raises(RuntimeError, match="killed"):
        topo.close()
    assert topo.process.returncode == -signal.SIGKILL
    assert _ours(topo) == []


def test_leftovers_of_a_clean_stop_are_an_error(tapswitch_factory, monkeypatch):
    """If the switch stopped cleanly yet a kernel namespace of the topology is
    still there, close() removes it and says so (TopologyLeak)."""
    topo = tapswitch_factory("thread")
    a = topo.tenant("a", "10.0.0.2/24")
    topo.start()
    from pyctl.daemon import port_manager as daemon_ports
    monkeypatch.setattr(daemon_ports.PortManager, "_release_netns", lambda self, name: None)
    monkeypatch.setattr(topo.daemon.registry, "cleanup", lambda: [])
    with pytest.raises(TopologyLeak, match=a.netns_name):
        topo.close()
    assert a.netns_name not in kernel.list_netns()


def test_process_mode_reports_the_childs_refusal(tapswitch_factory, monkeypatch):
    topo = tapswitch_factory("process")
    topo.tenant("a", "10.0.0.2/24")
    from pyctl.rig import topology_child
    real = topology_child.config_toml

    def broken(*args, **kwargs):
        text, joins = real(*args, **kwargs)
        return text + '\n[[port]]\nname = "x"\nnamespace = "nowhere"\n', joins
    monkeypatch.setattr(topology_child, "config_toml", broken)
    with pytest.raises(errors.InvalidArgument, match="nowhere"):
        topo.start()
    assert topo.closed and _ours(topo) == []


def test_sockets_of_a_tenant_live_in_its_namespace(tapswitch_topology):
    a = tapswitch_topology.tenants["a"]
    with a.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((a.ip, 0))                           # only a's stack holds this address
    with pytest.raises(OSError):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((a.ip, 0))


def test_the_ready_time_benchmark_runs(capsys):
    from bench import topology_ready
    assert topology_ready.main(["--runs", "1", "--modes", "thread"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["mode", "runs"] and lines[2].split()[:2] == ["thread", "1"]


def _own_cpus():
    return sorted(os.sched_getaffinity(0))


PRINT_CPUS = [sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"]


def test_placement_of_the_switch_and_of_each_tenants_processes(tapswitch_factory, mode):
    cpus = _own_cpus()
    first, last = cpus[0], cpus[-1]
    topo = tapswitch_factory(mode, cpus=[last])
    topo.address_add("init", "10.0.0.1/24")
    a = topo.tenant("a", "10.0.0.2/24", cpus=[first])
    b = topo.tenant("b", "10.0.0.3/24")                     # not placed: anywhere
    topo.start()
    assert topo.stats()["packet_thread"]["cpus"] == [last]
    assert a.run(PRINT_CPUS).stdout.strip() == str([first])
    assert a.run(PRINT_CPUS, cpus=[last]).stdout.strip() == str([last])   # one command elsewhere
    assert b.run(PRINT_CPUS).stdout.strip() == str(cpus)
    assert a.call(_affinity) == [first] and b.call(_affinity) == cpus
    proc = a.popen(PRINT_CPUS, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == str([first])
    proc.wait(10)
    sleeper = a.popen(["sleep", "60"])
    assert len(probes.ping(a, b.ip, count=2)) == 2           # placed, still forwarding
    topo.close()
    assert sleeper.poll() is not None                         # close() stopped what popen started


def _affinity():
    return sorted(os.sched_getaffinity(0))


def test_a_placement_that_cannot_be_applied_is_refused_before_anything_is_made():
    with pytest.raises(errors.InvalidArgument, match="CPU 4096 does not exist here"):
        Topology(cpus=[4096])
    with Topology() as topo:
        with pytest.raises(errors.InvalidArgument, match="listed twice"):
            topo.tenant("a", "10.0.0.2/24", cpus=[0, 0])
        assert topo.tenants == {} and topo.namespaces() == ["init"]
