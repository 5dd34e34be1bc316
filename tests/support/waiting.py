"""Waiting for something a running switch does on its own (a report learned, a leave
applied): poll, bounded, and say what did not happen."""
import time

import pytest


def until(predicate, timeout, interval=0.01):
    """Poll ``predicate`` every ``interval`` seconds: True once it is true, False when
    ``timeout`` seconds passed first."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def wait_for(predicate, timeout, what):
    """Poll ``predicate`` every 10 ms; the seconds it took to become true (the test fails,
    saying ``what`` did not happen, after ``timeout``)."""
    start = time.monotonic()
    if not until(predicate, timeout):
        pytest.fail(f"{what}: not within {timeout} s")
    return time.monotonic() - start
