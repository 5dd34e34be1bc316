"""``apply(config, switch)``: a ``Config`` built into a model all-or-nothing; ``check``."""
from __future__ import annotations

from typing import Any, Callable

from pyctl import errors
from pyctl.config.load import _path_of
from pyctl.config.reader import _Reader
from pyctl.config.spec import Config
from pyctl.model.state import ROOT_NAME as ROOT


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
            step(("root", "addresses", i), switch.address_add, ROOT, address)
        if config.root_options:
            step(("root",), switch.namespace_set, ROOT, dict(config.root_options))
        for ns in config.namespaces:
            path = _path_of(ns.key)
            step(path + ("name",), switch.create, ns.name, ns.kind, parent=ns.parent)
            if ns.options:
                step(path, switch.namespace_set, ns.name, dict(ns.options))
            if ns.quota:
                step(path + ("quota",), switch.quota_set, ns.name, dict(ns.quota))
            add = switch.address_add if ns.kind == "l2" else _swap(switch.assign_and_push)
            for i, address in enumerate(ns.addresses):
                step(path + ("addresses", i), add, ns.name, address)
        for port in config.ports:
            step(_path_of(port.key), switch.port_add, port.name, port.namespace,
                 mac=port.mac, options=dict(port.options))
        for route in config.routes:
            step(_path_of(route.key), switch.route_add, route.namespace, route.prefix,
                 via=route.via, port=route.port)


def _swap(verb: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """``verb(address, ns)`` called as ``f(ns, address)``."""
    return lambda ns, address: verb(address, ns)


def check(config: Config):
    """Apply ``config`` to a fresh Switch (what `tapswitch check` does) and return it."""
    from pyctl.model.switch import Switch
    switch = Switch()
    apply(config, switch)
    return switch
