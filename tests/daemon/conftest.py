"""Fixtures of the daemon-side tests (slow path, multicast, ports)."""
import pytest

from pyctl.daemon.slowpath import SlowPath
from tests.support.slowpath import FakeClock, StaticView


@pytest.fixture
def clock():
    """A clock the test moves by hand."""
    return FakeClock()


@pytest.fixture
def sp(clock):
    """A slow path over a fixed view of one switch address and one tenant."""
    return SlowPath(StaticView(), clock=clock)
