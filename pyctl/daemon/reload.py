"""Reloading the topology file of a running daemon: SIGHUP and `tapswitch ctl reload`.

``Reloader(daemon, path, notifier).reload()`` re-reads the file and checks it with the one
validator (``pyctl.config.validate``: the running switch's own TAPs and kernel namespaces
out of the way).  A file with errors is refused with every error, and nothing changes.
Otherwise the difference between the running model and the file
(``pyctl.config.diff.reload_steps``) is made in ONE ``Daemon.change()``: the model's
transaction, the compiler's diff and the TAPs, all or nothing; a kept namespace, port or
route is not touched, so the flows between them go on.  The result is checked against a
model built from the file before it is committed.  The ``[daemon.slowpath]`` and
``[daemon.control]`` limits and the ``metrics`` listener are built, checked (and bound)
before that change and applied with it (``pyctl.daemon.live_limits``): a value refused
there refuses the whole reload.  Then the
namespace sockets follow the file's ``socket = true`` (opened, closed), and each ``attach``
port whose interface's MTU its owner changed is compiled and opened anew with it
(``Daemon.refresh_attached``; listed in ``changed``).  The other
``[daemon]`` keys are bound to what the daemon set up at start: a changed one is listed in
``restart_needed``, not applied.

With ``dry_run`` the steps are made in a model transaction that is always rolled back:
the reply says what a reload would change.  The service manager hears ``RELOADING=1``
before and ``READY=1`` after (``pyctl.ops.notify``); each change is logged.
"""
from __future__ import annotations

import dataclasses
import logging
import time

from pyctl import errors
from pyctl.config.diff import reload_steps, same_state
from pyctl.daemon import live_limits

__all__ = ["Reloader", "not_from_a_file"]

log = logging.getLogger("tapswitch.reload")


class _DryRun(Exception):
    """Ends a dry run's transaction: everything is undone."""


def not_from_a_file(session, dry_run):
    """The reload verb of a daemon that did not start from a file (the test rig's)."""
    raise errors.NotSupported("this daemon was not started from a topology file "
                              "(tapswitch run): there is nothing to reload")


class Reloader:
    def __init__(self, daemon, path, notifier=None, *, socket_given=False):
        """``socket_given``: the admin socket came from the command line (``--socket``),
        not from the file: a different one in the file is no change."""
        self.daemon, self.path, self.notifier = daemon, path, notifier
        self.socket_given = socket_given
        self.reloads = 0                 # applied
        self.refused = 0

    # ------------------------------------------------------------ entry points

    def verb(self, session, dry_run=False):
        """The ``reload`` verb (admin only): the result, or the refusal with every error."""
        return self.reload(dry_run=bool(dry_run))

    def on_signal(self) -> None:
        """SIGHUP, run on the daemon's thread: the outcome goes to the log (nobody waits
        for this call's result)."""
        try:
            self.reload()
        except errors.TapswitchError:
            pass                          # logged by reload()
        except Exception:
            log.exception("reload of %s failed: nothing changed", self.path)

    # ------------------------------------------------------------ the reload

    def reload(self, dry_run: bool = False) -> dict:
        if not dry_run and self.notifier is not None:
            self.notifier.reloading()
        try:
            result = self._reload(dry_run)
        except Exception as exc:           # the manager hears READY=1 again whatever happened
            self.refused += not dry_run
            self._said(f"reload refused: {getattr(exc, 'code', type(exc).__name__)}", dry_run)
            raise
        if not dry_run:
            self.reloads += 1
        self._said(f"reloaded: {len(result['changed'])} changes", dry_run)
        return result

    def _said(self, status: str, dry_run: bool) -> None:
        if not dry_run and self.notifier is not None:
            self.notifier.ready(status)

    def _reload(self, dry_run: bool) -> dict:
        from pyctl.config.validate import validate
        from pyctl.daemon.ownership import HostAndStateFacts
        daemon = self.daemon
        started = time.monotonic()
        ports = daemon.ports
        own_links = {e.name for e in (*ports.open.values(), *ports.failed.values())}
        report = validate(self.path, facts=HostAndStateFacts(), own_links=own_links,
                          own_netns=ports.netns_names(), check_sockets=False)
        if report.errors:
            for exc in report.errors:
                log.error("reload of %s refused: %s: %s", self.path, exc.code, exc.message,
                          extra={"code": exc.code, "error": exc.message})
            log.error("%s: %d error%s: nothing changed", self.path, len(report.errors),
                      "" if len(report.errors) == 1 else "s")
            report.raise_errors()
        config = report.config
        try:
            limits = live_limits.prepare(daemon, config.daemon, bind=not dry_run)
        except errors.TapswitchError as exc:
            self._refused(exc)
            raise
        try:
            return self._apply(config, limits, report, started, dry_run)
        except BaseException:
            limits.discard()
            raise

    def _apply(self, config, limits, report, started, dry_run) -> dict:
        daemon = self.daemon
        desired = report.switch.snapshot()
        learned = {(row["namespace"], group)
                   for groups in daemon.multicast.memberships(daemon.switch, time.monotonic()).values()
                   for group, rows in groups.items() for row in rows if row["origin"] == "learned"}
        steps = reload_steps(daemon.switch.snapshot(), desired, config, learned)
        if dry_run:
            self._make(steps, desired, config, learned, commit=False)
        elif steps:
            self._make(steps, desired, config, learned, commit=True)
        if limits and not dry_run:
            limits.apply()                # cannot fail: built and checked above
        relinked = [] if dry_run else daemon.refresh_attached()   # attached MTUs read again
        sockets = {"opened": [], "closed": []} if dry_run else self._sockets(config)
        changed = [s.text for s in steps] + limits.changed + relinked
        result = {"file": self.path, "dry_run": dry_run, "changed": changed,
                  "sockets": sockets, "restart_needed": self._settings_changed(config),
                  "ms": round((time.monotonic() - started) * 1000, 1)}
        if not dry_run:
            for text in result["changed"]:
                log.info("reload: %s", text)
            for key in result["restart_needed"]:
                log.warning("reload: [daemon] %s changed: it takes effect at the next start", key)
            log.info("reloaded %s: %d changes in %.1f ms", self.path, len(changed), result["ms"])
        return result

    def _make(self, steps, desired, config, learned, *, commit: bool) -> None:
        """The steps in one change (commit) or one transaction rolled back (a dry run);
        the model must then be the file's, else nothing is kept."""
        daemon = self.daemon
        scope = daemon.change() if commit else daemon.switch.transaction()
        try:
            with scope:
                switch = daemon.switch
                for step in steps:
                    try:
                        step.apply(switch)
                    except errors.TapswitchError as exc:
                        raise errors.from_code(exc.code, f"reload: {step.text}: {exc.message}") from None
                if not same_state(switch.snapshot(), desired, config, learned):
                    raise errors.TapswitchError("reload: the running switch would not be what the "
                                                "file says (a bug of the reload's diff): nothing "
                                                "changed")
                if not commit:
                    raise _DryRun()
        except _DryRun:
            pass
        except errors.TapswitchError as exc:    # the model, the tables or the TAPs refused
            self._refused(exc)
            raise

    def _refused(self, exc) -> None:
        log.error("reload of %s refused: %s: %s: nothing changed", self.path, exc.code,
                  exc.message, extra={"code": exc.code, "error": exc.message})

    def _sockets(self, config) -> dict:
        """Namespace sockets as the file says: opened for new ``socket = true``, closed for
        namespaces that no longer have it (a destroyed namespace's went with it)."""
        server = self.daemon.control
        out = {"opened": [], "closed": []}
        if server is None:
            return out
        wanted = set(config.namespace_sockets())
        bound = set(server.bindings())
        for name in sorted(bound - wanted):
            server.unbind_namespace(name)
            out["closed"].append(name)
        for name in sorted(wanted - bound):
            try:
                server.bind_namespace(name)
                out["opened"].append(name)
            except errors.TapswitchError as exc:     # the model changed: say it, go on
                log.error("reload: the socket of %s could not be opened: %s: %s", name,
                          exc.code, exc.message)
        return out

    def _settings_changed(self, config) -> list[str]:
        """The ``[daemon]`` keys that changed and take effect at the next start only."""
        running, wanted = self.daemon.settings, config.daemon
        changed = []
        for f in dataclasses.fields(running):
            if f.name in live_limits.LIVE:
                continue
            old, new = getattr(running, f.name), getattr(wanted, f.name)
            if dataclasses.is_dataclass(old):
                changed += [f"{f.name}.{g.name}" for g in dataclasses.fields(old)
                            if getattr(old, g.name) != getattr(new, g.name)]
            elif old != new and not (f.name == "socket" and self.socket_given):
                changed.append(f.name)
        return changed
