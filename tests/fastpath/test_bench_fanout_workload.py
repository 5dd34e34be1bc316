"""The fan-out benchmark's workload is what it claims (bench/fanout.py): every frame is
fanned out to exactly its group's member count, on the core and the reference.  No timing."""
import pytest

from bench.fanout import FanoutStream, fanout_world, per_copy_fit
from fastpath import Datapath
from fastpath.reference import ReferenceDatapath


@pytest.mark.parametrize("cls", [ReferenceDatapath, Datapath], ids=["ref", "core"])
@pytest.mark.parametrize("members", [1, 8, 64])
def test_every_frame_gets_one_copy_per_member(cls, members):
    dp, frames = fanout_world(cls, members, n_groups=20, n_frames=64)
    stream = FanoutStream(frames, members, size=32)
    stream.check(dp)
    groups = dp.counters()["groups"]
    assert len(groups) == 20
    assert sum(g["copies"] for g in groups.values()) == 64 * members
    assert sum(g["rx_packets"] for g in groups.values()) == 64


def test_the_fit_separates_base_and_per_copy_cost():
    rows = [{"members": m, "fps": 1e9 / (100 + 5 * m)} for m in (1, 8, 64)]
    base, per_copy = per_copy_fit(rows, "fps")
    assert base == pytest.approx(100) and per_copy == pytest.approx(5)
