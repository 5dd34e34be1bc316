"""TCP throughput load in plain Python, for when iperf3 is not installed.

    python -m bench.tcpload server BIND PORT STREAMS MAXSECONDS
    python -m bench.tcpload client DST PORT STREAMS SECONDS

The server prints "ready", accepts STREAMS connections and counts what
arrives; it prints {"bytes", "seconds"} where seconds runs from the first
byte to the last stream's end. The client sends from 4 MB buffers for SECONDS
per stream (kernel buffer autotuning stays on) and prints {"bytes", "seconds"}.
Both are bounded in time and die with their parent.
"""

import ctypes
import json
import signal
import socket
import sys
import threading
import time

CHUNK = 4 << 20
PR_SET_PDEATHSIG = 1


def server(bind, port, streams, max_seconds):
    signal.alarm(int(max_seconds) + 1)
    lsock = socket.socket(socket.AF_INET6 if ":" in bind else socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((bind, port))
    lsock.listen(streams)
    print("ready", flush=True)
    totals = [0] * streams
    first = [None] * streams
    last = [0.0] * streams

    def receive(i, conn):
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        with conn:
            while True:
                n = conn.recv_into(view)
                if n == 0:
                    break
                if first[i] is None:
                    first[i] = time.monotonic()
                totals[i] += n
        last[i] = time.monotonic()

    threads = []
    for i in range(streams):
        conn, _ = lsock.accept()
        t = threading.Thread(target=receive, args=(i, conn), daemon=True)
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    starts = [f for f in first if f is not None]
    seconds = (max(last) - min(starts)) if starts else 0.0
    print(json.dumps({"bytes": sum(totals), "seconds": seconds}), flush=True)


def client(dst, port, streams, seconds):
    signal.alarm(int(seconds) + 30)
    payload = memoryview(bytearray(CHUNK))
    sent = [0] * streams
    socks = [socket.create_connection((dst, port), timeout=10) for _ in range(streams)]
    start = time.monotonic()
    deadline = start + seconds

    def send(i, sock):
        with sock:
            while time.monotonic() < deadline:
                sock.sendall(payload)
                sent[i] += CHUNK
            sock.shutdown(socket.SHUT_WR)

    threads = [threading.Thread(target=send, args=(i, s), daemon=True) for i, s in enumerate(socks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"bytes": sum(sent), "seconds": time.monotonic() - start}), flush=True)


def main(argv):
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if len(argv) == 5 and argv[0] in ("server", "client"):
        mode, addr, port, streams, secs = argv
        (server if mode == "server" else client)(addr, int(port), int(streams), float(secs))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
