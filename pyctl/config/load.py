"""``read_config(path_or_text)``: the file parsed and validated into a ``Config`` and the
list of every refusal; ``load_config`` raises them (``ConfigError``, or ``ConfigErrors``).

Each entry is read on its own (``_Reader.collect``), so one mistake is reported once and
the others are still found: a refused entry is left out of the ``Config`` and its name
goes to ``broken_namespaces`` / ``broken_ports``, and a reference to it is not refused a
second time.  The keys each table may hold and the integers' ranges are declared in
``pyctl.config.keys``.
"""
from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

from pyctl.config import keys
from pyctl.config.daemon_table import parse_listen_address, read_daemon
from pyctl.config.reader import _dotted, _index_lines, _Reader, _Recorded
from pyctl.config.spec import (
    KINDS,
    Config,
    ConfigError,
    NamespaceSpec,
    PortSpec,
    RouteSpec,
    config_errors,
)
from pyctl.model import addressing
from pyctl.model.namespace_options import NAMESPACE_OPTIONS, check_namespace_options
from pyctl.model.port_options import check_kind_combination, check_port_option, check_port_options
from pyctl.model.quotas import QUOTA_KEYS
from pyctl.model.state import ROOT_NAME as ROOT

__all__ = ["read_config", "load_config", "parse_listen_address"]


def load_config(path_or_text: str | os.PathLike, *, source: str | None = None) -> Config:
    """Parse and validate a topology.  A ``Path``, or a one-line str with no
    ``=`` nor ``[`` (a file name), is read; any other str is the TOML text.
    Raises every refusal at once (``ConfigErrors`` when there are several)."""
    config, found = read_config(path_or_text, source=source)
    if found:
        raise config_errors(found)
    return config


def read_config(path_or_text: str | os.PathLike, *,
                source: str | None = None) -> tuple[Config, list[ConfigError]]:
    """The file's ``Config`` (its refused entries left out) and every refusal, in line
    order.  A file that cannot be read or is not TOML is one refusal and an empty Config."""
    if isinstance(path_or_text, os.PathLike) or (
            isinstance(path_or_text, str) and path_or_text.strip()
            and not any(c in path_or_text for c in "\n=[")):
        path = Path(path_or_text)
        source = source or str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            return Config(source=source), [ConfigError(str(path), "", None, f"cannot read: {exc}")]
    else:
        text, source = path_or_text, source or "<config>"
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        return Config(source=source), [ConfigError(source, "", int(match.group(1)) if match else None,
                                                   f"TOML syntax error: {exc}")]
    r = _Reader(source, _index_lines(text))
    r.table(doc, (), keys.allowed())
    root_addresses, root_socket, root_groups, root_options = _read_root(r, doc)
    namespaces, broken_ns = _read_namespaces(r, doc)
    ports, broken_ports = _read_ports(r, doc, namespaces, broken_ns)
    routes = _read_routes(r, doc, namespaces, ports, broken_ns, broken_ports)
    daemon = read_daemon(r, doc)
    config = Config(source=source, root_addresses=root_addresses, root_socket=root_socket,
                    root_groups=root_groups, root_options=root_options,
                    namespaces=namespaces, routes=routes, ports=ports, daemon=daemon,
                    lines=r.lines, broken_namespaces=frozenset(broken_ns),
                    broken_ports=frozenset(broken_ports), empty=not doc)
    return config, sorted(r.errors, key=lambda e: e.line or 0)


def _addresses(r: _Reader, entry, table: dict, path: tuple, key: str = "addresses") -> tuple[str, ...]:
    found = r.strings(table, path, key)
    if found is None:
        return ()
    where, values = found
    parsed = (entry.soft(where + (i,), addressing.parse_interface, text) for i, text in enumerate(values))
    return tuple(str(a) for a in parsed if a is not None)


def _groups(entry, r: _Reader, table: dict, path: tuple) -> tuple[str, ...]:
    found = r.strings(table, path, "groups")
    if found is None:
        return ()
    where, values = found
    parsed = (entry.soft(where + (i,), addressing.parse_group, text) for i, text in enumerate(values))
    return tuple(str(g) for g in parsed if g is not None)


def _namespace_options(r: _Reader, entry, table: dict, path: tuple, kind: str) -> dict:
    """An L2's options (``advertise``: pyctl.model.namespace_options), each key on its own."""
    options = {}
    for key in NAMESPACE_OPTIONS:
        if key not in table:
            continue
        if kind != "l2":
            entry.fail(r.error(path + (key,), "an L3 has no options of its own: set them on "
                                              "its parent L2"))
            continue
        options.update(entry.soft(path + (key,), check_namespace_options, {key: table[key]}) or {})
    return options


def _delegated_netns(r: _Reader, entry, table: dict, path: tuple, kind: str) -> tuple[str, ...]:
    """``netns = ["ctr-a", ...]``: kernel namespaces delegated to an L2's clients."""
    found = r.strings(table, path, "netns")
    if found is None:
        return ()
    where, values = found
    if kind != "l2":
        entry.fail(r.error(where, "kernel namespaces are delegated to an L2 (its clients put "
                                  "ports there)"))
        return ()
    parsed = (entry.soft(where + (i,), addressing.check_netns_name, name)
              for i, name in enumerate(values))
    return tuple(name for name in parsed if name is not None)


def _read_root(r: _Reader, doc: dict) -> tuple[tuple[str, ...], bool, tuple[str, ...], dict]:
    if "root" not in doc:
        return (), False, (), {}
    with r.collect() as entry:
        table = r.table(doc["root"], ("root",), keys.allowed("root"))
        path = ("root",)
        return (_addresses(r, entry, table, path), r.typed(table, path, "socket", bool, False),
                _groups(entry, r, table, path), _namespace_options(r, entry, table, path, "l2"))
    return (), False, (), {}


def _read_namespaces(r: _Reader, doc: dict) -> tuple[tuple[NamespaceSpec, ...], set[str]]:
    specs: dict[str, NamespaceSpec] = {}
    broken: set[str] = set()
    for path, item in r.array_of_tables(doc, "namespace"):
        name = None
        with r.collect() as entry:
            t = r.table(item, path, keys.allowed("namespace"), keys.required("namespace"))
            name = r.checked(path + ("name",), addressing.check_namespace_name,
                             r.typed(t, path, "name", str))
            if name == ROOT or name in specs:
                name = None          # the first definition stands
                raise r.error(path + ("name",), f"namespace {t['name']!r} is already defined"
                              + (" (the root is built in)" if t["name"] == ROOT else
                                 f" at line {specs[t['name']].line}"))
            kind = r.typed(t, path, "kind", str)
            if kind not in KINDS:
                entry.fail(r.error(path + ("kind",), f"kind must be 'l2' or 'l3', not {kind!r}"))
            parent = r.typed(t, path, "parent", str, ROOT)
            spec = NamespaceSpec(
                name=name, kind=kind, parent=parent, addresses=_addresses(r, entry, t, path),
                socket=r.typed(t, path, "socket", bool, False), quota=_quota(r, entry, t, path, kind),
                groups=_groups(entry, r, t, path),
                options=_namespace_options(r, entry, t, path, kind),
                netns=_delegated_netns(r, entry, t, path, kind),
                key=_dotted(path), line=r.line_of(path))
        if entry.ok:
            specs[name] = spec
        elif name is not None:
            broken.add(name)
    for spec in list(specs.values()):  # references, once every name is known
        path = _path_of(spec.key) + ("parent",)
        if spec.parent == ROOT or spec.parent in broken:
            continue
        parent = specs.get(spec.parent)
        if parent is None:
            r.errors.append(r.error(path, f"unknown namespace {spec.parent!r}"))
        elif parent.kind == "l3":
            r.errors.append(r.error(path, f"{spec.parent!r} is an L3 namespace: it cannot hold "
                                          f"namespace {spec.name!r} (an L3 is a leaf)"))
        else:
            continue
        broken.add(specs.pop(spec.name).name)
    ordered = _parents_first(r, specs, broken)
    _check_socket_quotas(r, ordered)
    return tuple(ordered), broken


def _quota(r: _Reader, entry, table: dict, path: tuple, kind: str) -> dict[str, int]:
    """``quota = { routes = 10, ... }`` (or a ``[namespace.quota]`` table) of an L2."""
    if "quota" not in table:
        return {}
    where = path + ("quota",)
    if kind != "l2":
        entry.fail(r.error(where, "quotas are set on L2 namespaces (an L3's parent counts what "
                                  "it holds)"))
        return {}
    values = r.table(table["quota"], where, keys.allowed("namespace", "quota"))
    low, high = keys.value_range("namespace", "quota", QUOTA_KEYS[0])
    out = {}
    for key in values:
        with r.collect() as one:
            out[key] = r.integer(values, where, key, 0, low, high)
        if not one.ok:
            entry.ok = False
    return out


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
            r.errors.append(r.error(_path_of(spec.key) + ("quota", "sockets"),
                                    f"{len(below)} namespaces below {spec.name!r} have socket = "
                                    f"true ({', '.join(below)}): more than its quota of {limit}",
                                    "EDQUOT"))


def _parents_first(r: _Reader, specs: dict[str, NamespaceSpec], broken: set[str]) -> list[NamespaceSpec]:
    """Definition order, except that a parent always comes before its children; the
    namespaces of a parent cycle are refused (once per cycle)."""
    ordered: list[NamespaceSpec] = []
    placed: set[str] = {ROOT} | broken
    for spec in specs.values():
        chain: list[NamespaceSpec] = []
        cur = spec
        while cur.name not in placed:
            if cur in chain:
                cycle = chain[chain.index(cur):]
                names = " -> ".join(c.name for c in cycle)
                r.errors.append(r.error(_path_of(cur.key) + ("parent",),
                                        f"parent cycle: {names} -> {cur.name}"))
                broken.update(c.name for c in chain)
                placed.update(c.name for c in chain)
                chain = []
                break
            chain.append(cur)
            if cur.parent in placed:
                break
            cur = specs[cur.parent]
        for item in reversed(chain):
            placed.add(item.name)
            if item.parent in broken:        # below a refused namespace: checked no further
                broken.add(item.name)
            else:
                ordered.append(item)
    return ordered


def _path_of(key: str) -> tuple:
    """``'port[2]'`` -> ``('port', 2)`` (only the shapes this module builds)."""
    name, _, index = key.partition("[")
    return (name, int(index.rstrip("]"))) if index else (name,)


_OPTION_KEYS = tuple(k for k in keys.allowed("port") if k not in ("name", "namespace", "mac"))


def _read_ports(r: _Reader, doc: dict, namespaces: tuple[NamespaceSpec, ...],
                broken_ns: set[str]) -> tuple[tuple[PortSpec, ...], set[str]]:
    known = {ns.name: ns for ns in namespaces}
    ports: dict[str, PortSpec] = {}
    broken: set[str] = set()
    l3_port: dict[str, str] = {}
    for path, item in r.array_of_tables(doc, "port"):
        name = None
        with r.collect() as entry:
            t = r.table(item, path, keys.allowed("port"), keys.required("port"))
            name = r.checked(path + ("name",), addressing.check_port_name, r.typed(t, path, "name", str))
            if name in ports:
                first, name = ports[name], None
                raise r.error(path + ("name",), f"port {first.name!r} is already defined at line {first.line}")
            ns = r.typed(t, path, "namespace", str)
            if _defined(r, entry, path, ns, known, broken_ns) and _is_l3(known, ns):
                if ns in l3_port:
                    entry.fail(r.error(path + ("namespace",), f"L3 namespace {ns!r} already has port "
                                                              f"{l3_port[ns]!r} (an L3 has at most one)"))
                else:
                    l3_port[ns] = name
            mac = None
            if t.get("mac") is not None:
                mac = entry.soft(path + ("mac",), addressing.parse_mac, r.typed(t, path, "mac", str))
            options = _port_options(r, entry, t, path)
            spec = PortSpec(name=name, namespace=ns, mac=mac, options=options,
                            key=_dotted(path), line=r.line_of(path))
        if entry.ok:
            ports[name] = spec
        elif name is not None:
            broken.add(name)
    netns_owner: dict[str, str] = {}
    for port in list(ports.values()):
        if port.netns is not None:
            if port.netns in netns_owner:
                r.errors.append(r.error(_path_of(port.key) + ("netns",),
                                        f"kernel namespace {port.netns!r} is already used by port "
                                        f"{netns_owner[port.netns]!r}"))
                broken.add(ports.pop(port.name).name)
                continue
            netns_owner[port.netns] = port.name
    return tuple(ports.values()), broken


def _defined(r: _Reader, entry, path: tuple, ns: str, known: dict, broken_ns: set[str]) -> bool:
    """True when the entry's ``namespace`` is the root or one the file defines; else the
    entry fails: silently when that namespace was refused already (not again)."""
    if ns in broken_ns:
        entry.fail(_Recorded())
    elif ns != ROOT and ns not in known:
        entry.fail(r.error(path + ("namespace",), f"unknown namespace {ns!r}"))
    else:
        return True
    return False


def _is_l3(known: dict, ns: str) -> bool:
    return ns in known and known[ns].kind == "l3"


def _port_options(r: _Reader, entry, t: dict, path: tuple) -> dict:
    options = {}
    for key in _OPTION_KEYS:  # one at a time, so an error names its key
        if key not in t:
            continue
        value = entry.soft(path + (key,), lambda v, k=key: check_port_option(k, v), t[key])
        if value is not None:
            options[key] = value
    if len(options) < len([k for k in _OPTION_KEYS if k in t]):
        return options          # a refused option: the combined check would only repeat it
    try:
        r.checked(path + ("kind",), check_kind_combination, options)
    except ConfigError as exc:
        entry.fail(exc)
        return options          # an option the port's kind does not take
    for key in ("address", "gateway"):
        if key in options and "netns" not in options:
            entry.fail(r.error(path + (key,), "only meaningful with netns (the kernel side of the TAP)"))
            return options
    return entry.soft(path + ("gateway" if "gateway" in options else "address",),
                      check_port_options, options) or options


def _read_routes(r: _Reader, doc: dict, namespaces: tuple[NamespaceSpec, ...],
                 ports: tuple[PortSpec, ...], broken_ns: set[str],
                 broken_ports: set[str]) -> tuple[RouteSpec, ...]:
    known = {ns.name: ns for ns in namespaces}
    by_port = {p.name: p for p in ports}
    routes = []
    seen: dict[tuple[str, str], int | None] = {}
    for path, item in r.array_of_tables(doc, "route"):
        with r.collect() as entry:
            t = r.table(item, path, keys.allowed("route"), keys.required("route"))
            ns = r.typed(t, path, "namespace", str)
            if _defined(r, entry, path, ns, known, broken_ns) and _is_l3(known, ns):
                entry.fail(r.error(path + ("namespace",), f"{ns!r} is an L3 namespace: routes belong "
                                                          f"to its parent L2 {known[ns].parent!r}"))
            via = t.get("via")
            if via is not None:
                via = entry.soft(path + ("via",), addressing.parse_ip, r.typed(t, path, "via", str))
            family = None if via is None else via.version    # 'default' takes the gateway's
            prefix = entry.soft(path + ("prefix",),
                                lambda v: addressing.parse_network(v, version=family),
                                r.typed(t, path, "prefix", str))
            port = r.typed(t, path, "port", str)
            if port is not None and port not in broken_ports:
                if port not in by_port:
                    entry.fail(r.error(path + ("port",), f"unknown port {port!r}"))
                elif by_port[port].namespace != ns:
                    entry.fail(r.error(path + ("port",), f"port {port!r} is attached to "
                                                         f"{by_port[port].namespace!r}, not to {ns!r} "
                                                         f"(a route leaves through a port of its L2)"))
            elif port is not None:
                entry.fail(_Recorded())   # its namespace/port was refused: not again
            if "via" not in t and port is None:
                raise r.error(path, "a route needs 'via' (a next hop) or 'port' (or both)")
            if not entry.ok:
                continue
            prefix = str(prefix)
            if (ns, prefix) in seen:
                raise r.error(path + ("prefix",), f"route {prefix} in {ns!r} is already defined "
                                                  f"at line {seen[(ns, prefix)]}")
            seen[(ns, prefix)] = r.line_of(path)
            routes.append(RouteSpec(namespace=ns, prefix=prefix, via=None if via is None else str(via),
                                    port=port, key=_dotted(path), line=r.line_of(path)))
    return tuple(routes)
