"""The TOML topology file of `tapswitch run`: parsed, validated, applied.

``load_config(path_or_text)`` turns the file into a passive ``Config`` (plain
frozen records, no model objects) and refuses anything it does not
understand: unknown keys, wrong types, bad addresses, references to
namespaces or ports that are not defined.  Every refusal is a ``ConfigError``
whose message starts with ``FILE:LINE: key.path:``.  ``apply(config, switch)``
builds the topology in a model all-or-nothing.  The format is documented in
docs/control.md; examples/ holds complete files.
"""
from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pyctl import addressing, errors
from pyctl.port_options import check_port_options
from pyctl.state import ROOT_NAME as ROOT

__all__ = [
    "ConfigError", "Config", "NamespaceSpec", "RouteSpec", "PortSpec",
    "DaemonSettings", "SlowPathLimits", "load_config", "apply", "check",
]

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


# ----------------------------------------------------------------- records

@dataclass(frozen=True)
class NamespaceSpec:
    name: str
    kind: str
    parent: str
    addresses: tuple[str, ...] = ()   # an L2's own; an L3's are assigned in the parent and pushed
    socket: bool = False              # give it its own control socket (<socket_dir>/<name>.sock)
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
    """A TAP port; ``options`` are the model's port options (pyctl.port_options):
    vnet_hdr, offloads, txqueuelen, mtu, and the kernel side netns/address/gateway."""
    name: str
    namespace: str
    mac: str | None = None
    options: dict[str, Any] = field(default_factory=dict, hash=False)
    key: str = ""
    line: int | None = None

    @property
    def netns(self) -> str | None:
        return self.options.get("netns")


@dataclass(frozen=True)
class SlowPathLimits:
    icmp_errors_per_second: int = 100
    icmp_errors_burst: int = 20
    arp_requests_per_second: int = 100
    frames_per_second: int = 20000


IO_BACKENDS = ("auto", "epoll", "io_uring")     # the packet loop's (fastpath.IO_BACKENDS)


@dataclass(frozen=True)
class DaemonSettings:
    socket: str = DEFAULT_SOCKET
    socket_dir: str | None = None      # per-namespace sockets; default <dir of socket>/ns
    socket_mode: int = 0o600
    batch_size: int = 64
    io_backend: str | None = None      # IO_BACKENDS; None: $TAPSWITCH_IO_BACKEND, else "auto"
    slowpath: SlowPathLimits = SlowPathLimits()

    @property
    def namespace_socket_dir(self) -> str:
        return self.socket_dir or os.path.join(os.path.dirname(self.socket) or ".", "ns")


@dataclass(frozen=True)
class Config:
    source: str
    root_addresses: tuple[str, ...] = ()
    root_socket: bool = False
    namespaces: tuple[NamespaceSpec, ...] = ()
    routes: tuple[RouteSpec, ...] = ()
    ports: tuple[PortSpec, ...] = ()
    daemon: DaemonSettings = DaemonSettings()
    lines: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def namespace_sockets(self) -> list[str]:
        """Names of the namespaces that get their own control socket."""
        names = [ROOT] if self.root_socket else []
        return names + [ns.name for ns in self.namespaces if ns.socket]


# ------------------------------------------------------- finding key lines

_HEADER = re.compile(r"\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"\s*((?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')"
                  r"(?:\s*\.\s*(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'))*)\s*=")


def _split_key(text: str) -> list[str]:
    parts = re.findall(r"\"[^\"]*\"|'[^']*'|[A-Za-z0-9_-]+", text)
    return [p[1:-1] if p[:1] in "\"'" else p for p in parts]


def _dotted(path: tuple) -> str:
    out = ""
    for seg in path:
        out += f"[{seg}]" if isinstance(seg, int) else (f".{seg}" if out else seg)
    return out


def _index_lines(text: str) -> dict[str, int]:
    """Map dotted key paths (``port[1].mac``) to the line that defines them.

    tomllib reports lines only for syntax errors; for the semantic ones we
    scan the text for table headers and ``key =`` lines.  Good enough: a key
    inside a multi-line string or an inline table falls back to the line of
    the nearest enclosing key.
    """
    lines: dict[str, int] = {}
    arrays: dict[tuple, int] = {}
    table: tuple = ()
    in_array_value = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if in_array_value:  # inside a multi-line array value: no keys here
            in_array_value += raw.count("[") - raw.count("]")
            continue
        header = _HEADER.match(raw)
        if header and not _KEY.match(raw):
            names = _split_key(header.group(2))
            path: tuple = ()
            for name in names[:-1]:
                path += (name,)
                if path in arrays:
                    path += (arrays[path],)
            path += (names[-1],)
            if header.group(1) == "[[":
                arrays[path] = arrays.get(path, -1) + 1
                path += (arrays[path],)
            table = path
            lines.setdefault(_dotted(table), number)
            continue
        key = _KEY.match(raw)
        if key:
            full = table + tuple(_split_key(key.group(1)))
            lines.setdefault(_dotted(full), number)
            value = raw[key.end():].split("#", 1)[0]
            if value.strip().startswith("["):
                in_array_value = value.count("[") - value.count("]")
    return lines


# ----------------------------------------------------------- the reader

class _Reader:
    """Type-checks values against the key path they came from."""

    def __init__(self, source: str, lines: dict[str, int]):
        self.source, self.lines = source, lines

    def line_of(self, path: tuple) -> int | None:
        while path:
            line = self.lines.get(_dotted(path))
            if line is not None:
                return line
            path = path[:-1]
        return None

    def error(self, path: tuple, reason: str, code: str | None = None) -> ConfigError:
        return ConfigError(self.source, _dotted(path), self.line_of(path), reason, code)

    def table(self, value: Any, path: tuple, allowed: tuple[str, ...],
              required: tuple[str, ...] = ()) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(path, f"expected a table, got {_type_name(value)}")
        for key in value:
            if key not in allowed:
                raise self.error(path + (key,), f"unknown key (allowed here: {', '.join(allowed)})")
        for key in required:
            if key not in value:
                raise self.error(path, f"missing required key {key!r}")
        return value

    def array_of_tables(self, doc: dict, key: str) -> list[tuple[tuple, dict]]:
        value = doc.get(key, [])
        if not isinstance(value, list):
            raise self.error((key,), f"expected an array of tables ([[{key}]]), got {_type_name(value)}")
        return [((key, i), item) for i, item in enumerate(value)]

    def typed(self, table: dict, path: tuple, key: str, kind: type | tuple, default: Any = None):
        if key not in table:
            return default
        value = table[key]
        if kind is int and isinstance(value, bool) or not isinstance(value, kind):
            want = {str: "a string", int: "an integer", bool: "a boolean", list: "an array"}
            raise self.error(path + (key,), f"expected {want.get(kind, kind)}, got {_type_name(value)}")
        return value

    def integer(self, table: dict, path: tuple, key: str, default: int, lo: int, hi: int) -> int:
        value = self.typed(table, path, key, int, default)
        if not lo <= value <= hi:
            raise self.error(path + (key,), f"{value} is out of range ({lo} .. {hi})")
        return value

    def strings(self, table: dict, path: tuple, key: str) -> tuple[tuple, list[str]] | None:
        value = self.typed(table, path, key, list)
        if value is None:
            return None
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise self.error(path + (key, i), f"expected a string, got {_type_name(item)}")
        return path + (key,), value

    def checked(self, path: tuple, check: Callable[[Any], Any], value: Any) -> Any:
        """``check(value)`` with its InvalidArgument turned into a located ConfigError."""
        try:
            return check(value)
        except errors.TapswitchError as exc:
            raise self.error(path, exc.message) from None


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a float", str: "a string",
            list: "an array", dict: "a table"}.get(type(value), type(value).__name__)


# ----------------------------------------------------------------- loading

def load_config(path_or_text: str | os.PathLike, *, source: str | None = None) -> Config:
    """Parse and validate a topology.  A ``Path``, or a one-line str with no
    ``=`` nor ``[`` (a file name), is read; any other str is the TOML text."""
    if isinstance(path_or_text, os.PathLike) or (
            isinstance(path_or_text, str) and path_or_text.strip()
            and not any(c in path_or_text for c in "\n=[")):
        path = Path(path_or_text)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(str(path), "", None, f"cannot read: {exc}") from None
        source = source or str(path)
    else:
        text, source = path_or_text, source or "<config>"
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        raise ConfigError(source, "", int(match.group(1)) if match else None,
                          f"TOML syntax error: {exc}") from None
    r = _Reader(source, _index_lines(text))
    r.table(doc, (), ("root", "namespace", "route", "port", "daemon"))
    root_addresses, root_socket = _read_root(r, doc)
    namespaces = _read_namespaces(r, doc)
    ports = _read_ports(r, doc, namespaces)
    routes = _read_routes(r, doc, namespaces, ports)
    return Config(source=source, root_addresses=root_addresses, root_socket=root_socket,
                  namespaces=namespaces, routes=routes, ports=ports,
                  daemon=_read_daemon(r, doc), lines=r.lines)


def _addresses(r: _Reader, table: dict, path: tuple, key: str = "addresses") -> tuple[str, ...]:
    found = r.strings(table, path, key)
    if found is None:
        return ()
    where, values = found
    out = []
    for i, text in enumerate(values):
        out.append(str(r.checked(where + (i,), addressing.parse_interface, text)))
    return tuple(out)


def _read_root(r: _Reader, doc: dict) -> tuple[tuple[str, ...], bool]:
    if "root" not in doc:
        return (), False
    table = r.table(doc["root"], ("root",), ("addresses", "socket"))
    return _addresses(r, table, ("root",)), r.typed(table, ("root",), "socket", bool, False)


def _read_namespaces(r: _Reader, doc: dict) -> tuple[NamespaceSpec, ...]:
    specs: dict[str, NamespaceSpec] = {}
    for path, item in r.array_of_tables(doc, "namespace"):
        t = r.table(item, path, ("name", "kind", "parent", "addresses", "socket"), ("name", "kind"))
        name = r.checked(path + ("name",), addressing.check_namespace_name,
                         r.typed(t, path, "name", str))
        if name == ROOT or name in specs:
            raise r.error(path + ("name",), f"namespace {name!r} is already defined"
                          + (" (the root is built in)" if name == ROOT else
                             f" at line {specs[name].line}"))
        kind = r.typed(t, path, "kind", str)
        if kind not in KINDS:
            raise r.error(path + ("kind",), f"kind must be 'l2' or 'l3', not {kind!r}")
        parent = r.typed(t, path, "parent", str, ROOT)
        specs[name] = NamespaceSpec(
            name=name, kind=kind, parent=parent, addresses=_addresses(r, t, path),
            socket=r.typed(t, path, "socket", bool, False),
            key=_dotted(path), line=r.line_of(path))
    for spec in specs.values():  # references, once every name is known
        path = _path_of(spec.key) + ("parent",)
        if spec.parent != ROOT:
            parent = specs.get(spec.parent)
            if parent is None:
                raise r.error(path, f"unknown namespace {spec.parent!r}")
            if parent.kind == "l3":
                raise r.error(path, f"{spec.parent!r} is an L3 namespace: it cannot hold "
                                    f"namespace {spec.name!r} (an L3 is a leaf)")
    return tuple(_parents_first(r, specs))


def _parents_first(r: _Reader, specs: dict[str, NamespaceSpec]) -> list[NamespaceSpec]:
    """Definition order, except that a parent always comes before its children."""
    ordered: list[NamespaceSpec] = []
    placed: set[str] = {ROOT}
    for spec in specs.values():
        chain: list[NamespaceSpec] = []
        cur = spec
        while cur.name not in placed:
            if cur in chain:
                names = " -> ".join(c.name for c in chain)
                raise r.error(_path_of(spec.key) + ("parent",), f"parent cycle: {names} -> {cur.name}")
            chain.append(cur)
            if cur.parent in placed:
                break
            cur = specs[cur.parent]
        for item in reversed(chain):
            placed.add(item.name)
            ordered.append(item)
    return ordered


def _path_of(key: str) -> tuple:
    """``'port[2]'`` -> ``('port', 2)`` (only the shapes this module builds)."""
    name, _, index = key.partition("[")
    return (name, int(index.rstrip("]"))) if index else (name,)


def _read_ports(r: _Reader, doc: dict, namespaces: tuple[NamespaceSpec, ...]) -> tuple[PortSpec, ...]:
    known = {ns.name: ns for ns in namespaces}
    ports: dict[str, PortSpec] = {}
    l3_port: dict[str, str] = {}
    option_keys = ("vnet_hdr", "offloads", "txqueuelen", "mtu", "netns", "address", "gateway")
    for path, item in r.array_of_tables(doc, "port"):
        t = r.table(item, path, ("name", "namespace", "mac") + option_keys, ("name", "namespace"))
        name = r.checked(path + ("name",), addressing.check_port_name, r.typed(t, path, "name", str))
        if name in ports:
            raise r.error(path + ("name",), f"port {name!r} is already defined at line {ports[name].line}")
        ns = r.typed(t, path, "namespace", str)
        if ns != ROOT and ns not in known:
            raise r.error(path + ("namespace",), f"unknown namespace {ns!r}")
        if ns in known and known[ns].kind == "l3":
            if ns in l3_port:
                raise r.error(path + ("namespace",), f"L3 namespace {ns!r} already has port "
                                                     f"{l3_port[ns]!r} (an L3 has at most one)")
            l3_port[ns] = name
        mac = t.get("mac")
        if mac is not None:
            mac = r.checked(path + ("mac",), addressing.parse_mac, r.typed(t, path, "mac", str))
        options = {}
        for key in option_keys:  # one at a time, so an error names its key
            if key == "gateway" and key in t:
                r.checked(path + (key,), lambda v: addressing.parse_ip(v, what="gateway"), t[key])
                options[key] = t[key]
            elif key in t:
                options.update(r.checked(path + (key,), check_port_options, {key: t[key]}))
        for key in ("address", "gateway"):
            if key in options and "netns" not in options:
                raise r.error(path + (key,), "only meaningful with netns (the kernel side of the TAP)")
        options = r.checked(path + ("gateway" if "gateway" in options else "address",),
                            check_port_options, options)
        ports[name] = PortSpec(name=name, namespace=ns, mac=mac, options=options,
                               key=_dotted(path), line=r.line_of(path))
    netns_owner: dict[str, str] = {}
    for port in ports.values():
        if port.netns is not None:
            if port.netns in netns_owner:
                raise r.error(_path_of(port.key) + ("netns",),
                              f"kernel namespace {port.netns!r} is already used by port "
                              f"{netns_owner[port.netns]!r}")
            netns_owner[port.netns] = port.name
    return tuple(ports.values())


def _read_routes(r: _Reader, doc: dict, namespaces: tuple[NamespaceSpec, ...],
                 ports: tuple[PortSpec, ...]) -> tuple[RouteSpec, ...]:
    known = {ns.name: ns for ns in namespaces}
    by_port = {p.name: p for p in ports}
    routes = []
    seen: dict[tuple[str, str], int | None] = {}
    for path, item in r.array_of_tables(doc, "route"):
        t = r.table(item, path, ("namespace", "prefix", "via", "port"), ("namespace", "prefix"))
        ns = r.typed(t, path, "namespace", str)
        if ns != ROOT and ns not in known:
            raise r.error(path + ("namespace",), f"unknown namespace {ns!r}")
        if ns in known and known[ns].kind == "l3":
            raise r.error(path + ("namespace",), f"{ns!r} is an L3 namespace: routes belong to "
                                                 f"its parent L2 {known[ns].parent!r}")
        prefix = str(r.checked(path + ("prefix",), addressing.parse_network,
                               r.typed(t, path, "prefix", str)))
        via = t.get("via")
        if via is not None:
            via = str(r.checked(path + ("via",), addressing.parse_ip, r.typed(t, path, "via", str)))
        port = r.typed(t, path, "port", str)
        if port is not None:
            if port not in by_port:
                raise r.error(path + ("port",), f"unknown port {port!r}")
            if by_port[port].namespace != ns:
                raise r.error(path + ("port",), f"port {port!r} is attached to "
                                                f"{by_port[port].namespace!r}, not to {ns!r} "
                                                f"(a route leaves through a port of its L2)")
        if via is None and port is None:
            raise r.error(path, "a route needs 'via' (a next hop) or 'port' (or both)")
        if (ns, prefix) in seen:
            raise r.error(path + ("prefix",), f"route {prefix} in {ns!r} is already defined "
                                              f"at line {seen[(ns, prefix)]}")
        seen[(ns, prefix)] = r.line_of(path)
        routes.append(RouteSpec(namespace=ns, prefix=prefix, via=via, port=port,
                                key=_dotted(path), line=r.line_of(path)))
    return tuple(routes)


def _read_daemon(r: _Reader, doc: dict) -> DaemonSettings:
    if "daemon" not in doc:
        return DaemonSettings()
    path = ("daemon",)
    t = r.table(doc["daemon"], path, ("socket", "socket_dir", "socket_mode", "batch_size",
                                      "io_backend", "slowpath"))
    defaults = DaemonSettings()
    socket = r.typed(t, path, "socket", str, defaults.socket)
    socket_dir = r.typed(t, path, "socket_dir", str, None)
    for key, value in (("socket", socket), ("socket_dir", socket_dir)):
        if value is not None and (not value or "\0" in value):
            raise r.error(path + (key,), "expected a file system path")
    if len(os.fsencode(socket)) > 107:
        raise r.error(path + ("socket",), "a Unix socket path is at most 107 bytes")
    mode = r.integer(t, path, "socket_mode", defaults.socket_mode, 0, 0o777)
    if mode & 0o007:
        raise r.error(path + ("socket_mode",), f"0o{mode:o} lets every user configure the switch "
                                               f"(others bits must be 0; use a group)")
    io_backend = r.typed(t, path, "io_backend", str, None)
    if io_backend is not None and io_backend not in IO_BACKENDS:
        raise r.error(path + ("io_backend",), f"expected one of {', '.join(IO_BACKENDS)}")
    slow = SlowPathLimits()
    if "slowpath" in t:
        sp = path + ("slowpath",)
        st = r.table(t["slowpath"], sp, ("icmp_errors_per_second", "icmp_errors_burst",
                                         "arp_requests_per_second", "frames_per_second"))
        slow = SlowPathLimits(**{
            key: r.integer(st, sp, key, getattr(slow, key), 0, 10_000_000)
            for key in ("icmp_errors_per_second", "icmp_errors_burst",
                        "arp_requests_per_second", "frames_per_second")})
    return DaemonSettings(socket=socket, socket_dir=socket_dir, socket_mode=mode,
                          batch_size=r.integer(t, path, "batch_size", defaults.batch_size, 1, 4096),
                          io_backend=io_backend, slowpath=slow)


# ----------------------------------------------------------------- applying

def apply(config: Config, switch) -> None:
    """Build ``config``'s topology in ``switch`` (a Switch or an acting context), all or nothing.

    Runs inside one model transaction: when the model refuses a step (an
    address another namespace already holds, a name that exists, ...), the
    switch returns to exactly its state before the call and a ConfigError
    names the entry of the file that was refused.  Kernel-side port options
    (netns, address, gateway) are recorded in the model; opening the TAPs is
    the daemon's job.
    """
    r = _Reader(config.source, config.lines)

    def step(path: tuple, verb: Callable[..., Any], *args, **kwargs) -> None:
        try:
            verb(*args, **kwargs)
        except errors.TapswitchError as exc:
            raise r.error(path, exc.message, exc.code) from None

    with switch.transaction():
        for i, address in enumerate(config.root_addresses):
            step(("root", "addresses", i), switch.add_address, ROOT, address)
        for ns in config.namespaces:
            path = _path_of(ns.key)
            step(path + ("name",), switch.create, ns.name, ns.kind, parent=ns.parent)
            add = switch.add_address if ns.kind == "l2" else _swap(switch.assign_and_push)
            for i, address in enumerate(ns.addresses):
                step(path + ("addresses", i), add, ns.name, address)
        for port in config.ports:
            step(_path_of(port.key), switch.add_port, port.name, port.namespace,
                 mac=port.mac, options=dict(port.options))
        for route in config.routes:
            step(_path_of(route.key), switch.add_route, route.namespace, route.prefix,
                 via=route.via, port=route.port)


def _swap(verb: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """``verb(address, ns)`` called as ``f(ns, address)``."""
    return lambda ns, address: verb(address, ns)


def check(config: Config):
    """Apply ``config`` to a fresh Switch (what `tapswitch check` does) and return it."""
    from pyctl.model import Switch
    switch = Switch()
    apply(config, switch)
    return switch
