"""Shared fixtures for the root-only end-to-end tests (real kernel namespaces).

Every test in tests/e2e is skipped, with the reason, when the process cannot
create network namespaces (not root, or no CAP_SYS_ADMIN). Fixtures give each
test its own cleanup registry, so whatever it creates is removed when it
ends, also when it fails.

A test (or module) marked ``port_kinds`` runs once per port kind of the tenants the
plugin's fixtures make (``tapswitch_port_kind``: tap, veth, xdp); a kind this machine
cannot run is skipped with the reason.
"""

import functools
import os

import pytest

from pyctl import kernel
from pyctl.rig import probes


@functools.cache
def _namespaces_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root to create kernel network namespaces"
    try:
        kernel.NetNamespace(prefix="tsprobe", registry=kernel.CleanupRegistry()).remove()
    except OSError as exc:
        return f"cannot create a network namespace here: {exc}"
    return None


PORT_KINDS = ("tap", "veth", "xdp")


def pytest_generate_tests(metafunc):
    if metafunc.definition.get_closest_marker("port_kinds") is None:
        return
    if "tapswitch_port_kind" not in metafunc.fixturenames:
        raise pytest.UsageError(f"{metafunc.definition.nodeid} is marked port_kinds but makes "
                                f"no topology through tapswitch_factory/tapswitch_topology")
    metafunc.parametrize("tapswitch_port_kind", PORT_KINDS, indirect=True)


@pytest.fixture
def tapswitch_port_kind(request):
    """The kind this run of a ``port_kinds`` test uses (a parameter; tap otherwise),
    skipped when this machine cannot serve it."""
    kind = getattr(request, "param", None) or request.config.getoption("tapswitch_kind", None) or "tap"
    if os.geteuid() == 0:
        from pyctl.daemon.port_kinds import unavailable
        why = unavailable(kind)
        if why is not None:
            pytest.skip(f"port kind {kind}: {why}")
    return kind


def pytest_collection_modifyitems(config, items):
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.root)
            reason = _namespaces_unavailable()
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def kernel_registry():
    """A cleanup registry private to the test, emptied when the test ends."""
    reg = kernel.CleanupRegistry()
    yield reg
    failures = reg.cleanup()
    assert not failures, f"cleanup failed: {failures}"


@pytest.fixture
def make_netns(kernel_registry):
    """Factory: ``make_netns()`` returns a new uniquely named NetNamespace that
    is removed when the test ends."""
    return functools.partial(kernel.NetNamespace, registry=kernel_registry)


@pytest.fixture
def two_tenants(tapswitch_factory, tapswitch_subnet):
    """A started topology on the test's subnet: the switch's .1 in ``init``, L3 tenants
    ``a`` (.2) and ``b`` (.3), one ping a -> b done (their neighbours are learnt, ARP
    is behind them): (topology, a, b)."""
    net = tapswitch_subnet
    topo = tapswitch_factory()
    topo.address_add("init", f"{net.network_address + 1}/{net.prefixlen}")
    a = topo.tenant("a", f"{net.network_address + 2}/{net.prefixlen}")
    b = topo.tenant("b", f"{net.network_address + 3}/{net.prefixlen}")
    topo.start()
    assert len(probes.ping(a, b.ip, count=1)) == 1
    return topo, a, b
