"""Fixtures of the control-plane tests."""
import pytest

from pyctl.model.switch import Switch
from tests.support.control import Served, tenants


@pytest.fixture
def served(tmp_path):
    """A control server on a temporary socket over the ``tenants`` model (admin + namespace sockets)."""
    with Served(tmp_path, tenants(Switch())) as s:
        yield s
