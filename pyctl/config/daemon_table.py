"""The ``[daemon]`` table of a config file: its paths, sizes, CPUs, I/O backend, metrics
listener, and the ``[daemon.slowpath]`` and ``[daemon.control]`` limits, each key checked
on its own against its declared range (``pyctl.config.keys``) so every mistake is
reported; read by ``pyctl.config.load``."""
from __future__ import annotations

import ipaddress
import os

from pyctl.config import keys
from pyctl.config.cpus import check_cpus
from pyctl.config.reader import _Reader
from pyctl.config.spec import (
    IO_BACKENDS,
    SHARE_RANGE,
    ControlLimits,
    DaemonSettings,
    SlowPathLimits,
)

__all__ = ["read_daemon", "parse_listen_address"]


def parse_listen_address(text: str) -> tuple[str, int]:
    """``"127.0.0.1:9477"``, ``"[::1]:9477"`` -> (host, port); the host an IP literal (no
    name lookup when the daemon starts)."""
    from pyctl.errors import InvalidArgument
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise InvalidArgument(f"{text!r}: expected HOST:PORT with a port in 1..65535")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise InvalidArgument(f"{text!r}: the host must be an IP address (127.0.0.1, [::1], "
                              f"0.0.0.0)") from None
    return host, int(port)


def read_daemon(r: _Reader, doc: dict) -> DaemonSettings:
    """``[daemon]`` as ``DaemonSettings`` (the defaults where it or a key is refused)."""
    defaults = DaemonSettings()
    if "daemon" not in doc:
        return defaults
    path = ("daemon",)
    with r.collect() as entry:
        t = r.table(doc["daemon"], path, keys.allowed("daemon"))
    if not entry.ok:
        return defaults
    found = {}
    with r.collect():
        found["socket"] = _path_key(r, t, path, "socket", defaults.socket)
        if len(os.fsencode(found["socket"])) > 107:
            raise r.error(path + ("socket",), "a Unix socket path is at most 107 bytes")
    with r.collect():
        found["socket_dir"] = _path_key(r, t, path, "socket_dir", None)
    with r.collect():
        found["state_file"] = _path_key(r, t, path, "state_file", None)
    with r.collect():
        mode = r.integer(t, path, "socket_mode", defaults.socket_mode,
                         *keys.value_range("daemon", "socket_mode"))
        if mode & 0o007:
            raise r.error(path + ("socket_mode",), f"0o{mode:o} lets every user configure the switch "
                                                   f"(others bits must be 0; use a group)")
        found["socket_mode"] = mode
    with r.collect():
        found["batch_size"] = r.integer(t, path, "batch_size", defaults.batch_size,
                                        *keys.value_range("daemon", "batch_size"))
    with r.collect():
        if "cpus" in t:
            found["cpus"] = r.checked(path + ("cpus",), check_cpus, r.typed(t, path, "cpus", list))
    with r.collect():
        found["poll_us"] = r.integer(t, path, "poll_us", defaults.poll_us,
                                     *keys.value_range("daemon", "poll_us"))
    for name in ("tx_cost_limit_us", "tx_cost_share_pct"):
        with r.collect():
            found[name] = r.integer(t, path, name, getattr(defaults, name),
                                    *keys.value_range("daemon", name))
    with r.collect():
        io_backend = r.typed(t, path, "io_backend", str, None)
        if io_backend is not None and io_backend not in IO_BACKENDS:
            raise r.error(path + ("io_backend",), f"expected one of {', '.join(IO_BACKENDS)}")
        found["io_backend"] = io_backend
    with r.collect():
        text = r.typed(t, path, "metrics", str, None)
        if text is not None:
            found["metrics"] = r.checked(path + ("metrics",), parse_listen_address, text)
    if "slowpath" in t:
        found["slowpath"] = _slowpath(r, t["slowpath"], path + ("slowpath",))
    if "control" in t:
        found["control"] = _limits(r, t["control"], path + ("control",), ControlLimits)
    return DaemonSettings(**{**vars(defaults), **found})


def _path_key(r: _Reader, t: dict, path: tuple, key: str, default):
    value = r.typed(t, path, key, str, default)
    if value is not None and (not value or "\0" in value):
        raise r.error(path + (key,), "expected a file system path")
    return value


def _limits(r: _Reader, value, path: tuple, record: type, **more):
    """A table of integer limits as ``record``: each key checked against its declared
    range on its own; missing or refused keys keep their defaults (``more``: the
    record's other fields, read by the caller)."""
    defaults = record()
    with r.collect() as entry:
        if isinstance(value, dict) and "frames_per_second" in value and record is SlowPathLimits:
            raise r.error(path + ("frames_per_second",),
                          "the slow path has no switch-wide budget any more: each namespace has "
                          "its share of it, set in [daemon.slowpath.shares] (docs/security.md)")
        t = r.table(value, path, keys.allowed(*path))
    if not entry.ok:
        return defaults
    found = {}
    for key in keys.table_keys(*path):
        if key.type != "integer":
            continue
        with r.collect():
            low, high = key.range
            found[key.name] = r.integer(t, path, key.name, getattr(defaults, key.name), low, high)
    return record(**{**vars(defaults), **found, **more})


def _slowpath(r: _Reader, value, path: tuple) -> SlowPathLimits:
    """``[daemon.slowpath]``, with its ``shares`` table: ``NAME = [rate, burst]``."""
    shares = dict(SlowPathLimits().shares)
    given = value.get("shares") if isinstance(value, dict) else None
    if given is not None:
        where = path + ("shares",)
        with r.collect() as entry:
            values = r.table(given, where, keys.allowed(*where))
        for name, pair in (values.items() if entry.ok else ()):
            with r.collect():
                low, high = SHARE_RANGE
                if (not isinstance(pair, list) or len(pair) != 2
                        or any(isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high
                               for v in pair)):
                    raise r.error(where + (name,), f"expected [rate, burst]: two integers in "
                                                   f"{low}..{high} (frames per second, frames)")
                if pair[0] and not pair[1]:
                    raise r.error(where + (name,), "a share with a rate needs a burst of at least 1")
                shares[name] = tuple(pair)
    return _limits(r, value, path, SlowPathLimits, shares=shares)
