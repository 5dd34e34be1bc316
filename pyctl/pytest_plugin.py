"""tapswitch's pytest plugin, registered through the ``pytest11`` entry point:
installing tapswitch makes these fixtures available to any test suite.

- ``tapswitch_topology``: a started topology, one L2 (``init``, the switch's
  own address 10.0.0.1/24) and two L3 tenants ``a`` (10.0.0.2) and ``b``
  (10.0.0.3), each with a real kernel network stack behind its TAP.
- ``tapswitch_factory``: ``make(**kwargs) -> Topology`` for custom ones; every
  topology made is closed when the test ends, passed or failed.

Tests using them are skipped, with the reason, when not run as root.
"""
import os

import pytest

ROOT_REASON = "tapswitch topologies need root (TAP devices and kernel network namespaces)"


def _require_root():
    if os.geteuid() != 0:
        pytest.skip(ROOT_REASON)


@pytest.fixture
def tapswitch_factory():
    _require_root()
    from pyctl.topology import Topology
    made = []

    def make(**kwargs):
        topo = Topology(**kwargs)
        made.append(topo)
        return topo

    yield make
    errors = []
    for topo in reversed(made):
        try:
            topo.close()
        except Exception as exc:  # report every failure, close every topology
            errors.append(exc)
    if errors:
        raise errors[0]


@pytest.fixture
def tapswitch_topology(tapswitch_factory):
    topo = tapswitch_factory()
    topo.add_address("init", "10.0.0.1/24")
    topo.tenant("a", "10.0.0.2/24")
    topo.tenant("b", "10.0.0.3/24")
    return topo.start()
