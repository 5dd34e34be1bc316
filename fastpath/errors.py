"""The one exception hierarchy of tapswitch, at the bottom layer.

Every refusal of the fast path's table API, the model, the control socket and
the CLI is a ``TapswitchError`` carrying a stable errno-like ``code`` (what
programs match on) and a ``message`` that names the objects involved (what
people read).  The control socket sends both as they are; ``from_code``
rebuilds the right class on the client side.

It lives in ``fastpath`` because the compiled core raises these errors and
``fastpath`` imports nothing from ``pyctl``; ``pyctl.errors`` re-exports every
name.  Importing it loads nothing else (no compiled core, no numpy).
"""

__all__ = [
    "TapswitchError",
    "NotFound",
    "AlreadyExists",
    "AddressInUse",
    "PermissionDenied",
    "InvalidArgument",
    "Busy",
    "NotSupported",
    "QuotaExceeded",
    "TableFull",
    "from_code",
]


class TapswitchError(Exception):
    """Base of every tapswitch error: ``code`` is stable, ``message`` is for people."""

    code = "EIO"

    def __init__(self, message):
        super().__init__(message)
        self.message = message

    def to_dict(self):
        """The form the control socket sends: ``{"code": ..., "message": ...}``."""
        return {"code": self.code, "message": self.message}


class NotFound(TapswitchError):
    """The namespace, address, route, port or group does not exist (or is not visible)."""

    code = "ENOENT"


class AlreadyExists(TapswitchError):
    """The object to create is already there (same name, same address in the same place, ...)."""

    code = "EEXIST"


class AddressInUse(TapswitchError):
    """The address is held by another namespace of the same L2 scope."""

    code = "EADDRINUSE"


class PermissionDenied(TapswitchError):
    """The acting namespace lacks the capability (an L3 has no NET_ADMIN),
    or the object is protected (the root)."""

    code = "EPERM"


class InvalidArgument(TapswitchError):
    """Malformed input, or an operation that makes no sense for this kind of object."""

    code = "EINVAL"


class Busy(TapswitchError):
    """The object is still in use: an L2 with children, a port a route goes out of,
    an L3 that already has its port."""

    code = "EBUSY"


class NotSupported(TapswitchError):
    """A valid request tapswitch does not implement."""

    code = "ENOTSUP"


class QuotaExceeded(TapswitchError):
    """A quota its parent set on an L2 would be exceeded (``quota`` names it and its L2),
    or an L2 would be given more than its parent has (pyctl.model.quotas)."""

    code = "EDQUOT"

    def __init__(self, message, quota=None, namespace=None):
        super().__init__(message)
        self.quota, self.namespace = quota, namespace


class TableFull(TapswitchError):
    """A table of the switch itself is full (``table`` names it): no quota, its size."""

    code = "ENOSPC"

    def __init__(self, message, table=None):
        super().__init__(message)
        self.table = table


_BY_CODE = {cls.code: cls for cls in (
    TapswitchError, NotFound, AlreadyExists, AddressInUse, PermissionDenied,
    InvalidArgument, Busy, NotSupported, QuotaExceeded, TableFull,
)}


def from_code(code, message):
    """The error of class ``code`` (an unknown code gives a ``TapswitchError`` keeping it)."""
    cls = _BY_CODE.get(code)
    if cls is not None:
        return cls(message)
    error = TapswitchError(message)
    error.code = code
    return error
