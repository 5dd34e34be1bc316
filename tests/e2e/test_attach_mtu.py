"""An ``attach`` port's MTU is its interface's (issue 17): the switch reads it when the
port opens and the fast path bounds the frames out of the port by it, as the ``mtu``
option bounds another port's -- a 9000-byte interface takes an 8000-byte packet, a
1400-byte one refuses a 1450-byte packet with fragmentation needed (MTU 1400) -- and a
reload reads it again after the interface's owner changed it.  The attached interface
is the host end of a veth whose other end is in a namespace playing a container the
switch did not make (configured by the test, statically)."""
import random

import pytest

from pyctl import kernel
from pyctl.daemon import port_kinds
from pyctl.rig import probes

pytestmark = pytest.mark.skipif(port_kinds.unavailable("attach") is not None,
                                reason=f"attach: {port_kinds.unavailable('attach')}")


@pytest.fixture
def container(make_netns, kernel_registry):
    """``make(mtu, ip, gateway)``: a veth pair of ``mtu``, one end in this namespace and
    up, the other in a new namespace holding ``ip`` with a default route via ``gateway``;
    (host end name, namespace, its end's name).  Both go when the test ends."""

    def make(mtu, ip, gateway):
        host, inner = kernel.unique_name("tah"), kernel.unique_name("tac")
        netns = make_netns(prefix="tsctr")
        kernel.create_veth(host, inner, netns_b=netns, registry=kernel_registry)
        for ns, name in ((kernel.host, host), (netns, inner)):
            ns.set_mtu(name, mtu)
            ns.link_up(name)
        netns.run(["ip", "address", "add", ip, "dev", inner])
        netns.run(["ip", "route", "add", "default", "via", gateway])
        return host, netns, inner

    return make


def started(factory, container, mtu):
    """b (MTU 9000, a tenant of the topology's kind) and an attached container behind a
    veth of ``mtu``, both in one L2: (topology, b, the container's namespace, its IP)."""
    net = random.randint(16, 250)
    topo = factory("thread")
    topo.address_add("init", f"10.{net}.0.1/24")
    b = topo.tenant("b", f"10.{net}.0.3/24", mtu=9000)
    host, netns, _ = container(mtu, f"10.{net}.0.5/24", f"10.{net}.0.1")
    topo.attach("ctr", host, f"10.{net}.0.5/24")
    topo.start()
    ip = f"10.{net}.0.5"
    assert probes.ping(b, ip, count=2)              # neighbours first: only the MTU can refuse
    return topo, b, netns, ip


def df_ping(src, ip, size):
    """One ping of an IP packet of ``size`` bytes, don't-fragment: whether it came back."""
    return src.run(["ping", "-M", "do", "-s", str(size - 28), "-c", "1", "-W", "2", ip],
                   check=False).returncode == 0


def test_an_attached_9000_byte_interface_takes_an_8000_byte_packet(tapswitch_factory, container):
    topo, b, _, ip = started(tapswitch_factory, container, 9000)
    assert df_ping(b, ip, 8000)
    port = next(p for p in topo.ports() if p["namespace"] == "ctr")
    assert topo.daemon.view.port_mtu(port["id"]) == 9000
    assert topo.daemon.datapath.port_mtu(port["id"]) == 9000


def test_an_attached_1400_byte_interface_refuses_1450_and_a_reload_reads_it_again(
        tapswitch_factory, container):
    topo, b, netns, ip = started(tapswitch_factory, container, 1400)
    assert df_ping(b, ip, 1400)
    errors = probes.icmp_errors(b, lambda: df_ping(b, ip, 1450))
    assert any(e[:2] == (3, 4) and e[3] == 1400 for e in errors), errors
    assert topo.stats()["slowpath"]["too_big_df"] >= 1
    host = next(p for p in topo.ports() if p["namespace"] == "ctr")["name"]
    kernel.host.set_mtu(host, 9000)                 # the owner changes it; then a reload
    netns.set_mtu(_inner(netns), 9000)
    b.run(["ip", "route", "flush", "cache"])        # b forgets the path MTU it learnt
    changed = topo.daemon.call(topo.daemon.refresh_attached)
    assert changed == [f"port {host}: MTU 9000 (its interface's)"]
    assert topo.daemon.call(topo.daemon.refresh_attached) == []
    assert probes.ping(b, ip, count=1)
    assert df_ping(b, ip, 8000)


def _inner(netns):
    """The container's end of its veth (the namespace's only link besides lo)."""
    return next(name for name in netns.links() if name != "lo")
