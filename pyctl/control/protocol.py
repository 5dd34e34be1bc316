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

import itertools
import json
import operator
import re
from typing import Any

from pyctl import errors
from pyctl.control.record import REQUIRED, Record

PROTOCOL_VERSION = 1
MAX_LINE = 64 * 1024
MAX_REPLY = 16 * 1024 * 1024
MAX_DEPTH = 32          # arrays/objects inside each other in one request
MAX_CONTAINERS = 1024   # arrays/objects in one request (a verb's arguments hold a handful)
IDLE_CLOSE = "ETIMEDOUT"   # the code of the notice a server sends before closing an idle connection

_REQUEST_KEYS = frozenset(("id", "verb", "args"))


class BadMessage(errors.TapswitchError):
    """A line that is not a well-formed request or reply (not UTF-8, not JSON, wrong shape)."""

    code = "EBADMSG"


class MessageTooLong(errors.TapswitchError):
    """A line longer than MAX_LINE bytes."""

    code = "EMSGSIZE"


class TooDeep(BadMessage):
    """A request whose arrays/objects nest deeper than the limit (or hold too many of them)."""


class UnknownVerb(errors.TapswitchError):
    """A verb this server does not know (see the ``verbs`` verb for the list)."""

    code = "ENOSYS"


_PROTOCOL_ERRORS = {cls.code: cls for cls in (BadMessage, MessageTooLong, UnknownVerb)}


def error_from_code(code: str, message: str) -> errors.TapswitchError:
    """The exception of class ``code``: protocol errors here, the model's in pyctl.errors."""
    cls = _PROTOCOL_ERRORS.get(code)
    return cls(message) if cls is not None else errors.from_code(code, message)


class Request(Record):
    """A decoded request: ``id`` (int, str or None), ``verb``, ``args`` (a dict)."""
    FIELDS = (("id", REQUIRED), ("verb", REQUIRED), ("args", REQUIRED))


class Reply(Record):
    """A decoded reply: ``ok`` with its ``result``, or the error's ``code`` and ``message``."""
    FIELDS = (("id", REQUIRED), ("ok", REQUIRED), ("result", None), ("code", None),
              ("message", None))


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


# A JSON string (escapes included), or an unterminated one to the end of the line: it cannot
# fail once it started, so matching never backtracks and stays linear.  Strings are cut out
# before counting brackets, which only count outside them.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKETS = bytes(range(256)).translate(None, b"[]{}")
_OPEN_TWO_CLOSE_ZERO = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")


def check_nesting(line: bytes, what: str, max_depth: int,
                  max_containers: int = MAX_CONTAINERS) -> None:
    """Refuse (TooDeep, a BadMessage) a line whose arrays and objects nest deeper than
    ``max_depth``, or that holds more than ``max_containers`` of them, without parsing it:
    the parser recurses once per level.  A line with no more opening brackets than
    ``max_depth`` (strings included) passes at once; otherwise strings are cut out, the
    brackets counted, and the depth worked out as the highest running count (each ``[`` is
    2 and ``]`` 0, so after k brackets the depth is the sum minus k).  What a malformed line
    leaves unpaired counts as nested: never less than the parser could recurse into."""
    if line.count(b"[") + line.count(b"{") <= max_depth:
        return
    brackets = _JSON_STRING.sub(b"", line).translate(None, _NOT_BRACKETS)
    opening = len(brackets) - brackets.count(b"]") - brackets.count(b"}")
    if opening <= max_depth:
        return
    if opening > max_containers:
        raise TooDeep(f"{what} holds {opening} arrays/objects, the limit is {max_containers}")
    steps = brackets.translate(_OPEN_TWO_CLOSE_ZERO)
    depth = max(map(operator.sub, itertools.accumulate(steps), itertools.count(1)))
    if depth > max_depth:
        raise TooDeep(f"{what} nests arrays/objects {depth} deep, the limit is {max_depth}")


def _load_object(line: bytes, what: str, limit: int | None,
                 depth: int | None = None) -> dict[str, Any]:
    if limit is not None and len(line) > limit:
        raise MessageTooLong(f"{what} is {len(line)} bytes, the limit is {limit}")
    try:      # UTF-8 only (json.loads would guess UTF-16/32), and where no byte of a
        text = line.decode("utf-8")    # multibyte character looks like a quote or bracket
    except UnicodeDecodeError as exc:
        raise BadMessage(f"{what} is not UTF-8: {exc.reason}") from None
    if depth is not None:
        check_nesting(line, what, depth)
    try:
        doc = json.loads(text)
    except RecursionError:    # a reply, which is not depth-checked: never a traceback
        raise BadMessage(f"{what} nests arrays/objects too deeply to parse") from None
    except ValueError as exc:
        raise BadMessage(f"{what} is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BadMessage(f"{what} must be a JSON object, got {type(doc).__name__}")
    return doc


def decode_request(line: bytes, *, max_bytes: int = MAX_LINE,
                   max_depth: int = MAX_DEPTH) -> Request:
    """Parse one request line (without or with its newline).

    Raises BadMessage / MessageTooLong / InvalidArgument.  When the
    line parsed far enough to carry a usable id, the exception's
    ``request_id`` attribute holds it so the error reply can echo it.
    A line nested deeper than ``max_depth`` is refused before the parser
    sees it (the parser recurses per level).
    """
    doc = _load_object(line, "request", max_bytes, max_depth)
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
