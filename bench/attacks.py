"""What a hostile tenant does, one function per attack, for the hostile-tenant benchmark
(bench/hostile.py) and the tests that check each attack is refused or counted.

An attack is a context manager function taking the ``Scene`` of bench/hostile.py (the
switch's topology, the attacker tenant and its control socket, the victims): it starts the
attack on entry, keeps it going in the background while the victims are measured, stops it
on exit and yields a dict that grows with what it did (the row's notes).  Register it with
``@attack("name")``; ``python -m bench.hostile --attacks name`` then runs it.

Attacks that need no topology (a control socket path is enough) are plain context
managers below the registry: ``control_socket_flood(path)``; the attacks run them in a
process of their own inside the attacker's kernel namespace (``Scene.attacker_process``:
``python -m bench.attacks control-socket-flood PATH`` prints "ready", attacks until its
stdin closes, then prints its notes as JSON).
"""
from __future__ import annotations

import contextlib
import errno
import json
import socket
import sys
import threading
import time

__all__ = ["ATTACKS", "attack", "control_socket_flood"]

ATTACKS: dict = {}


def attack(name: str):
    """Register ``func(scene)`` (a generator: set up, ``yield notes``, tear down) as ``name``."""
    def register(func):
        ATTACKS[name] = contextlib.contextmanager(func)
        return func
    return register


# ------------------------------------------------------------------ item 15

def _connect_nonblocking(path: str) -> socket.socket | None:
    """A connection to ``path`` if the server (or its backlog) takes it now, else None."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
    try:
        sock.connect(path)
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.EAGAIN, errno.ECONNREFUSED, errno.EMFILE, errno.ENFILE):
            return None
        raise
    return sock


@contextlib.contextmanager
def control_socket_flood(path: str, idle: int = 5000, persist: float = 3.0,
                         burst_every: float = 0.05, burst: int = 200):
    """``idle`` connections opened to the control socket ``path`` and left idle (a connect
    the backlog has no room for is tried again every millisecond for the first ``persist``
    seconds, once after that), and from a thread, every ``burst_every`` s, ``burst``
    connects closed at once, for the duration."""
    notes = {"idle_wanted": idle, "idle_open": 0, "refused": 0, "burst_connects": 0}
    held = []
    stop = threading.Event()

    def bursts():
        while not stop.wait(burst_every):
            for _ in range(burst):
                sock = _connect_nonblocking(path)
                if sock is None:
                    notes["refused"] += 1
                else:
                    notes["burst_connects"] += 1
                    sock.close()

    try:
        persist_until = time.monotonic() + persist
        for _ in range(idle):
            sock = _connect_nonblocking(path)
            while sock is None and time.monotonic() < persist_until:
                time.sleep(0.001)
                sock = _connect_nonblocking(path)
            if sock is None:
                notes["refused"] += 1
            else:
                held.append(sock)
        notes["idle_open"] = len(held)
        thread = threading.Thread(target=bursts, name="control-flood", daemon=True)
        thread.start()
        try:
            yield notes
        finally:
            stop.set()
            thread.join(10)
    finally:
        for sock in held:
            sock.close()


@attack("control-socket")
def control_socket(scene):
    """Item 15: thousands of idle connections and connect bursts on the attacker's own
    (L3) control socket, the daemon held to 1,024 open files as a service manager would."""
    scene.limit_daemon_files(1024)
    notes = {"daemon_cpu_ms_per_s_before": scene.daemon_cpu_ms_per_s()}
    proc = scene.attacker_process("control-socket-flood", scene.attacker_socket())
    try:
        notes["daemon_cpu_ms_per_s_under"] = scene.daemon_cpu_ms_per_s()
        notes["admin_ping_ms"] = scene.admin_ping_ms()
        yield notes
    finally:
        notes.update(scene.stop_attacker(proc))


# ------------------------------------------------------------------ as a process

_PROCESS_ATTACKS = {"control-socket-flood": control_socket_flood}


def main(argv: list[str]) -> int:
    """``python -m bench.attacks NAME ARG...``: attack until stdin closes, then the notes."""
    name, args = argv[0], argv[1:]
    with _PROCESS_ATTACKS[name](*args) as notes:
        print("ready", flush=True)
        sys.stdin.read()
    print(json.dumps(notes), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
