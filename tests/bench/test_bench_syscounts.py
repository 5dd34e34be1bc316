"""bench.syscounts: the switch's system calls, counted by the kernel, and what
bench.tcp_cost makes of them."""
import os
import shutil

import pytest

from bench import syscounts, tcp_cost

PERF_STAT = """\
120,,raw_syscalls:sys_enter,1030688,100.00,,
40,,syscalls:sys_enter_read,1030688,100.00,,
2,,syscalls:sys_enter_recvmsg,1030688,100.00,,
30,,syscalls:sys_enter_write,1030688,100.00,,
<not counted>,,syscalls:sys_enter_writev,0,100.00,,
<not supported>,,syscalls:sys_enter_io_uring_enter,0,100.00,,
10,,syscalls:sys_enter_epoll_wait,1030688,100.00,,
5,,syscalls:sys_enter_poll,1030688,100.00,,
"""


def test_perf_stat_output_is_summed_by_group():
    assert syscounts.parse(PERF_STAT) == {"syscalls": 120, "reads": 42, "writes": 30, "waits": 15}


def test_an_event_never_counted_is_zero_and_unsupported_ones_are_left_out():
    text = "<not counted>,,raw_syscalls:sys_enter,0,100.00,,\n" \
           "<not supported>,,syscalls:sys_enter_read,0,100.00,,\n"
    assert syscounts.parse(text) == {"syscalls": 0}
    assert syscounts.parse("garbage\n,,\n") == {}


def test_no_processes_no_counts():
    assert syscounts.Counter([], 1.0).finish() == {}


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("perf"), reason="needs root and perf")
def test_a_process_reads_are_counted_by_the_kernel():
    import subprocess
    import sys
    child = subprocess.Popen([sys.executable, "-c",
                              "import os, time\nfd = os.open('/dev/null', os.O_RDONLY)\n"
                              "end = time.monotonic() + 1.5\n"
                              "while time.monotonic() < end: os.read(fd, 1)"])
    try:
        counts = syscounts.Counter([child.pid], 0.5).finish()
    finally:
        child.wait(timeout=30)
    assert counts["reads"] > 1000 and counts["syscalls"] >= counts["reads"] * 0.9


def test_calls_are_per_gigabyte_carried_and_reads_per_sleep():
    out = tcp_cost.switch_calls({"syscalls": 4000, "reads": 2000}, gbps=8.0, seconds=2.0,
                                sleeps_per_gb=500)          # 2 GB carried
    assert out["switch_syscalls_per_gb"] == pytest.approx(2000)
    assert out["switch_reads_per_gb"] == pytest.approx(1000)
    assert out["switch_reads_per_wake"] == pytest.approx(2.0)
    assert tcp_cost.switch_calls({}, 8.0, 2.0, 500) == {}               # a kernel peer
    assert "switch_reads_per_wake" not in tcp_cost.switch_calls({"reads": 5}, 8.0, 2.0, None)


def test_the_calls_table_lists_switch_peers_only():
    med = {"veth": {"gbps": 9.0}, "sw": {"gbps": 5.0, "switch_syscalls_per_gb": 30000.0,
                                         "switch_reads_per_gb": 16000.0}}
    text = tcp_cost.switch_calls_table(med)
    assert "sw " in text and "30000" in text and "veth" not in text
