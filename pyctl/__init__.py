"""tapswitch's control layer: the namespace model (the truth) and, around it,
the compiler, daemon, control socket and CLI.

The layers, bottom to top (each imports only those below it)::

    errors      the exception hierarchy (defined in fastpath.errors, the lowest layer)
    deprecated  the verbs' old Python names, kept one release as warning aliases
    model/      the truth: namespace tree, addresses, routes, ports, groups
    config/     the TOML topology file, validated into passive records
    compile/    model -> fast-path tables, incrementally
    kernel/     netlink and network-namespace plumbing (pyroute2)
    control/    the verb table; the control socket: protocol, server, verbs, client; ctl
    daemon/     model + fast path + packet loop + slow path + control socket
    rig/        test rigs: Topology, probes, the demo
    cli.py, pytest_plugin.py   the entry points

The model's public API (the control socket's verbs, ``address-add`` -> ``address_add``)::

    from pyctl import Switch, errors
    sw = Switch()
    sw.create("web", kind="l3", parent="init")
    sw.address_add("init", "10.0.0.5/24"); sw.push("10.0.0.5/24", "web")

See docs/model.md.
"""
from pyctl import errors

__all__ = ["Switch", "ActingContext", "errors", "Namespace", "Port", "Route",
           "TaggedAddress", "ChangeEvent", "L2", "L3", "Topology"]

# Loaded on first use: `tapswitch ctl` imports this package and needs none of them (the
# model for `from pyctl import Switch`; the test rig pulls in the daemon and the fast path).
_LAZY = {"Switch": "pyctl.model.switch", "ActingContext": "pyctl.model.switch",
         "ChangeEvent": "pyctl.model.events", "Namespace": "pyctl.model.values",
         "Port": "pyctl.model.values", "Route": "pyctl.model.values",
         "TaggedAddress": "pyctl.model.values", "L2": "pyctl.model.values",
         "L3": "pyctl.model.values", "Topology": "pyctl.rig.topology"}


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pyctl' has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
