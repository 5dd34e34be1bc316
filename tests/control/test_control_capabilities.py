"""Capabilities per socket binding: an L3 socket configures nothing but its own
memberships; an L2 socket reaches only its subtree; a destroyed namespace's socket goes."""
import os
import time

import pytest

from pyctl import errors
from pyctl.control.client import ConnectionFailed, ControlClient
from pyctl.model.switch import Switch
from tests.support.control import RawLine, Served, tenants

# Every configuring verb, with arguments that the admin socket would accept.
CONFIGURING = [
    ("create", {"name": "x", "kind": "l3", "parent": "tenants"}),
    ("create", {"name": "x", "kind": "l3"}),
    ("destroy", {"namespace": "web"}),
    ("destroy", {"namespace": "db"}),
    ("address-add", {"namespace": "tenants", "address": "10.1.0.50/24"}),
    ("address-del", {"namespace": "tenants", "address": "10.1.0.1/24"}),
    ("push", {"address": "10.1.0.1/24", "namespace": "web"}),
    ("pull", {"address": "10.1.0.10/24", "namespace": "web"}),
    ("assign-and-push", {"address": "10.1.0.51/24", "namespace": "web"}),
    ("route-add", {"namespace": "tenants", "prefix": "default", "via": "10.1.0.254"}),
    ("route-del", {"namespace": "tenants", "prefix": "10.9.0.0/16"}),
    ("port-add", {"name": "tsw-web", "namespace": "web"}),
    ("port-del", {"name": "tsw-up"}),
    ("socket-add", {"namespace": "web"}),
    ("socket-del", {"namespace": "web"}),
]


@pytest.fixture
def served(tmp_path):
    switch = tenants(Switch())
    switch.route_add("tenants", "10.9.0.0/16", via="10.1.0.254")
    with Served(tmp_path, switch) as s:
        yield s


@pytest.fixture
def web(served):
    with ControlClient(served.server.bind_namespace("web")) as client:
        yield client


@pytest.fixture
def blue(served):
    """An L2 socket: 'tenants' (holding web and db), next to its sibling 'other'."""
    with ControlClient(served.server.bind_namespace("tenants")) as client:
        yield client


_IDS = [f"{verb}-{i}" for i, (verb, _) in enumerate(CONFIGURING)]


@pytest.mark.parametrize("verb, args", CONFIGURING, ids=_IDS)
def test_admin_accepts_each_configuring_verb(served, verb, args):
    """The list above is real: on the admin socket each of these succeeds."""
    with ControlClient(served.path) as admin:
        if verb == "socket-del":
            served.server.bind_namespace("web")
        before = (served.switch.version, served.server.bindings())
        admin.call(verb, **args)
        assert (served.switch.version, served.server.bindings()) != before


@pytest.mark.parametrize("verb, args", CONFIGURING, ids=_IDS)
def test_l3_socket_refuses_every_configuring_verb(served, web, verb, args):
    before = served.switch.snapshot()
    sockets = served.server.bindings()
    with pytest.raises(errors.PermissionDenied) as info:
        web.call(verb, **args)
    assert "'web' is an L3 namespace without NET_ADMIN" in info.value.message
    assert served.switch.snapshot() == before
    assert served.server.bindings() == sockets
    assert web.call("ping") == "pong"


def test_l3_socket_refused_everything_in_one_session(served, web):
    before = served.switch.snapshot()
    for verb, args in CONFIGURING:
        with pytest.raises(errors.PermissionDenied):
            web.call(verb, **args)
    assert served.switch.snapshot() == before


def test_l3_socket_reads_only_itself(web):
    me = web.call("whoami")
    assert me == {**me, "namespace": "web", "kind": "l3", "admin": False, "scope": "tenants"}
    assert [n["name"] for n in web.call("namespaces")] == ["web"]
    assert web.call("addresses") == ["127.0.0.1/8", "::1/128", "10.1.0.10/24"]
    assert web.call("routes") == [
        {"dst": "10.1.0.0/24", "via": None, "port": None, "connected": True},
        {"dst": "10.9.0.0/16", "via": "10.1.0.254", "port": None, "connected": False}]
    assert web.call("show")["name"] == "web"
    assert web.call("ports") == []
    for verb, args in [("show", {"namespace": "db"}), ("addresses", {"namespace": "tenants"}),
                       ("show", {"namespace": "init"}), ("groups", {"namespace": "db"})]:
        with pytest.raises(errors.NotFound):
            web.call(verb, **args)
    assert web.call("sockets") == [{"namespace": "web", "path": web.path}]


def test_l3_socket_joins_and_leaves_for_itself_only(served, web):
    web.call("join", group="239.1.1.1")
    assert served.switch.groups("web") == ["239.1.1.1"]
    assert web.call("groups") == ["239.1.1.1"]
    before = served.switch.snapshot()
    with pytest.raises(errors.NotFound):
        web.call("join", group="239.1.1.1", namespace="db")
    with pytest.raises(errors.NotFound):
        web.call("leave", group="239.1.1.1", namespace="tenants")
    assert served.switch.snapshot() == before
    web.call("leave", group="239.1.1.1", namespace="web")
    assert served.switch.groups("web") == []


def test_l2_socket_configures_its_subtree(served, blue):
    blue.call("create", name="cache", kind="l3")            # parent: the socket's L2
    assert served.switch.namespace("cache").parent == served.switch.namespace("tenants").id
    blue.call("assign-and-push", address="10.1.0.30/24", namespace="cache")
    blue.call("pull", address="10.1.0.10/24", namespace="web")
    blue.call("route-add", namespace="tenants", prefix="10.8.0.0/16", via="10.1.0.254")
    blue.call("destroy", namespace="cache")
    assert "10.1.0.30/24" in served.switch.addresses("tenants")
    assert [n["name"] for n in blue.call("namespaces")] == ["tenants", "web", "db"]
    path = blue.call("socket-add", namespace="db")["path"]
    with ControlClient(path) as db:
        assert db.call("whoami")["namespace"] == "db"


@pytest.mark.parametrize("verb, args, exc", [
    ("create", {"name": "x", "kind": "l3", "parent": "other"}, errors.NotFound),
    ("create", {"name": "x", "kind": "l3", "parent": "init"}, errors.NotFound),
    ("destroy", {"namespace": "other"}, errors.NotFound),
    ("destroy", {"namespace": "tenants"}, errors.PermissionDenied),   # not itself
    ("address-add", {"namespace": "other", "address": "10.1.0.60/24"}, errors.NotFound),
    ("address-add", {"namespace": "init", "address": "10.7.0.1/24"}, errors.NotFound),
    ("route-add", {"namespace": "other", "prefix": "default", "via": "10.1.0.254"},
     errors.NotFound),
    ("port-del", {"name": "nope"}, errors.NotFound),
    ("show", {"namespace": "other"}, errors.NotFound),
    ("addresses", {"namespace": "init", "tagged": True}, errors.NotFound),
    ("socket-add", {"namespace": "other"}, errors.NotFound),
    ("socket-del", {"namespace": "tenants"}, errors.PermissionDenied),
])
def test_l2_socket_cannot_reach_outside(served, blue, verb, args, exc):
    before = served.switch.snapshot()
    with pytest.raises(exc):
        blue.call(verb, **args)
    assert served.switch.snapshot() == before


def test_destroying_a_namespace_closes_its_socket(served):
    path = served.server.bind_namespace("web")
    raw = RawLine(path)
    assert raw.request("ping")["result"] == "pong"
    with ControlClient(served.path) as admin:
        admin.call("destroy", namespace="web")
        assert not os.path.exists(path)
        assert admin.call("sockets") == []
        with pytest.raises(EOFError):
            raw.reply()
        # a new namespace of the same name does not inherit the old socket
        admin.call("create", name="web", kind="l3", parent="tenants")
        assert admin.call("sockets") == []
    raw.close()
    with pytest.raises(ConnectionFailed):
        ControlClient(path)


def test_namespace_destroyed_behind_the_servers_back(tmp_path):
    """Changes made through the Python API (the daemon's thread) reach the server too."""
    with Served(tmp_path, tenants(Switch())) as s:
        path = s.server.bind_namespace("db")
        with ControlClient(path) as db:
            assert db.call("ping") == "pong"
            s.switch.destroy("db")
            # answered "destroyed" if served before the server's thread pruned, else closed
            with pytest.raises((ConnectionFailed, errors.NotFound)):
                db.call("ping")
            with pytest.raises(ConnectionFailed):
                db.call("ping")
        for _ in range(100):       # the prune runs on the server's thread: wait for it
            if not os.path.exists(path):
                break
            time.sleep(0.05)
        assert not os.path.exists(path)


def test_request_on_a_destroyed_namespaces_socket_is_answered_then_closed(tmp_path):
    """Served before the server's loop saw the destroy event: refused with the id, then EOF."""
    from pyctl.control import protocol
    from pyctl.control.server import ControlServer
    switch = tenants(Switch())
    with ControlServer(switch, str(tmp_path / "c.sock")) as server:
        raw = RawLine(server.bind_namespace("db"))
        listener = [fd for fd in server.filenos()][-1]
        server.handle_ready(listener)                       # accept
        conn = server.filenos()[-1]
        switch.destroy("db")
        raw.send(protocol.encode_request(41, "ping", {}))
        server.handle_ready(conn)                           # before any poll() prunes
        assert raw.reply() == {"id": 41, "ok": False, "error": {
            "code": "ENOENT", "message": "namespace 'db' was destroyed"}}
        with pytest.raises(EOFError):
            raw.reply()
        server.poll(0)                                      # the wake-up: prune
        assert server.bindings() == {}
        raw.close()
