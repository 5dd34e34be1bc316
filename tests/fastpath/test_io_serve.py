"""PacketLoop.serve(): the loop in a thread of its own (no GIL), fed and read from
another.  Frames are forwarded while ports come and go; slow-path frames reach the
consumer through slow_fd / slow_frames(); a control thread gets the datapath's lock
between batches although the loop never stops reading; stop() ends it, close() is
refused until then; a flooding namespace holds at most its share of the slow queue."""
import os
import select
import threading

import pytest

import fastpath
from pyctl.errors import Busy, InvalidArgument
from tests.support.io import FakeTap, SWITCH_IP, TENANTS, arp_request, udp_frame, world
from tests.support.waiting import until


def wait_for(predicate, timeout=10.0):
    """Until ``predicate`` holds (True), polled every 2 ms, or ``timeout`` passed (False)."""
    return until(predicate, timeout, interval=0.002)


class Served:
    """A loop over world() serving in a thread; fake TAPs on ports 1..3."""

    def __init__(self, backend, **kw):
        self.dp = world()
        self.loop = fastpath.PacketLoop(self.dp, batch_size=16, slot_size=4096, backend=backend,
                                        **kw)
        self.taps = {p: FakeTap() for p in TENANTS}
        for p, t in self.taps.items():
            self.loop.add_port(p, t.loop_fd)
        self.errors = []
        self.thread = threading.Thread(target=self._serve, name="test-serve")
        self.thread.start()
        assert wait_for(lambda: self.loop.serving)

    def _serve(self):
        try:
            self.loop.serve()
        except BaseException as exc:     # surfaced by close()
            self.errors.append(exc)

    def received(self, port, n, timeout=10.0):
        got = []
        wait_for(lambda: got.extend(self.taps[port].drain()) or len(got) >= n, timeout)
        return got

    def close(self):
        self.loop.stop()
        self.thread.join(10)
        assert not self.thread.is_alive() and not self.errors
        self.loop.close()
        for t in self.taps.values():
            t.close()


@pytest.fixture
def served(backend):
    s = Served(backend)
    yield s
    s.close()


def test_serve_forwards_and_stop_ends_it(served):
    for k in range(50):
        served.taps[1].inject(udp_frame(1, "10.0.0.2", k.to_bytes(2, "big")))
    assert len(served.received(2, 50)) == 50
    with pytest.raises(Busy, match="close"):
        served.loop.close()
    stats = served.loop.stats()                       # from this thread, while it serves
    assert stats["frames_in"] == stats["frames_out"] == 50


def test_slow_frames_reach_the_consumer_through_slow_fd(served):
    poller = select.epoll()
    poller.register(served.loop.slow_fd, select.EPOLLIN)
    try:
        served.taps[1].inject(arp_request(1, SWITCH_IP))
        assert poller.poll(10)
        frames = served.loop.slow_frames()
        assert [(port, reason) for port, reason, _ in frames] == [(1, fastpath.verdicts.REASON_ARP)]
        assert served.loop.slow_frames() == []
        assert poller.poll(0) == []                   # read: not readable until more come
        served.taps[2].inject(arp_request(2, SWITCH_IP))
        assert poller.poll(10)
        assert len(served.loop.slow_frames()) == 1
    finally:
        poller.close()


def test_ports_come_and_go_while_it_serves(served):
    loop, taps = served.loop, served.taps
    loop.remove_port(2)
    taps[1].inject(udp_frame(1, "10.0.0.2"))
    assert wait_for(lambda: loop.stats()["tx_no_port"] == 1)
    fresh = FakeTap()
    try:
        loop.add_port(2, fresh.loop_fd)
        assert set(loop.ports()) == {1, 2, 3}
        taps[1].inject(udp_frame(1, "10.0.0.2", b"again"))
        got = []
        assert wait_for(lambda: got.extend(fresh.drain()) or got)
        loop.remove_port(2)
    finally:
        fresh.close()


def test_wakeups_are_refused_while_serving_and_to_serve(served, backend):
    r, w = os.pipe()
    try:
        with pytest.raises(Busy):
            served.loop.add_wakeup(r)
        loop = fastpath.PacketLoop(world(), batch_size=4, slot_size=4096, backend=backend)
        loop.add_wakeup(r)
        with pytest.raises(InvalidArgument, match="wake-up"):
            loop.serve()
        loop.close()
    finally:
        os.close(r)
        os.close(w)


def test_control_thread_gets_the_lock_while_the_loop_never_idles(served):
    """A port that always has frames keeps the loop busy; datapath updates from this
    thread still get in between batches (the handoff), many times."""
    stop = threading.Event()

    def flood():
        frame = udp_frame(1, "10.0.0.2")
        while not stop.is_set():
            try:
                served.taps[1].inject(frame)
            except BlockingIOError:
                served.taps[2].drain()
    feeder = threading.Thread(target=flood)
    feeder.start()
    try:
        assert wait_for(lambda: served.loop.stats()["frames_in"] > 1000)
        for _ in range(200):
            with served.dp.update():
                served.dp.set_peer_mac(3, bytes([2, 0xEE, 0, 0, 0, 3]))
    finally:
        stop.set()
        feeder.join(10)
    assert served.loop.stats()["frames_in"] > 1000


def test_a_flooding_namespace_holds_only_its_share_of_the_slow_queue(backend):
    s = Served(backend, slow_queue=64, slow_share=8)
    try:
        for _ in range(40):
            s.taps[1].inject(arp_request(1, SWITCH_IP))
        s.taps[2].inject(arp_request(2, SWITCH_IP))
        assert wait_for(lambda: s.loop.stats()["frames_in"] == 41)
        frames = s.loop.slow_frames()
        by_port = {p: sum(1 for port, _, _ in frames if port == p) for p in (1, 2)}
        assert by_port == {1: 8, 2: 1}              # one queue filled, 8 of it per namespace
        assert s.loop.stats()["slow_ns_full"] == 32
    finally:
        s.close()
