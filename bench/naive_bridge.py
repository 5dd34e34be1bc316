"""The TAP bridge a user would write by hand: python-pytun and a select loop.

    python -m bench.naive_bridge TAP_A TAP_B

Creates the two TAPs, prints "ready", then copies every frame read on one to
the other until SIGTERM (the TAPs vanish with the process). A bench peer.
"""

import ctypes
import select
import signal
import sys

from pytun import IFF_NO_PI, IFF_TAP, TunTapDevice

PR_SET_PDEATHSIG = 1


def main(argv):
    if len(argv) != 2:
        sys.exit("usage: python -m bench.naive_bridge TAP_A TAP_B")
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)   # die with the bench
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    a = TunTapDevice(name=argv[0], flags=IFF_TAP | IFF_NO_PI)
    b = TunTapDevice(name=argv[1], flags=IFF_TAP | IFF_NO_PI)
    other = {a: b, b: a}
    print("ready", flush=True)
    while True:
        readable, _, _ = select.select([a, b], [], [])
        for tap in readable:
            frame = tap.read(65536)
            try:
                other[tap].write(frame)
            except OSError:          # the other TAP is down (EIO): drop the frame
                pass


if __name__ == "__main__":
    main(sys.argv[1:])
