"""The control socket's wire format: line-delimited JSON requests and replies.

One request per line, one reply per request, in order::

    {"id": 1, "verb": "push", "args": {"address": "10.0.0.5/24", "namespace": "web"}}
    {"id": 1, "ok": true, "result": null}
    {"id": 2, "ok": false, "error": {"code": "EPERM", "message": "..."}}

Both the server (pyctl.control.server) and the client (pyctl.control.client) use this module,
so the format is written down once.  A request line is at most MAX_LINE
bytes, not counting its newline; replies (listings) may be longer, up to
MAX_REPLY.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pyctl import errors

PROTOCOL_VERSION = 1
MAX_LINE = 64 * 1024
MAX_REPLY = 16 * 1024 * 1024

_REQUEST_KEYS = frozenset(("id", "verb", "args"))


class BadMessage(errors.TapswitchError):
    """A line that is not a well-formed request or reply (not UTF-8, not JSON, wrong shape)."""

    code = "EBADMSG"


class MessageTooLong(errors.TapswitchError):
    """A line longer than MAX_LINE bytes."""

    code = "EMSGSIZE"


class UnknownVerb(errors.TapswitchError):
    """A verb this server does not know (see the ``verbs`` verb for the list)."""

    code = "ENOSYS"


_PROTOCOL_ERRORS = {cls.code: cls for cls in (BadMessage, MessageTooLong, UnknownVerb)}


def error_from_code(code: str, message: str) -> errors.TapswitchError:
    """The exception of class ``code``: protocol errors here, the model's in pyctl.errors."""
    cls = _PROTOCOL_ERRORS.get(code)
    return cls(message) if cls is not None else errors.from_code(code, message)


@dataclass(frozen=True)
class Request:
    id: int | str | None
    verb: str
    args: dict[str, Any]


@dataclass(frozen=True)
class Reply:
    id: int | str | None
    ok: bool
    result: Any = None
    code: str | None = None
    message: str | None = None


def encode(obj: Any) -> bytes:
    """One JSON document on one line, newline-terminated."""
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode() + b"\n"


def encode_request(request_id: int | str | None, verb: str, args: dict[str, Any]) -> bytes:
    return encode({"id": request_id, "verb": verb, "args": args})


def encode_result(request_id: int | str | None, result: Any) -> bytes:
    return encode({"id": request_id, "ok": True, "result": result})


def encode_error(request_id: int | str | None, code: str, message: str) -> bytes:
    return encode({"id": request_id, "ok": False, "error": {"code": code, "message": message}})


def _valid_id(value: Any) -> bool:
    return value is None or isinstance(value, str) or (
        isinstance(value, int) and not isinstance(value, bool))


def _load_object(line: bytes, what: str, limit: int | None) -> dict[str, Any]:
    if limit is not None and len(line) > limit:
        raise MessageTooLong(f"{what} is {len(line)} bytes, the limit is {limit}")
    try:
        doc = json.loads(line)
    except UnicodeDecodeError as exc:
        raise BadMessage(f"{what} is not UTF-8: {exc.reason}") from None
    except ValueError as exc:
        raise BadMessage(f"{what} is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BadMessage(f"{what} must be a JSON object, got {type(doc).__name__}")
    return doc


def decode_request(line: bytes) -> Request:
    """Parse one request line (without or with its newline).

    Raises BadMessage / MessageTooLong / InvalidArgument.  When the
    line parsed far enough to carry a usable id, the exception's
    ``request_id`` attribute holds it so the error reply can echo it.
    """
    doc = _load_object(line, "request", MAX_LINE)
    request_id = doc.get("id")
    if not _valid_id(request_id):
        raise BadMessage("request id must be an integer, a string or null")
    try:
        extra = sorted(set(doc) - _REQUEST_KEYS)
        if extra:
            raise BadMessage(f"unknown request field(s): {', '.join(extra)}")
        verb = doc.get("verb")
        if not isinstance(verb, str) or not verb:
            raise BadMessage("request needs a 'verb' string")
        args = doc.get("args", {})
        if args is None:
            args = {}
        if not isinstance(args, dict):
            raise BadMessage("request 'args' must be a JSON object")
    except errors.TapswitchError as exc:
        exc.request_id = request_id
        raise
    return Request(request_id, verb, args)


def decode_reply(line: bytes) -> Reply:
    doc = _load_object(line, "reply", None)
    request_id = doc.get("id")
    ok = doc.get("ok")
    if not _valid_id(request_id) or not isinstance(ok, bool):
        raise BadMessage(f"malformed reply: {line[:200]!r}")
    if ok:
        return Reply(request_id, True, doc.get("result"))
    err = doc.get("error")
    if (not isinstance(err, dict) or not isinstance(err.get("code"), str)
            or not isinstance(err.get("message"), str)):
        raise BadMessage(f"malformed error reply: {line[:200]!r}")
    return Reply(request_id, False, code=err["code"], message=err["message"])
