"""The control socket over a real Unix socket: every verb, every error path."""
import json
import logging
import os
import select
import socket
import stat

import pytest

from pyctl import errors

from pyctl.control import protocol
from pyctl.control.client import ConnectionFailed, ControlClient
from pyctl.control.server import ControlServer
from pyctl.control.dispatch import Param
from pyctl.model.switch import Switch
from pyctl.control.verbs import standard_dispatcher
from tests.support.control import RawLine, Served, tenants


@pytest.fixture
def ctl(served):
    with ControlClient(served.path) as client:
        yield client


# -- every verb ----------------------------------------------------------------

def test_ping_version_whoami(ctl, served):
    assert ctl.call("ping") == "pong"
    version = ctl.call("version")
    assert version["protocol"] == protocol.PROTOCOL_VERSION
    assert version["model_version"] == served.switch.version
    me = ctl.call("whoami")
    assert me["namespace"] == "init" and me["admin"] is True and me["kind"] == "l2"
    assert me["peer"] == {"pid": os.getpid(), "uid": os.getuid(), "gid": os.getgid()}
    assert me["socket"] == served.path


def test_verbs_lists_every_registered_verb(ctl, served):
    listed = {v["name"]: v for v in ctl.call("verbs")}
    assert set(listed) == {v.name for v in served.server.dispatcher.verbs()}
    assert listed["push"]["access"] == "config"
    assert listed["join"]["access"] == "member"
    assert [p["name"] for p in listed["push"]["params"]] == ["address", "namespace"]


def test_namespaces_and_show(ctl):
    listed = ctl.call("namespaces")
    assert [(n["name"], n["kind"], n["parent_name"]) for n in listed] == [
        ("init", "l2", None), ("tenants", "l2", "init"), ("web", "l3", "tenants"),
        ("db", "l3", "tenants"), ("other", "l2", "init")]
    web = ctl.call("show", namespace="web")
    assert web["addresses"] == ["127.0.0.1/8", "::1/128", "10.1.0.10/24"]
    assert web["scope"] == "tenants" and web["parent_name"] == "tenants"
    tenants_ = ctl.call("show", namespace="tenants")
    assert tenants_["children"] == ["web", "db"]
    assert [p["name"] for p in tenants_["ports"]] == ["tsw-up"]
    assert ctl.call("show")["name"] == "init"          # default: the socket's namespace
    assert ctl.call("show", namespace=2)["name"] == "web"  # ids resolve too


def test_create_and_destroy(ctl, served):
    created = ctl.call("create", name="cache", kind="l3", parent="tenants")
    assert created["name"] == "cache" and created["kind"] == "l3"
    ctl.call("assign-and-push", address="10.1.0.30/24", namespace="cache")
    assert ctl.call("destroy", namespace="cache") is None
    # an L3's addresses return to its parent when it goes
    assert "10.1.0.30/24" in ctl.call("addresses", namespace="tenants")
    ctl.call("create", name="lab", kind="l2")
    ctl.call("create", name="lab-a", kind="l3", parent="lab")
    with pytest.raises(errors.Busy):
        ctl.call("destroy", namespace="lab")
    ctl.call("destroy", namespace="lab", recursive=True)
    assert "lab" not in [n["name"] for n in ctl.call("namespaces")]


def test_addresses_push_pull_assign(ctl):
    ctl.call("address-add", namespace="tenants", address="10.1.0.40/24")
    ctl.call("push", address="10.1.0.40/24", namespace="web")
    assert "10.1.0.40/24" in ctl.call("addresses", namespace="web")
    assert "10.1.0.40/24" not in ctl.call("addresses", namespace="tenants")
    tagged = ctl.call("addresses", namespace="tenants", tagged=True)
    assert {"address": "10.1.0.40/24", "owner": "web"} in tagged
    assert ctl.call("owner", address="10.1.0.40", namespace="tenants") == "web"
    ctl.call("pull", address="10.1.0.40/24", namespace="web")
    assert ctl.call("owner", address="10.1.0.40", namespace="tenants") == "tenants"
    ctl.call("address-del", namespace="tenants", address="10.1.0.40/24")
    assert ctl.call("owner", address="10.1.0.40", namespace="tenants") is None


def test_routes(ctl):
    route = ctl.call("route-add", namespace="tenants", prefix="default", via="10.1.0.254",
                     port="tsw-up")
    assert route == {"dst": "0.0.0.0/0", "via": "10.1.0.254", "port": "tsw-up", "connected": False}
    assert ctl.call("routes", namespace="web")[0] == route   # an L3 sees its parent's
    ctl.call("route-del", namespace="tenants", prefix="0.0.0.0/0")
    assert [r["dst"] for r in ctl.call("routes", namespace="tenants")] == ["10.1.0.0/24"]


def test_ports(ctl):
    port = ctl.call("port-add", name="tsw-web", namespace="web", mac="02:00:00:00:00:0a",
                    options={"vnet_hdr": True, "offloads": ["tso4", "csum"], "txqueuelen": 5000})
    assert port["namespace"] == "web" and port["mac"] == "02:00:00:00:00:0a"
    assert port["options"] == {"vnet_hdr": True, "offloads": ["csum", "tso4"], "txqueuelen": 5000}
    assert [p["name"] for p in ctl.call("ports")] == ["tsw-up", "tsw-web"]
    assert [p["name"] for p in ctl.call("ports", namespace="web")] == ["tsw-web"]
    ctl.call("port-del", name="tsw-web")
    assert [p["name"] for p in ctl.call("ports")] == ["tsw-up"]


def test_groups(ctl):
    ctl.call("join", group="239.1.1.1", namespace="web")
    ctl.call("join", group="239.1.1.1", namespace="db")
    assert ctl.call("groups", namespace="web") == ["239.1.1.1"]
    assert ctl.call("members", group="239.1.1.1", namespace="tenants") == ["web", "db"]
    ctl.call("leave", group="239.1.1.1", namespace="db")
    assert ctl.call("members", group="239.1.1.1", namespace="tenants") == ["web"]


def test_sockets_verbs(ctl, served, tmp_path):
    opened = ctl.call("socket-add", namespace="web")
    assert opened == {"namespace": "web", "path": str(tmp_path / "run" / "ns" / "web.sock")}
    assert ctl.call("sockets") == [opened]
    with pytest.raises(errors.AlreadyExists):
        ctl.call("socket-add", namespace="web")
    with ControlClient(opened["path"]) as web:
        assert web.call("whoami")["namespace"] == "web"
    ctl.call("socket-del", namespace="web")
    assert ctl.call("sockets") == []
    assert not os.path.exists(opened["path"])
    with pytest.raises(errors.NotFound):
        ctl.call("socket-del", namespace="web")


# -- refusals keep the state and the connection --------------------------------

@pytest.mark.parametrize("verb, args, exc", [
    ("create", {"name": "web", "kind": "l3", "parent": "tenants"}, errors.AlreadyExists),
    ("create", {"name": "x", "kind": "l3", "parent": "web"}, errors.InvalidArgument),
    ("create", {"name": "x", "kind": "l4"}, errors.InvalidArgument),
    ("destroy", {"namespace": "init"}, errors.PermissionDenied),
    ("destroy", {"namespace": "nope"}, errors.NotFound),
    ("destroy", {"namespace": "tenants"}, errors.Busy),
    ("address-add", {"namespace": "tenants", "address": "10.1.0.10/24"}, errors.AddressInUse),
    ("address-add", {"namespace": "tenants", "address": "10.1.0.300/24"}, errors.InvalidArgument),
    ("address-add", {"namespace": "web", "address": "10.1.0.50/24"}, errors.InvalidArgument),
    ("push", {"address": "10.1.0.99/24", "namespace": "web"}, errors.NotFound),
    ("pull", {"address": "10.1.0.20/24", "namespace": "web"}, errors.NotFound),
    ("assign-and-push", {"address": "10.1.0.20/24", "namespace": "web"}, errors.AddressInUse),
    ("route-add", {"namespace": "web", "prefix": "default", "via": "10.1.0.1"},
     errors.InvalidArgument),
    ("route-add", {"namespace": "tenants", "prefix": "10.2.0.1/16", "via": "10.1.0.1"},
     errors.InvalidArgument),
    ("route-del", {"namespace": "tenants", "prefix": "10.9.0.0/16"}, errors.NotFound),
    ("port-add", {"name": "tsw-up", "namespace": "web"}, errors.AlreadyExists),
    ("port-add", {"name": "p", "namespace": "web", "options": {"colour": 1}},
     errors.InvalidArgument),
    ("port-add", {"name": "p", "namespace": "web", "mac": "01:00:5e:00:00:01"},
     errors.InvalidArgument),
    ("port-del", {"name": "nope"}, errors.NotFound),
    ("join", {"group": "10.0.0.1", "namespace": "web"}, errors.InvalidArgument),
    ("leave", {"group": "239.1.1.1", "namespace": "web"}, errors.NotFound),
    ("socket-add", {"namespace": "nope"}, errors.NotFound),
])
def test_refused_verb_changes_nothing(ctl, served, verb, args, exc):
    before = served.switch.snapshot()
    with pytest.raises(exc) as info:
        ctl.call(verb, **args)
    assert info.value.code == exc.code and info.value.message
    assert served.switch.snapshot() == before
    assert served.server.bindings() == {}
    assert ctl.call("ping") == "pong"      # the connection survives


@pytest.mark.parametrize("args, fragment", [
    ({}, "missing argument 'address'"),
    ({"address": "10.1.0.10/24"}, "missing argument 'namespace'"),
    ({"address": "10.1.0.10/24", "namespace": "web", "force": True}, "unknown argument(s) force"),
    ({"address": 167837706, "namespace": "web"}, "argument 'address' must be a string"),
    ({"address": "10.1.0.10/24", "namespace": True}, "argument 'namespace' must be a namespace"),
    ({"address": "10.1.0.10/24", "namespace": ["web"]}, "argument 'namespace' must be"),
])
def test_bad_arguments(served, args, fragment):
    raw = RawLine(served.path)
    before = served.switch.snapshot()
    reply = raw.request("pull", args, request_id=7)
    assert reply["id"] == 7 and reply["ok"] is False
    assert reply["error"]["code"] == "EINVAL"
    assert fragment in reply["error"]["message"]
    assert served.switch.snapshot() == before
    assert raw.request("ping", request_id=8) == {"id": 8, "ok": True, "result": "pong"}
    raw.close()


def test_bool_is_not_an_int_nor_a_string(served):
    raw = RawLine(served.path)
    reply = raw.request("destroy", {"namespace": "web", "recursive": "yes"})
    assert reply["error"]["code"] == "EINVAL" and "true or false" in reply["error"]["message"]
    reply = raw.request("create", {"name": True, "kind": "l3"})
    assert reply["error"]["code"] == "EINVAL"
    raw.close()


def test_optional_null_argument_means_default(served):
    raw = RawLine(served.path)
    reply = raw.request("addresses", {"namespace": None, "tagged": None})
    assert reply["ok"] and reply["result"] == ["127.0.0.1/8", "::1/128"]
    reply = raw.request("push", {"address": None, "namespace": "web"})
    assert reply["error"]["code"] == "EINVAL"
    raw.close()


def test_unknown_verb(ctl, served):
    with pytest.raises(protocol.UnknownVerb) as info:
        ctl.call("frobnicate")
    assert info.value.code == "ENOSYS" and "frobnicate" in info.value.message
    with pytest.raises(protocol.UnknownVerb):
        ctl.call("counters")     # only when the daemon registers it
    assert ctl.call("ping") == "pong"


@pytest.mark.parametrize("line, code, fragment", [
    (b"this is not json\n", "EBADMSG", "not JSON"),
    (b"[1, 2]\n", "EBADMSG", "JSON object"),
    (b"\"ping\"\n", "EBADMSG", "JSON object"),
    (b"{\"id\": 1, \"verb\": \"ping\"\xff}\n", "EBADMSG", "not UTF-8"),
    (b"{\"id\": 1.5, \"verb\": \"ping\"}\n", "EBADMSG", "request id"),
    (b"{\"id\": [1], \"verb\": \"ping\"}\n", "EBADMSG", "request id"),
    (b"{\"id\": 3}\n", "EBADMSG", "'verb'"),
    (b"{\"id\": 3, \"verb\": 5}\n", "EBADMSG", "'verb'"),
    (b"{\"id\": 3, \"verb\": \"ping\", \"args\": [1]}\n", "EBADMSG", "'args'"),
    (b"{\"id\": 3, \"verb\": \"ping\", \"token\": \"x\"}\n", "EBADMSG", "token"),
    (b"{\"id\": 3, \"verb\": \"ping\", \"args\": {\"x\": NaN}}\n", "EINVAL", "unknown argument"),
])
def test_garbage_lines(served, line, code, fragment):
    raw = RawLine(served.path)
    raw.send(line)
    reply = raw.reply()
    assert reply["ok"] is False and reply["error"]["code"] == code
    assert fragment in reply["error"]["message"]
    if b"\"id\": 3" in line:
        assert reply["id"] == 3      # echoed once the id itself was readable
    assert raw.request("ping", request_id=9)["result"] == "pong"
    raw.close()


def test_oversize_line_is_refused_and_skipped(served):
    raw = RawLine(served.path)
    big = b'{"id": 1, "verb": "ping", "args": {"pad": "' + b"x" * (protocol.MAX_LINE + 10) + b'"}}'
    for offset in range(0, len(big), 10000):       # arrives in pieces
        raw.send(big[offset:offset + 10000])
    raw.send(b"\n")
    reply = raw.reply()
    assert reply == {"id": None, "ok": False, "error": {
        "code": "EMSGSIZE", "message": reply["error"]["message"]}}
    assert str(protocol.MAX_LINE) in reply["error"]["message"]
    # the tail of the big line was discarded, not parsed as a request
    assert raw.request("ping", request_id=2) == {"id": 2, "ok": True, "result": "pong"}
    raw.close()


def test_line_at_the_limit_is_served(served):
    raw = RawLine(served.path)
    head = b'{"id": 4, "verb": "ping", "args": {"pad": "'
    tail = b'"}}'
    line = head + b"x" * (protocol.MAX_LINE - len(head) - len(tail)) + tail
    assert len(line) == protocol.MAX_LINE
    raw.send(line + b"\n")
    reply = raw.reply()
    assert reply["id"] == 4 and reply["error"]["code"] == "EINVAL"   # parsed: 'pad' is unknown
    raw.close()


def test_pipelined_requests_answered_in_order_and_blank_lines_ignored(served):
    raw = RawLine(served.path)
    batch = b"".join(protocol.encode_request(i, "ping", {}) for i in range(1, 51))
    raw.send(b"\n  \r\n" + batch[:1000])
    raw.send(batch[1000:])
    assert [raw.reply()["id"] for _ in range(50)] == list(range(1, 51))
    raw.close()


def test_string_ids_and_missing_args(served):
    raw = RawLine(served.path)
    raw.send(b'{"id": "a-1", "verb": "ping"}\n{"verb": "ping", "args": null}\n')
    assert raw.reply() == {"id": "a-1", "ok": True, "result": "pong"}
    assert raw.reply() == {"id": None, "ok": True, "result": "pong"}
    raw.close()


def test_last_request_without_newline_is_answered_on_shutdown(served):
    raw = RawLine(served.path)
    raw.send(b'{"id": 5, "verb": "ping"}')
    raw.sock.shutdown(socket.SHUT_WR)
    assert raw.reply() == {"id": 5, "ok": True, "result": "pong"}
    assert raw.sock.recv(10) == b""      # then the server closes
    raw.close()


def test_client_maps_codes_to_classes(ctl):
    with pytest.raises(errors.PermissionDenied):
        ctl.call("destroy", namespace="init")
    with pytest.raises(errors.AddressInUse):
        ctl.call("assign-and-push", address="10.1.0.20/24", namespace="web")
    error = protocol.error_from_code("EWEIRD", "from a newer server")
    assert type(error) is errors.TapswitchError and error.code == "EWEIRD"


def test_client_cannot_connect(tmp_path):
    with pytest.raises(ConnectionFailed) as info:
        ControlClient(str(tmp_path / "absent.sock"))
    assert str(tmp_path / "absent.sock") in info.value.message


def test_client_refuses_oversize_request(ctl):
    with pytest.raises(protocol.MessageTooLong):
        ctl.call("show", namespace="x" * protocol.MAX_LINE)
    assert ctl.call("ping") == "pong"


# -- the daemon's hooks ------------------------------------------------------------

def test_daemon_registers_and_replaces_verbs(tmp_path):
    seen = []
    dispatcher = standard_dispatcher()

    def counters(session, port):
        visible = {p.name for p in session.api.ports()}
        table = {"tsw-up": {"rx": 10, "tx": 12}, "tsw-web": {"rx": 1, "tx": 2}}
        return {name: c for name, c in table.items() if name in visible
                and (port is None or name == port)}

    base_port_add = dispatcher.get("port-add").handler

    def port_add(session, **args):
        result = base_port_add(session, **args)
        seen.append(result["name"])          # the daemon would open the TAP here
        return result

    def broken(session):
        raise RuntimeError("bug")

    dispatcher.register("counters", counters, [Param("port", "str", required=False)])
    dispatcher.register("port-add", port_add, dispatcher.get("port-add").params,
                        access="config", replace=True)
    dispatcher.register("broken", broken)
    with pytest.raises(ValueError):
        dispatcher.register("ping", counters)
    with Served(tmp_path, tenants(Switch()), dispatcher=dispatcher) as s:
        with ControlClient(s.path) as ctl:
            ctl.call("port-add", name="tsw-web", namespace="web")
            assert seen == ["tsw-web"]
            assert ctl.call("counters") == {"tsw-up": {"rx": 10, "tx": 12},
                                            "tsw-web": {"rx": 1, "tx": 2}}
            assert ctl.call("counters", port="tsw-web") == {"tsw-web": {"rx": 1, "tx": 2}}
            with pytest.raises(errors.TapswitchError) as info:
                ctl.call("broken")
            assert info.value.code == "EIO" and "internal error" in info.value.message
            assert ctl.call("ping") == "pong"
            ctl.call("socket-add", namespace="web")
        with ControlClient(s.server.bindings()["web"]) as web:
            # a read verb of the daemon sees what the binding sees
            assert web.call("counters") == {"tsw-web": {"rx": 1, "tx": 2}}
            # the access gate stands in front of the daemon's handler too
            with pytest.raises(errors.PermissionDenied):
                web.call("port-add", name="tsw-x", namespace="web")
        assert seen == ["tsw-web"]


# -- socket files ------------------------------------------------------------------

def test_socket_files_are_private(served, ctl, tmp_path):
    run = tmp_path / "run"
    assert stat.S_IMODE(os.stat(run).st_mode) == 0o700
    assert stat.S_ISSOCK(os.stat(served.path).st_mode)
    assert stat.S_IMODE(os.stat(served.path).st_mode) == 0o600
    path = ctl.call("socket-add", namespace="web")["path"]
    assert stat.S_IMODE(os.stat(run / "ns").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_socket_mode_and_group_can_be_given(tmp_path):
    switch = tenants(Switch())
    with ControlServer(switch, str(tmp_path / "a.sock"), mode=0o660, gid=os.getgid()) as server:
        assert stat.S_IMODE(os.stat(tmp_path / "a.sock").st_mode) == 0o660
        path = server.bind_namespace("web", mode=0o666)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o666
    assert not os.path.exists(path) and not os.path.exists(tmp_path / "a.sock")


def test_stale_socket_is_replaced_live_one_refused(tmp_path):
    path = str(tmp_path / "c.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.close()                       # the file stays, nobody listens
    with ControlServer(Switch(), path) as server:
        with pytest.raises(errors.Busy) as info:
            ControlServer(Switch(), path)
        assert "another tapswitch" in info.value.message
        raw = RawLine(path)
        raw.send(protocol.encode_request(1, "ping", {}))
        for _ in range(4):   # the probe's connection, ours, our request
            server.poll(0.2)
        assert raw.reply()["result"] == "pong"
        raw.close()


def test_refuses_to_replace_a_regular_file(tmp_path):
    path = tmp_path / "c.sock"
    path.write_text("precious")
    with pytest.raises(errors.AlreadyExists):
        ControlServer(Switch(), str(path))
    assert path.read_text() == "precious"


def test_refuses_world_writable_socket_dir(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    with pytest.raises(errors.PermissionDenied):
        ControlServer(Switch(), str(shared / "c.sock"))


def test_path_too_long(tmp_path):
    with pytest.raises(errors.InvalidArgument) as info:
        ControlServer(Switch(), str(tmp_path / ("x" * 120) / "c.sock"))
    assert "107" in info.value.message


def test_close_removes_every_socket_file(tmp_path):
    switch = tenants(Switch())
    server = ControlServer(switch, str(tmp_path / "c.sock"))
    web = server.bind_namespace("web")
    tenants_path = server.bind_namespace("tenants")
    server.close()
    server.close()                      # idempotent
    assert not any(os.path.exists(p) for p in (web, tenants_path, tmp_path / "c.sock"))


# -- no thread of its own: driven by the caller's loop ------------------------------

def test_driven_by_select_on_fileno(tmp_path):
    switch = tenants(Switch())
    with ControlServer(switch, str(tmp_path / "c.sock")) as server:
        assert server.poll(0) == 0                      # idle: returns at once
        raw = RawLine(str(tmp_path / "c.sock"))
        ready, _, _ = select.select([server.fileno()], [], [], 5)
        assert ready                                     # the pending accept
        server.poll(0)
        raw.send(protocol.encode_request(1, "create", {"name": "x", "kind": "l3",
                                                       "parent": "tenants"}))
        assert select.select([server.fileno()], [], [], 5)[0]
        server.poll(0)
        assert raw.reply() == {"id": 1, "ok": True,
                               "result": {"id": 5, "name": "x", "kind": "l3", "parent": 1}}
        assert switch.namespace("x").kind == "l3"
        raw.close()


def test_driven_per_fd_with_handle_ready(tmp_path):
    switch = Switch()
    with ControlServer(switch, str(tmp_path / "c.sock")) as server:
        raw = RawLine(str(tmp_path / "c.sock"))
        for _ in range(2):   # accept, then the request
            ready, _, _ = select.select(server.filenos(), [], [], 5)
            for fd in ready:
                server.handle_ready(fd)
            if len(server.filenos()) == 3:      # the timer, the listener, the connection
                raw.send(protocol.encode_request(1, "ping", {}))
        assert raw.reply()["result"] == "pong"
        raw.close()
        assert select.select(server.filenos(), [], [], 5)[0]   # the EOF
        for fd in server.filenos()[1:]:
            server.handle_ready(fd)
        assert len(server.filenos()) == 2


def test_a_client_that_does_not_read_cannot_block_the_server(tmp_path):
    switch = tenants(Switch())
    with ControlServer(switch, str(tmp_path / "c.sock")) as server:
        hog = RawLine(str(tmp_path / "c.sock"))
        server.poll(0)
        request = protocol.encode_request(1, "verbs", {})
        sent = 0
        hog.sock.setblocking(False)
        for _ in range(400):            # ~1.5 MB of replies nobody reads yet
            try:
                hog.sock.send(request)
                sent += 1
            except BlockingIOError:
                pass
            server.poll(0)
        assert server.write_filenos()   # replies are waiting, the server went on
        other = RawLine(str(tmp_path / "c.sock"))
        other.send(protocol.encode_request(2, "ping", {}))
        for _ in range(20):
            server.poll(0.05)
            other.sock.setblocking(False)
            try:
                other.buf += other.sock.recv(1000)
            except BlockingIOError:
                pass
            if b"\n" in other.buf:
                break
        other.sock.setblocking(True)
        assert other.reply()["result"] == "pong"
        hog.sock.setblocking(True)
        hog.sock.settimeout(0.05)
        received = 0
        for _ in range(2000):
            server.poll(0)
            try:
                while True:
                    hog.buf += hog.sock.recv(1 << 16)
            except (BlockingIOError, TimeoutError):
                pass
            received = hog.buf.count(b"\n")
            if received >= sent:
                break
        assert received == sent
        assert all(json.loads(line)["ok"] for line in hog.buf.splitlines())
        hog.close()
        other.close()


def test_peer_credentials_are_logged(served, caplog):
    with caplog.at_level(logging.INFO, logger="tapswitch"):
        with ControlClient(served.path) as ctl:
            ctl.call("create", name="x", kind="l3", parent="tenants")
            with pytest.raises(errors.AlreadyExists):
                ctl.call("create", name="x", kind="l3", parent="tenants")
        served.server.stop()
        served.thread.join(10)
    text = caplog.text
    me = f"pid={os.getpid()} uid={os.getuid()} gid={os.getgid()}"
    assert f"connection on {served.path} (admin) from {me}" in text
    assert f"admin socket (init) ({me}): create name=x kind=l3 parent=tenants -> ok" in text
    assert "-> EEXIST: " in text
