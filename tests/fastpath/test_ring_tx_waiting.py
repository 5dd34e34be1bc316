"""An AF_PACKET port's transmit ring when the kernel does not take its frames at once
(root: veth pairs in a private network namespace).  A kick leaves frames in the ring
(TP_STATUS_SEND_REQUEST) when the kernel refuses them -- here the link has no carrier (its
peer is down), deterministically; the same holds for a full send buffer or a stopped queue:
the loop kicks again, without new traffic, until they leave, and drops them counted
(tx_ring_stuck, captured) when the kernel takes none for AFP_TX_STUCK_MS; a frame larger
than a slot never overtakes ring frames queued before it (it is dropped, write_eagain)."""
import errno
import os
import socket
import threading
import time

import pytest

import fastpath
from fastpath.reasons import CAPTURE_REASON_NAMES
from pyctl.kernel.private_netns import PrivateNamespace
from tests.support.io import FakeTap, mac, udp_frame, world

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="ring ports need root (veth, AF_PACKET)")

ETH_P_ALL = 3
STUCK_S = fastpath.AFP_TX_STUCK_MS / 1000


@pytest.fixture
def ns():
    space = PrivateNamespace("ring tx test namespace")
    yield space
    space.remove()


def packet_socket(ns, ifname):
    s = ns.call(socket.socket, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)            # SO_RCVBUFFORCE
    s.bind((ifname, 0))
    s.setblocking(False)
    return s


def tags(sock):
    """The tags (the UDP payloads' first 4 bytes) of the test's frames waiting on ``sock``."""
    out = []
    while True:
        try:
            data, addr = sock.recvfrom(1 << 17)
        except BlockingIOError:
            return out
        except OSError as exc:          # the link went down since the last read: said once
            if exc.errno != errno.ENETDOWN:
                raise
            continue
        if addr[2] != socket.PACKET_OUTGOING and data[12:14] == b"\x08\x00" and data[23] == 17:
            out.append(data[42:46])


def frame(tag, size=1000):
    return udp_frame(3, "10.0.0.2", tag + b"." * (size - 4))


class Rig:
    """A loop over world(): port 3 a socket pair (where the test injects), port 2 an
    AfPacketPort (slots for MTU 1500) on veth sw2 (MTU 9000: a 3000-byte frame takes the
    ring-less socket), whose other end ep2 the test watches (``seen_at_ep2``)."""

    def __init__(self, ns):
        self.ns = ns
        with ns.ipr() as ipr:
            ipr.link("add", ifname="sw2", kind="veth", peer={"ifname": "ep2"})
        for name in ("sw2", "ep2"):
            ns.set_mtu(name, 9000)
            ns.link_up(name)
        self.dp = world()
        with self.dp.update():
            self.dp.set_port(2, 2, mac(2), mtu=9000)
        self.loop = fastpath.PacketLoop(self.dp, batch_size=64)
        self.tap = FakeTap()
        self.ring = ns.call(fastpath.AfPacketPort, self.loop, ns.link_index("sw2"), mtu=1500)
        self.loop.add_port(3, self.tap.loop_fd)
        self.loop.add_port(2, self.ring)
        self.out = packet_socket(ns, "ep2")

    def close(self):
        self.loop.close()
        self.ring.close()
        self.tap.close()
        self.out.close()

    def inject(self, frames):
        for f in frames:
            self.tap.inject(f)

    def run_until(self, done, seconds):
        end = time.monotonic() + seconds
        while not done() and time.monotonic() < end:
            self.loop.run(5)
        return done()

    def seen_at_ep2(self, count, seconds=2):
        """Run the loop until ``count`` of the test's frames came out at ep2 (or
        ``seconds`` passed): their tags, in order."""
        seen = []

        def enough():
            seen.extend(tags(self.out))
            return len(seen) >= count

        self.run_until(enough, seconds)
        return seen


@pytest.fixture
def rig(ns):
    r = Rig(ns)
    yield r
    r.close()


def test_a_large_frame_never_overtakes_ring_frames(rig):
    """Small frames wait in the ring (the link has no carrier); a frame larger than a
    slot that comes after them must not leave first: it is dropped and counted
    (write_eagain), and the small ones, before and after it, leave in order once the
    link is back -- without new traffic."""
    rig.dp.capture_select({2: fastpath.CAPTURE_DROPPED})
    rig.ns.link_down("ep2")
    order = [b"s%03d" % k for k in range(6)] + [b"BIG!"] + [b"s%03d" % k for k in range(6, 9)]
    rig.inject([frame(t, 3000 if t == b"BIG!" else 200) for t in order])
    rig.run_until(lambda: rig.loop.stats()["frames_out"] == 9, 2)
    st = rig.loop.stats()
    assert (st["frames_out"], st["write_eagain"], rig.ring.tx_waiting()) == (9, 1, 9)
    got = [(port, CAPTURE_REASON_NAMES[reason], data[42:46])
           for port, _, reason, _, _, data in rig.dp.capture_take()]
    assert got == [(2, "write_eagain", b"BIG!")]
    rig.ns.link_up("ep2")
    assert rig.seen_at_ep2(9) == [t for t in order if t != b"BIG!"]
    assert rig.loop.stats()["tx_retries"] > 0 and rig.ring.tx_waiting() == 0


def test_frames_left_by_a_down_link_leave_when_it_comes_back_without_new_traffic(rig):
    rig.ns.link_down("ep2")                 # sw2 loses its carrier: the kernel refuses
    rig.inject([frame(b"d%03d" % k, 100) for k in range(5)])
    rig.run_until(lambda: rig.loop.stats()["frames_out"] == 5, 2)
    assert rig.ring.tx_waiting() == 5
    rig.ns.link_up("ep2")
    assert rig.seen_at_ep2(5) == [b"d%03d" % k for k in range(5)]
    assert rig.ring.tx_waiting() == 0 and rig.loop.stats()["tx_ring_stuck"] == 0


def test_frames_the_kernel_never_takes_are_dropped_counted_and_the_loop_sleeps_again(rig):
    rig.dp.capture_select({2: fastpath.CAPTURE_DROPPED})
    rig.ns.link_down("ep2")
    sent = [frame(b"x%03d" % k, 100) for k in range(5)]
    rig.inject(sent)
    assert rig.run_until(lambda: rig.loop.stats()["tx_ring_stuck"] == 5, 5 + STUCK_S)
    assert rig.ring.tx_waiting() == 0
    got = [(port, CAPTURE_REASON_NAMES[reason], data[42:46])
           for port, _, reason, _, _, data in rig.dp.capture_take()]
    assert got == [(2, "tx_ring_stuck", b"x%03d" % k) for k in range(5)]
    before = rig.loop.stats()
    rig.loop.run(100)                       # nothing waits any more: one wait, no retries
    after = rig.loop.stats()
    assert after["epoll_waits"] - before["epoll_waits"] == 1
    assert after["tx_retries"] == before["tx_retries"]
    rig.ns.link_up("ep2")                   # the ring goes on where it was
    rig.inject([frame(b"next", 100)])
    assert rig.seen_at_ep2(1) == [b"next"]


def test_a_frame_send_leaves_waiting_is_kicked_again_by_a_serving_loop(rig):
    """send() (the slow path's, from another thread) kicks at once; what the kernel
    refuses then, the serving loop -- asleep, with no traffic to wake it -- is nudged
    to kick again until it leaves.  (The link comes back well within AFP_TX_STUCK_MS;
    where the machine delayed that past it, the frame's counted drop is what is due.)"""
    rig.ns.link_down("ep2")
    thread = threading.Thread(target=rig.loop.serve)
    thread.start()
    try:
        sent = time.monotonic()
        assert rig.loop.send(2, frame(b"slow", 100))
        time.sleep(0.01)
        rig.ns.link_up("ep2")
        down_for = time.monotonic() - sent
        end = time.monotonic() + 2
        seen = []
        while len(seen) < 1 and time.monotonic() < end:
            seen.extend(tags(rig.out))
            time.sleep(0.01)
    finally:
        rig.loop.stop()
        thread.join(10)
    st = rig.loop.stats()
    assert rig.ring.tx_waiting() == 0 and st["tx_retries"] > 0
    if down_for < STUCK_S * 0.8:
        assert seen == [b"slow"] and st["tx_ring_stuck"] == 0
    else:                                   # the machine held the link down too long
        assert seen == [b"slow"] or st["tx_ring_stuck"] == 1


def test_a_link_that_stays_dead_is_kicked_about_once_a_millisecond_not_once_a_batch(rig):
    """Frames keep coming for a link without carrier (a tenant took its end down while
    others send to it): once they have waited RING_RETRY_MS, the loop kicks the ring about
    once per RING_RETRY_MS however many batches it runs (tx_kicks_backed_off), and what the
    kernel never takes is still dropped and counted after AFP_TX_STUCK_MS."""
    rig.ns.link_down("ep2")
    rig.inject([frame(b"w%03d" % k, 100) for k in range(3)])
    rig.run_until(lambda: rig.ring.tx_waiting() == 3, 2)
    before, start = rig.loop.stats(), time.monotonic()
    k = 0
    while time.monotonic() - start < 0.3:
        rig.inject([frame(b"m%03d" % (k % 1000), 100)])
        rig.loop.run(0)
        k += 1
    elapsed_ms = (time.monotonic() - start) * 1000
    after = rig.loop.stats()
    retries = after["tx_retries"] - before["tx_retries"]
    batches = after["batches"] - before["batches"]
    assert batches > 2 * elapsed_ms, "the loop ran too few batches to show anything"
    # At most one kick per 3/4 ms, plus every batch's kick in the first millisecond of
    # each wait (one wait per AFP_TX_STUCK_MS: the drop lets new frames in, which wait
    # again); without the back-off every batch kicks (about ``batches``).
    waits = elapsed_ms / fastpath.AFP_TX_STUCK_MS + 2
    bound = elapsed_ms * 4 / 3 + waits * (batches / elapsed_ms + 2) + 10
    assert retries <= bound < batches / 4, (retries, bound, batches, elapsed_ms)
    assert after["tx_kicks_backed_off"] - before["tx_kicks_backed_off"] > 0
    assert after["tx_ring_stuck"] > 0                   # the 100 ms rule still holds
    rig.ns.link_up("ep2")
    rig.inject([frame(b"back", 100)])
    assert b"back" in rig.seen_at_ep2(10 ** 6, seconds=1)


def test_frames_still_waiting_when_the_loop_closes_are_counted_drops(rig):
    """close() lets the ring port go as remove_port() does: a last kick, then what the
    kernel still refuses is dropped, counted and captured -- and stats() still says so."""
    rig.dp.capture_select({2: fastpath.CAPTURE_DROPPED})
    rig.ns.link_down("ep2")
    rig.inject([frame(b"c%03d" % k, 100) for k in range(4)])
    rig.run_until(lambda: rig.ring.tx_waiting() == 4, 2)
    assert rig.ring.tx_waiting() == 4 and rig.loop.stats()["tx_ring_stuck"] == 0
    rig.loop.close()
    assert rig.loop.stats()["tx_ring_stuck"] == 4
    assert rig.ring.tx_waiting() == 0 and not rig.ring.serving
    got = [(port, CAPTURE_REASON_NAMES[reason], data[42:46])
           for port, _, reason, _, _, data in rig.dp.capture_take()]
    assert got == [(2, "tx_ring_stuck", b"c%03d" % k) for k in range(4)]
