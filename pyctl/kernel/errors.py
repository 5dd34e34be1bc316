"""Kernel errors: each is both a ``pyctl.errors`` class (stable ``code``) and the
matching OSError (kernel ``errno``); netlink failures become them with the object named."""

from __future__ import annotations

import contextlib
import errno
import os

from pyroute2.netlink.exceptions import NetlinkError

from pyctl import errors

_GONE = {errno.ENOENT, errno.ENODEV, errno.ESRCH, errno.ENXIO}   # the object is already gone


class BadArgument(errors.InvalidArgument, ValueError):
    """A malformed name, address or value, refused before any kernel call."""


class _KernelErrorMixin:
    def __init__(self, code: int, message: str, filename: str | None = None):
        OSError.__init__(self, code, message, filename)
        self.message = message


class KernelError(_KernelErrorMixin, errors.TapswitchError, OSError):
    """A kernel refusal without a closer class; ``code`` is the errno's name."""

    @property
    def code(self) -> str:
        return errno.errorcode.get(self.errno, "EIO")


class KernelNotFound(_KernelErrorMixin, errors.NotFound, FileNotFoundError):
    """No such interface or namespace (ENOENT, ENODEV)."""


class KernelExists(_KernelErrorMixin, errors.AlreadyExists, FileExistsError):
    """The interface or namespace name is taken (EEXIST)."""


class KernelPermission(_KernelErrorMixin, errors.PermissionDenied, PermissionError):
    """The process lacks the capability (EPERM, EACCES)."""


class KernelBusy(_KernelErrorMixin, errors.Busy, OSError):
    """The object is in use (EBUSY)."""


_ERROR_CLASSES = {errno.ENOENT: KernelNotFound, errno.ENODEV: KernelNotFound,
                  errno.EEXIST: KernelExists, errno.EPERM: KernelPermission,
                  errno.EACCES: KernelPermission, errno.EBUSY: KernelBusy}


def kernel_error(code: int, message: str, filename: str | None = None) -> OSError:
    """The error for errno ``code``, with ``message`` naming what failed."""
    return _ERROR_CLASSES.get(code, KernelError)(code, message, filename)


def _os_error(exc: NetlinkError, what: str) -> OSError:
    code = exc.code or errno.EIO
    return kernel_error(code, f"{what}: {os.strerror(code)}")


@contextlib.contextmanager
def _netlink_errors(what: str):
    try:
        yield
    except NetlinkError as exc:
        raise _os_error(exc, what) from None
