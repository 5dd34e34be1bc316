"""``Topology(mode="process")``: the switch as a child ``python -m pyctl run CONFIG.toml``.

``config_toml(switch, ...)`` writes a model as the TOML file `tapswitch run`
reads (docs/control.md), plus the multicast joins the file format has no key
for (replayed over the control socket once the child is up).
``ChildDaemon`` starts the child, waits until its control socket answers,
forwards verbs to it, and stops it: SIGTERM, then SIGKILL after a grace
period.  ``sweep()`` removes what a killed child could not (its named kernel
namespaces, TAPs left in the host) and says what it found.

The child runs in its own session, so a Ctrl-C at the terminal reaches only
the test process, which then stops the child itself.  When started from the
main thread it also gets PR_SET_PDEATHSIG (``setpriv --pdeathsig TERM``):
if the test process is killed outright, the child still gets SIGTERM and
cleans up after itself.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

from pyctl import errors, kernel
from pyctl.kernel import netns_exec
from pyctl.control import protocol
from pyctl.control.client import ConnectionFailed, ControlClient
from pyctl.model.state import ROOT_NAME

__all__ = ["ChildDaemon", "ChildDaemonFailed", "config_toml"]


class ChildDaemonFailed(errors.TapswitchError):
    """The child daemon did not start, died, or did not stop cleanly."""

    code = "EIO"


# ----------------------------------------------------------------- the config file

def _toml(value) -> str:
    # JSON's strings, numbers, booleans and arrays are valid TOML values.
    return json.dumps(value)


def config_toml(switch, *, socket: str, batch_size: int, cpus=None,
                poll_us: int = 0) -> tuple[str, list[tuple[str, str]]]:
    """The TOML text that rebuilds ``switch``'s state, and its ``(namespace, group)`` joins."""
    snap = switch.snapshot()
    names = {ns["id"]: ns["name"] for ns in snap["namespaces"]}
    lines = ["# written by pyctl.rig.topology for a child `tapswitch run`", "",
             "[daemon]", f"socket = {_toml(socket)}", f"batch_size = {int(batch_size)}",
             f"poll_us = {int(poll_us)}"]
    if cpus is not None:
        lines.append(f"cpus = {_toml(list(cpus))}")
    lines.append("")
    joins, routes = [], []
    for ns in snap["namespaces"]:
        joins += [(ns["name"], group) for group in ns["groups"]]
        routes += [(ns["name"], route) for route in ns["routes"]]
        options = [f"{key} = {_toml(value)}" for key, value in sorted(ns["options"].items())]
        if ns["name"] == ROOT_NAME:
            lines += ["[root]", f"addresses = {_toml(ns['addresses'])}", *options, ""]
            continue
        lines += ["[[namespace]]", f"name = {_toml(ns['name'])}", f"kind = {_toml(ns['kind'])}",
                  f"parent = {_toml(names[ns['parent']])}",
                  f"addresses = {_toml(ns['addresses'])}", *options]
        if ns.get("quota"):
            lines.append("quota = { " + ", ".join(f"{key} = {int(limit)}" for key, limit
                                                   in ns["quota"].items()) + " }")
        if ns.get("netns"):
            lines.append(f"netns = {_toml(ns['netns'])}")
        lines.append("")
    for port in snap["ports"]:
        lines += ["[[port]]", f"name = {_toml(port['name'])}",
                  f"namespace = {_toml(names[port['ns']])}", f"mac = {_toml(port['mac'])}"]
        lines += [f"{key} = {_toml(value)}" for key, value in sorted(port["options"].items())]
        lines.append("")
    for ns_name, route in routes:
        # "default" alone is 0.0.0.0/0: the IPv6 one is written as it is (::/0).
        prefix = "default" if route["dst"] == "0.0.0.0/0" else route["dst"]
        lines += ["[[route]]", f"namespace = {_toml(ns_name)}", f"prefix = {_toml(prefix)}"]
        lines += [f"{key} = {_toml(route[key])}" for key in ("via", "port") if route.get(key)]
        lines.append("")
    return "\n".join(lines), joins


# ----------------------------------------------------------------- the child

def _package_root() -> str:
    # pyctl/rig/topology_child.py -> the directory holding the pyctl package
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class ChildDaemon:
    """One child ``tapswitch run``, its files in ``rundir`` (config, socket, logs)."""

    def __init__(self, rundir: str):
        self.rundir = rundir
        self.config_path = os.path.join(rundir, "topology.toml")
        self.socket = os.path.join(rundir, "control.sock")
        self._logs = {name: os.path.join(rundir, f"{name}.log") for name in ("stdout", "stderr")}
        self.proc: subprocess.Popen | None = None
        self.returncode: int | None = None
        self.output = ""            # the child's stdout and stderr, read when it stopped
        self._client: ControlClient | None = None
        self._lock = threading.Lock()

    def start(self, config_text: str, *, timeout: float, interrupted: threading.Event) -> None:
        """Start the child and wait until its control socket answers (or it fails)."""
        with open(self.config_path, "w", encoding="utf-8") as f:
            f.write(config_text)
        argv = [sys.executable, "-m", "pyctl", "--log-format", "json", "run", self.config_path]
        setpriv = shutil.which("setpriv")
        if setpriv and threading.current_thread() is threading.main_thread():
            # PDEATHSIG fires when the forking *thread* ends: only the main thread is safe.
            argv = [setpriv, "--pdeathsig", "TERM", "--"] + argv
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_package_root(), env.get("PYTHONPATH")]))
        with open(self._logs["stdout"], "wb") as out, open(self._logs["stderr"], "wb") as err:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         env=env, start_new_session=True, close_fds=True)
        self._client = self._wait_ready(timeout, interrupted)

    def _wait_ready(self, timeout: float, interrupted: threading.Event) -> ControlClient:
        deadline = time.monotonic() + timeout
        pause = 0.002
        while True:
            if interrupted.is_set():
                raise KeyboardInterrupt
            if self.proc.poll() is not None:
                raise self._start_error()
            if os.path.exists(self.socket):
                try:
                    client = ControlClient(self.socket, timeout=30.0)
                except ConnectionFailed:
                    pass
                else:
                    try:
                        client.call("ping")
                        return client
                    except BaseException:
                        client.close()
                        raise
            if time.monotonic() >= deadline:
                raise ChildDaemonFailed(f"the child daemon did not answer on {self.socket} "
                                        f"within {timeout:g} s{self._stderr_tail()}")
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def _read_log(self, name: str) -> str:
        try:
            with open(self._logs[name], encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def _records(self) -> list[dict]:
        """The child's log (``--log-format json``: one object per line); other lines as
        ``{"msg": line}`` (a traceback, an interpreter's message)."""
        out = []
        for line in self._read_log("stderr").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            out.append(record if isinstance(record, dict) else {"msg": line})
        return out

    def _stderr_tail(self) -> str:
        tail = [r.get("msg", "") for r in self._records()][-10:]
        return (": " + " | ".join(tail)) if tail else ""

    def _start_error(self) -> errors.TapswitchError:
        """The child's own refusal (a record with its ``code``) as the error of that code."""
        for record in reversed(self._records()):
            if record.get("code") and record.get("error"):
                return protocol.error_from_code(record["code"], record["error"])
        return ChildDaemonFailed(f"the child daemon exited with status {self.proc.returncode}"
                                 f"{self._stderr_tail()}")

    def call(self, verb: str, **args):
        """A control verb, answered by the child (its refusal raised as the local error)."""
        with self._lock:
            if self._client is None:
                raise ChildDaemonFailed("the child daemon is not running")
            try:
                return self._client.call(verb, **args)
            except ConnectionFailed as exc:
                if self.proc.poll() is not None:
                    raise ChildDaemonFailed(f"the child daemon died (status {self.proc.returncode})"
                                            f"{self._stderr_tail()}") from None
                raise exc

    def stop(self, grace: float) -> tuple[int | None, bool]:
        """SIGTERM, SIGKILL after ``grace`` seconds; (exit status, killed)."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
        if self.proc is None:
            return None, False
        killed = False
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                killed = True
        self.returncode = self.proc.returncode
        self.output = self._read_log("stdout") + self._read_log("stderr")
        return self.returncode, killed


def sweep(netns_names, link_names) -> list[str]:
    """Remove the named kernel namespaces and host links that still exist; what was removed."""
    found = []
    existing = set(kernel.list_netns())
    for name in sorted(set(netns_names) & existing):
        if netns_exec.remove_named_netns(os.path.join(kernel.NETNS_RUN_DIR, name)):
            found.append(f"netns {name}")
    host_links = set(kernel.host.links()) if link_names else set()
    for name in sorted(set(link_names) & host_links):
        if kernel.host.delete_link(name):
            found.append(f"link {name}")
    return found
