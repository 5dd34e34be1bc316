"""PacketLoop without root: socket pairs stand in for TAP fds.  Forwarding matches
Datapath.process(), bursts are drained, ports are served fairly, run() returns for
exactly its documented reasons, and every bad call or bad fd is refused."""
import os
import re
import signal
import socket
import threading
import time

import pytest

import fastpath
from fastpath import verdicts
from pyctl.errors import AlreadyExists, Busy, InvalidArgument, NotFound, NotSupported
from tests.support.io import (BACKENDS, FakeTap, SWITCH_IP, TENANTS, arp_request, expected, udp_frame,
                              world)


def test_forwarding_matches_process(rig):
    dp, loop, taps = rig
    frames = [(1, udp_frame(1, "10.0.0.2", bytes([k]) * (k + 1))) for k in range(10)]
    frames += [(2, udp_frame(2, "10.0.0.3", b"from2")), (3, udp_frame(3, "10.0.0.1", b"from3"))]
    for port, data in frames:
        taps[port].inject(data)
    want, slow = expected(frames)
    assert not slow
    got = {p: [] for p in taps}
    for _ in range(10):
        loop.run(0)
        for p, t in taps.items():
            got[p] += t.drain()
    assert {p: v for p, v in got.items() if v} == want
    st = loop.stats()
    assert st["frames_in"] == st["frames_out"] == len(frames)
    assert st["write_errors"] == st["write_eagain"] == 0
    assert dp.counters()["ports"][2]["tx_packets"] == 10


def test_burst_is_drained_in_full_batches(rig):
    _, loop, taps = rig
    for k in range(100):
        taps[1].inject(udp_frame(1, "10.0.0.2", k.to_bytes(4, "big")))
    loop.run(0)
    st = loop.stats()
    assert st["frames_in"] == 16 and st["batches"] == 1     # one pass, one full batch
    for _ in range(20):
        loop.run(0)
    out = taps[2].drain()
    assert [f[-4:] for f in out] == [k.to_bytes(4, "big") for k in range(100)]  # in order
    st = loop.stats()
    assert st["frames_in"] == 100 and st["batches"] == 7    # 6 full batches and 4 frames


def test_a_busy_port_does_not_starve_the_others(rig):
    _, loop, taps = rig
    for k in range(200):
        taps[1].inject(udp_frame(1, "10.0.0.2", b"bulk"))
    for k in range(5):
        taps[3].inject(udp_frame(3, "10.0.0.1", b"mouse"))
    loop.run(0)                                  # one batch of 16: round-robin
    assert len(taps[1].drain()) == 5             # port 3's five frames all made it
    assert len(taps[2].drain()) == 11
    for k in range(4):
        taps[3].inject(udp_frame(3, "10.0.0.1", b"mouse"))
    loop.run(0)
    assert len(taps[1].drain()) == 4


def test_run_returns_on_a_readable_wakeup_fd(rig):
    _, loop, taps = rig
    r, w = os.pipe2(os.O_NONBLOCK)
    try:
        loop.add_wakeup(r)
        with pytest.raises(AlreadyExists):
            loop.add_wakeup(r)
        taps[1].inject(udp_frame(1, "10.0.0.2"))
        threading.Timer(0.05, os.write, (w, b"!")).start()
        assert loop.run(-1) == [r]
        assert len(taps[2].drain()) == 1         # traffic before the wake-up was forwarded
        assert loop.run(-1) == [r]               # level-triggered: still readable
        os.read(r, 10)
        loop.remove_wakeup(r)
        with pytest.raises(NotFound):
            loop.remove_wakeup(r)
    finally:
        os.close(r)
        os.close(w)


def test_run_returns_after_the_timeout(rig):
    _, loop, _ = rig
    t0 = time.monotonic()
    assert loop.run(30) == []
    assert time.monotonic() - t0 >= 0.029
    assert loop.stats()["epoll_waits"] <= 3      # it blocked, it did not spin


def test_stop_from_another_thread_and_before_run(rig):
    _, loop, _ = rig
    threading.Timer(0.05, loop.stop).start()
    assert loop.run(-1) == []
    loop.stop()
    t0 = time.monotonic()
    assert loop.run(5000) == []                  # the early stop() is not lost
    assert time.monotonic() - t0 < 4


def test_slow_path_frames_are_handed_up_and_run_returns(rig):
    _, loop, taps = rig
    arp = arp_request(1, SWITCH_IP)
    local = udp_frame(2, SWITCH_IP, b"to the switch")
    taps[1].inject(arp)
    taps[2].inject(local)
    assert loop.run(-1) == []                    # returned because frames wait
    slow = loop.slow_frames()
    if len(slow) < 2:                            # the second port may come a pass later
        loop.run(0)
        slow += loop.slow_frames()
    assert sorted(slow) == sorted([(1, verdicts.REASON_ARP, arp), (2, verdicts.REASON_LOCAL, local)])
    assert loop.slow_frames() == []


def test_slow_queue_overflow_is_counted(backend):
    dp = world()
    loop = fastpath.PacketLoop(dp, batch_size=16, slot_size=4096, slow_queue=3,
                               slow_queue_bytes=4096, slow_share=3, backend=backend)
    tap = FakeTap()
    try:
        loop.add_port(1, tap.loop_fd)
        for _ in range(10):
            tap.inject(arp_request(1, SWITCH_IP))
        loop.run(0)
        assert len(loop.slow_frames()) == 3
        assert loop.stats()["slow_overflow"] == 7
    finally:
        tap.close()


def test_send_writes_with_and_without_a_vnet_header(rig):
    _, loop, taps = rig
    extra = FakeTap()
    try:
        loop.add_port(5, extra.loop_fd, vnet_hdr=True)
        frame = udp_frame(1, "10.0.0.2")
        assert loop.send(1, frame) is True
        assert taps[1].drain() == [frame]
        assert loop.send(5, frame) is True
        assert extra.drain() == [bytes(12) + frame]
        assert loop.stats()["sent"] == 2
        with pytest.raises(NotFound):
            loop.send(4, frame)
        with pytest.raises(InvalidArgument):
            loop.send(1, b"short")
        with pytest.raises(InvalidArgument):
            loop.send(99, frame)
    finally:
        extra.close()


def test_a_full_output_queue_is_a_counted_drop(rig):
    _, loop, taps = rig
    taps[2].loop_sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    sent = 0
    for _ in range(400):
        taps[1].inject(udp_frame(1, "10.0.0.2", b"z" * 1000))
    for _ in range(40):
        loop.run(0)
    sent = len(taps[2].drain())
    st = loop.stats()
    assert st["write_eagain"] > 0
    assert sent + st["write_eagain"] == 400


def test_a_port_that_reaches_eof_is_failed_not_spun_on(rig):
    _, loop, taps = rig
    taps[3].peer.close()
    assert loop.run(20) == []
    st = loop.stats()
    assert st["read_eof"] == 1 and st["epoll_waits"] <= 3
    assert loop.ports()[3]["failed"]
    loop.remove_port(3)
    assert 3 not in loop.ports()


def test_bad_port_and_fd_arguments(rig):
    _, loop, taps = rig
    extra = FakeTap()
    try:
        with pytest.raises(AlreadyExists):
            loop.add_port(1, extra.loop_fd)              # port id taken
        with pytest.raises(AlreadyExists):
            loop.add_port(5, taps[1].loop_fd)            # fd taken
        with pytest.raises(InvalidArgument):
            loop.add_port(16, extra.loop_fd)             # beyond the datapath's ports
        with pytest.raises(InvalidArgument):
            loop.add_port(-1, extra.loop_fd)
        with pytest.raises(InvalidArgument):
            loop.add_port(5, -3)
        extra.loop_sock.setblocking(True)
        with pytest.raises(InvalidArgument, match="non-blocking"):
            loop.add_port(5, extra.loop_fd)
        extra.loop_sock.setblocking(False)
        fd = os.open("/dev/null", os.O_RDONLY | os.O_NONBLOCK)
        try:
            with pytest.raises(InvalidArgument, match="cannot be polled"):
                loop.add_port(5, fd)                     # epoll refuses regular files
        finally:
            os.close(fd)
        assert sorted(loop.ports()) == [1, 2, 3]         # nothing half-added
        with pytest.raises(NotFound):
            loop.remove_port(7)
        with pytest.raises(InvalidArgument):
            loop.run(-2)
        with pytest.raises(InvalidArgument):
            fastpath.PacketLoop(world(), batch_size=0, backend=loop.backend)
        with pytest.raises(InvalidArgument):
            fastpath.PacketLoop(world(), slot_size=10, backend=loop.backend)
    finally:
        extra.close()


def test_port_changes_are_refused_while_running(rig):
    _, loop, taps = rig
    errors = []

    def meddle():
        time.sleep(0.05)
        for call in (lambda: loop.add_port(6, 99), lambda: loop.remove_port(1),
                     lambda: loop.run(0)):
            try:
                call()
            except Busy as exc:
                errors.append(exc)
        loop.stop()

    t = threading.Thread(target=meddle)
    t.start()
    loop.run(-1)
    t.join()
    assert len(errors) == 3


def test_run_inside_an_update_block_is_refused(rig):
    dp, loop, _ = rig
    with dp.update():
        with pytest.raises(RuntimeError, match="deadlock"):
            loop.run(0)


def test_tables_changed_between_runs_apply_to_the_next_batch(rig):
    dp, loop, taps = rig
    taps[1].inject(udp_frame(1, "10.0.0.2"))
    loop.run(0)
    assert len(taps[2].drain()) == 1
    with dp.update():
        dp.remove_address(0, int.from_bytes(socket.inet_aton("10.0.0.2"), "big"))
        dp.add_address(0, int.from_bytes(socket.inet_aton("10.0.0.2"), "big"), 3)
    taps[1].inject(udp_frame(1, "10.0.0.2"))
    for _ in range(3):
        loop.run(0)
    assert taps[2].drain() == [] and len(taps[3].drain()) == 1


def test_backend_and_stats_names(rig, backend):
    _, loop, _ = rig
    assert loop.backend == backend
    st = loop.stats()
    for key in ("reads", "writes", "batches", "frames_in", "frames_out", "write_errors",
                "write_eagain", "slow_overflow", "vnet_bad_gso", "tx_submits", "backend"):
        assert key in st


def test_a_batch_is_written_with_one_submit_on_io_uring(rig, backend):
    """Besides the writes timed for the port's cost (tx_cost.pxi: made at once, one in
    8..23 frames of a port, once a batch at most while it has writes queued)."""
    _, loop, taps = rig
    for k in range(16):
        taps[1].inject(udp_frame(1, "10.0.0.2", k.to_bytes(4, "big")))
    loop.run(0)
    st = loop.stats()
    assert st["frames_out"] == 16 and len(taps[2].drain()) == 16
    assert 1 <= st["tx_timed"] <= 2
    assert st["tx_timed_flushes"] == 0         # once a batch: the port's first write
    assert st["tx_submits"] == (1 + st["tx_timed"] if backend == "io_uring" else 16)


def test_backend_choice(monkeypatch):
    dp = world()
    assert fastpath.PacketLoop(dp, backend="epoll").backend == "epoll"
    assert fastpath.PacketLoop(dp, backend="auto").backend == BACKENDS[0]
    monkeypatch.setenv(fastpath.IO_BACKEND_ENV, "epoll")
    assert fastpath.PacketLoop(dp).backend == "epoll"
    assert fastpath.PacketLoop(dp, backend="auto").backend == BACKENDS[0]   # the argument wins
    monkeypatch.setenv(fastpath.IO_BACKEND_ENV, "uring")
    with pytest.raises(InvalidArgument, match="TAPSWITCH_IO_BACKEND must be one of"):
        fastpath.PacketLoop(dp)
    with pytest.raises(InvalidArgument, match="backend must be one of"):
        fastpath.PacketLoop(dp, backend="write")
    if "io_uring" in BACKENDS:
        assert fastpath.PacketLoop(dp, backend="io_uring").backend == "io_uring"
    else:
        with pytest.raises(NotSupported, match="io_uring"):
            fastpath.PacketLoop(dp, backend="io_uring")
    assert fastpath.IO_URING_BUILT or BACKENDS == ["epoll"]


def test_a_signal_runs_its_handler_inside_run_and_the_wait_goes_on(rig):
    """PEP 475 style: EINTR runs the Python handlers; run() returns only for its reasons
    (here the wake-up fd the second signal's handler writes), or raises what a handler
    raised."""
    _, loop, _ = rig
    r, w = os.pipe2(os.O_NONBLOCK)
    seen = []

    def handler(signum, frame):
        seen.append(signum)
        if len(seen) == 2:
            os.write(w, b"!")
        if len(seen) == 3:
            raise InterruptedError("from the handler")

    def kick(times):
        for _ in range(times):
            time.sleep(0.05)
            signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR1)

    previous = signal.signal(signal.SIGUSR1, handler)
    try:
        loop.add_wakeup(r)
        t = threading.Thread(target=kick, args=(2,))
        t.start()
        assert loop.run(-1) == [r]
        t.join()
        assert seen == [signal.SIGUSR1] * 2
        loop.remove_wakeup(r)
        t = threading.Thread(target=kick, args=(1,))
        t.start()
        with pytest.raises(InterruptedError, match="from the handler"):
            loop.run(5000)
        t.join()
        assert loop.run(0) == []                     # not left "running"
    finally:
        signal.signal(signal.SIGUSR1, previous)
        os.close(r)
        os.close(w)


# ---- close() ---------------------------------------------------------------------------

def owned_fds():
    """This process's fds of the kinds a PacketLoop owns: {fd: "anon_inode:[eventpoll]" /
    "[eventfd]" / "[io_uring]"}."""
    out = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except FileNotFoundError:
            continue                                # listdir's own fd, closed since
        if target.startswith("anon_inode:"):
            out[int(fd)] = target
    return out


def uring_mappings():
    """How many io_uring ring mappings (SQ/CQ ring, SQE array) this process has."""
    with open("/proc/self/maps") as f:
        return sum("io_uring" in line for line in f)


def test_close_releases_the_fds_and_ring_it_owns_and_not_the_callers(backend):
    fds, maps = owned_fds(), uring_mappings()
    loop = fastpath.PacketLoop(world(), batch_size=16, slot_size=4096, backend=backend)
    owned = {fd: kind for fd, kind in owned_fds().items() if fd not in fds}
    assert sorted(owned.values()) == sorted(["anon_inode:[eventfd]"] * 3   # stop, nudge, slow_fd
                                            + ["anon_inode:[eventpoll]"]
                                            + ["anon_inode:[io_uring]"] * (backend == "io_uring"))
    assert uring_mappings() - maps == (2 if backend == "io_uring" else 0)
    tap = FakeTap()
    r, w = os.pipe2(os.O_NONBLOCK)
    try:
        loop.add_port(1, tap.loop_fd)
        loop.add_wakeup(r)
        tap.inject(udp_frame(1, "10.0.0.2"))
        loop.run(0)
        assert loop.stats()["frames_in"] == 1
        loop.close()
        assert owned_fds() == fds
        assert uring_mappings() == maps
        assert loop.closed and loop.batch is None
        os.fstat(tap.loop_fd)                       # the port's and wake-up fds are the caller's
        os.fstat(r)
        loop.close()                                # idempotent
        assert loop.closed
    finally:
        tap.close()
        os.close(r)
        os.close(w)
    del loop                                        # __dealloc__ after close(): nothing twice
    assert owned_fds() == fds


def test_a_loop_not_closed_is_released_when_freed(backend):
    fds, maps = owned_fds(), uring_mappings()
    loop = fastpath.PacketLoop(world(), batch_size=16, slot_size=4096, backend=backend)
    assert not loop.closed and owned_fds() != fds
    del loop
    assert owned_fds() == fds and uring_mappings() == maps


def test_every_method_but_close_and_stats_refuses_a_closed_loop(rig, backend):
    _, loop, taps = rig
    taps[1].inject(udp_frame(1, "10.0.0.2"))
    loop.run(0)
    before = loop.stats()
    assert before["frames_in"] == 1
    loop.close()
    assert loop.stats() == before                   # the counters as close() left them
    loop.stats()["frames_in"] = -1
    assert loop.stats() == before                   # a copy each time
    calls = {"add_port()": lambda: loop.add_port(5, taps[1].loop_fd),
             "remove_port()": lambda: loop.remove_port(1),
             "ports()": loop.ports,
             "add_wakeup()": lambda: loop.add_wakeup(taps[1].loop_fd),
             "remove_wakeup()": lambda: loop.remove_wakeup(taps[1].loop_fd),
             "run()": lambda: loop.run(0),
             "stop()": loop.stop,
             "slow_frames()": loop.slow_frames,
             "send()": lambda: loop.send(1, udp_frame(1, "10.0.0.2"))}
    for name, call in calls.items():
        with pytest.raises(ValueError, match=rf"^{re.escape(name)} on a closed PacketLoop$"):
            call()
    with pytest.raises(RuntimeError, match="already initialised"):
        loop.__init__(world())                      # no second life for a closed loop
    assert loop.closed and loop.backend == backend
    assert taps[1].peer.send(b"x") == 1             # the fake TAP is untouched


def test_a_loop_whose_init_failed_refuses_its_methods():
    loop = fastpath.PacketLoop.__new__(fastpath.PacketLoop)
    with pytest.raises(ValueError, match="__init__ did not complete"):
        loop.run(0)
    with pytest.raises(ValueError, match="__init__ did not complete"):
        loop.stats()
    loop.close()
    with pytest.raises(ValueError, match="closed"):
        loop.ports()


def test_close_is_refused_while_run_runs_in_another_thread(rig):
    _, loop, taps = rig
    result = []

    def forwarded(n):
        got, deadline = [], time.monotonic() + 5
        while len(got) < n and time.monotonic() < deadline:
            got += taps[2].drain()
            time.sleep(0.005)
        return len(got)

    taps[1].inject(udp_frame(1, "10.0.0.2"))
    t = threading.Thread(target=lambda: result.append(loop.run(-1)))
    t.start()
    try:
        assert forwarded(1) == 1                    # run() is in its loop (it returns only on stop())
        with pytest.raises(Busy, match="close"):
            loop.close()
        assert not loop.closed
        taps[1].inject(udp_frame(1, "10.0.0.2"))
        assert forwarded(1) == 1                    # still forwarding after the refusal
    finally:
        loop.stop()
        t.join(10)
    assert result == [[]] and loop.stats()["frames_out"] == 2
    loop.close()
    assert loop.closed


def test_a_flood_of_frames_dropped_as_they_are_read_cannot_hold_a_batch_back(rig):
    """Frames a port's read drops at once (here: larger than a slot) do not fill the
    batch; a port flooding them must not keep the loop reading while another port's
    frame waits in it: a batch stops after reading twice its capacity."""
    _, loop, taps = rig
    big = udp_frame(1, "10.0.0.2", b"x" * 5000)           # the rig's slots hold 4096 bytes
    for _ in range(100):
        taps[1].inject(big)
    taps[3].inject(udp_frame(3, "10.0.0.1", b"mouse"))
    loop.run(0)
    assert len(taps[1].drain()) == 1                        # the mouse's frame went out
    st = loop.stats()
    assert st["batches"] == 1 and st["rx_oversize"] <= 2 * 16
    for _ in range(10):
        loop.run(0)
    assert loop.stats()["rx_oversize"] == 100              # every one of them counted
