"""Unit tests of bench/tcp_cost.py's arithmetic (no root, no perf): reading
perf samples, costs per GB, the ceilings and the table."""

import pytest

from bench import tcp_cost

PERF_SCRIPT = """\
    0/0      ffffffff821f2c2b pv_native_safe_halt
  4242/4242  ffffffff8158c3f5 _copy_to_iter
  4242/4250  ffffffff8158c3f5 _copy_from_iter
  4242/4242  ffffffff8158c3f5 tun_do_read
   777/777   7f0012345678 __memmove_avx_unaligned_erms
   777/777   7f0012345678 [unknown]
not a sample line
"""


def test_perf_script_samples_are_counted_per_process_with_copies_apart():
    prof = tcp_cost.parse_perf_script(PERF_SCRIPT)
    assert prof["samples"] == 6 and prof["copy"] == 3
    assert prof["by_pid"][4242] == {"samples": 3, "copy": 2}     # threads fold into their process
    assert prof["by_pid"][777] == {"samples": 2, "copy": 1}
    assert prof["by_pid"][0] == {"samples": 1, "copy": 0}


def _costs(gbps, busy, copy_samples, switch=None):
    """2 s of perf at PERF_HZ; ``switch`` = (pid samples, pid copy samples, cores)."""
    hz = tcp_cost.PERF_HZ
    by_pid = {5: {"samples": switch[0] * hz, "copy": switch[1] * hz}} if switch else {}
    prof = {"samples": 4 * hz, "copy": copy_samples * hz, "by_pid": by_pid}
    return tcp_cost.costs(gbps, busy, 2.0, prof, {5} if switch else set(),
                          switch[2] if switch else None)


def test_costs_are_cpu_milliseconds_per_gigabyte():
    c = _costs(8.0, 1.5, copy_samples=1, switch=(2, 1, 1.0))   # 1 GB/s
    assert c["busy_ms_per_gb"] == pytest.approx(1500)
    assert c["copy_ms_per_gb"] == pytest.approx(500)         # 1 s of samples over 2 s: half a core
    assert c["switch_ms_per_gb"] == pytest.approx(1000)      # its own clock, not the samples
    assert c["switch_copy_ms_per_gb"] == pytest.approx(500)
    assert "switch_ms_per_gb" not in _costs(8.0, 1.5, copy_samples=1)


def test_nothing_carried_is_an_error_not_a_division_by_zero():
    with pytest.raises(RuntimeError, match="nothing was carried"):
        _costs(0.0, 1.0, copy_samples=1)


def test_ceilings_and_table():
    veth = [_costs(16.0, 1.6, 0.5), _costs(16.0, 1.6, 0.5), _costs(32.0, 1.6, 0.5)]
    switch = [_costs(8.0, 1.5, 1, switch=(2, 1, 1.0))]
    med = tcp_cost.summarize({"veth": veth, "sw": switch}, cores=2)
    assert med["veth"]["gbps"] == 16.0                            # median of the reps
    assert med["veth"]["ceiling_gbps"] == pytest.approx(2000 / 800 * 8)
    assert med["sw"]["vs_veth"] == pytest.approx(0.5)
    # 2 cores at 800 + 500 ms per GB: 1.54 GB/s = 12.3 Gbit/s, 0.77 of veth's 16
    assert med["sw"]["copy_ceiling_vs_veth"] == pytest.approx(2000 / 1300 * 8 / 16)
    assert med["veth"]["copy_ceiling_vs_veth"] is None
    text = tcp_cost.table(med)
    row = next(line for line in text.splitlines() if line.startswith("sw "))
    assert row.split()[-1] == "0.77" and "1500" in row


def test_without_veth_there_is_no_ratio():
    med = tcp_cost.summarize({"sw": [_costs(8.0, 1.5, 1, switch=(2, 1, 1.0))]}, cores=2)
    assert med["sw"]["vs_veth"] is None and med["sw"]["copy_ceiling_vs_veth"] is None


def test_unknown_peer_is_refused(capsys):
    with pytest.raises(SystemExit):
        tcp_cost.main(["--peers", "veth,nope"])
    assert "unknown peer nope" in capsys.readouterr().err
