"""Waiting for something a running switch does on its own (a report learned, a leave
applied): poll, bounded, and say what did not happen."""
import time

import pytest


def wait_for(predicate, timeout, what):
    """Poll ``predicate`` every 10 ms; the seconds it took to become true."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            pytest.fail(f"{what}: not within {timeout} s")
        time.sleep(0.01)
    return time.monotonic() - start
