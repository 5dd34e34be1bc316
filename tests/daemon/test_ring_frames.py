"""The ``ring_frames`` port option: a receive ring of that many frames, rounded to whole
blocks, within RING_MAX_BYTES per port whatever the MTU (no root needed: arithmetic
only; tests/e2e/test_port_kinds.py opens such ports)."""
import pytest

import fastpath
from pyctl.daemon.ring_frames import RING_MAX_BYTES, afpacket_args, xdp_args
from pyctl.errors import InvalidArgument


@pytest.mark.parametrize("n,per_block,rounded", [
    (1024, 32, 1024), (1, 32, 32), (33, 32, 64), (4096, 5, 4100), (1024, 5, 1025), (5, 5, 5)])
def test_a_ring_rounds_up_to_whole_blocks(n, per_block, rounded):
    assert fastpath.afp_round(n, per_block) == rounded


@pytest.mark.parametrize("ring_frames,mtu,slots", [
    (None, 1500, None),             # the port's default
    (64, 1500, 64),
    (4096, 1500, 4096),
    (16384, 1500, 16384),           # 2 KiB slots: 32 MiB
    (4096, 9000, 4100),             # 12 KiB slots, 5 to a block: never fewer than asked
    (8192, 9000, 8195),             # 96 MiB
    (1024, 65535, 1024),            # 68 KiB slots: 68 MiB
])
def test_an_afpacket_ring_holds_at_least_the_frames_asked(ring_frames, mtu, slots):
    args = afpacket_args(ring_frames, mtu)
    assert args == ({} if slots is None else {"rx_frames": slots})
    if slots is not None:
        assert slots * fastpath.afp_slot_size(mtu) <= RING_MAX_BYTES


@pytest.mark.parametrize("ring_frames,mtu,fits", [(16384, 9000, 8192), (2048, 65535, 1024),
                                                  (16384, 65535, 1024)])
def test_a_ring_past_the_memory_bound_is_refused_with_what_fits(ring_frames, mtu, fits):
    with pytest.raises(InvalidArgument, match=rf"above the 128 MiB .*\(ring_frames {fits} fits\)"):
        afpacket_args(ring_frames, mtu)
    afpacket_args(fits, mtu)


def test_an_xdp_ring_is_its_umem_chunks():
    assert xdp_args(None) == {}
    assert xdp_args(256) == {"frames": 256}
    assert xdp_args(16384) == {"frames": 16384}     # 64 MiB of 4 KiB chunks per direction
    assert 16384 * fastpath.XDP_CHUNK_SIZE <= RING_MAX_BYTES
