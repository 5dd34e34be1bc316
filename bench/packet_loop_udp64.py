"""64-byte UDP frames through the PacketLoop alone, per I/O backend (root): what the
loop does per frame, to explain the daemon's figures in `python -m bench --tests udp64`.

    python -m bench.packet_loop_udp64 [--seconds 4] [--reps 3] [--backends io_uring,epoll]
                                      [--sides vnet,vnet plain,plain] [--batch 64]

Two kernel namespaces behind TAPs (tests/e2e/loop_rig.py: the datapath set up by hand,
no slow path), the loop on a thread of this process; bench/csrc/udpblast.c sends
64-byte datagrams from one namespace (sendmmsg) and counts them in the other
(recvmmsg).  Per run: frames delivered per second (the receiving TAP's rx counter), the
loop's CPU time per frame forwarded (this process's CPU time: its main thread only
waits), frames per batch, frames per write submission (kernel crossings for writes),
epoll_wait calls per batch.  Medians over the repetitions.
"""
import argparse
import functools
import json
import resource
import statistics
import subprocess
import time

import fastpath
from bench import cbuild
from pyctl import kernel
from tests.e2e.loop_rig import LoopRig

PAYLOAD = 64 - 14 - 20 - 8          # a 64-byte Ethernet frame (without FCS)
PORT = 7001


def cpu_s():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def rx_packets(ns, ifname):
    with ns.ipr() as ipr:
        link = ipr.get_links(ifname=ifname)[0]
    return link.get_attr("IFLA_STATS64")["rx_packets"]


def measure(backend, sides, seconds, batch):
    blast = cbuild.tool("udpblast")
    reg = kernel.CleanupRegistry()
    rig = LoopRig(functools.partial(kernel.NetNamespace, registry=reg), sides,
                  batch_size=batch, backend=backend).start()
    sink = None
    try:
        dst, tap_b = rig.addrs[2], rig.taps[2].name
        sink = rig.ns[2].popen([blast, "sink", dst, str(PORT), str(seconds + 10)],
                               stdout=subprocess.PIPE, text=True)
        assert sink.stdout.readline().strip() == "ready"
        rig.ns[1].run([blast, "send", dst, str(PORT), str(PAYLOAD), "0.2"], timeout=10)  # warm up
        time.sleep(0.2)
        before, c0, rx0 = rig.loop.stats(), cpu_s(), rx_packets(rig.ns[2], tap_b)
        gen = rig.ns[1].run([blast, "send", dst, str(PORT), str(PAYLOAD), str(seconds)],
                            timeout=seconds + 10)
        time.sleep(0.2)
        cpu, after, rx = cpu_s() - c0, rig.loop.stats(), rx_packets(rig.ns[2], tap_b) - rx0
        sent = json.loads(gen.stdout.strip().splitlines()[-1])
    finally:
        if sink is not None:
            kernel.stop_process(sink)
        rig.close()
        reg.cleanup()
    d = {k: after[k] - before[k] for k in after if isinstance(after[k], int)}
    out = max(d["frames_out"], 1)
    return {"delivered_kfps": rx / sent["elapsed"] / 1e3, "sent_kfps": sent["sent"] / sent["elapsed"] / 1e3,
            "cpu_ns_per_frame": cpu * 1e9 / out, "frames_per_batch": d["frames_in"] / max(d["batches"], 1),
            "frames_per_submit": d["frames_out"] / max(d["tx_submits"], 1),
            "epoll_per_batch": d["epoll_waits"] / max(d["batches"], 1),
            "write_drops": d["write_eagain"] + d["write_errors"]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--backends", default=",".join(fastpath.io_backends()))
    ap.add_argument("--sides", nargs="*", default=["vnet,vnet", "plain,plain"])
    args = ap.parse_args(argv)
    cols = ("delivered_kfps", "sent_kfps", "cpu_ns_per_frame", "frames_per_batch",
            "frames_per_submit", "epoll_per_batch", "write_drops")
    print(f"{'backend':<10}{'ports':<13}" + "".join(f"{c:>18}" for c in cols))
    for backend in args.backends.split(","):
        for s in args.sides:
            runs = [measure(backend, tuple(s.split(",")), args.seconds, args.batch)
                    for _ in range(args.reps)]
            med = {c: statistics.median(r[c] for r in runs) for c in cols}
            print(f"{backend:<10}{s:<13}" + "".join(f"{med[c]:>18.1f}" for c in cols), flush=True)


if __name__ == "__main__":
    main()
