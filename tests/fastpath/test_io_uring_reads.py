"""PacketLoop on the io_uring backend reads its TAP ports through its ring
(fastpath/uring_rx.pxi), without root: socket pairs stand in for TAP fds.  A pass over
the ports is one io_uring_enter for all their reads, a port's reads per pass follow
what it brought, frames keep their order and their ports' fairness, and a submission
the kernel refuses loses nothing."""
import pytest

import fastpath
from pyctl.errors import NotSupported
from tests.support.io import FakeTap, TENANTS, udp_frame, world

pytestmark = pytest.mark.skipif("io_uring" not in fastpath.io_backends(),
                                reason="io_uring does not run here")


@pytest.fixture
def rig():
    dp = world()
    loop = fastpath.PacketLoop(dp, batch_size=16, slot_size=4096, backend="io_uring")
    taps = {p: FakeTap() for p in TENANTS}
    for p, t in taps.items():
        loop.add_port(p, t.loop_fd)
    yield dp, loop, taps
    loop.close()
    for t in taps.values():
        t.close()


def _frame(k, port=1, dst="10.0.0.2"):
    return udp_frame(port, dst, k.to_bytes(4, "big"))


def test_a_burst_is_read_in_passes_whose_reads_double():
    dp = world()
    loop = fastpath.PacketLoop(dp, batch_size=64, slot_size=4096, backend="io_uring")
    a, b = FakeTap(), FakeTap()
    try:
        loop.add_port(1, a.loop_fd)
        loop.add_port(2, b.loop_fd)
        for k in range(13):
            a.inject(_frame(k))
        loop.run(0)
        st = loop.stats()
        # passes of 2, 4 and 8 reads: 2 + 4 + 7 frames, then the one read that found it empty
        assert st["rx_submits"] == 3 and st["reads"] == 13 and st["read_empty"] == 1
        assert st["batches"] == 1
        assert [f[-4:] for f in b.drain()] == [k.to_bytes(4, "big") for k in range(13)]
    finally:
        loop.close()
        a.close()
        b.close()


def test_a_port_giving_one_frame_per_activation_costs_one_enter_each_time(rig):
    _, loop, taps = rig
    for k in range(6):
        taps[1].inject(_frame(k))
        loop.run(0)
        assert len(taps[2].drain()) == 1
    st = loop.stats()
    assert st["reads"] == 6 and st["read_empty"] == 6 and st["rx_submits"] == 6


def test_reads_that_find_ports_empty_leave_their_buffers_to_others(rig):
    _, loop, taps = rig
    for k in range(200):
        taps[1].inject(_frame(k))
    for k in range(5):
        taps[3].inject(_frame(k, port=3, dst="10.0.0.1"))
    loop.run(0)                                 # one batch of 16
    assert len(taps[1].drain()) == 5
    assert len(taps[2].drain()) == 11           # the full batch: no buffer wasted
    assert loop.stats()["batches"] == 1


def test_a_buffer_an_empty_read_left_is_reused_without_overwriting_a_frame(rig):
    _, loop, taps = rig
    taps[3].inject(_frame(999, port=3, dst="10.0.0.1"))    # one frame: its second read is empty
    for k in range(14):
        taps[1].inject(_frame(k))
    loop.run(0)                                 # that empty read's buffer lies below port 1's frames
    assert [f[-4:] for f in taps[1].drain()] == [(999).to_bytes(4, "big")]
    assert [f[-4:] for f in taps[2].drain()] == [k.to_bytes(4, "big") for k in range(14)]
    st = loop.stats()
    assert st["batches"] == 1 and st["frames_out"] == 15


def test_a_refused_submission_loses_nothing_and_keeps_the_order(rig):
    _, loop, taps = rig
    for k in range(10):
        taps[1].inject(_frame(k))
    loop._refuse_read_submits(1)
    loop.run(0)                                 # one batch: the refused pass's reads made at once
    assert [f[-4:] for f in taps[2].drain()] == [k.to_bytes(4, "big") for k in range(10)]
    st = loop.stats()
    assert st["batches"] == 1 and st["reads"] == st["frames_out"] == 10
    assert st["rx_submits"] == 2 and st["read_errors"] == 0     # passes of 2 (refused), 4, 8


def test_a_failing_port_is_counted_once():
    dp = world()
    loop = fastpath.PacketLoop(dp, batch_size=16, slot_size=4096, backend="io_uring")
    a = FakeTap()
    try:
        loop.add_port(1, a.loop_fd)
        for k in range(3):
            a.inject(_frame(k))
        a.peer.close()                          # three frames, then EOF
        loop.run(20)
        st = loop.stats()
        assert st["reads"] == 3 and st["read_eof"] == 1
        assert loop.ports()[1]["failed"]
    finally:
        loop.close()
        a.close()


def test_the_fault_hook_is_refused_where_reads_do_not_use_io_uring():
    loop = fastpath.PacketLoop(world(), batch_size=16, slot_size=4096, backend="epoll")
    try:
        with pytest.raises(NotSupported):
            loop._refuse_read_submits(1)
    finally:
        loop.close()
