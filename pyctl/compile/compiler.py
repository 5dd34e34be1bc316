"""Compile the model (pyctl's truth) into the fast path's tables.

``Compiler.sync()`` applies the difference between the plan the datapath runs
and the model's current one, inside ``datapath.update()``, so a batch sees
either all of a change or none of it (Snabb's "apply the diff").

``sync()`` costs what changed, not what the model holds: the compiler watches
the model (``Switch.watch``), turns each change event into marks of the plan
entries it may touch (``pyctl.compile.event_marks``: one handler per event type,
an unknown type is an error) and recompiles only those, through the model's
read API (``Switch.read()``), into the plan it keeps (``pyctl.compile.plan_builder``);
the diff is then the entries whose value moved (``pyctl.compile.plan_diff``).  A
rolled-back transaction hands its events back (``undone``), which mark the same
entries, so a sync after it recompiles them from the restored state.
``sync(force=True)`` recompiles everything with the same rules.

If the datapath refuses a write (a table full), every write already made in
this sync is undone in reverse order and the error goes on: the datapath is
left running the previous plan, and the compiler keeps the marks to retry.
Call ``sync()`` inside the model's ``transaction()`` and the model is rolled
back too.

Both families reach the fast path, each address-keyed entry in its own family
(``pyctl.compile.plan``); a datapath that takes IPv4 only (``datapath_families``)
gets the IPv4 entries, and IPv6 stays in the model.
"""
import contextlib
import logging
import weakref

from pyctl.compile.event_marks import Marks, marks_of
from pyctl.compile.plan import GONE, Plan, datapath_families
from pyctl.compile.plan_builder import PlanBuilder
from pyctl.compile.plan_diff import EditDiff, PlanDiff, Undo, apply_diff
from pyctl.compile.plan_index import PlanIndex

log = logging.getLogger("tapswitch.compiler")

__all__ = ["Compiler"]


class Compiler:
    """Keeps a ``fastpath.Datapath`` running the model's current plan."""

    def __init__(self, switch, datapath, link_mtu=None):
        """``link_mtu(name)``: an attached interface's MTU (``PlanBuilder``)."""
        self.switch = switch
        self.datapath = datapath
        self.families = datapath_families(datapath)
        self.link_mtu = link_mtu
        self._builder = PlanBuilder(PlanIndex(Plan()), self.families, link_mtu)
        self._full = True             # the next sync recompiles everything
        self._marks = Marks()         # what may differ from the plan since the last sync
        self._unhandled = None        # an event no rule covers: syncs refuse until forced
        self.synced_version = None
        ref = weakref.ref(self)

        def watcher(event, undone):
            compiler = ref()
            if compiler is None:
                unwatch()
            else:
                compiler._note(event)
        unwatch = switch.watch(watcher)

    @property
    def plan(self):
        """The plan the datapath runs, updated in place by each sync (do not change
        it; assigning one makes the next sync diff the model's full plan against it)."""
        return self._builder.plan

    @plan.setter
    def plan(self, plan):
        self._builder = PlanBuilder(PlanIndex(plan), self.families, self.link_mtu)
        self._full = True

    @property
    def index(self):
        """The plan's indexes and the questions they answer (``PlanIndex``)."""
        return self._builder.index

    def _note(self, event):
        """A change of the model, or its undoing: mark what it may touch."""
        try:
            marks_of(event, self._marks)
        except Exception as exc:
            self._unhandled = exc
            raise

    def mark_ports(self, port_ids):
        """Recompile these ports' entries at the next sync (what the model does not
        hold moved: an attached interface's MTU)."""
        self._marks.ports.update(port_ids)

    @contextlib.contextmanager
    def change(self):
        """``with compiler.change() as sw:`` -- verbs on ``sw`` in one model transaction,
        synced into the datapath as it ends; after a rollback the datapath is synced back
        to the restored model (``Daemon.change()`` without the TAPs)."""
        try:
            with self.switch.transaction():
                yield self.switch
                self.sync()
        except BaseException:
            self.sync()
            raise

    def sync(self, force=False):
        """Apply the model's changes since the last sync; returns the plan.

        Raises ``UnhandledEvent`` (and changes nothing) after a change no rule
        covers, until a ``sync(force=True)`` recompiles everything."""
        with self.switch.read() as reader:    # the model's state is read, not copied
            return self._sync(reader, force)

    def _sync(self, reader, force):
        if force:
            self._full = True
        elif self._unhandled is not None:
            raise self._unhandled
        if not self._full and not self._marks:
            self.synced_version = self.switch.version
            return self.plan
        full, marks = self._full, self._marks
        self._full, self._marks = False, Marks()
        old_builder = self._builder
        if full:
            builder = PlanBuilder.build(reader, self.families, self.link_mtu)
            diff = PlanDiff(old_builder.plan, builder.plan)
        else:
            builder = old_builder
            edit = builder.update(reader, marks)
            diff = EditDiff(edit)
        undo = Undo()
        try:
            with self.datapath.update():
                try:
                    apply_diff(self.datapath, diff, undo)
                except BaseException:
                    undo.rollback()
                    raise
        except BaseException:
            if full:
                self._full = True
            else:
                edit.revert()
                self._marks.update(marks)
            raise
        self._builder = builder
        self._unhandled = None
        for key, _, why in diff.changes("unresolved"):
            if why is not GONE:
                log.warning("route %s in %s is not installed: %s", why[1], why[0], why[2])
        self.synced_version = self.switch.version
        return self.plan
