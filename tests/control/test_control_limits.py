"""The control socket's bounds (issue 14 item 15): request nesting and size, connection
slots per socket / in all / for the admin, idle connections, requests per second, and a
client that connects reliably in bursts."""
import json
import logging
import socket
import threading
import time

import pytest

from pyctl.config import ControlLimits
from pyctl.control import protocol
from pyctl.control.client import ConnectionFailed, ControlClient
from pyctl.model.switch import Switch
from tests.support.control import RawLine, Served, tenants


def _served(tmp_path, **limits):
    return Served(tmp_path, tenants(Switch()), limits=ControlLimits(**limits))


def _no_reply(raw, wait=0.3):
    raw.sock.settimeout(wait)
    try:
        with pytest.raises(TimeoutError):
            raw.reply()
    finally:
        raw.sock.settimeout(10.0)


# -- nesting and size -------------------------------------------------------------------

@pytest.mark.parametrize("depth", [33, 1000, 30000])
def test_deep_json_gets_ebadmsg_without_a_traceback(served, caplog, depth):
    caplog.set_level(logging.DEBUG)
    raw = RawLine(served.path)
    deep = b'{"id": 7, "verb": "ping", "args": {"x": ' + b"[" * depth + b"]" * depth + b"}}"
    assert len(deep) <= protocol.MAX_LINE
    raw.send(deep + b"\n")
    reply = raw.reply()
    assert reply["ok"] is False and reply["error"]["code"] == "EBADMSG"
    assert "deep" in reply["error"]["message"] or "arrays/objects" in reply["error"]["message"]
    assert raw.request("ping", request_id=8) == {"id": 8, "ok": True, "result": "pong"}
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    raw.close()


def test_nesting_at_the_limit_is_parsed(served):
    raw = RawLine(served.path)
    inner = b"[" * (protocol.MAX_DEPTH - 2) + b"]" * (protocol.MAX_DEPTH - 2)
    raw.send(b'{"id": 1, "verb": "ping", "args": {"x": ' + inner + b"}}\n")
    # depth 32 is read; the verb then refuses the unknown argument: EINVAL, not EBADMSG
    assert raw.reply()["error"]["code"] == "EINVAL"
    raw.close()


@pytest.mark.parametrize("line, fragment", [
    (b'{"id": 1, "verb": "ping", "args": {"x": ' + b"[]," * 2000 + b"[]}}", "arrays/objects"),
    ('{"id": 1, "verb": "ping"}'.encode("utf-16"), "not UTF-8"),
    (b'{"id": 1, "verb": "ping", "args": {"x": "' + b"[" * 5000 + b'"}}', "unknown argument"),
    (b'{"id": 1, "verb": "ping", "args": {"x": "\\"' + b"[" * 5000, "not JSON"),
])
def test_brackets_counted_outside_strings_and_only_utf8(served, line, fragment):
    raw = RawLine(served.path)
    raw.send(line + b"\n")
    reply = raw.reply()
    assert reply["ok"] is False and fragment in reply["error"]["message"]
    raw.close()


def test_request_size_limit_is_configurable(tmp_path):
    with _served(tmp_path, request_bytes=1024) as s:
        raw = RawLine(s.path)
        raw.send(b'{"id": 1, "verb": "ping", "args": {"x": "' + b"y" * 2000 + b'"}}\n')
        reply = raw.reply()
        assert reply["error"]["code"] == "EMSGSIZE" and "1024" in reply["error"]["message"]
        assert raw.request("ping")["result"] == "pong"
        assert s.server.stats()["sockets"]["(admin)"]["refused"] == 1
        raw.close()


# -- connection slots -------------------------------------------------------------------

def test_a_full_namespace_socket_leaves_new_clients_waiting_and_others_unaffected(tmp_path):
    with _served(tmp_path, connections_per_socket=3) as s:
        web, db = s.server.bind_namespace("web"), s.server.bind_namespace("db")
        held = [RawLine(web) for _ in range(3)]
        for raw in held:
            assert raw.request("ping")["result"] == "pong"
        waiting = RawLine(web)           # connected: in the backlog, not accepted
        waiting.send(protocol.encode_request(9, "ping", {}))
        _no_reply(waiting)
        with ControlClient(db) as other, ControlClient(s.path) as admin:
            assert other.call("ping") == "pong" and admin.call("ping") == "pong"
            stats = admin.call("verbs") and s.server.stats()
        assert stats["sockets"]["web"]["full"] >= 1 and stats["sockets"]["web"]["connections"] == 3
        held.pop().close()               # a slot frees: the waiting client is served
        assert waiting.reply() == {"id": 9, "ok": True, "result": "pong"}
        for raw in held + [waiting]:
            raw.close()


def test_the_total_bounds_every_namespace_socket_but_never_the_admin(tmp_path):
    with _served(tmp_path, connections=4, connections_per_socket=3, admin_connections=2) as s:
        web, db = s.server.bind_namespace("web"), s.server.bind_namespace("db")
        held = [RawLine(web) for _ in range(3)] + [RawLine(db)]
        for raw in held:
            assert raw.request("ping")["result"] == "pong"
        late = RawLine(db)
        late.send(protocol.encode_request(5, "ping", {}))
        _no_reply(late)
        admins = [RawLine(s.path) for _ in range(2)]
        for raw in admins:
            assert raw.request("ping")["result"] == "pong"
        third_admin = RawLine(s.path)    # the admin's own limit holds too
        third_admin.send(protocol.encode_request(6, "ping", {}))
        _no_reply(third_admin)
        held[0].close()                  # a web slot frees: the total has room for db
        assert late.reply()["result"] == "pong"
        admins[0].close()
        assert third_admin.reply()["result"] == "pong"
        for raw in held[1:] + admins[1:] + [late, third_admin]:
            raw.close()


def test_limits_are_cut_to_the_fd_limit(monkeypatch):
    import resource

    from pyctl.control import admission
    monkeypatch.setattr(resource, "getrlimit", lambda which: (300, 300))
    fitted = admission.fit_to_fd_limit(ControlLimits(connections=1000, admin_connections=16))
    assert fitted.connections + fitted.admin_connections <= 300 - admission.FD_HEADROOM
    assert fitted.admin_connections >= 1 and fitted.connections >= 1


# -- idle connections -------------------------------------------------------------------

def test_idle_connection_gets_a_notice_and_is_closed(tmp_path):
    with _served(tmp_path, idle_timeout=1) as s:
        raw = RawLine(s.path)
        started = time.monotonic()
        notice = raw.reply()
        assert notice["id"] is None and notice["error"]["code"] == protocol.IDLE_CLOSE
        assert time.monotonic() - started >= 0.9
        with pytest.raises(EOFError):
            raw.reply()
        assert s.server.stats()["idle_closed"] == 1
        raw.close()


def test_a_busy_connection_is_not_idle(tmp_path):
    with _served(tmp_path, idle_timeout=1) as s:
        raw = RawLine(s.path)
        for i in range(8):             # 2.4 s of requests every 0.3 s
            assert raw.request("ping", request_id=i)["result"] == "pong"
            time.sleep(0.3)
        assert s.server.stats()["idle_closed"] == 0
        raw.close()


def test_client_reconnects_after_an_idle_close(tmp_path):
    with _served(tmp_path, idle_timeout=1) as s:
        with ControlClient(s.path) as client:
            assert client.call("ping") == "pong"
            time.sleep(2.0)            # the server closed it meanwhile
            assert s.server.stats()["idle_closed"] == 1
            client.call("create", name="late", kind="l3", parent="tenants")
            assert [n["name"] for n in client.call("namespaces")].count("late") == 1


# -- requests per second ----------------------------------------------------------------

def test_requests_beyond_the_rate_wait_but_are_all_answered_in_order(tmp_path):
    with _served(tmp_path, requests_per_second=20, requests_burst=5) as s:
        web = s.server.bind_namespace("web")
        raw = RawLine(web)
        started = time.monotonic()
        raw.send(b"".join(protocol.encode_request(i, "ping", {}) for i in range(25)))
        assert [raw.reply()["id"] for _ in range(25)] == list(range(25))
        assert time.monotonic() - started >= 0.9       # 20 beyond the burst at 20/s
        admin = RawLine(s.path)              # the admin socket has no rate limit
        admin.send(b"".join(protocol.encode_request(i, "ping", {}) for i in range(25)))
        assert [admin.reply()["id"] for _ in range(25)] == list(range(25))
        stats = s.server.stats()["sockets"]
        assert stats["web"]["throttled"] >= 1 and stats["(admin)"]["throttled"] == 0
        raw.close()
        admin.close()


def test_a_namespace_client_sees_only_its_own_socket_in_stats(tmp_path):
    with _served(tmp_path) as s:
        web = s.server.bind_namespace("web")
        s.server.bind_namespace("db")
        binding = next(lst.binding for lst in s.server._listeners.values()
                       if lst.binding.name == "web")
        assert set(s.server.stats(binding)) == {"sockets"}
        assert set(s.server.stats(binding)["sockets"]) == {"web"}
        assert set(s.server.stats()["sockets"]) == {"(admin)", "web", "db"}
        assert web


# -- the client -------------------------------------------------------------------------

def test_a_thousand_connects_in_bursts_all_succeed(tmp_path):
    """1,000 clients connect at once while the server is not accepting (a busy daemon):
    the connects wait in the backlog and for slots, none is refused."""
    with _served(tmp_path) as s:
        gate = threading.Event()
        failures, done = [], []
        s.server.dispatcher.register("slow-ping", lambda session: gate.wait(10) and "pong")

        def client():
            try:
                with ControlClient(s.path, timeout=60.0) as c:
                    done.append(c.call("slow-ping"))
            except Exception as exc:        # noqa: BLE001 - counted, then asserted
                failures.append(exc)

        threads = [threading.Thread(target=client) for _ in range(1000)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        gate.set()
        for t in threads:
            t.join(120)
        assert not failures, f"{len(failures)} failed, e.g. {failures[0]!r}"
        assert done == ["pong"] * 1000


def test_connect_to_nothing_fails_at_once(tmp_path):
    started = time.monotonic()
    with pytest.raises(ConnectionFailed):
        ControlClient(str(tmp_path / "absent.sock"), timeout=30.0)
    assert time.monotonic() - started < 5.0


def test_connect_to_a_full_backlog_times_out_with_a_clear_error(tmp_path):
    path = str(tmp_path / "deaf.sock")
    deaf = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    deaf.bind(path)
    deaf.listen(0)                   # nobody accepts: the second connect has no room
    fillers = []
    try:
        for _ in range(3):
            f = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            f.setblocking(False)
            try:
                f.connect(path)
            except BlockingIOError:
                pass
            fillers.append(f)
        with pytest.raises(ConnectionFailed, match="no room"):
            ControlClient(path, timeout=0.5)
    finally:
        for f in fillers:
            f.close()
        deaf.close()


def test_stats_limits_reported(served):
    stats = served.server.stats()
    assert stats["limits"] == json.loads(json.dumps(vars(ControlLimits())))
