"""Single-stream TCP through the PacketLoop between two kernel namespaces (root).

    python -m bench.packet_loop_tcp [--seconds 5] [--sides vnet,vnet plain,plain ...]

For each pair of port kinds ("vnet": virtio-net header with offloads, "vnet-off": header
without offloads, "plain": no header) it runs a Python TCP client and server as separate
processes in the two namespaces for the given time, with the loop in this process, and
prints the throughput, the frames the loop read and wrote, and the loop's CPU time per
frame read and per MB carried (this process does nothing else while it runs).
"""
import argparse
import functools
import resource
import sys
import time

from pyctl import kernel
from tests.e2e.loop_rig import LoopRig

SERVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 5201)); s.listen(1); print("ready", flush=True)
c, _ = s.accept(); buf = bytearray(1 << 20); n = 0
while True:
    k = c.recv_into(buf)
    if not k: break
    n += k
print(n, flush=True)
"""

CLIENT = """
import socket, sys, time
c = socket.create_connection((sys.argv[1], 5201)); data = bytes(1 << 18)
end = time.monotonic() + float(sys.argv[2]); t0 = time.monotonic()
while time.monotonic() < end: c.sendall(data)
c.close(); print(time.monotonic() - t0, flush=True)
"""


def cpu_s():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def measure(sides, seconds):
    reg = kernel.CleanupRegistry()
    rig = LoopRig(functools.partial(kernel.NetNamespace, registry=reg), sides).start()
    try:
        import subprocess
        srv = rig.ns[2].popen([sys.executable, "-c", SERVER, rig.addrs[2]], stdout=subprocess.PIPE,
                              text=True)
        assert srv.stdout.readline().strip() == "ready"
        before, c0 = rig.loop.stats(), cpu_s()
        cli = rig.ns[1].run([sys.executable, "-c", CLIENT, rig.addrs[2], str(seconds)],
                            timeout=seconds + 30)
        elapsed = float(cli.stdout.strip())
        got = int(srv.stdout.readline())
        srv.wait(10)
        cpu, after = cpu_s() - c0, rig.loop.stats()
    finally:
        rig.close()
        reg.cleanup()
    frames_in = after["frames_in"] - before["frames_in"]
    return {"sides": "-".join(sides), "gbit_s": got * 8 / elapsed / 1e9,
            "frames_in": frames_in, "frames_out": after["frames_out"] - before["frames_out"],
            "segments": after["sw_segments"] - before["sw_segments"],
            "cpu_s": cpu, "us_per_frame_in": cpu / max(frames_in, 1) * 1e6,
            "us_per_mb": cpu / (got / 1e6) * 1e6}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--sides", nargs="*", default=["vnet,vnet", "vnet,plain", "plain,plain"])
    args = ap.parse_args(argv)
    print(f"{'ports':<16}{'Gbit/s':>8}{'frames in':>11}{'frames out':>11}{'sw segs':>9}"
          f"{'cpu s':>7}{'us/frame in':>13}{'us/MB':>8}")
    for s in args.sides:
        r = measure(tuple(s.split(",")), args.seconds)
        print(f"{r['sides']:<16}{r['gbit_s']:>8.2f}{r['frames_in']:>11}{r['frames_out']:>11}"
              f"{r['segments']:>9}{r['cpu_s']:>7.2f}{r['us_per_frame_in']:>13.2f}"
              f"{r['us_per_mb']:>8.1f}")
        time.sleep(0.5)


if __name__ == "__main__":
    main()
