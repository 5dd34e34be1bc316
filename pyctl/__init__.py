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
from pyctl.model.events import ChangeEvent
from pyctl.model.switch import ActingContext, Switch
from pyctl.model.values import L2, L3, Namespace, Port, Route, TaggedAddress

__all__ = ["Switch", "ActingContext", "errors", "Namespace", "Port", "Route",
           "TaggedAddress", "ChangeEvent", "L2", "L3", "Topology"]


def __getattr__(name):
    # The test rig pulls in the daemon and the compiled fast path: loaded only when asked for.
    if name == "Topology":
        from pyctl.rig.topology import Topology
        return Topology
    raise AttributeError(f"module 'pyctl' has no attribute {name!r}")
