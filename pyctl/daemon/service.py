"""`tapswitch run CONFIG.toml`: the daemon as a service.

``run_config(path)`` validates the file (``pyctl.config.validate``: every refusal logged,
nothing started), starts the ``Daemon`` and its namespace sockets, and serves until
SIGTERM or SIGINT; then it cleans up.  SIGHUP, like the ``reload`` verb, re-reads the file
and applies what changed (``pyctl.daemon.reload``), on the daemon's thread between
batches.  With ``NOTIFY_SOCKET`` set (systemd's ``Type=notify``; ``pyctl.ops.notify``) it
says ``READY=1`` once the ports and the control sockets are up, ``RELOADING=1`` and
``READY=1`` around a reload, ``STOPPING=1`` when it stops, and ``STATUS=`` lines between;
the unit file is contrib/tapswitch.service (docs/operations.md).
"""
from __future__ import annotations

import dataclasses
import logging
import signal
import sys

from pyctl import errors
from pyctl.control.verb_table import VERBS
from pyctl.daemon.daemon import Daemon
from pyctl.daemon.reload import Reloader
from pyctl.ops.notify import Notifier

__all__ = ["run_config", "log_refusal"]

log = logging.getLogger("tapswitch.daemon")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def log_refusal(exc: errors.TapswitchError) -> None:
    """A refusal of `tapswitch run`, with its code as a field (``--log-format json``: the
    test rig's child daemon reads it back as the error of that code)."""
    log.error("%s: %s", exc.code, exc.message, extra={"code": exc.code, "error": exc.message})


def _overrides(socket, cpus, poll_us) -> dict:
    """The command line's settings over the file's, each checked (its option named)."""
    from pyctl.config.cpus import check_cpus, check_poll_us
    out = {}
    for key, option, check, value in (("socket", "--socket", None, socket),
                                      ("cpus", "--cpus", check_cpus, cpus),
                                      ("poll_us", "--poll-us", check_poll_us, poll_us)):
        if value is None:
            continue
        try:
            out[key] = check(value) if check else value
        except errors.InvalidArgument as exc:
            raise errors.InvalidArgument(f"{option}: {exc.message}") from None
    return out


def _validated(path, socket, cpus=None, poll_us=None):
    """The file's model and settings, or None with every refusal logged."""
    from pyctl.config.validate import validate
    from pyctl.daemon.ownership import HostAndStateFacts
    try:
        overrides = _overrides(socket, cpus, poll_us)     # before anything is read or made
    except errors.TapswitchError as exc:
        log_refusal(exc)
        return None
    report = validate(path, facts=HostAndStateFacts(), check_sockets=socket is None)
    for note in report.notes:
        log.info("%s", note)
    if report.errors:
        for exc in report.errors:       # every one, as `tapswitch check` shows them
            log_refusal(exc)
        log.error("%s: %d error%s: nothing was started", report.config.source,
                  len(report.errors), "" if len(report.errors) == 1 else "s")
        return None
    return report, dataclasses.replace(report.config.daemon, **overrides)


def _status(daemon) -> str:
    settings = daemon.settings
    where = (f"; packet thread on CPUs {','.join(map(str, settings.cpus))}"
             if settings.cpus else "")
    if settings.poll_us:
        where += (f", polling {daemon.poll_us} us after busy batches" if daemon.poll_us else
                  "; poll_us ignored: the packet thread has no CPUs of its own ([daemon] cpus)")
    return (f"{len(daemon.ports.open)} ports up, {len(daemon.ports.failed)} failed; "
            f"I/O backend {daemon.loop.backend}; control socket {settings.socket}{where}")


def run_config(path, socket=None, out=None, notifier: Notifier | None = None, cpus=None,
               poll_us=None):
    """Validate, start, serve until SIGINT/SIGTERM, clean up; the exit status.  ``socket``,
    ``cpus`` (a list or "0-1,3") and ``poll_us`` override the file's."""
    out = out if out is not None else sys.stdout
    notifier = notifier if notifier is not None else Notifier()
    found = _validated(path, socket, cpus, poll_us)
    if found is None:
        return 1
    report, settings = found
    daemon = Daemon(report.switch, settings, out=out)
    reloader = Reloader(daemon, path, notifier, socket_given=socket is not None)
    previous = {sig: signal.signal(sig, lambda *_: daemon.stop()) for sig in STOP_SIGNALS}
    # SIGHUP: the reload runs on the daemon's thread (a signal handler only queues it)
    previous[signal.SIGHUP] = signal.signal(signal.SIGHUP,
                                            lambda *_: daemon.submit(reloader.on_signal))
    ready = False
    try:
        try:
            daemon.start()
            daemon.control.dispatcher.register(VERBS["reload"], reloader.verb, replace=True)
            for name in report.config.namespace_sockets():
                daemon.control.bind_namespace(name)
        except errors.TapswitchError as exc:
            log_refusal(exc)
            return 1
        status = _status(daemon)
        print(f"tapswitch: {status}", file=out, flush=True)
        log.info("ready: %s", status)
        ready = notifier.ready(status) or True
        daemon.run()
        return 0
    finally:
        if ready:
            notifier.notify(STOPPING=1, STATUS="stopping: closing the ports, removing what it "
                                               "made in the kernel")
        daemon.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
