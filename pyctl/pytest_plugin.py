"""tapswitch's pytest plugin: isolated hosts with real kernel network stacks,
wired through a tapswitch switch, made for a test and gone when it ends.

Installing tapswitch registers it (entry point ``pytest11``: ``tapswitch``),
so these fixtures are available to any test suite, no conftest needed:

``tapswitch_topology``
    A started ``pyctl.rig.topology.Topology``, dual-stack, on the IPv4 subnet of
    ``tapswitch_subnet`` (say 10.23.7.0/24) and fd00::/64: the root L2 ``init``
    holds the switch's own addresses .1 and fd00::1 (the tenants' gateways,
    ``topo.gateway`` and ``topo.gateway6``), and two L3 tenants ``a`` (.2,
    fd00::2) and ``b`` (.3, fd00::3) each have a TAP in their own kernel network
    namespace, configured and up, default routes via the gateways (``topo.subnet``
    and ``topo.subnet6`` are the networks).
    ``topo.tenants["a"]`` is a ``Tenant``: ``.ip`` (its IPv4), ``.ip6``, ``.run(argv)``,
    ``.call(func, *args)`` (a picklable callable run in a child inside the
    namespace), ``.socket(family, type)`` (a socket created in it).

``tapswitch_port_kind``
    The port kind tenants of these fixtures get (``--tapswitch-kind``, default
    ``tap``); a test suite parametrizes it to run its tests over every kind
    (tapswitch's own tests/e2e do: ``pytest.mark.port_kinds``).

``tapswitch_factory``
    ``make(mode=None, **kwargs) -> Topology`` for anything else: build with
    ``l2()``, ``tenant()`` (one family or both: ``tenant("c", "10.0.0.4/24",
    "fd00::4/64")``), ``address_add()``, ``route_add()``, then
    ``start()``; push/pull/destroy/join live; ``counters()``.  Placement:
    ``make(cpus=[1])`` pins the switch's packet thread, ``tenant(..., cpus=[0])``
    runs that tenant's ``run``/``popen``/``call`` processes there.  Every topology
    made is closed when the test ends, passed or failed; a topology that left
    a kernel object behind makes the test error (``TopologyLeak``).

Examples: examples/test_with_tapswitch.py, a complete file to copy (a datagram from
``a`` to ``b``, commands and functions run inside a tenant, TCP through the switch,
two isolated networks with the same addresses, live changes and counters).

``tapswitch_subnet``
    A free IPv4 subnet for a test's tenants (``ipaddress.IPv4Network``): a
    random /24 of 10.0.0.0/8 that no route of the host covers
    (``pyctl.rig.subnets``), or the one ``--tapswitch-subnet`` gives.

Options:

``--tapswitch-kind=tap|veth|xdp|auto``
    The tenants' port kind (``tapswitch_port_kind``).

``--tapswitch-mode=thread|process``
    Where the switch runs for topologies made without an explicit ``mode``:
    ``thread`` (default) in the test process, its packet loop on its own
    thread; ``process`` as a child ``tapswitch run`` daemon driven through
    its control socket.

``--tapswitch-subnet=10.99.0.0/24``
    The subnet of ``tapswitch_subnet`` (and so of ``tapswitch_topology``)
    instead of a free one picked at random.

Tests using these fixtures need root (TAP devices and kernel network
namespaces): without it they are skipped, with that reason.  Each topology's
kernel objects have names unique to it, so tests may run in parallel
(pytest-xdist) and alongside other tapswitch users on the machine.
"""
import os

import pytest

ROOT_REASON = "tapswitch topologies need root (TAP devices and kernel network namespaces)"
DEFAULT_MODE = "thread"
DEFAULT_KIND = "tap"


def pytest_addoption(parser):
    group = parser.getgroup("tapswitch")
    group.addoption("--tapswitch-mode", choices=("thread", "process"), default=None,
                    help="where tapswitch fixtures run the switch: in the test process "
                         "(thread, the default) or as a child daemon (process)")
    group.addoption("--tapswitch-kind", choices=("tap", "veth", "xdp", "auto"), default=None,
                    help="the port kind of the tenants tapswitch fixtures make (default tap)")
    group.addoption("--tapswitch-subnet", default=None, metavar="A.B.C.D/N",
                    help="the IPv4 subnet of the tapswitch_topology fixture (default: a free "
                         "/24 of 10.0.0.0/8, picked at random)")


def _require_root():
    if os.geteuid() != 0:
        pytest.skip(ROOT_REASON)


@pytest.fixture
def tapswitch_port_kind(request):
    """The port kind of the fixtures' tenants (``--tapswitch-kind``, default tap)."""
    return request.config.getoption("tapswitch_kind", None) or DEFAULT_KIND


@pytest.fixture
def tapswitch_factory(request, tapswitch_port_kind):
    """``make(mode=None, **kwargs)``: a new Topology, closed when the test ends."""
    _require_root()
    from pyctl.rig.topology import Topology
    default_mode = request.config.getoption("tapswitch_mode", None) or DEFAULT_MODE
    made = []

    def make(mode=None, **kwargs):
        kwargs.setdefault("kind", tapswitch_port_kind)
        topo = Topology(mode or default_mode, **kwargs)
        made.append(topo)
        return topo

    yield make
    failures = []
    for topo in reversed(made):
        try:
            topo.close()
        except Exception as exc:  # close every topology, then report the first failure
            failures.append(exc)
    if failures:
        raise failures[0]


@pytest.fixture
def tapswitch_subnet(request):
    """A free IPv4 subnet (or ``--tapswitch-subnet``'s)."""
    from pyctl.rig import subnets
    given = request.config.getoption("tapswitch_subnet", None)
    return subnets.parse_subnet(given) if given else subnets.free_subnet()


TOPOLOGY_SUBNET6 = "fd00::/64"     # the tenants' own kernels hold it: no host route meets it


@pytest.fixture
def tapswitch_topology(tapswitch_factory, tapswitch_subnet):
    """A started dual-stack topology: the gateways .1 and fd00::1 in ``init``, tenants
    ``a`` (.2, fd00::2) and ``b`` (.3, fd00::3) of ``tapswitch_subnet`` and fd00::/64."""
    import ipaddress
    net, net6 = tapswitch_subnet, ipaddress.ip_network(TOPOLOGY_SUBNET6)
    gateway, a, b = (f"{net.network_address + k}/{net.prefixlen}" for k in (1, 2, 3))
    gateway6, a6, b6 = (f"{net6.network_address + k}/{net6.prefixlen}" for k in (1, 2, 3))
    topo = tapswitch_factory()
    topo.subnet, topo.gateway = net, gateway.split("/")[0]
    topo.subnet6, topo.gateway6 = net6, gateway6.split("/")[0]
    topo.address_add("init", gateway)
    topo.address_add("init", gateway6)
    topo.tenant("a", a, a6)
    topo.tenant("b", b, b6)
    return topo.start()
