"""The service-manager notification protocol: datagrams a socket standing in for systemd reads."""
import os
import socket

import pytest

from pyctl.ops.notify import Notifier
from tests.support.notify import notify_socket, received


@pytest.fixture
def manager(tmp_path):
    with notify_socket(tmp_path, timeout=2) as found:
        yield found


def test_ready_reloading_stopping_reach_the_manager(manager):
    path, sock = manager
    n = Notifier({"NOTIFY_SOCKET": path})
    assert n.enabled
    assert n.ready("serving 3 ports")
    assert received(sock) == {"READY": "1", "STATUS": "serving 3 ports"}
    assert n.reloading()
    msg = received(sock)
    assert msg["RELOADING"] == "1" and int(msg["MONOTONIC_USEC"]) > 0
    assert n.stopping()
    assert received(sock) == {"STOPPING": "1"}
    assert (n.sent, n.failed) == (3, 0)


def test_an_abstract_socket_name_is_used_as_such():
    name = f"tapswitch-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind("\0" + name)
        s.settimeout(2)
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).ready()
        assert received(s) == {"READY": "1"}


def test_without_notify_socket_nothing_is_sent():
    n = Notifier({})
    assert not n.enabled
    assert not n.ready() and not n.stopping()
    assert (n.sent, n.failed) == (0, 0)


def test_a_manager_that_went_away_is_counted_not_raised(tmp_path):
    n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert not n.ready()
    assert (n.sent, n.failed) == (0, 1)
