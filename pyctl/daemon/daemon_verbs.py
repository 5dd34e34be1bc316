"""The daemon's side of the control verbs: the standard verbs made to run each inside
``Daemon.change()`` (one all-or-nothing step of model, tables and ports), and the verbs
only a running daemon answers (counters, stats with the loop's and sockets' figures,
capture, reload, ports with their state)."""
from __future__ import annotations

from pyctl.control.dispatch import Dispatcher
from pyctl.control.verb_table import VERBS
from pyctl.daemon import reload

__all__ = ["DaemonDispatcher", "register_daemon_verbs"]


class DaemonDispatcher(Dispatcher):
    """The standard verbs, each configuring one run inside ``Daemon.change()``."""

    def __init__(self, daemon, base):
        super().__init__()
        self._daemon = daemon
        for verb in base.verbs():
            self.register(verb, verb.handler)

    def execute(self, session, verb, args):
        if verb.access in ("read", "admin"):        # an admin verb makes its own change (reload)
            return verb.handler(session, **args)
        with self._daemon.change():
            return verb.handler(session, **args)


def register_daemon_verbs(daemon, dispatcher):
    """The verb table's daemon verbs, and ``ports`` with each port's state."""
    dispatcher.register(VERBS["counters"], daemon.counters, replace=True)
    dispatcher.register(VERBS["multicast"], daemon.memberships, replace=True)
    dispatcher.register(VERBS["reload"], reload.not_from_a_file, replace=True)
    dispatcher.register(VERBS["capture-start"], daemon.captures.start, replace=True)
    dispatcher.register(VERBS["capture-read"], daemon.captures.read, replace=True)
    dispatcher.register(VERBS["capture-stop"], daemon.captures.stop, replace=True)
    dispatcher.register(VERBS["stats"], lambda session: {
        **daemon.stats(session), "control": daemon.control.stats(session.binding)},
        replace=True)
    model_ports = dispatcher.get("ports").handler

    def ports(session, namespace):
        return [{**p, **daemon.ports.status(p["id"], with_cost=True)}
                for p in model_ports(session, namespace=namespace)]
    dispatcher.register(VERBS["ports"], ports, replace=True)
