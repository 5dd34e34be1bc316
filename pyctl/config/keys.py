"""Every key of the topology file, declared once: its type, whether it is required, its
range or choices, the form of its text, its default and a line of help.

The loader (``pyctl.config.load``) takes each table's allowed and required keys and each
integer's range from here; ``pyctl.config.schema`` writes the JSON Schema editors read
(docs/config.schema.json) from the same declarations, so the two cannot disagree about
which keys exist.  Rules that span keys (references, duplicates, a gateway inside the
address's subnet) are the loader's and the model's; the schema states the shape only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastpath.reasons import SLOW_SHARES
from pyctl.config.cpus import POLL_US_MAX
from pyctl.config.spec import (
    CONTROL_LIMIT_RANGES,
    DEFAULT_SOCKET,
    IO_BACKENDS,
    KINDS,
    SHARE_RANGE,
    SLOWPATH_LIMIT_RANGES,
    ControlLimits,
    DaemonSettings,
    SlowPathLimits,
)
from pyctl.model.namespace_options import NAMESPACE_OPTION_DEFAULTS
from pyctl.model.port_options import (DEFAULT_LEASE_TIME, MAX_PORT_ADDRESSES, OFFLOADS, RING_FRAMES,
                                      KINDS as PORT_KINDS)
from pyctl.model.quotas import QUOTA_KEYS

TX_COST_LIMIT_US_MAX = 1_000_000     # PacketLoop.tx_cost_limit_us (fastpath/tx_cost.pxi)

__all__ = ["Key", "FILE", "table_keys", "allowed", "required"]

TYPES = ("string", "boolean", "integer", "integers", "strings", "string_or_strings", "table",
         "tables", "pair")
# "integers": a non-empty list of distinct integers, each in ``range``
# "string_or_strings": one string, or a non-empty list of at most ``range[1]`` of them
# "pair": two integers, each in ``range`` ([rate, burst] of a slow-path share)
# What a string must look like (the loader checks it with the model's parsers).
FORMATS = ("interface", "ip", "network", "mac", "namespace", "ifname", "netns", "path")


@dataclass(frozen=True)
class Key:
    name: str
    type: str
    help: str
    required: bool = False
    range: tuple[int, int] | None = None        # integers: smallest, largest (lists: items)
    choices: tuple[str, ...] | None = None      # strings (or the items of "strings")
    format: str | None = None                   # strings (or the items of "strings")
    default: Any = None
    keys: tuple["Key", ...] = ()                # "table" and "tables": what they hold

    def __post_init__(self):
        if self.type not in TYPES:
            raise ValueError(f"{self.name}: unknown type {self.type!r}")
        if self.format is not None and self.format not in FORMATS:
            raise ValueError(f"{self.name}: unknown format {self.format!r}")
        if self.type == "string_or_strings" and self.range is None:
            raise ValueError(f"{self.name}: a list needs its range of lengths")
        if bool(self.keys) != (self.type in ("table", "tables")):
            raise ValueError(f"{self.name}: only a table holds keys, and a table holds some")


def _limit_keys(record: type, ranges: dict, helps: dict) -> tuple[Key, ...]:
    defaults = record()
    return tuple(Key(name, "integer", helps[name], range=span, default=getattr(defaults, name))
                 for name, span in ranges.items())


_SLOWPATH_HELP = {
    "icmp_errors_per_second": "ICMP errors sent, per sending namespace",
    "icmp_errors_burst": "burst of ICMP errors per sending namespace",
    "arp_requests_per_second": "ARP requests the switch sends (resolution and probes)",
    "neighbours": "learned neighbours in all",
    "neighbours_per_scope": "learned neighbours of one L2 scope",
    "neighbour_reachable_time": "seconds a neighbour is reachable; then stale and probed",
    "igmp_groups_per_namespace": "groups one namespace may learn from its IGMP reports",
}
_CONTROL_HELP = {
    "connections": "namespace-socket connections in all",
    "connections_per_socket": "connections of one namespace socket",
    "admin_connections": "the admin socket's own connections, apart from the rest",
    "idle_timeout": "seconds without a request before a connection is closed",
    "request_bytes": "longest request line (without its newline)",
    "request_depth": "deepest nesting of arrays and objects in a request",
    "requests_per_second": "requests per second per namespace socket (0: no limit)",
    "requests_burst": "burst of requests per namespace socket",
}
QUOTA_MAX = 10_000_000
CPU_MAX = 8191          # the kernel's largest NR_CPUS; check_cpus asks the host itself


_DAEMON = DaemonSettings()

DAEMON_KEYS = (
    Key("socket", "string", "the admin control socket (at most 107 bytes)", format="path",
        default=DEFAULT_SOCKET),
    Key("socket_dir", "string", "directory of the namespace sockets (default: <dir of "
        "socket>/ns)", format="path"),
    Key("socket_mode", "integer", "mode of the socket files; no bits for others",
        range=(0, 0o777), default=_DAEMON.socket_mode),
    Key("batch_size", "integer", "frames per fast-path call", range=(1, 4096),
        default=_DAEMON.batch_size),
    Key("io_backend", "string", "the packet loop's write backend (default: "
        "$TAPSWITCH_IO_BACKEND, else auto)", choices=IO_BACKENDS),
    Key("cpus", "integers", "the packet thread's CPUs (default: any; docs/io.md); each "
        "must exist and be allowed to the daemon", range=(0, CPU_MAX)),
    Key("poll_us", "integer", "poll this many microseconds after a busy batch before "
        "sleeping (0: off; only with cpus)", range=(0, POLL_US_MAX), default=_DAEMON.poll_us),
    Key("tx_cost_limit_us", "integer", "hold a port whose frames cost the packet thread more "
        "than this many microseconds each to write (its tenant's own stack runs in the "
        "write) to tx_cost_share_pct of the thread (0: never; docs/security.md)",
        range=(0, TX_COST_LIMIT_US_MAX), default=_DAEMON.tx_cost_limit_us),
    Key("tx_cost_share_pct", "integer", "the share of the packet thread's time a held port's "
        "writes may take, in %", range=(1, 100), default=_DAEMON.tx_cost_share_pct),
    Key("metrics", "string", "HOST:PORT of the Prometheus HTTP listener (off when absent; "
        "what it serves is the admin's view)"),
    Key("state_file", "string", "what the daemon made in the kernel, for a restart after a "
        "crash (default: the admin socket's path with .state)", format="path"),
    Key("slowpath", "table", "rate limits and bounds of the slow path",
        keys=_limit_keys(SlowPathLimits, SLOWPATH_LIMIT_RANGES, _SLOWPATH_HELP) + (
            Key("shares", "table", "each namespace's share of the slow path: NAME = [frames "
                "per second, burst] (rate 0: no limit; docs/security.md)",
                keys=tuple(Key(share.name, "pair", f"[rate, burst] of the {share.name} share",
                               range=SHARE_RANGE, default=[share.rate, share.burst])
                           for share in SLOW_SHARES)),)),
    Key("control", "table", "what the control sockets' clients may take (docs/security.md)",
        keys=_limit_keys(ControlLimits, CONTROL_LIMIT_RANGES, _CONTROL_HELP)),
)

ROOT_KEYS = (
    Key("addresses", "strings", "addresses of the root L2 'init'", format="interface"),
    Key("socket", "boolean", "open a namespace socket for 'init'", default=False),
    Key("groups", "strings", "multicast groups 'init' is a configured member of", format="ip"),
    Key("advertise", "boolean", "send IPv6 router advertisements on its ports and answer "
        "solicitations (docs/model.md)", default=NAMESPACE_OPTION_DEFAULTS["advertise"]),
    Key("directed_broadcast", "boolean", "let a directed broadcast of the root's subnets in "
        "from another subnet or an uplink (RFC 2644; docs/model.md)",
        default=NAMESPACE_OPTION_DEFAULTS["directed_broadcast"]),
)

NAMESPACE_KEYS = (
    Key("name", "string", "the namespace's name", required=True, format="namespace"),
    Key("kind", "string", "l2 or l3", required=True, choices=KINDS),
    Key("parent", "string", "its parent L2 (default: the root, 'init')", format="namespace",
        default="init"),
    Key("addresses", "strings", "an L2's own addresses; an L3's, assigned in the parent "
        "and pushed", format="interface"),
    Key("socket", "boolean", "open <socket_dir>/<name>.sock acting as it", default=False),
    Key("groups", "strings", "multicast groups it is a configured member of (never expire; "
        "docs/multicast.md)", format="ip"),
    Key("advertise", "boolean", "an L2's: send IPv6 router advertisements on its scope's "
        "ports and answer solicitations (docs/model.md)",
        default=NAMESPACE_OPTION_DEFAULTS["advertise"]),
    Key("directed_broadcast", "boolean", "an L2's: let a directed broadcast of its subnets "
        "in from another subnet or an uplink (RFC 2644; docs/model.md)",
        default=NAMESPACE_OPTION_DEFAULTS["directed_broadcast"]),
    Key("netns", "strings", "an L2's: kernel network namespaces delegated to its clients "
        "(they may put ports there; docs/model.md)", format="netns"),
    Key("quota", "table", "an L2's quotas over its subtree (docs/model.md)",
        keys=tuple(Key(name, "integer", f"most {name} in the subtree", range=(0, QUOTA_MAX))
                   for name in QUOTA_KEYS)),
)

PORT_KEYS = (
    Key("name", "string", "the TAP's interface name (at most 15 characters)", required=True,
        format="ifname"),
    Key("namespace", "string", "the namespace it is attached to (an L3 has at most one)",
        required=True, format="namespace"),
    Key("mac", "string", "the switch side's MAC (default: generated)", format="mac"),
    Key("kind", "string", "how the switch serves the port: a TAP, a veth pair on AF_PACKET "
        "rings or AF_XDP, an existing interface attached, or the best this machine allows "
        "(docs/io.md)", choices=PORT_KINDS, default="tap"),
    Key("vnet_hdr", "boolean", "open the TAP with the virtio-net header", default=False),
    Key("offloads", "strings", "segmentation and checksum offloads (need vnet_hdr)",
        choices=OFFLOADS),
    Key("txqueuelen", "integer", "the TAP's transmit queue length", range=(0, 2**31 - 1)),
    Key("mtu", "integer", "the TAP's MTU", range=(68, 65535)),
    Key("netns", "string", "kernel network namespace the TAP is moved into (created when "
        "missing, entered when it exists)", format="netns"),
    Key("address", "string_or_strings", "the TAP's address inside netns, or a list mixing "
        "IPv4 and IPv6", format="interface", range=(1, MAX_PORT_ADDRESSES)),
    Key("gateway", "string_or_strings", "the default route inside netns (inside a subnet of "
        "address), or a list of one per family", format="ip", range=(1, 2)),
    Key("router", "boolean", "a router stands behind the port: its IPv6 router "
        "advertisements and redirects reach the scope", default=False),
    Key("dhcp_lease_time", "integer", "seconds of the lease the switch's DHCP server gives "
        "on the port (served: kind attach, or no address)", range=(2, 2**31 - 1),
        default=DEFAULT_LEASE_TIME),
    Key("dhcp_server", "boolean", "the endpoint is a DHCP server the L2 trusts: its server "
        "messages (UDP from port 67; DHCPv6: 547) reach the scope", default=False),
    Key("ring_frames", "integer", "frames the switch's receive ring holds, a power of two "
        "(kinds veth, xdp, attach; default 1024; at most 128 MiB of ring per port)",
        range=RING_FRAMES),
)

ROUTE_KEYS = (
    Key("namespace", "string", "the L2 the route belongs to", required=True,
        format="namespace"),
    Key("prefix", "string", "A/N without host bits, or 'default'", required=True,
        format="network"),
    Key("via", "string", "the next hop", format="ip"),
    Key("port", "string", "a port of that L2 the route leaves by", format="ifname"),
)

FILE = (
    Key("daemon", "table", "the daemon's settings (all optional)", keys=DAEMON_KEYS),
    Key("root", "table", "the built-in root L2, 'init'", keys=ROOT_KEYS),
    Key("namespace", "tables", "one per namespace; order is free", keys=NAMESPACE_KEYS),
    Key("port", "tables", "one per TAP port", keys=PORT_KEYS),
    Key("route", "tables", "one per route of an L2", keys=ROUTE_KEYS),
)


def table_keys(*path: str) -> tuple[Key, ...]:
    """The keys of the table at ``path`` (``()``: the file; ``("daemon", "slowpath")``)."""
    keys = FILE
    for name in path:
        keys = next(k for k in keys if k.name == name).keys
    return keys


def allowed(*path: str) -> tuple[str, ...]:
    return tuple(k.name for k in table_keys(*path))


def required(*path: str) -> tuple[str, ...]:
    return tuple(k.name for k in table_keys(*path) if k.required)


def value_range(*path: str) -> tuple[int, int]:
    """The declared range of the integer key at ``path`` (its table's path, then its name)."""
    *table, name = path
    return next(k for k in table_keys(*table) if k.name == name).range
