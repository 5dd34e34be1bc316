"""Crash recovery (issue 14 item 17): `tapswitch run` killed with SIGKILL leaves its kernel
namespaces behind; a restart on the same config takes over what the dead daemon made
(its state file and the namespaces' cookies say which), removes what the config no
longer names, deletes links carrying the dead run's marker, and still leaves alone a
namespace or a link that someone else made under the same name."""
import json
import signal
import subprocess
import sys

import pytest

from pyctl import kernel
from pyctl.kernel import netns_exec
from pyctl.rig import probes
from tests.e2e.daemon_process import DaemonProcess
from tests.support import config_text

TENANTS = {"a": 2, "b": 3, "c": 4}


@pytest.fixture
def crashed(tmp_path):
    """A daemon with tenants a, b, c, killed with SIGKILL; ``crashed.config(names)`` writes
    the config for a restart; the leftovers are swept whatever happens."""
    tag = kernel.unique_name("x")[-6:]
    sock = tmp_path / "ctl.sock"

    class Crashed:
        netns = {name: f"ts{name}-{tag}" for name in TENANTS}
        links = {name: f"t{name}{tag}" for name in TENANTS}
        socket, state = str(sock), tmp_path / "ctl.state"

        def config(self, names):
            path = tmp_path / f"topology-{''.join(names)}.toml"
            path.write_text(config_text.daemon(sock) + config_text.root("10.0.0.1/24") + "".join(
                config_text.tenant(n, f"10.0.0.{TENANTS[n]}/24", port=f"t{n}{tag}",
                                   netns=f"ts{n}-{tag}", gateway="10.0.0.1") for n in names))
            return path

        def daemon(self, names, sweep=True):
            """The daemon; leaving the block sweeps the names (not with ``sweep=False``)."""
            return DaemonProcess(self.config(names), sock,
                                 netns=list(self.netns.values()) if sweep else (),
                                 links=list(self.links.values()) if sweep else ())

        def handle(self, name):
            handle = kernel.NetNamespace.attach(self.netns[name])
            handles.append(handle)
            return handle

    crashed, handles = Crashed(), []
    try:
        with crashed.daemon(list(TENANTS), sweep=False) as first:
            crashed.cookies = {n: crashed.handle(n).cookie for n in TENANTS}
            crashed.receiver = probes.udp_receiver(crashed.handle("a"), "10.0.0.2", 7100)
            probes.udp_send(crashed.handle("b"), "10.0.0.2", 7100, [b"before"])
            assert [d for d, _ in probes.drain(crashed.receiver)] == [b"before"]
            crashed.token = json.loads(crashed.state.read_text())["tokens"][-1]
            status, _, _ = first.stop(signal.SIGKILL)
        assert status == -signal.SIGKILL
        assert set(crashed.netns.values()) <= set(kernel.list_netns())     # the leak
        yield crashed
    finally:
        for handle in handles:
            handle.remove()
        if getattr(crashed, "receiver", None):
            crashed.receiver.close()
        from pyctl.rig.topology_child import sweep
        sweep(list(crashed.netns.values()), list(crashed.links.values()))


def _cookie(name):
    handle = kernel.NetNamespace.attach(name)
    try:
        return handle.cookie
    finally:
        handle.remove()


def test_restart_takes_over_its_own_leftovers_and_leaves_foreign_ones_alone(crashed, make_netns):
    # after the crash: someone else deletes b's namespace and makes one of the same name
    netns_exec.remove_named_netns(f"{kernel.NETNS_RUN_DIR}/{crashed.netns['b']}")
    foreign = make_netns(crashed.netns["b"])
    foreign.run(["ip", "link", "add", "mine0", "type", "veth", "peer", "name", "mine1"])
    # a link the dead run marked (its fd outlived it), in the host under a's TAP name
    subprocess.run(["ip", "link", "add", crashed.links["a"], "type", "veth", "peer", "name",
                    f"p{crashed.links['a']}"[:15]], check=True)
    kernel.host.set_alias(crashed.links["a"], f"tapswitch {crashed.token}")

    with crashed.daemon(["a", "b"]) as second:       # c is no longer in the config
        assert _cookie(crashed.netns["a"]) == crashed.cookies["a"]        # taken over
        assert crashed.netns["c"] not in kernel.list_netns()              # removed
        assert _cookie(crashed.netns["b"]) == foreign.cookie != crashed.cookies["b"]
        assert "mine0" in foreign.links()                                 # entered, untouched
        assert f"p{crashed.links['a']}"[:15] not in kernel.host.links()   # marked link gone
        # the socket a's tenant opened before the crash still receives: same namespace
        probes.udp_send(crashed.handle("b"), "10.0.0.2", 7100, [b"after"])
        assert [d for d, _ in probes.drain(crashed.receiver, 2.0)] == [b"after"]
        assert probes.ping(crashed.handle("a"), "10.0.0.3", count=2, timeout=2.0)
        state = json.loads(crashed.state.read_text())
        assert set(state["netns"]) == {crashed.netns["a"]}
        assert set(state["entered"]) == {crashed.netns["b"]}
        status, _, err = second.stop()
        assert status == 0, err
        assert crashed.netns["a"] not in kernel.list_netns()              # now its own: gone
        assert foreign.named and "mine0" in foreign.links()               # still someone else's
        assert not crashed.state.exists()


def test_a_foreign_link_with_a_port_name_still_refuses_the_port(crashed):
    subprocess.run(["ip", "link", "add", crashed.links["b"], "type", "veth", "peer", "name",
                    f"q{crashed.links['b']}"[:15]], check=True)     # no marker: not the switch's
    try:
        proc = subprocess.run([sys.executable, "-m", "pyctl", "run",
                               str(crashed.config(["a", "b"]))],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1
        assert "EEXIST" in proc.stderr and crashed.links["b"] in proc.stderr
        assert crashed.links["b"] in kernel.host.links()            # left as it was
    finally:
        kernel.host.delete_link(crashed.links["b"])


def test_a_second_daemon_on_the_same_state_file_is_refused(crashed):
    with crashed.daemon(["a", "b"]):
        proc = subprocess.run([sys.executable, "-m", "pyctl", "run",
                               str(crashed.config(["a", "b"]))],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1 and "EBUSY" in proc.stderr
        assert "state file" in proc.stderr
