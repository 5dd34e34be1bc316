"""`tapswitch run` as a child process for the end-to-end tests: start it, wait until its
control socket answers, stop it with a signal; always reap it, and remove the kernel
namespaces and links it was to make if it could not (killed, or it failed)."""
import contextlib
import os
import signal
import subprocess
import sys
import time

from pyctl.control.client import ControlClient
from pyctl.rig.topology_child import sweep


def wait_for_socket(path, proc, timeout=20.0):
    """Until the daemon at ``path`` answers ``ping``; fails if ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"daemon exited early ({proc.returncode}): {proc.communicate()}")
        if os.path.exists(path):
            with contextlib.suppress(Exception):
                with ControlClient(path) as client:
                    return client.call("ping")
        time.sleep(0.05)
    raise AssertionError(f"the daemon's control socket {path} never answered")


class DaemonProcess:
    """``python -m pyctl run CONFIG`` in a child; ``stop()`` sends SIGTERM and returns
    (exit status, stdout, stderr).  Leaving the block stops a daemon still running
    (SIGTERM, then SIGKILL) and sweeps ``netns`` and ``links`` that are left.  Other keyword
    arguments go to ``subprocess.Popen`` (``stderr=`` a file, ``preexec_fn=`` limits)."""

    def __init__(self, config_path, socket_path, *, netns=(), links=(), **popen):
        self.socket = str(socket_path)
        self.netns, self.links = list(netns), list(links)
        popen = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True, **popen}
        self.proc = subprocess.Popen([sys.executable, "-m", "pyctl", "run", str(config_path)],
                                     **popen)

    def __enter__(self):
        try:
            wait_for_socket(self.socket, self.proc)
        except BaseException:
            self.__exit__()
            raise
        return self

    def stop(self, signum=signal.SIGTERM, timeout=20.0):
        self.proc.send_signal(signum)
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            try:
                self.stop(timeout=10.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc.communicate()
        sweep(self.netns, self.links)
