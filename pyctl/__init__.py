"""tapswitch's control layer: the namespace model (the truth) and, around it,
the compiler, daemon, control socket and CLI.

The model's public API::

    from pyctl import Switch, errors
    sw = Switch()
    sw.create("web", kind="l3", parent="init")
    sw.add_address("init", "10.0.0.5/24"); sw.push("10.0.0.5/24", "web")

See docs/model.md.
"""
from pyctl import errors
from pyctl.model import ActingContext, Switch
from pyctl.values import L2, L3, Event, Namespace, Port, Route, TaggedAddress

__all__ = ["Switch", "ActingContext", "errors", "Namespace", "Port", "Route",
           "TaggedAddress", "Event", "L2", "L3"]
