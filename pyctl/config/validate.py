"""The one validator of a topology file: what `tapswitch check` reports, what `tapswitch
run` and a reload refuse.  ``validate(path, facts=...)`` returns a ``Report`` with every
refusal at once (each a ``ConfigError`` naming file:line:key) and notes.

Three phases, each over what the one before let through (a refused entry is not checked
again, so one mistake is one refusal):

1. the file (``read_config``): TOML, keys, types, ranges, references; an empty file;
2. the model (``build`` on a fresh Switch): what the model refuses (an address held
   twice, a name defined twice, a gateway of the other family, ...);
3. the host, when ``facts`` says what it is like (``pyctl.kernel.facts.HostFacts``):
   the privileges the ports need (CAP_NET_ADMIN for a TAP, CAP_SYS_ADMIN to create or
   enter a kernel namespace), /dev/net/tun, TAP names already taken by a link that is not
   the switch's (in the host or in the kernel namespace the TAP moves into), IPv6 where
   the kernel has none, the open-files limit, the admin
   socket in use, the metrics address taken.  (The tables' sizes are the model's
   capacity: phase 2 refuses the namespace or port past them; an IPv6 address on a
   link under 1280 bytes is the port options' refusal, phase 1.)

A reload passes what the running switch owns (``own_links``, ``own_netns``) and
``check_sockets=False``: its own TAPs and sockets are not in the way.
"""
from __future__ import annotations

import errno
import os
import socket as socket_mod
import stat
from dataclasses import dataclass, field

from pyctl.config.apply import build
from pyctl.config.load import _path_of, read_config
from pyctl.config.reader import _Reader
from pyctl.config.spec import Config, ConfigError, config_errors
from pyctl.model.port_options import port_interfaces

__all__ = ["Facts", "Report", "validate", "MAX_NAMESPACES", "MAX_PORTS", "FD_RESERVE",
           "CAP_NET_ADMIN", "CAP_SYS_ADMIN"]

MAX_NAMESPACES, MAX_PORTS = 4096, 1024     # the fast path's table sizes (the daemon's defaults)
FD_RESERVE = 64         # files the daemon holds besides its TAPs (epoll, sockets, pipes, ...)
CAP_NET_ADMIN, CAP_SYS_ADMIN = "CAP_NET_ADMIN", "CAP_SYS_ADMIN"


class Facts:
    """What the host is like.  This base knows nothing (every answer "cannot tell"), so
    ``validate`` checks only the file and the model; ``pyctl.kernel.facts.HostFacts``
    reads the running system."""

    def capabilities(self) -> frozenset[str] | None:
        """The process's effective capabilities (``"CAP_NET_ADMIN"``, ...)."""
        return None

    def tun_problem(self) -> str | None:
        """Why a TAP cannot be opened (/dev/net/tun missing, ...), or None."""
        return None

    def netns(self) -> frozenset[str] | None:
        """The named kernel network namespaces (/run/netns)."""
        return None

    def links(self, netns: str | None) -> frozenset[str] | None:
        """The links of the host (None) or of a named kernel namespace."""
        return None

    def ipv6(self) -> bool | None:
        return None

    def open_files(self) -> int | None:
        """RLIMIT_NOFILE's soft limit."""
        return None

    def recorded(self, state_path: str):
        """What the state file at ``state_path`` says (``pyctl.daemon.ownership.Recorded``:
        ``live_pid``, ``links``, ``netns``), or None: cannot tell."""
        return None


@dataclass
class Report:
    config: Config
    switch: object | None                       # the model built (None when phase 1 failed)
    errors: list[ConfigError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def raise_errors(self) -> None:
        if self.errors:
            raise config_errors(self.errors)


def validate(path_or_text, *, source: str | None = None, facts: Facts | None = None,
             own_links=frozenset(), own_netns=frozenset(), check_sockets: bool = True,
             max_namespaces: int = MAX_NAMESPACES, max_ports: int = MAX_PORTS) -> Report:
    """Every refusal of the file at ``path_or_text`` (phases in the module's docstring).
    With ``facts``, what ``facts.recorded(state file)`` says a dead daemon left (the
    switch's own, taken over at start) is out of the way too, and a live daemon on the
    same state file is a refusal."""
    from pyctl.model.switch import Switch
    config, found = read_config(path_or_text, source=source)
    report = Report(config, None, found)
    r = _Reader(config.source, config.lines)
    if config.empty and not found:
        report.errors.append(ConfigError(config.source, "", None, "the file is empty: nothing to "
                                         "run (a switch configured only through its socket "
                                         "needs at least a [daemon] table)"))
    if report.errors and not (config.namespaces or config.ports or config.root_addresses):
        return report
    switch = Switch()
    # The model refuses what the tables cannot hold (TableFull, ENOSPC, naming the entry).
    switch.set_capacity(namespaces=max_namespaces, ports=max_ports)
    report.switch = switch
    report.errors += build(config, switch)
    failed = {e.key.split(".")[0] for e in report.errors}     # "port[2]", "namespace[0]"
    ports = [p for p in config.ports if p.key not in failed]
    if facts is not None:
        left = facts.recorded(config.daemon.state_path)
        if left is not None and left.live_pid is not None and check_sockets:
            report.errors.append(r.error(("daemon", "state_file"), f"another tapswitch (pid "
                                         f"{left.live_pid}) runs with the state file "
                                         f"{config.daemon.state_path}", "EBUSY"))
        if left is not None:
            own_links, own_netns = set(own_links) | left.links, set(own_netns) | left.netns
        report.errors += _host(r, config, ports, facts, frozenset(own_links),
                               frozenset(own_netns), report.notes)
        report.errors += _limits(r, config, facts)
        if check_sockets:
            report.errors += _sockets(r, config)
    report.errors.sort(key=lambda e: e.line or 0)
    return report


def _has_ipv6(port) -> bool:
    return any(i.version == 6 for i in port_interfaces(port.options))


def _host(r: _Reader, config: Config, ports, facts: Facts, own_links, own_netns,
          notes: list[str]) -> list[ConfigError]:
    out = []
    caps = facts.capabilities()
    if ports and caps is not None:
        needs = [(CAP_NET_ADMIN, ports[0], "to create the TAPs and configure their links")]
        in_netns = [p for p in ports if p.netns]
        if in_netns:
            needs.append((CAP_SYS_ADMIN, in_netns[0], "to create or enter the kernel namespaces "
                                                      "of the ports' netns (setns, mount)"))
        for cap, port, why in needs:
            if cap not in caps:
                out.append(r.error(_path_of(port.key), f"missing privilege: {cap} is needed {why} "
                                   f"(run as root, or grant it: AmbientCapabilities={cap})", "EPERM"))
    problem = facts.tun_problem() if ports else None
    if problem:
        out.append(r.error(_path_of(ports[0].key), f"TAPs cannot be opened: {problem}", "ENODEV"))
    existing_netns = facts.netns() or frozenset()
    host_links = facts.links(None)
    for port in ports:
        here = _path_of(port.key)
        if port.name in own_links:
            continue
        if host_links is not None and port.name in host_links:
            out.append(r.error(here + ("name",), f"a link named {port.name!r} already exists in the "
                               f"host's network namespace and is not one of this switch's TAPs",
                               "EEXIST"))
            continue
        if port.netns and port.netns in existing_netns and port.netns not in own_netns:
            inside = facts.links(port.netns)
            if inside is not None and port.name in inside:
                out.append(r.error(here + ("netns",), f"kernel namespace {port.netns!r} already holds "
                                   f"a link named {port.name!r}: the TAP cannot be moved there",
                                   "EEXIST"))
                continue
            notes.append(f"kernel namespace {port.netns!r} exists: port {port.name!r} enters it "
                         f"and leaves it in place when it closes")
    if facts.ipv6() is False:
        for port in ports:
            if _has_ipv6(port):
                out.append(r.error(_path_of(port.key) + ("address",), "IPv6 is disabled in this "
                                   "kernel (ipv6.disable=1): the address cannot be set",
                                   "EAFNOSUPPORT"))
    return out


def _limits(r: _Reader, config: Config, facts: Facts) -> list[ConfigError]:
    out = []
    nofile = facts.open_files()
    if nofile is not None and len(config.ports) + FD_RESERVE > nofile:
        out.append(r.error(("port",), f"the open-files limit is {nofile}: too few for "
                           f"{len(config.ports)} TAPs and the daemon's {FD_RESERVE} other files "
                           f"(raise it: ulimit -n, or LimitNOFILE= in the unit)", "EMFILE"))
    return out


def _sockets(r: _Reader, config: Config) -> list[ConfigError]:
    """The admin socket's file and directory as ``run`` will find them (read only:
    nothing is created or removed here), and the metrics address."""
    out = []
    settings = config.daemon
    where = ("daemon", "socket")
    problem = _socket_file_problem(settings.socket) or _dir_problem(os.path.dirname(settings.socket))
    if problem:
        out.append(r.error(where, problem[1], problem[0]))
    if config.namespace_sockets():
        problem = _dir_problem(settings.namespace_socket_dir)
        if problem:
            out.append(r.error(("daemon", "socket_dir"), problem[1], problem[0]))
    if settings.metrics is not None:
        problem = _bind_problem(settings.metrics)
        if problem:
            out.append(r.error(("daemon", "metrics"), problem, "EADDRINUSE"))
    return out


def _socket_file_problem(path: str) -> tuple[str, str] | None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return "EACCES", f"cannot look at {path}: {exc.strerror}"
    if not stat.S_ISSOCK(st.st_mode):
        return "EEXIST", f"{path} exists and is not a socket"
    probe = socket_mod.socket(socket_mod.AF_UNIX, socket_mod.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(path)
    except OSError:
        return None                 # stale: run replaces it
    finally:
        probe.close()
    return "EBUSY", f"{path} is in use: another tapswitch is listening there"


def _dir_problem(directory: str) -> tuple[str, str] | None:
    """Can the daemon make ``directory`` (or use it)?"""
    probe = directory or "."
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        return "ENOTDIR", f"{probe} is not a directory"
    if not os.access(probe, os.W_OK | os.X_OK) and probe != directory:
        return "EACCES", f"cannot create {directory}: {probe} is not writable"
    st = os.stat(probe)
    if probe == directory and st.st_mode & stat.S_IWOTH and not st.st_mode & stat.S_ISVTX:
        return "EPERM", f"{directory} is world-writable: the daemon refuses to put sockets there"
    return None


def _bind_problem(address: tuple[str, int]) -> str | None:
    host, port = address
    family = socket_mod.AF_INET6 if ":" in host else socket_mod.AF_INET
    with socket_mod.socket(family, socket_mod.SOCK_STREAM) as s:
        s.setsockopt(socket_mod.SOL_SOCKET, socket_mod.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
                return f"cannot listen on {host}:{port}: {exc.strerror}"
            raise
    return None
