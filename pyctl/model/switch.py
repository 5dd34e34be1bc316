"""The control-plane model of tapswitch: the truth every other part reads.

``Switch`` holds the namespace tree of the design thread (an init L2 root,
L2 namespaces holding L2 and L3 children, L3 leaves), who holds which address,
the routes of each L2, the ports and the multicast memberships. Every verb
validates fully before it changes anything, so a refused request leaves the
model exactly as it was; every change bumps ``version`` (and the versions of
the categories it touched) and is announced to subscribers.

``switch.as_namespace(name)`` gives an ``ActingContext`` with the same verbs,
limited by the capabilities of that namespace (see docs/model.md).
"""
import contextlib
import logging
import threading
from types import MappingProxyType

from pyctl import errors
from pyctl.model.kernel_reach import KernelReachVerbs
from pyctl.model.namespaces import NamespaceVerbs
from pyctl.model.reader import ModelReader
from pyctl.model.quotas import QuotaVerbs, charge, check_capacity
from pyctl.model.resources import ResourceVerbs
from pyctl.model.state import State

__all__ = ["Switch", "ActingContext"]

log = logging.getLogger("tapswitch.model")


class _Verbs(NamespaceVerbs, ResourceVerbs, QuotaVerbs, KernelReachVerbs):
    """Every verb, written once; ``_actor()`` says who acts (``None``: the administrator)."""


class Switch(_Verbs):
    """The whole model. Acting on a ``Switch`` directly is acting as the administrator
    (the root's full capabilities); ``as_namespace`` narrows that."""

    def __init__(self):
        self._sw = self
        self._state = State.with_root()
        self._lock = threading.RLock()
        self._subscribers = []
        self._watchers = []           # told of every change at once, and of undone ones
        self._pending = None          # events held back by an open transaction
        self.subscriber_errors = 0    # callbacks that raised (the changes stood)
        self._reader = ModelReader(self)

    def _actor(self):
        return None

    @property
    def acting(self):
        """The acting namespace (``None``: the administrator)."""
        return None

    @contextlib.contextmanager
    def read(self):
        """``with switch.read() as reader:`` the model's facts by id (``ModelReader``),
        all of one state: the model's lock is held until the ``with`` ends."""
        with self._lock:
            yield self._reader

    @property
    def version(self):
        """Bumped by one on every successful change."""
        return self._state.version

    @property
    def versions(self):
        """Per-category versions: namespaces, addresses, routes, ports, groups (read-only)."""
        return MappingProxyType(dict(self._state.versions))

    def as_namespace(self, ref):
        """An acting context with the capabilities of namespace ``ref``."""
        with self._lock:
            record = self._resolve(None, ref)
            return ActingContext(self, record.id, record.uid, record.name)

    def snapshot(self):
        """A deep, comparable, JSON-able copy of the whole state, in tree order."""
        with self._lock:
            return self._state.snapshot()

    # -- what the model counts for others -----------------------------------------

    def set_capacity(self, *, namespaces=None, ports=None):
        """The sizes of the switch's own tables (the fast path's; None: unbounded): past
        them ``create`` and ``port_add`` are refused with TableFull (ENOSPC).  Refused if
        the model already holds more."""
        with self._lock:
            state = self._state
            for table, size, held in (("namespace", namespaces, len(state.namespaces)),
                                      ("port", ports, len(state.ports))):
                check_capacity(state, table, size, held, more=0)
            state.capacity = {"namespaces": namespaces, "ports": ports}

    def socket_opened(self, namespace):
        """A control socket now acts as ``namespace`` (the control server says so before it
        listens): counted for its ancestors' ``sockets`` quotas, refused (QuotaExceeded)
        past one."""
        with self._lock:
            record = self._resolve(None, namespace)
            if record.socket:
                raise errors.AlreadyExists(f"'{record.name}' already has a control socket")
            charge(self._state, record, "sockets")
            self._state.set(record, "socket", True)

    def socket_closed(self, namespace, uid):
        """The control socket of namespace id ``namespace`` (whose uid was ``uid``) closed;
        nothing if that namespace is gone (its destruction counted the socket)."""
        with self._lock:
            record = self._state.namespaces.get(namespace)
            if record is not None and record.uid == uid and record.socket:
                charge(self._state, record, "sockets", -1)
                self._state.set(record, "socket", False)

    # -- change announcements -------------------------------------------------

    def subscribe(self, callback):
        """Call ``callback(event)`` after every successful change (``event``: one of
        ``pyctl.model.events.EVENT_TYPES``); returns an unsubscribe function.

        Callbacks run in version order, under the model's lock, after the change
        is complete. A callback that raises does not undo the change nor stop the
        other callbacks: the exception is logged and counted in ``subscriber_errors``.
        """
        return self._listen(self._subscribers, callback)

    def watch(self, callback):
        """Call ``callback(event, undone)`` at once on every change, also inside a
        transaction (``undone=False``), and again when a rolled-back transaction undoes
        it (``undone=True``, newest first, the state already back).  For caches of the
        model that must know what may differ from what they saw (``pyctl.compile.compiler``).
        Returns an unwatch function.  A callback that raises is logged and counted in
        ``subscriber_errors``; the change stands."""
        return self._listen(self._watchers, callback)

    def _listen(self, listeners, callback):
        """Add ``callback`` to ``listeners``; returns the function that removes it."""
        with self._lock:
            listeners.append(callback)

        def remove():
            with self._lock:
                if callback in listeners:
                    listeners.remove(callback)
        return remove

    def _tell_watchers(self, event, undone):
        for callback in list(self._watchers):
            try:
                callback(event, undone)
            except Exception:
                self.subscriber_errors += 1
                log.exception("watcher %r failed on %s (version %d)", callback, event.kind,
                              event.version)

    def _commit(self, event_type, **fields):
        """A verb changed the state: bump the versions, tell the watchers and send (or,
        in a transaction, hold back) the ``event_type`` event made of ``fields``."""
        state = self._state
        event = event_type(version=state.version + 1, **fields)
        state.version = event.version
        for category in event.categories:
            state.versions[category] += 1
        self._tell_watchers(event, False)
        if self._pending is not None:
            self._pending.append(event)
        else:
            self._deliver([event])
        return event

    def _deliver(self, events):
        for event in events:
            for callback in list(self._subscribers):
                try:
                    callback(event)
                except Exception:
                    self.subscriber_errors += 1
                    log.exception("subscriber %r failed on %s (version %d); the change stands",
                                  callback, event.kind, event.version)

    @contextlib.contextmanager
    def transaction(self):
        """Group verbs so they all apply or none does.

        Inside, the model's lock is held and events are held back; on a normal
        exit they are delivered in order, on an exception the whole state
        (versions included) returns to where it was and the exception goes on.
        A nested transaction joins the outer one.

        What a rollback needs is the state's undo log (``State.begin``): each write
        of a verb logs the step that undoes it, so a transaction costs what it
        changes, whatever the size of the model.
        """
        with self._lock:
            if self._pending is not None:
                yield self
                return
            state = self._state
            state.begin()
            self._pending = []
            try:
                yield self
            except BaseException:
                state.rollback()
                undone, self._pending = self._pending, None
                for event in reversed(undone):
                    self._tell_watchers(event, True)
                raise
            state.end()
            events, self._pending = self._pending, None
            self._deliver(events)


class ActingContext(_Verbs):
    """The verbs as seen by one namespace.

    Acting as an L3 (no NET_ADMIN): every configuring verb raises
    ``PermissionDenied``, except joining and leaving multicast groups for
    itself; reading its own state works. Acting as an L2: everything, but only
    within its own subtree; namespaces outside it are ``NotFound`` (they are
    not visible), and it cannot destroy itself.
    """

    def __init__(self, switch, ident, uid, name):
        self._sw = switch
        self._id, self._uid, self._name = ident, uid, name

    def _actor(self):
        record = self._sw._state.namespaces.get(self._id)
        if record is None or record.uid != self._uid:
            raise errors.NotFound(f"the acting namespace '{self._name}' no longer exists")
        return record

    @property
    def acting(self):
        """The acting namespace."""
        with self._sw._lock:
            return self._actor().value()

    def as_namespace(self, ref):
        """A narrower context for a namespace of this one's subtree."""
        with self._sw._lock:
            record = self._resolve(self._actor(), ref)
            return ActingContext(self._sw, record.id, record.uid, record.name)

    def transaction(self):
        return self._sw.transaction()

    @property
    def uid(self):
        """The uid of the namespace it acts as (a later one with its id or name is not it)."""
        return self._uid

    def __repr__(self):
        return f"<ActingContext as {self._name!r}>"
