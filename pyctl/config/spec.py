"""What a topology file says, as passive frozen records (no model objects), and
``ConfigError``, whose message starts with ``FILE:LINE: key.path:``."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from fastpath.reasons import SLOW_SHARES
from pyctl import errors
from pyctl.model.state import ROOT_NAME as ROOT

KINDS = ("l2", "l3")
DEFAULT_SOCKET = "/run/tapswitch/control.sock"


class ConfigError(errors.InvalidArgument):
    """A refused config file: ``key`` is the dotted key path, ``line`` the 1-based line (or None).

    ``code`` is EINVAL for what the file itself gets wrong, or the model's
    code (EEXIST, EADDRINUSE, ...) when applying it is refused.
    """

    def __init__(self, source: str, key: str, line: int | None, reason: str,
                 code: str | None = None):
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {key}: {reason}" if key else f"{where}: {reason}")
        self.source, self.key, self.line, self.reason = source, key, line, reason
        if code is not None:
            self.code = code


class ConfigErrors(ConfigError):
    """Several refusals of one file, in line order (``errors``); the first's ``source``,
    ``key``, ``line`` and ``reason``, and a message of one line per refusal."""

    def __init__(self, errors_: list[ConfigError]):
        first = errors_[0]
        errors.InvalidArgument.__init__(self, "\n".join(e.message for e in errors_))
        self.errors = list(errors_)
        self.source, self.key, self.line, self.reason = first.source, first.key, first.line, first.reason
        codes = {e.code for e in errors_}
        self.code = codes.pop() if len(codes) == 1 else errors.InvalidArgument.code


def config_errors(found: list[ConfigError]) -> ConfigError:
    """One refusal as itself, several as ``ConfigErrors``."""
    return found[0] if len(found) == 1 else ConfigErrors(found)


# ----------------------------------------------------------------- records

@dataclass(frozen=True)
class NamespaceSpec:
    name: str
    kind: str
    parent: str
    addresses: tuple[str, ...] = ()   # an L2's own; an L3's are assigned in the parent and pushed
    socket: bool = False              # give it its own control socket (<socket_dir>/<name>.sock)
    groups: tuple[str, ...] = ()      # configured multicast memberships (never expire)
    quota: dict[str, int] = field(default_factory=dict, hash=False)   # an L2's (model/quotas.py)
    options: dict[str, Any] = field(default_factory=dict, hash=False)  # an L2's (advertise, directed_broadcast)
    netns: tuple[str, ...] = ()       # kernel namespaces delegated to an L2 (model/kernel_reach.py)
    key: str = ""
    line: int | None = None


@dataclass(frozen=True)
class RouteSpec:
    namespace: str
    prefix: str
    via: str | None = None
    port: str | None = None
    key: str = ""
    line: int | None = None


@dataclass(frozen=True)
class PortSpec:
    """A port; ``options`` are the model's port options (pyctl.model.port_options): kind,
    vnet_hdr, offloads, txqueuelen, mtu, the kernel side netns/address/gateway, and
    dhcp_lease_time."""
    name: str
    namespace: str
    mac: str | None = None
    options: dict[str, Any] = field(default_factory=dict, hash=False)
    key: str = ""
    line: int | None = None

    @property
    def netns(self) -> str | None:
        return self.options.get("netns")


def _default_shares() -> dict:
    return {share.name: (share.rate, share.burst) for share in SLOW_SHARES}


@dataclass(frozen=True)
class SlowPathLimits:
    icmp_errors_per_second: int = 100
    icmp_errors_burst: int = 20
    arp_requests_per_second: int = 100
    neighbours: int = 65536                 # learned neighbours, in all
    neighbours_per_scope: int = 4096        # learned neighbours of one L2 scope
    neighbour_reachable_time: int = 30      # seconds; then stale, probed, removed unanswered
    igmp_groups_per_namespace: int = 256    # groups one namespace may learn from its reports
    # [daemon.slowpath.shares]: share -> (frames per second, burst) each namespace (igmp:
    # each port) may hand to the slow path (fastpath.reasons.SLOW_SHARES; rate 0: no limit)
    shares: dict = field(default_factory=_default_shares, hash=False)


# [daemon.slowpath] key -> (smallest, largest) value the file may give it
# (the slow path needs a rate and a burst of at least 1: pyctl.daemon.slowpath.SlowPathConfig)
SLOWPATH_LIMIT_RANGES = {
    "icmp_errors_per_second": (1, 10_000_000), "icmp_errors_burst": (1, 10_000_000),
    "arp_requests_per_second": (1, 10_000_000),
    "neighbours": (1, 10_000_000), "neighbours_per_scope": (1, 10_000_000),
    "neighbour_reachable_time": (1, 86400), "igmp_groups_per_namespace": (1, 65536),
}
SHARE_RANGE = (0, 1_000_000)            # a share's rate and burst


@dataclass(frozen=True)
class ControlLimits:
    """What the control sockets' clients may take (pyctl.control.admission; docs/security.md)."""
    connections: int = 256              # namespace-socket connections in all
    connections_per_socket: int = 32    # connections of one namespace socket
    admin_connections: int = 16         # the admin socket's own, apart from the rest
    idle_timeout: int = 300             # seconds without a request: the connection is closed
    request_bytes: int = 64 * 1024      # longest request line (without its newline)
    request_depth: int = 32             # deepest nesting of arrays/objects in a request
    requests_per_second: int = 200      # per namespace socket (0: no limit); the admin's: none
    requests_burst: int = 200


# [daemon.control] key -> (smallest, largest) value the file may give it
CONTROL_LIMIT_RANGES = {
    "connections": (1, 1_000_000), "connections_per_socket": (1, 1_000_000),
    "admin_connections": (1, 1_000_000), "idle_timeout": (1, 86400),
    "request_bytes": (1024, 16 * 1024 * 1024), "request_depth": (4, 256),
    "requests_per_second": (0, 10_000_000), "requests_burst": (1, 10_000_000),
}


IO_BACKENDS = ("auto", "epoll", "io_uring")     # the packet loop's (fastpath.IO_BACKENDS)


@dataclass(frozen=True)
class DaemonSettings:
    socket: str = DEFAULT_SOCKET
    socket_dir: str | None = None      # per-namespace sockets; default <dir of socket>/ns
    socket_mode: int = 0o600
    batch_size: int = 64
    io_backend: str | None = None      # IO_BACKENDS; None: $TAPSWITCH_IO_BACKEND, else "auto"
    slowpath: SlowPathLimits = SlowPathLimits()
    control: ControlLimits = ControlLimits()
    state_file: str | None = None      # what it made in the kernel; default <socket>.state
    cpus: tuple[int, ...] | None = None  # the packet thread's CPUs (pyctl.config.cpus); None: any
    poll_us: int = 0                   # poll this long after a busy batch before sleeping; 0: off
    tx_cost_limit_us: int = 100        # a port whose frames cost more to write is held (0: never)
    tx_cost_share_pct: int = 10        # ... to this share of the packet thread

    metrics: tuple[str, int] | None = None   # (host, port) of the Prometheus listener; None: off

    @property
    def namespace_socket_dir(self) -> str:
        return self.socket_dir or os.path.join(os.path.dirname(self.socket) or ".", "ns")

    @property
    def state_path(self) -> str:
        """The state file (pyctl.daemon.ownership): ``state_file``, else the admin socket's
        path with ``.state`` for its extension."""
        return self.state_file or os.path.splitext(self.socket)[0] + ".state"


@dataclass(frozen=True)
class Config:
    source: str
    root_addresses: tuple[str, ...] = ()
    root_socket: bool = False
    root_groups: tuple[str, ...] = ()
    root_options: dict[str, Any] = field(default_factory=dict, hash=False)
    namespaces: tuple[NamespaceSpec, ...] = ()
    routes: tuple[RouteSpec, ...] = ()
    ports: tuple[PortSpec, ...] = ()
    daemon: DaemonSettings = DaemonSettings()
    lines: dict[str, int] = field(default_factory=dict, repr=False, compare=False)
    # What the validator needs to know of a file read with its refusals (config.read_config):
    # the names of namespaces and ports whose entries were refused (checks that depend on
    # them are skipped: one mistake is reported once), and whether the file said nothing.
    broken_namespaces: frozenset[str] = field(default=frozenset(), repr=False, compare=False)
    broken_ports: frozenset[str] = field(default=frozenset(), repr=False, compare=False)
    empty: bool = field(default=False, repr=False, compare=False)

    def namespace_sockets(self) -> list[str]:
        """Names of the namespaces that get their own control socket."""
        names = [ROOT] if self.root_socket else []
        return names + [ns.name for ns in self.namespaces if ns.socket]


# ------------------------------------------------------- finding key lines
