"""Ring ports under a stream (root: veth pairs in a private network namespace).  While
frames keep arriving in a ring port's receive ring, the loop starts the next batch without
epoll_wait (it reads the ring after each batch: ring_batches) and leaves a small transmit
kick to the next batch's end (tx_kicks_deferred), so it makes fewer system calls per
frame; yet every frame arrives in order, an epoll_wait still comes at least every
RING_SKIP_MAX batches and every batch's capacity of frames (a TAP port beside the busy
ring is served meanwhile), a lone frame goes out at once and an idle loop sleeps."""
import ctypes
import errno
import os
import threading
import time

import pytest

import fastpath
from pyctl.kernel.private_netns import PrivateNamespace
from tests.fastpath.test_io_rings import RawEnd, make_port
from tests.support.io import FakeTap, udp_frame, world

CPUS = sorted(os.sched_getaffinity(0))
pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="ring ports need root (veth, AF_PACKET)"),
    pytest.mark.skipif(len(CPUS) < 2, reason="the stream's sender and the loop need a CPU each"),
]

BATCH = 256
RING_SKIP_MAX = 16          # loop.pxi
STREAM = 20000
BURST = 256
WINDOW = 2048               # frames in flight at most (the rings hold 4096)


@pytest.fixture
def ns():
    space = PrivateNamespace("ring batching test namespace")
    yield space
    space.remove()


@pytest.fixture(params=["afpacket", "xdp"])
def rig(request, ns):
    """A loop over world(): ports 1 and 2 ring ports of the kind under test, port 3 a
    socket pair standing in for a TAP."""
    if request.param == "xdp" and fastpath.xdp_unavailable():
        pytest.skip(f"AF_XDP: {fastpath.xdp_unavailable()}")
    loop = fastpath.PacketLoop(world(), batch_size=BATCH)
    ends = {1: RawEnd(ns, 1), 2: RawEnd(ns, 2)}
    kwargs = {"frames": 4096} if request.param == "xdp" else {"rx_frames": 4096}
    rings = {p: make_port(request.param, ns, loop, ends[p], **kwargs) for p in (1, 2)}
    tap = FakeTap()
    for p, ring in rings.items():
        loop.add_port(p, ring)
    loop.add_port(3, tap.loop_fd)
    yield loop, {**ends, 3: tap}
    loop.close()
    for ring in rings.values():
        ring.close()
    for end in (*ends.values(), tap):
        end.close()


class MsgHdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32),
                ("iov", ctypes.c_void_p), ("iovlen", ctypes.c_size_t),
                ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int), ("len", ctypes.c_uint)]    # struct mmsghdr


class IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


def stream(end, count, started, delivered):
    """Inject ``count`` frames tagged 0.. into ``end`` in sendmmsg() bursts of BURST (the
    kernel puts each in the ring as it goes, while the loop works: a generator's pace),
    never more than WINDOW ahead of ``delivered[0]`` (the rings never overflow)."""
    os.sched_setaffinity(0, {CPUS[-1]})        # this thread: beside the loop's, not on it
    libc = ctypes.CDLL(None, use_errno=True)
    frames = [udp_frame(1, "10.0.0.2", k.to_bytes(4, "big") * 4) for k in range(count)]
    bufs = [ctypes.create_string_buffer(f, len(f)) for f in frames]
    iov = (IoVec * count)(*[(ctypes.addressof(b), len(f)) for b, f in zip(bufs, frames)])
    msgs = (MsgHdr * count)()
    for k in range(count):
        msgs[k].iov, msgs[k].iovlen = ctypes.addressof(iov[k]), 1
    started.set()
    k = 0
    while k < count:
        if k - delivered[0] > WINDOW:
            time.sleep(0.0002)
            continue
        sent = libc.sendmmsg(end.peer.fileno(), ctypes.byref(msgs, k * ctypes.sizeof(MsgHdr)),
                             min(BURST, count - k), 0)
        if sent < 0:
            err = ctypes.get_errno()
            assert err in (errno.EAGAIN, errno.ENOBUFS), os.strerror(err)
            time.sleep(0.0001)
            continue
        k += sent


def run_stream(loop, ends, during=None, extra=0):
    """Stream STREAM frames from port 1 to port 2 while the loop runs (the sender's thread
    and the loop's on different CPUs, so frames land in the ring while a batch runs);
    ``during()`` is called once the stream is under way and sends ``extra`` more frames to
    port 2.  The frames seen at port 2, all STREAM + ``extra`` of them awaited.  A failure
    of the sender's is raised here, and a stream that did not arrive whole is reported
    with what the sender sent and the loop counted."""
    started = threading.Event()
    delivered = [0]
    failed = []

    def send():
        try:
            stream(ends[1], STREAM, started, delivered)
        except BaseException as exc:            # noqa: BLE001 -- re-raised in the test's thread
            failed.append(exc)
            started.set()

    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {CPUS[0]})         # the loop's thread (this one)
    sender = threading.Thread(target=send)
    sender.start()
    started.wait()
    seen = []
    expected = STREAM + extra
    try:
        if during is not None:
            loop.run(1)
            during()
        deadline = time.monotonic() + 20
        while (sender.is_alive() or len(seen) < expected) and time.monotonic() < deadline:
            loop.run(1)
            seen += ends[2].drain()
            delivered[0] = len(seen)
    finally:
        sender.join()
        os.sched_setaffinity(0, before)
    if failed:
        raise failed[0]
    if len(seen) < expected:
        st = loop.stats()
        pytest.fail(f"{len(seen)} of {expected} frames arrived; the loop counted "
                    + ", ".join(f"{k} {st[k]}" for k in (
                        "frames_in", "frames_out", "write_eagain", "write_errors", "tx_retries",
                        "tx_ring_stuck", "batches", "ring_batches", "tx_kicks_deferred")
                        if k in st)
                    + f"; rings {loop.ports()}")
    return seen


def tags(seen):
    return [int.from_bytes(f[42:46], "big") for f in seen]


def test_a_stream_is_taken_with_fewer_epoll_waits_and_kicks_than_batches(rig):
    """Without reading the rings after a batch, every batch follows an epoll_wait
    (batches <= epoll_waits) and kicks the transmit ring it wrote to: here some batches
    find frames that came while they ran, before their kick (it waits for the next
    batch's end: tx_kicks_deferred) or during it (no epoll_wait before the next)."""
    loop, ends = rig
    seen = tags(run_stream(loop, ends))
    st = loop.stats()
    assert st["write_eagain"] == st["write_errors"] == st["tx_ring_stuck"] == 0
    assert st["frames_in"] == st["frames_out"] == STREAM
    assert seen == list(range(STREAM))
    assert st["ring_batches"] > 0 and st["batches"] > st["epoll_waits"]
    assert st["tx_kicks_deferred"] > 0
    assert st["batches"] - st["ring_batches"] <= st["epoll_waits"] + st["epoll_interrupted"]
    # the bounds: an epoll_wait at least every RING_SKIP_MAX batches and every batch's worth
    assert st["batches"] <= (st["epoll_waits"] + 1) * RING_SKIP_MAX
    assert st["frames_in"] <= (st["epoll_waits"] + 1) * 2 * BATCH


def test_a_tap_port_beside_a_busy_ring_is_served_while_the_stream_runs(rig):
    """Frames a TAP port receives while a ring port streams are forwarded before the
    stream's end (epoll_wait comes within bounds), and the stream keeps its order."""
    loop, ends = rig
    tap_frames = [udp_frame(3, "10.0.0.2", b"tap!" + bytes([k]) * 8) for k in range(5)]

    def inject_at_tap():
        for f in tap_frames:
            ends[3].inject(f)

    seen = run_stream(loop, ends, during=inject_at_tap, extra=len(tap_frames))
    from_tap = [k for k, f in enumerate(seen) if f[42:46] == b"tap!"]
    assert [seen[k][42:] for k in from_tap] == [f[42:] for f in tap_frames]
    assert tags(f for f in seen if f[42:46] != b"tap!") == list(range(STREAM))
    assert from_tap[-1] < len(seen) - 1
    st = loop.stats()
    assert st["frames_in"] == st["frames_out"] == STREAM + len(tap_frames)


def test_a_lone_frame_goes_out_at_once_and_the_idle_loop_sleeps(rig):
    """One frame in, one frame out in the same pass; then the loop's next wait is one
    epoll_wait that runs to its timeout (nothing looks at the rings while idle)."""
    loop, ends = rig
    for k in range(3):
        ends[1].inject(udp_frame(1, "10.0.0.2", b"lone" + bytes([k])))
        loop.run(0)
        assert len(ends[2].drain()) == 1
    loop.run(50)
    before = loop.stats()
    loop.run(200)
    after = loop.stats()
    assert after["epoll_waits"] - before["epoll_waits"] == 1
    assert after["batches"] == before["batches"]
    assert after["ring_batches"] == after["tx_kicks_deferred"] == 0
