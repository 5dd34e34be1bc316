"""Unit tests of bench/tcp_cost.py's arithmetic (no root, no perf): reading
perf samples, costs per GB, each role's cost and the sender's shares, the
pipeline bound, the copies priced at veth's busy cores, and the table."""

import pytest

from bench import tcp_cost

PERF_SCRIPT = """\
    0/0      ffffffff821f2c2b pv_native_safe_halt
  4242/4242  ffffffff8158c3f5 _copy_to_iter
  4242/4250  ffffffff8158c3f5 _copy_from_iter
  4242/4242  ffffffff8158c3f5 tun_do_read
  4242/4242  ffffffff8158c3f5 try_to_wake_up
   777/777   7f0012345678 __memmove_avx_unaligned_erms
   777/777   7f0012345678 [unknown]
not a sample line
"""


def test_perf_script_samples_are_counted_per_process_with_copies_and_wakeups_apart():
    prof = tcp_cost.parse_perf_script(PERF_SCRIPT)
    assert prof["samples"] == 7 and prof["copy"] == 3 and prof["wake"] == 1
    assert prof["by_pid"][4242] == {"samples": 4, "copy": 2, "wake": 1}   # threads fold in
    assert prof["by_pid"][777] == {"samples": 2, "copy": 1, "wake": 0}
    assert prof["by_pid"][0] == {"samples": 1, "copy": 0, "wake": 0}


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


def test_roles_cost_and_sender_shares_come_from_schedstat():
    c = tcp_cost.costs(8.0, 1.5, 2.0, {"samples": 0, "copy": 0, "by_pid": {}}, set(), None,
                       sched={"sender": {"on_cpu": 0.6, "runq": 0.25},
                              "receiver": {"on_cpu": 0.3, "runq": 0.0}, "window_s": 4.0})
    assert c["sender_ms_per_gb"] == pytest.approx(600)       # 0.6 cores at 1 GB/s
    assert c["receiver_ms_per_gb"] == pytest.approx(300)
    assert (c["sender_on_cpu"], c["sender_runq"]) == (0.6, 0.25)
    assert "window_s_ms_per_gb" not in c and "switch_ms_per_gb" not in c
    assert c["other_cores"] == pytest.approx(0.6)           # 1.5 busy, 0.9 of it the roles'


def test_other_work_is_what_the_roles_did_not_use_and_never_negative():
    prof = {"samples": 0, "copy": 0, "by_pid": {}}
    assert "other_cores" not in tcp_cost.costs(8.0, 1.5, 2.0, prof, set(), None)
    c = tcp_cost.costs(8.0, 1.0, 2.0, prof, set(), None,        # sampled over other windows
                       sched={"sender": {"on_cpu": 0.7, "runq": 0}, "switch": {"on_cpu": 0.5,
                                                                              "runq": 0}})
    assert c["other_cores"] == 0.0


def test_the_load_line_says_how_loaded_the_machine_was():
    samples = {"veth": [{"load1": 7.0, "other_cores": 0.5}, {"load1": 9.0, "other_cores": 0.7}],
               "sw": [{"load1": 8.0, "other_cores": 0.6}]}
    line = tcp_cost.load_line(samples)
    assert "1-min load average 7.0..9.0 (median 8.0)" in line
    assert "other work kept 0.60 cores busy" in line
    assert tcp_cost.load_line({"veth": [{}]}) == "machine load: not measured"


def test_pipeline_bound_is_the_busiest_role_or_all_cores_busy():
    # the sender at 800 ms/GB bounds it at 1.25 GB/s (10 Gbit/s) although two cores at
    # 1000 ms/GB in all would carry 2 GB/s
    m = {"busy_ms_per_gb": 1000, "sender_ms_per_gb": 800, "switch_ms_per_gb": 300}
    assert tcp_cost.pipeline_bound_gbps(m, cores=2) == pytest.approx(10.0)
    # every core busy is the tighter bound when no role stands out
    m = {"busy_ms_per_gb": 1000, "sender_ms_per_gb": 400, "receiver_ms_per_gb": 400}
    assert tcp_cost.pipeline_bound_gbps(m, cores=2) == pytest.approx(16.0)
    assert tcp_cost.pipeline_bound_gbps({"busy_ms_per_gb": 1000}, cores=2) == pytest.approx(16.0)


def test_copies_are_priced_at_the_cores_veth_kept_busy_so_never_above_veth():
    veth = [_costs(16.0, 1.3, 0.5), _costs(16.0, 1.3, 0.5), _costs(32.0, 1.3, 0.5)]
    switch = [_costs(8.0, 1.5, 1, switch=(2, 1, 1.0))]
    med = tcp_cost.summarize({"veth": veth, "sw": switch}, cores=2)
    assert med["veth"]["gbps"] == 16.0                            # median of the reps
    assert med["sw"]["vs_veth"] == pytest.approx(0.5)
    # veth: 1.3 cores at 2 GB/s = 650 ms/GB; the switch's copies 500 ms/GB more
    assert med["sw"]["copies_at_veth_cores_vs_veth"] == pytest.approx(650 / 1150)
    assert med["sw"]["copies_at_veth_cores_vs_veth"] < 1          # the old ceiling said 1.37
    assert med["veth"]["copies_at_veth_cores_vs_veth"] is None
    # veth keeps 1.3 of 2 cores busy: its bound (2 cores at its cost) is above what it carried
    assert med["veth"]["bound_gbps"] == pytest.approx(2000 / 650 * 8)
    assert med["veth"]["vs_bound"] == pytest.approx(16.0 / (2000 / 650 * 8))
    text = tcp_cost.table(med)
    row = next(line for line in text.splitlines() if line.startswith("sw "))
    assert row.split()[-1] == "0.57" and "1500" in row


def test_each_placement_is_compared_with_veth_under_the_same_placement():
    med = tcp_cost.summarize({"veth@pinned": [_costs(16.0, 1.0, 0.5)],
                              "veth@unpinned": [_costs(8.0, 1.0, 0.5)],
                              "sw@pinned": [_costs(8.0, 1.5, 1, switch=(2, 1, 1.0))],
                              "sw@unpinned": [_costs(8.0, 1.5, 1, switch=(2, 1, 1.0))]}, cores=2)
    assert med["sw@pinned"]["vs_veth"] == pytest.approx(0.5)
    assert med["sw@unpinned"]["vs_veth"] == pytest.approx(1.0)


def test_without_veth_there_is_no_ratio():
    med = tcp_cost.summarize({"sw": [_costs(8.0, 1.5, 1, switch=(2, 1, 1.0))]}, cores=2)
    assert med["sw"]["vs_veth"] is None and med["sw"]["copies_at_veth_cores_vs_veth"] is None


def test_unknown_peer_is_refused(capsys):
    with pytest.raises(SystemExit):
        tcp_cost.main(["--peers", "veth,nope"])
    assert "unknown peer nope" in capsys.readouterr().err


def test_an_unknown_placement_is_refused(capsys):
    with pytest.raises(SystemExit):
        tcp_cost.main(["--placement", "sideways"])
    assert "unknown placement 'sideways'" in capsys.readouterr().err


SS_SENDER = """\
ESTAB 0      0       10.77.7.1:47636 10.77.7.2:5999
\t skmem:(r0,rb131072,t0,tb69120,f0,w0,o0,bl0,d0) bbr rtt:2.4/2.519 mss:1448 cwnd:13 bytes_sent:287
ESTAB 0      1310720 10.77.7.1:47652 10.77.7.2:5999
\t skmem:(r0,rb131072,t0,tb4194304,f3008,w1328192,o0,bl0,d0) bbr rtt:2.831/2.369 mss:1448 \
advmss:1448 cwnd:2091 bytes_sent:1715339301 unacked:906 notsent:5120 minrtt:0.028
"""
SS_RECEIVER = """\
ESTAB 0      0       10.77.7.2:5999 10.77.7.1:47636
\t skmem:(r0,rb131072) bytes_received:287
ESTAB 2097152 0      10.77.7.2:5999 10.77.7.1:47652
\t skmem:(r2097152,rb6291456) bytes_received:1715339301
"""


def test_the_busiest_connection_window_is_read_from_ss():
    from bench import loads
    got = loads.parse_ss(SS_SENDER)
    assert got["snd_rtt_us"] == 2831 and got["snd_cwnd"] == 2091      # not the control connection
    assert got["snd_inflight_kb"] == 906 * 1448 / 1024 and got["snd_notsent_kb"] == 5
    assert got["snd_sndbuf_kb"] == 4096 and got["snd_queued_kb"] == 1328192 / 1024
    assert loads.parse_ss(SS_RECEIVER, receiver=True) == {"rcv_queued_kb": 2048}
    assert loads.parse_ss("") == {}


def test_rps_rows_compare_with_veth_under_the_same_steering():
    assert tcp_cost._veth_of("tapswitch+rps@pinned") == "veth+rps@pinned"
    assert tcp_cost._veth_of("tapswitch@pinned") == "veth@pinned"
    assert tcp_cost._veth_of("tapswitch+rps") == "veth+rps" and tcp_cost._veth_of("x") == "veth"


def test_the_senders_copies_and_wakeups_are_priced_from_its_own_samples():
    hz = tcp_cost.PERF_HZ
    prof = {"samples": 4 * hz, "copy": hz, "wake": hz,
            "by_pid": {9: {"samples": 2 * hz, "copy": hz, "wake": hz // 2}}}
    c = tcp_cost.costs(8.0, 1.5, 2.0, prof, set(), None, role_pids={"sender": 9, "receiver": 10})
    assert c["sender_copy_ms_per_gb"] == pytest.approx(500)
    assert c["sender_wake_ms_per_gb"] == pytest.approx(250, rel=1e-2)
    assert c["receiver_copy_ms_per_gb"] == 0 and c["receiver_wake_ms_per_gb"] == 0


def test_rows_with_knobs_compare_with_veth_under_the_same_knobs():
    assert tcp_cost._veth_of("tapswitch/q64@pinned") == "veth/q64@pinned"
    assert tcp_cost._veth_of("tapswitch+rps/q64/tlo256K") == "veth+rps/q64/tlo256K"
    assert tcp_cost._veth_of("minimal-forwarder-vnet/tlo64K@unpinned") == "veth/tlo64K@unpinned"


def test_top_symbols_of_one_process_in_ms_per_gb():
    hz = tcp_cost.PERF_HZ
    top = tcp_cost.top_symbols(PERF_SCRIPT, 4242, gbps=8.0, seconds=1.0, n=2)   # 1 GB
    assert [sym for sym, _ in top] == ["_copy_to_iter", "_copy_from_iter"]
    assert top[0][1] == pytest.approx(1e3 / hz)     # one sample: 1/hz s of CPU for 1 GB
    assert tcp_cost.top_symbols(PERF_SCRIPT, 1, 8.0, 1.0) == []
