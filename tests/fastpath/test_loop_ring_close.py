"""A closed (or freed) io_uring PacketLoop leaves nothing behind that interrupts a later
wait.  The kernel tears a closed ring down in a worker and then interrupts the thread that
created it once, like a signal, some milliseconds after close(2); close() waits for that
(fastpath/includes/uring.h).  Before, the interruption landed in whatever the thread
waited in next -- another loop's epoll_wait -- and tests/fastpath/test_io_loop.py's epoll_waits
counts failed when an earlier test's ring went away during a later test."""
import pytest

import fastpath
from tests.support.io import world

pytestmark = pytest.mark.skipif("io_uring" not in fastpath.io_backends(),
                                reason="io_uring does not run here")


@pytest.mark.parametrize("how", ["close", "free"])
def test_a_gone_ring_does_not_interrupt_a_later_wait(how):
    for _ in range(5):
        loop = fastpath.PacketLoop(world(), batch_size=16, slot_size=4096, backend="io_uring")
        if how == "close":
            loop.close()
        del loop
        idle = fastpath.PacketLoop(world(), batch_size=16, slot_size=4096, backend="epoll")
        try:
            assert idle.run(50) == []
            assert idle.stats()["epoll_waits"] == 1      # one wait, to its timeout
        finally:
            idle.close()
