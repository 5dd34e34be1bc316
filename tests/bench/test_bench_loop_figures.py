"""bench.loads.loop_figures: what a switch's loop counters say per frame and per GB.
Reads are system calls of their own on the epoll backend; on the io_uring backend
the passes that made them (rx_submits) are."""
import pytest

from bench.loads import loop_figures

GB = 10 ** 9


def test_epoll_reads_count_one_system_call_each():
    loop = {"frames_in": 1000, "read_bytes": GB, "reads": 1000, "read_empty": 800,
            "epoll_waits": 500, "tx_submits": 1000, "rx_submits": 0}
    out = loop_figures(loop, seconds=1.0, sleeps_per_s=250)
    assert out["syscalls_per_gb"] == pytest.approx(1000 + 800 + 500 + 1000)
    assert out["frames_per_wake"] == pytest.approx(4.0)
    assert out["read_empty_per_frame"] == pytest.approx(0.8)


def test_io_uring_reads_count_their_passes():
    loop = {"frames_in": 1000, "read_bytes": 2 * GB, "reads": 1000, "read_empty": 900,
            "rx_submits": 600, "epoll_waits": 500, "epoll_interrupted": 2, "tx_submits": 500,
            "sent": 4}
    out = loop_figures(loop, seconds=1.0)
    assert out["syscalls_per_gb"] == pytest.approx((600 + 500 + 2 + 500 + 4) / 2)
    assert "frames_per_wake" not in out


def test_an_older_tree_without_rx_submits_counts_its_reads():
    loop = {"frames_in": 10, "read_bytes": GB, "reads": 10, "read_empty": 10, "epoll_waits": 5,
            "tx_submits": 10}
    assert loop_figures(loop, seconds=1.0)["syscalls_per_gb"] == pytest.approx(35)
