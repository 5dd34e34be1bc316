"""Every fast-path test body runs against the reference and the compiled core; the
packet-loop tests share ``rig``."""
import pytest

import fastpath
from fastpath import Datapath
from fastpath.reference import ReferenceDatapath
from tests.support.io import FakeTap, TENANTS, world

IMPLEMENTATIONS = [ReferenceDatapath, Datapath]


@pytest.fixture(params=IMPLEMENTATIONS, ids=["ref", "core"])
def make_dp(request):
    """The Datapath class under test (call it with capacities as keyword args)."""
    return request.param


@pytest.fixture
def rig(backend):
    """A loop over world() with fake TAPs on ports 1..3 (no virtio-net header):
    (datapath, loop, {port: FakeTap})."""
    dp = world()
    loop = fastpath.PacketLoop(dp, batch_size=16, slot_size=4096, backend=backend)
    taps = {p: FakeTap() for p in TENANTS}
    for p, t in taps.items():
        loop.add_port(p, t.loop_fd)
    yield dp, loop, taps
    loop.close()            # released here, not whenever the loop is collected
    for t in taps.values():
        t.close()
