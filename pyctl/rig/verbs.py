"""The verbs a ``Topology`` offers, made from the verb table: one method per model verb
declared ``rig=True`` in ``pyctl.control.verb_table``, with its Python name
(``address_add``) and its arguments in the wire's order.

A configuring verb is applied all-or-nothing (``Topology._do``: on the draft
model, in the daemon's thread, or through the child daemon's socket) and
returns None.  A read returns what the control socket would (plain data: the
same in thread and process mode).  ``Topology`` writes its own ``namespaces``
(names only), ``destroy`` (also its tenants' kernel namespaces), ``counters``
and ``stats`` (the daemon's), with the same arguments.
"""
from __future__ import annotations

import inspect

from pyctl.control.dispatch import to_wire
from pyctl.control.verb_table import VERBS, served_by
from pyctl.control.verbs import call_model
from pyctl.deprecated import GROUP_FIRST, group_first, with_renamed_aliases

__all__ = ["RigVerbs"]


class RigVerbs:
    """The table's rig verbs (mixed into ``Topology``)."""

    def _change(self, verb: str, args: dict) -> None:
        py_name = VERBS[verb].py_name
        self._do([(lambda sw: getattr(sw, py_name)(**args), (verb, args), [])])

    def _query(self, verb: str, args: dict):
        return self._read(lambda sw: to_wire(call_model(sw, verb, args)), verb, **args)


def _method(verb):
    signature = inspect.Signature(
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + [inspect.Parameter(p.name, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                             default=inspect.Parameter.empty if p.required else p.default)
           for p in verb.params])
    run = RigVerbs._query if verb.access == "read" else RigVerbs._change

    def method(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        values = dict(bound.arguments)
        del values["self"]
        return run(self, verb.name, values)
    method.__name__, method.__qualname__ = verb.py_name, f"RigVerbs.{verb.py_name}"
    method.__signature__ = signature
    method.__doc__ = f"``{verb.name}``: {verb.summary}."
    return group_first(method) if verb.py_name in GROUP_FIRST else method


for _verb in served_by("model"):
    if _verb.rig:
        setattr(RigVerbs, _verb.py_name, _method(_verb))
with_renamed_aliases(RigVerbs)
