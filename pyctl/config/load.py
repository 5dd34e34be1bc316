"""``load_config(path_or_text)``: the file parsed and validated into a ``Config``."""
from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

from pyctl.config.cpus import POLL_US_MAX, check_cpus
from pyctl.config.reader import _dotted, _index_lines, _Reader
from pyctl.config.spec import (
    CONTROL_LIMIT_RANGES,
    IO_BACKENDS,
    KINDS,
    SHARE_RANGE,
    SLOWPATH_LIMIT_RANGES,
    Config,
    ConfigError,
    ControlLimits,
    DaemonSettings,
    NamespaceSpec,
    PortSpec,
    RouteSpec,
    SlowPathLimits,
)
from pyctl.model import addressing
from pyctl.model.namespace_options import check_namespace_options
from pyctl.model.port_options import check_kind_combination, check_port_option, check_port_options
from pyctl.model.quotas import QUOTA_KEYS
from pyctl.model.state import ROOT_NAME as ROOT


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
    root_addresses, root_socket, root_options = _read_root(r, doc)
    namespaces = _read_namespaces(r, doc)
    ports = _read_ports(r, doc, namespaces)
    routes = _read_routes(r, doc, namespaces, ports)
    return Config(source=source, root_addresses=root_addresses, root_socket=root_socket,
                  root_options=root_options,
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


NAMESPACE_OPTION_KEYS = ("advertise",)      # pyctl.model.namespace_options, keys of an L2's table


def _namespace_options(r: _Reader, table: dict, path: tuple, kind: str) -> dict:
    options = {}
    for key in NAMESPACE_OPTION_KEYS:  # one at a time, so an error names its key
        if key in table:
            if kind != "l2":
                raise r.error(path + (key,), "an L3 has no options of its own: set them on "
                                             "its parent L2")
            options.update(r.checked(path + (key,), check_namespace_options, {key: table[key]}))
    return options


def _read_root(r: _Reader, doc: dict) -> tuple[tuple[str, ...], bool, dict]:
    if "root" not in doc:
        return (), False, {}
    table = r.table(doc["root"], ("root",), ("addresses", "socket") + NAMESPACE_OPTION_KEYS)
    return (_addresses(r, table, ("root",)), r.typed(table, ("root",), "socket", bool, False),
            _namespace_options(r, table, ("root",), "l2"))


def _read_namespaces(r: _Reader, doc: dict) -> tuple[NamespaceSpec, ...]:
    specs: dict[str, NamespaceSpec] = {}
    for path, item in r.array_of_tables(doc, "namespace"):
        t = r.table(item, path, ("name", "kind", "parent", "addresses", "socket", "quota")
                    + NAMESPACE_OPTION_KEYS, ("name", "kind"))
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
            socket=r.typed(t, path, "socket", bool, False), quota=_quota(r, t, path, kind),
            options=_namespace_options(r, t, path, kind),
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
    ordered = _parents_first(r, specs)
    _check_socket_quotas(r, ordered)
    return tuple(ordered)


def _quota(r: _Reader, table: dict, path: tuple, kind: str) -> dict[str, int]:
    """``quota = { routes = 10, ... }`` (or a ``[namespace.quota]`` table) of an L2."""
    if "quota" not in table:
        return {}
    where = path + ("quota",)
    if kind != "l2":
        raise r.error(where, "quotas are set on L2 namespaces (an L3's parent counts what it "
                             "holds)")
    values = r.table(table["quota"], where, QUOTA_KEYS)
    return {key: r.integer(values, where, key, 0, 0, 10_000_000) for key in values}


def _check_socket_quotas(r: _Reader, ordered: list[NamespaceSpec]) -> None:
    """``socket = true`` namespaces below an L2 within its ``sockets`` quota (the sockets
    are opened once the daemon runs, after the model is built)."""
    parent = {spec.name: spec.parent for spec in ordered}
    for spec in ordered:
        limit = spec.quota.get("sockets")
        if limit is None:
            continue
        below = []
        for other in ordered:
            up = parent.get(other.name)
            while up is not None and up != spec.name:
                up = parent.get(up)
            if up == spec.name and other.socket:
                below.append(other.name)
        if len(below) > limit:
            raise r.error(_path_of(spec.key) + ("quota", "sockets"),
                          f"{len(below)} namespaces below {spec.name!r} have socket = true "
                          f"({', '.join(below)}): more than its quota of {limit}", "EDQUOT")


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
    option_keys = ("kind", "vnet_hdr", "offloads", "txqueuelen", "mtu", "netns", "address",
                   "gateway", "router", "dhcp_lease_time")
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
            if key in t:
                options[key] = r.checked(path + (key,), lambda v, k=key: check_port_option(k, v),
                                         t[key])
        if "kind" in options:
            r.checked(path + ("kind",), check_kind_combination, options)
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
        via = t.get("via")
        if via is not None:
            via = str(r.checked(path + ("via",), addressing.parse_ip, r.typed(t, path, "via", str)))
        family = None if via is None else (6 if ":" in via else 4)
        prefix = str(r.checked(path + ("prefix",),
                               lambda v: addressing.parse_network(v, version=family),
                               r.typed(t, path, "prefix", str)))
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
                                      "io_backend", "slowpath", "control", "state_file",
                                      "cpus", "poll_us"))
    defaults = DaemonSettings()
    socket = r.typed(t, path, "socket", str, defaults.socket)
    socket_dir = r.typed(t, path, "socket_dir", str, None)
    state_file = r.typed(t, path, "state_file", str, None)
    for key, value in (("socket", socket), ("socket_dir", socket_dir), ("state_file", state_file)):
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
    cpus = None
    if "cpus" in t:
        cpus = r.checked(path + ("cpus",), check_cpus, r.typed(t, path, "cpus", list))
    return DaemonSettings(socket=socket, socket_dir=socket_dir, socket_mode=mode,
                          batch_size=r.integer(t, path, "batch_size", defaults.batch_size, 1, 4096),
                          io_backend=io_backend, state_file=state_file, cpus=cpus,
                          poll_us=r.integer(t, path, "poll_us", defaults.poll_us, 0, POLL_US_MAX),
                          slowpath=_slowpath(r, t, path),
                          control=_limits(r, t, path, "control", ControlLimits,
                                          CONTROL_LIMIT_RANGES))


def _limits(r: _Reader, table: dict, path: tuple, key: str, record: type, ranges: dict,
            extra: tuple = (), **more):
    """The ``[daemon.KEY]`` table of integer limits as ``record``; missing keys keep
    their defaults, each value checked against its (smallest, largest); ``extra`` keys
    are allowed and read by the caller (``more``: their values)."""
    defaults = record()
    if key not in table:
        return defaults
    sub = path + (key,)
    values = r.table(table[key], sub, tuple(ranges) + extra)
    return record(**{name: r.integer(values, sub, name, getattr(defaults, name), low, high)
                     for name, (low, high) in ranges.items()}, **more)


def _slowpath(r: _Reader, table: dict, path: tuple) -> SlowPathLimits:
    """``[daemon.slowpath]``, with its ``shares`` table: ``NAME = [rate, burst]``."""
    sub = path + ("slowpath",)
    given = table.get("slowpath", {})
    if isinstance(given, dict) and "frames_per_second" in given:
        raise r.error(sub + ("frames_per_second",),
                      "the slow path has no switch-wide budget any more: each namespace has "
                      "its share of it, set in [daemon.slowpath.shares] (docs/security.md)")
    shares = SlowPathLimits().shares
    if isinstance(given, dict) and "shares" in given:
        where = sub + ("shares",)
        values = r.table(given["shares"], where, tuple(shares))
        shares = dict(shares)
        for name, value in values.items():
            low, high = SHARE_RANGE
            if (not isinstance(value, list) or len(value) != 2
                    or any(isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high
                           for v in value)):
                raise r.error(where + (name,), f"expected [rate, burst]: two integers in "
                                               f"{low}..{high} (frames per second, frames)")
            if value[0] and not value[1]:
                raise r.error(where + (name,), "a share with a rate needs a burst of at least 1")
            shares[name] = tuple(value)
    return _limits(r, table, path, "slowpath", SlowPathLimits, SLOWPATH_LIMIT_RANGES,
                   extra=("shares",), shares=shares)


# ----------------------------------------------------------------- applying
