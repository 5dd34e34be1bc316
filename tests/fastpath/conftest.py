"""Every fast-path test body runs against the reference and the compiled core."""
import pytest

from fastpath import Datapath
from fastpath.reference import ReferenceDatapath

IMPLEMENTATIONS = [ReferenceDatapath, Datapath]


@pytest.fixture(params=IMPLEMENTATIONS, ids=["ref", "core"])
def make_dp(request):
    """The Datapath class under test (call it with capacities as keyword args)."""
    return request.param
