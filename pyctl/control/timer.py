"""A one-shot timer as a file descriptor (Linux timerfd, through ctypes: Python 3.11 has no
``os.timerfd_create``), so the control server's own epoll fd becomes readable when a
deadline comes (an idle connection to close, a paused listener or client to resume),
whoever drives the server and however rarely it is otherwise woken."""
from __future__ import annotations

import ctypes
import os
import time

__all__ = ["Timer"]

_CLOCK_MONOTONIC = 1
_TFD_NONBLOCK = os.O_NONBLOCK
_TFD_CLOEXEC = os.O_CLOEXEC
_TFD_TIMER_ABSTIME = 1


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.timerfd_create.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.timerfd_settime.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(_Itimerspec),
                                  ctypes.c_void_p]


class Timer:
    """``arm(deadline)`` (a ``time.monotonic()`` value; the earliest one asked for wins until
    it fires), ``fileno()`` readable once it passed, ``clear()`` after it fired."""

    def __init__(self):
        fd = _libc.timerfd_create(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC)
        if fd < 0:
            code = ctypes.get_errno()
            raise OSError(code, f"timerfd_create: {os.strerror(code)}")
        self._fd = fd
        self.deadline: float | None = None

    def fileno(self) -> int:
        return self._fd

    def arm(self, deadline: float) -> None:
        """Fire at ``deadline`` unless it is already armed for an earlier one."""
        if self.deadline is not None and self.deadline <= deadline:
            return
        # time.monotonic() is CLOCK_MONOTONIC: an absolute deadline needs no conversion.
        # A deadline already past becomes the next nanosecond (0 would disarm the timer).
        deadline = max(deadline, time.monotonic() + 1e-9)
        spec = _Itimerspec()
        spec.it_value.tv_sec = int(deadline)
        spec.it_value.tv_nsec = max(1, int((deadline - int(deadline)) * 1e9))
        if _libc.timerfd_settime(self._fd, _TFD_TIMER_ABSTIME, ctypes.byref(spec), None) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"timerfd_settime: {os.strerror(code)}")
        self.deadline = deadline

    def clear(self) -> None:
        """Take the expiry (the fd is no longer readable) and forget the deadline."""
        try:
            os.read(self._fd, 8)
        except BlockingIOError:
            pass
        self.deadline = None

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
