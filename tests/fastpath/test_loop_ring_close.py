"""An interrupted wait is not a wait the loop chose.

The kernel tears a closed io_uring ring down in a worker and then interrupts the thread
that created it once, like a signal, some milliseconds after close(2); whatever that thread
waits in then -- another loop's epoll_wait -- returns EINTR.  A signal does the same.  The
loop retries such a wait and counts it as ``epoll_interrupted``, never as ``epoll_waits``,
so the waits a test counts (tests/fastpath/test_io_loop.py: a port at EOF is failed, not
spun on) are the loop's own whatever an earlier test's ring or a signal did."""
import signal
import threading
import time

import pytest

import fastpath
from tests.support.io import world


def _wait_until_in_epoll_wait(tid, timeout=5.0):
    """Until thread ``tid`` sleeps in epoll_wait (its wchan says so)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(f"/proc/self/task/{tid}/wchan") as f:
            if "epoll" in f.read():
                return
        time.sleep(0.002)
    raise AssertionError("the loop's thread never waited in epoll_wait")


def test_a_signal_during_the_wait_is_counted_apart_and_the_wait_goes_on():
    # The loop runs in a thread of its own: the main thread may have made an io_uring ring
    # (the backend probe at collection), whose teardown would interrupt it once more.
    fired, out = [], {}
    previous = signal.signal(signal.SIGALRM, lambda *_: fired.append(1))
    loop = fastpath.PacketLoop(world(), batch_size=16, slot_size=4096, backend="epoll")
    started = threading.Event()

    def run():
        started.set()
        out["result"] = loop.run(300)                    # goes on to its timeout

    worker = threading.Thread(target=run)
    try:
        worker.start()
        started.wait(5)
        _wait_until_in_epoll_wait(worker.native_id)
        signal.pthread_kill(worker.ident, signal.SIGALRM)
        worker.join(10)
        assert out["result"] == []
        st = loop.stats()
        assert fired == [1]
        assert st["epoll_interrupted"] == 1
        assert st["epoll_waits"] == 1                    # the wait that ran to the timeout
    finally:
        worker.join(10)
        signal.signal(signal.SIGALRM, previous)
        loop.close()


@pytest.mark.skipif("io_uring" not in fastpath.io_backends(), reason="io_uring does not run here")
@pytest.mark.parametrize("how", ["close", "free"])
def test_a_gone_ring_never_counts_as_a_wait_of_a_later_loop(how):
    for _ in range(5):
        loop = fastpath.PacketLoop(world(), batch_size=16, slot_size=4096, backend="io_uring")
        if how == "close":
            loop.close()
        del loop
        idle = fastpath.PacketLoop(world(), batch_size=16, slot_size=4096, backend="epoll")
        try:
            assert idle.run(50) == []
            st = idle.stats()
            assert st["epoll_waits"] == 1                # one wait, to its timeout
            assert st["epoll_interrupted"] <= 1          # the gone ring's one interruption, if it came now
        finally:
            idle.close()
