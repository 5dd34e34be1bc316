"""``apply(config, switch)``: a ``Config`` built into a model all-or-nothing; ``check``.

``build(config, switch)`` makes every step and collects the model's refusals (each naming
the file's entry, with the model's code) instead of stopping at the first; a step that
depends on a refused one (the addresses of a namespace that could not be created, a
route through a refused port) is skipped, so one mistake is reported once.
"""
from __future__ import annotations

from typing import Any, Callable

from pyctl import errors
from pyctl.config.load import _path_of
from pyctl.config.reader import _Reader
from pyctl.config.spec import Config, ConfigError, config_errors
from pyctl.model.state import ROOT_NAME as ROOT


def apply(config: Config, switch) -> None:
    """Build ``config``'s topology in ``switch`` (a Switch or an acting context), all or nothing.

    Runs inside one model transaction: when the model refuses any step (an
    address another namespace already holds, a name that exists, ...), the
    switch returns to exactly its state before the call and a ConfigError
    (``ConfigErrors`` for several) names each entry of the file that was
    refused.  Kernel-side port options (netns, address, gateway) are recorded
    in the model; opening the TAPs is the daemon's job.
    """
    with switch.transaction():
        found = build(config, switch)
        if found:
            raise config_errors(found)      # the transaction undoes every step


def build(config: Config, switch) -> list[ConfigError]:
    """Every step of ``config`` made in ``switch``; the refusals, in line order.  The
    caller decides what a refusal means (``apply`` undoes everything)."""
    r = _Reader(config.source, config.lines)
    found: list[ConfigError] = []
    failed_ns = set(config.broken_namespaces)
    failed_ports = set(config.broken_ports)

    full: dict[str, list] = {}          # a full table's message -> [its refusal's index, path, more]

    def step(path: tuple, verb: Callable[..., Any], *args, **kwargs) -> bool:
        try:
            verb(*args, **kwargs)
        except errors.TapswitchError as exc:
            if isinstance(exc, errors.TableFull) and exc.message in full:
                full[exc.message][2] += 1   # the same full table: one refusal, counted
                return False
            if isinstance(exc, errors.TableFull):
                full[exc.message] = [len(found), path, 0]
            found.append(r.error(path, exc.message, exc.code))
            return False
        return True

    for i, address in enumerate(config.root_addresses):
        step(("root", "addresses", i), switch.address_add, ROOT, address)
    if config.root_options:
        step(("root",), switch.namespace_set, ROOT, dict(config.root_options))
    for ns in config.namespaces:
        path = _path_of(ns.key)
        if ns.parent in failed_ns or not step(path + ("name",), switch.create, ns.name, ns.kind,
                                              parent=ns.parent):
            failed_ns.add(ns.name)
            continue
        if ns.options:
            step(path, switch.namespace_set, ns.name, dict(ns.options))
        if ns.quota:
            step(path + ("quota",), switch.quota_set, ns.name, dict(ns.quota))
        for i, netns in enumerate(ns.netns):
            step(path + ("netns", i), switch.netns_delegate, ns.name, netns)
        add = switch.address_add if ns.kind == "l2" else _swap(switch.assign_and_push)
        for i, address in enumerate(ns.addresses):
            step(path + ("addresses", i), add, ns.name, address)
    for port in config.ports:
        if port.namespace in failed_ns or not step(_path_of(port.key), switch.port_add, port.name,
                                                   port.namespace, mac=port.mac,
                                                   options=dict(port.options)):
            failed_ports.add(port.name)
    for route in config.routes:
        if route.namespace in failed_ns or route.port in failed_ports:
            continue
        step(_path_of(route.key), switch.route_add, route.namespace, route.prefix,
             via=route.via, port=route.port)
    for i, group in enumerate(config.root_groups):
        step(("root", "groups", i), switch.join, group, ROOT)
    for ns in config.namespaces:
        for i, group in enumerate(ns.groups if ns.name not in failed_ns else ()):
            step(_path_of(ns.key) + ("groups", i), switch.join, group, ns.name)
    for message, (index, path, more) in full.items():
        if more:
            found[index] = r.error(path, f"{message} ({more} more past it)", found[index].code)
    return sorted(found, key=lambda e: e.line or 0)


def _swap(verb: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """``verb(address, ns)`` called as ``f(ns, address)``."""
    return lambda ns, address: verb(address, ns)


def check(config: Config):
    """Apply ``config`` to a fresh Switch (what `tapswitch check` does) and return it."""
    from pyctl.model.switch import Switch
    switch = Switch()
    apply(config, switch)
    return switch
