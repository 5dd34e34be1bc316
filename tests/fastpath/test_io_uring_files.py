"""The io_uring backend names its TAP ports by slots of the ring's registered files
(fastpath/uring.pxi), without root: socket pairs stand in for TAP fds.  Frames cross
either way, a removed port's file is let go by the ring (closing its fd closes it, as
closing a TAP's last fd deletes the TAP), and ports without a slot work by their fds."""
import select

import pytest

import fastpath
from pyctl.errors import NotSupported
from tests.support.io import FakeTap, TENANTS, udp_frame, world

pytestmark = pytest.mark.skipif("io_uring" not in fastpath.io_backends(),
                                reason="io_uring does not run here")


def _loop(refuse_slots=False):
    loop = fastpath.PacketLoop(world(), batch_size=16, slot_size=4096, backend="io_uring")
    if refuse_slots:
        loop._refuse_file_slots()
    taps = {p: FakeTap() for p in TENANTS}
    for p, t in taps.items():
        loop.add_port(p, t.loop_fd)
    return loop, taps


def _closed_by_the_loop_side(tap, within=2.0):
    """Is the loop's end of ``tap`` closed for good: does its peer read EOF, at the latest
    ``within`` seconds from now?  (A closed ring lets go of its files in a kernel worker,
    a little later: uring.h.)"""
    ready, _, _ = select.select([tap.peer], [], [], within)
    return bool(ready) and tap.peer.recv(64) == b""


@pytest.mark.parametrize("refuse_slots", [False, True], ids=["slots", "fds"])
def test_frames_cross_and_a_removed_port_is_let_go(refuse_slots):
    loop, taps = _loop(refuse_slots)
    try:
        assert {p: d["registered"] for p, d in loop.ports().items()} == \
            {p: not refuse_slots for p in TENANTS}
        for k in range(5):
            taps[1].inject(udp_frame(1, TENANTS[2], k.to_bytes(4, "big")))
            taps[3].inject(udp_frame(3, TENANTS[2], (100 + k).to_bytes(4, "big")))
        loop.run(0)
        got = taps[2].drain()
        sent = [k.to_bytes(4, "big") for k in (*range(5), *range(100, 105))]
        assert sorted(f[-4:] for f in got) == sorted(sent)
        assert loop.stats()["reads"] == 10 and loop.stats()["writes"] == 10

        loop.remove_port(3)
        taps[3].loop_sock.close()
        assert _closed_by_the_loop_side(taps[3])    # the ring holds no reference to it

        loop.add_port(3, _reopened(taps, 3))
        assert loop.ports()[3]["registered"] == (not refuse_slots)
        taps[3].inject(udp_frame(3, TENANTS[2], b"back"))
        loop.run(0)
        assert [f[-4:] for f in taps[2].drain()] == [b"back"]
    finally:
        loop.close()
        for t in taps.values():
            t.close()


def _reopened(taps, port):
    """A new stand-in TAP for ``port`` (the old one's fd was closed)."""
    taps[port].close()
    taps[port] = FakeTap()
    return taps[port].loop_fd


def test_closing_the_loop_lets_every_port_go():
    loop, taps = _loop()
    try:
        loop.close()
        for t in taps.values():
            t.loop_sock.close()
            assert _closed_by_the_loop_side(t)
    finally:
        for t in taps.values():
            t.close()


def test_the_slot_hook_is_refused_without_a_ring():
    loop = fastpath.PacketLoop(world(), batch_size=16, slot_size=4096, backend="epoll")
    try:
        with pytest.raises(NotSupported):
            loop._refuse_file_slots()
        a = FakeTap()
        try:
            loop.add_port(1, a.loop_fd)
            assert loop.ports()[1]["registered"] is False
        finally:
            loop.remove_port(1)
            a.close()
    finally:
        loop.close()
