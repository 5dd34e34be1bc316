"""What the daemon made in the kernel, written down, so that a restart after a crash
(``kill -9``, the OOM killer) reclaims the dead daemon's leftovers and still leaves alone
everything it did not make.

The state file (``DaemonSettings.state_path``: ``[daemon] state_file``, by default beside
the admin socket, ``control.sock`` -> ``control.state``; JSON, written to a temporary file
and renamed over the old one, so a crash leaves the old version or the new one, never half
of one)::

    {"version": 1, "pid": 4242, "boot_id": "...", "tokens": ["9f3c..."],
     "netns": {"tenant-web": 4099, ...},       # kernel namespaces it created: their cookies
     "entered": {"container-db": 4211, ...}}   # existing ones it moved a TAP into

- A namespace is written down with its *cookie* (``netns_exec.netns_cookie``: the kernel
  never gives two namespaces the same one until it reboots) after it exists and before
  it gets its name: whatever has the name afterwards is checked against the cookie, so a
  namespace deleted and made again by someone else is never taken for the switch's.
- Each run marks its TAPs with the alias ``tapswitch <token>`` (IFLA_IFALIAS).  A TAP
  goes with the last fd that holds it; one that outlived its daemon (the fd inherited by
  a child still running) carries the dead run's token, and only then is it deleted.
- ``<state file>.lock`` is held (flock) for the daemon's life: a second daemon on the
  same runtime directory is refused (EBUSY); a dead one holds nothing.

At start, with the previous daemon dead and its file of this boot: a namespace whose name
still leads to its recorded cookie is taken over if the config still names it (its TAP
is made again in it; processes inside keep running) and removed otherwise; links with a
dead run's alias are deleted.  Anything else with a wanted name is foreign as before: a
namespace is entered and never removed, a link with a port's name refuses the port.
(The daemon creates no veth pairs or bridges; the test rig's are its own.)
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets

from pyctl import errors, kernel
from pyctl.kernel import netns_exec
from pyctl.kernel.facts import HostFacts

__all__ = ["Ownership", "NotRecorded", "MARKER", "Recorded", "recorded", "HostAndStateFacts"]

log = logging.getLogger("tapswitch.ownership")

VERSION = 1
MARKER = "tapswitch "         # + the run's token: the alias of every TAP it opens


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return ""


def _cookie_of(name: str) -> int | None:
    """The cookie of the namespace named ``name`` now, or None if there is none."""
    try:
        fd = os.open(os.path.join(kernel.NETNS_RUN_DIR, name), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return netns_exec.netns_cookie(fd)
    except OSError:
        return None
    finally:
        os.close(fd)


class NotRecorded:
    """Nothing written down (a PortManager used on its own): namespaces are created or
    entered as they are, nothing is reclaimed."""

    marker = None

    def __init__(self, registry):
        self.registry = registry

    def create_netns(self, name: str) -> kernel.NetNamespace:
        return kernel.NetNamespace(name, registry=self.registry)

    def claim_netns(self, name: str) -> kernel.NetNamespace | None:
        return None

    def entered(self, netns: kernel.NetNamespace) -> None:
        pass

    def released(self, netns: kernel.NetNamespace) -> None:
        pass


class Ownership(NotRecorded):
    """The state file and its lock, for one running daemon (see the module doc)."""

    def __init__(self, path: str, registry, lock_fd: int, previous: dict | None):
        super().__init__(registry)
        self.path, self._lock_fd = path, lock_fd
        self.token = secrets.token_hex(8)
        self.marker = MARKER + self.token
        self.boot_id = _boot_id()
        prev = previous or {}
        self.previous_pid = prev.get("pid")
        self._pending: dict[str, int] = dict(prev.get("netns", {}))   # a dead daemon's
        self._old_tokens: list[str] = list(prev.get("tokens", []))
        self._old_entered: dict[str, int] = dict(prev.get("entered", {}))
        self.netns: dict[str, int] = dict(self._pending)
        self.entered_netns: dict[str, int] = {}
        self.reclaimed: list[str] = []       # what this start took over or removed, said
        self._write()

    @classmethod
    def open(cls, path: str, registry) -> "Ownership":
        """Lock the runtime directory's state file and read a dead predecessor's.
        Raises Busy if a live daemon holds it."""
        os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
        lock_fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock_fd)
            pid = (_read(path) or {}).get("pid", "?")
            raise errors.Busy(f"another tapswitch (pid {pid}) runs with the state file "
                              f"{path}: refusing to start beside it") from None
        try:
            self = cls(path, registry, lock_fd, _previous(path))
            self._delete_marked_links()
        except BaseException:
            os.close(lock_fd)
            raise
        return self

    # ------------------------------------------------------------ namespaces

    def create_netns(self, name: str) -> kernel.NetNamespace:
        """A new namespace, written down (with its cookie) before it has its name."""
        def record(cookie):
            self.netns[name] = cookie
            self._write()
        try:
            return kernel.NetNamespace(name, registry=self.registry, before_bind=record)
        except BaseException:
            if self.netns.pop(name, None) is not None:
                self._write()
            raise

    def claim_netns(self, name: str) -> kernel.NetNamespace | None:
        """The dead daemon's namespace ``name``, now this one's (None: not its, foreign)."""
        cookie = self._pending.pop(name, None)
        if cookie is None:
            return None
        if _cookie_of(name) != cookie:
            self.netns.pop(name, None)
            self._write()
            log.warning("kernel namespace %s is not the one a dead tapswitch (pid %s) made: "
                        "it is someone else's and is left alone", name, self.previous_pid)
            return None
        netns = kernel.NetNamespace.adopt(name, registry=self.registry)
        self.reclaimed.append(f"took over netns {name}")
        log.warning("took over kernel namespace %s, left by a dead tapswitch (pid %s)",
                    name, self.previous_pid)
        return netns

    def entered(self, netns: kernel.NetNamespace) -> None:
        self.entered_netns[netns.name] = netns.cookie
        self._write()

    def released(self, netns: kernel.NetNamespace) -> None:
        """``netns`` was removed, or let go of: it is no longer this daemon's to reclaim."""
        if (self.netns.pop(netns.name, None) is not None
                or self.entered_netns.pop(netns.name, None) is not None):
            self._write()

    def finish_reclaim(self) -> None:
        """After the first reconciliation: the dead daemon's namespaces nobody took over go."""
        for name, cookie in sorted(self._pending.items()):
            self.netns.pop(name, None)
            if _cookie_of(name) == cookie:
                kernel.NetNamespace.adopt(name, registry=self.registry).remove()
                self.reclaimed.append(f"removed netns {name}")
                log.warning("removed kernel namespace %s, left by a dead tapswitch (pid %s)",
                            name, self.previous_pid)
        self._pending.clear()
        self._old_tokens, self._old_entered = [], {}
        self._write()

    # ------------------------------------------------------------ links

    def _delete_marked_links(self) -> None:
        """Links carrying a dead run's alias, in the host and in the namespaces it used."""
        marks = {MARKER + token for token in self._old_tokens}
        if not marks:
            return
        places = [kernel.host]
        for name, cookie in {**self._old_entered, **self._pending}.items():
            if _cookie_of(name) == cookie:
                places.append(kernel.NetNamespace.attach(name))
        for place in places:
            try:
                for ifname, alias in place.link_aliases().items():
                    if alias in marks and place.delete_link(ifname):
                        self.reclaimed.append(f"deleted link {ifname} in {place}")
                        log.warning("deleted %s in %s, left by a dead tapswitch (pid %s)",
                                    ifname, place, self.previous_pid)
            finally:
                if place is not kernel.host:
                    place.remove()          # the handle only

    # ------------------------------------------------------------ the file

    def _write(self) -> None:
        doc = {"version": VERSION, "pid": os.getpid(), "boot_id": self.boot_id,
               "tokens": self._old_tokens + [self.token], "netns": self.netns,
               "entered": {**self._old_entered, **self.entered_netns}}
        tmp = f"{self.path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, sort_keys=True)
        os.replace(tmp, self.path)

    def close(self) -> None:
        """After the daemon's cleanup: keep in the file what is still there (a removal
        that failed), or remove the file; let go of the lock."""
        if self._lock_fd < 0:
            return
        self.netns = {name: c for name, c in self.netns.items() if _cookie_of(name) == c}
        try:
            if self.netns or self._pending:
                self._write()
            else:
                os.unlink(self.path)
        except FileNotFoundError:
            pass
        finally:
            os.close(self._lock_fd)
            self._lock_fd = -1


class Recorded:
    """What a state file says without taking it (the validator's view, read only): the pid
    of a live daemon holding it (None: none), and the links and kernel namespaces a dead
    one left that a start would take over or remove (so they are not in its way)."""

    def __init__(self, live_pid=None, links=frozenset(), netns=frozenset()):
        self.live_pid, self.links, self.netns = live_pid, frozenset(links), frozenset(netns)


def recorded(path: str) -> Recorded:
    """``Recorded`` of the state file at ``path`` (nothing there: empty)."""
    try:
        lock_fd = os.open(path + ".lock", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        lock_fd = -1
    try:
        if lock_fd >= 0:
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return Recorded(live_pid=(_read(path) or {}).get("pid", "?"))
        previous = _previous(path)
    finally:
        if lock_fd >= 0:
            os.close(lock_fd)
    if previous is None:
        return Recorded()
    marks = {MARKER + token for token in previous["tokens"]}
    netns = {name for name, cookie in previous["netns"].items() if _cookie_of(name) == cookie}
    places = {None: kernel.host}
    for name, cookie in {**previous["entered"], **previous["netns"]}.items():
        if _cookie_of(name) == cookie:
            places[name] = kernel.NetNamespace.attach(name)
    links = set()
    for name, place in places.items():
        try:
            links |= {ifname for ifname, alias in place.link_aliases().items() if alias in marks}
        except OSError:
            pass
        finally:
            if name is not None:
                place.remove()              # the handle only
    return Recorded(links=links, netns=netns)


class HostAndStateFacts(HostFacts):
    """The validator's facts of this host (``HostFacts``) and of the state file: what
    `tapswitch run` and `tapswitch check` use."""

    def recorded(self, state_path):
        return recorded(state_path)


def _read(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("state file %s cannot be read (%s): nothing in it is reclaimed", path, exc)
        return None
    return doc if isinstance(doc, dict) else None


def _previous(path: str) -> dict | None:
    """A dead daemon's state, if it is of this boot and well-formed (else nothing is
    reclaimed: nothing is known to be the switch's)."""
    doc = _read(path)
    if doc is None:
        return None
    shapes = {"netns": dict, "entered": dict, "tokens": list}
    if doc.get("version") != VERSION or not all(isinstance(doc.get(k), t)
                                                for k, t in shapes.items()):
        log.warning("state file %s is not one this tapswitch writes: nothing in it is "
                    "reclaimed", path)
        return None
    if doc.get("boot_id") != _boot_id():
        return None                  # written before a reboot: none of it exists any more
    ok = (all(isinstance(k, str) and isinstance(v, int) for table in ("netns", "entered")
              for k, v in doc[table].items()) and all(isinstance(t, str) for t in doc["tokens"]))
    try:
        for table in ("netns", "entered"):
            for name in doc[table] if ok else ():
                kernel.check_netns_name(name)
    except errors.InvalidArgument:
        ok = False
    if not ok:
        log.warning("state file %s has entries of the wrong type: nothing in it is reclaimed",
                    path)
        return None
    return doc
