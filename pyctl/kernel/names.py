"""Names of kernel objects: unique per process and call, and checked as the kernel would."""

from __future__ import annotations

import itertools
import os
import secrets
import threading

from pyctl.kernel.errors import BadArgument

NETNS_RUN_DIR = "/run/netns"
IFNAMSIZ = 16                       # including the trailing NUL
MAX_IFNAME = IFNAMSIZ - 1


_TAG_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_name_lock = threading.Lock()


def _new_tag() -> str:
    return "".join(secrets.choice(_TAG_ALPHABET) for _ in range(4))


_tag = _new_tag()
_counter = itertools.count()


def _reset_after_fork() -> None:
    global _tag, _counter
    _tag, _counter = _new_tag(), itertools.count()


os.register_at_fork(after_in_child=_reset_after_fork)


def _base36(n: int) -> str:
    digits = ""
    while True:
        n, r = divmod(n, 36)
        digits = _TAG_ALPHABET[r] + digits
        if n == 0:
            return digits


def process_tag() -> str:
    """The random tag of this process (4 chars), part of every unique name."""
    return _tag


def unique_name(prefix: str = "ts", maxlen: int = MAX_IFNAME) -> str:
    """A short name unique to this process and call: prefix + process tag +
    counter, at most ``maxlen`` (IFNAMSIZ-1 = 15) characters, so two
    topologies in one or two processes never collide."""
    if not prefix or not all(c.isalnum() or c in "-_" for c in prefix):
        raise BadArgument(f"name prefix must be letters, digits, '-' or '_': {prefix!r}")
    with _name_lock:
        name = f"{prefix}{_tag}{_base36(next(_counter))}"
    if len(name) > maxlen:
        raise BadArgument(f"prefix {prefix!r} too long: {name!r} exceeds {maxlen} characters")
    return name


def check_ifname(name: str) -> str:
    """Validate an interface name as the kernel would (dev_valid_name)."""
    if not isinstance(name, str) or not name or len(name) > MAX_IFNAME:
        raise BadArgument(f"interface name must be 1..{MAX_IFNAME} characters: {name!r}")
    if name in (".", "..") or any(c in "/:" or c.isspace() for c in name):
        raise BadArgument(f"invalid interface name: {name!r}")
    return name


def check_netns_name(name: str) -> str:
    if not isinstance(name, str) or not name or len(name) > 255:
        raise BadArgument(f"namespace name must be 1..255 characters: {name!r}")
    if name in (".", "..") or "/" in name or "\0" in name:
        raise BadArgument(f"invalid namespace name: {name!r}")
    return name
