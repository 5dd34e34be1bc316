"""`tapswitch ctl capture PORT|NAMESPACE [--drops] [-c COUNT] [-w FILE]`: the client of the
switch-side capture (the daemon's half: pyctl/daemon/capture.py).

It starts a capture on the socket (``capture-start``), reads what the switch copied
(``capture-read``, every ``POLL_S``) and writes it as pcapng (pyctl.ops.pcap: one
interface per port, the direction of each frame, a drop's reason as the frame's comment
``drop: REASON``) to FILE, or to stdout when it is not a terminal (``| tcpdump -r -``);
on a terminal it prints one line per frame.  It stops after COUNT frames, or on Ctrl-C /
SIGTERM, and then ends the capture (``capture-stop``) and says what it saw and lost.
"""
from __future__ import annotations

import argparse
import base64
import contextlib
import signal
import time

__all__ = ["add_parser", "run"]

POLL_S = 0.1


def add_parser(verbs) -> None:
    p = verbs.add_parser("capture", help="capture frames of a port or a namespace as pcapng",
                         description="Capture, switch-side, the frames a port or a namespace "
                                     "(its ports) receives and sends, or with --drops those the "
                                     "switch drops, with the reason (docs/operations.md).")
    p.add_argument("target", metavar="PORT|NAMESPACE")
    p.add_argument("--drops", action="store_true", help="the dropped frames, with their reason")
    p.add_argument("-c", "--count", type=int, default=None, help="stop after COUNT frames")
    p.add_argument("-w", "--write", metavar="FILE", help="write pcapng to FILE ('-': stdout)")


def _describe(frame: dict) -> str:
    where = {"in": "from", "out": "to", "drop": "dropped from"}[frame["direction"]]
    line = f"{frame['ts_ns'] / 1e9:.6f} {where} {frame['port']} {frame['length']} bytes"
    return line + (f" ({frame['reason']})" if frame["reason"] else "")


def run(ns: argparse.Namespace, client, out, err) -> None:
    from pyctl import errors
    from pyctl.ops.pcap import PcapngWriter
    if ns.count is not None and ns.count < 1:
        raise errors.InvalidArgument(f"-c COUNT is at least 1, not {ns.count}")
    with contextlib.ExitStack() as stack:
        stream = None
        if ns.write == "-" or (ns.write is None and not out.isatty()):
            stream = getattr(out, "buffer", out)
        elif ns.write is not None:
            stream = stack.enter_context(open(ns.write, "wb"))
        stopping = []
        stack.callback(signal.signal, signal.SIGTERM,
                       signal.signal(signal.SIGTERM, lambda *_: stopping.append(1)))
        started = client.call("capture-start", target=ns.target, drops=ns.drops)
        print(f"tapswitch: capturing {'drops' if ns.drops else 'traffic'} of {ns.target} (ports "
              f"{', '.join(started['ports']) or 'none'}); Ctrl-C stops", file=err, flush=True)
        writer = PcapngWriter(stream) if stream is not None else None
        written = _Written(ns.count)

        def write(frames):
            for frame in frames:
                if written.full:
                    return
                data = base64.b64decode(frame["data"])
                if writer is not None:
                    writer.write(frame["port"], data, frame["ts_ns"],
                                 original_length=frame["length"],
                                 direction="in" if frame["direction"] != "out" else "out",
                                 comment=f"drop: {frame['reason']}" if frame["reason"] else None)
                else:
                    print(_describe(frame), file=out)
                written.n += 1
            if writer is not None:
                writer.flush()
        try:
            try:
                while not stopping and not written.full:
                    got = client.call("capture-read", id=started["id"])
                    write(got["frames"])
                    if not got["more"]:
                        time.sleep(POLL_S)
            except KeyboardInterrupt:
                pass
            more = not written.full              # stopped: what is copied already
            while more:
                got = client.call("capture-read", id=started["id"])
                write(got["frames"])
                more = got["more"] and not written.full
        finally:
            done = client.call("capture-stop", id=started["id"])
            print(f"tapswitch: {written.n} frames written; the switch saw {done['seen']}, "
                  f"{done['lost']} lost (not read in time)", file=err, flush=True)


class _Written:
    def __init__(self, count):
        self.n, self.count = 0, count

    @property
    def full(self) -> bool:
        return self.count is not None and self.n >= self.count
