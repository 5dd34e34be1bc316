"""The wire format alone: encoding, decoding, and the client's view of bad replies."""
import pytest

from pyctl import errors

from pyctl.control import protocol


def test_request_round_trip():
    line = protocol.encode_request(3, "push", {"address": "10.0.0.5/24", "namespace": "web"})
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert protocol.decode_request(line) == protocol.Request(
        3, "push", {"address": "10.0.0.5/24", "namespace": "web"})


def test_replies_round_trip():
    assert protocol.decode_reply(protocol.encode_result("a", [1, "x"])) == protocol.Reply(
        "a", True, [1, "x"])
    reply = protocol.decode_reply(protocol.encode_error(None, "EPERM", "no"))
    assert (reply.ok, reply.code, reply.message) == (False, "EPERM", "no")


def test_encoding_refuses_nan():
    with pytest.raises(ValueError):
        protocol.encode_result(1, float("nan"))


@pytest.mark.parametrize("line", [
    b"", b"{", b"[]", b'{"id": 1}', b'{"id": true, "ok": true}', b'{"id": 1, "ok": "yes"}',
    b'{"id": 1, "ok": false}', b'{"id": 1, "ok": false, "error": {"code": 5, "message": "m"}}',
    b'{"id": 1, "ok": false, "error": "EPERM"}',
])
def test_malformed_replies(line):
    with pytest.raises(protocol.BadMessage):
        protocol.decode_reply(line)


def test_request_size_limit_and_id_echo():
    with pytest.raises(protocol.MessageTooLong):
        protocol.decode_request(b" " * (protocol.MAX_LINE + 1))
    with pytest.raises(protocol.BadMessage) as info:
        protocol.decode_request(b'{"id": 9, "verb": ""}')
    assert info.value.request_id == 9
    assert protocol.decode_request(b'{"verb": "ping"}') == protocol.Request(None, "ping", {})


@pytest.mark.parametrize("code, cls", [
    ("EBADMSG", protocol.BadMessage), ("EMSGSIZE", protocol.MessageTooLong),
    ("ENOSYS", protocol.UnknownVerb), ("ENOENT", errors.NotFound),
    ("EPERM", errors.PermissionDenied), ("EADDRINUSE", errors.AddressInUse),
    ("EBUSY", errors.Busy), ("EEXIST", errors.AlreadyExists), ("EINVAL", errors.InvalidArgument),
])
def test_codes_rebuild_their_class(code, cls):
    error = protocol.error_from_code(code, "msg")
    assert type(error) is cls and error.code == code and error.message == "msg"
