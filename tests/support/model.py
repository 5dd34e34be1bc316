"""Helpers shared by the model tests (tests/test_model_*.py)."""
import copy

import pytest

from pyctl import Switch


def events_of(sw):
    """The list every event ``sw`` emits from now on is appended to."""
    events = []
    sw.subscribe(events.append)
    return events


def refused(sw, error, call, *args, **kwargs):
    """Call ``call``, expect ``error``, and check that nothing changed at all:
    same snapshot, same internal state (id allocators included), no event."""
    events = []
    unsubscribe = sw.subscribe(events.append)
    before, state = sw.snapshot(), copy.deepcopy(sw._state)
    try:
        with pytest.raises(error) as info:
            call(*args, **kwargs)
    finally:
        unsubscribe()
    assert sw.snapshot() == before
    assert sw._state == state
    assert events == []
    assert info.value.code == error.code
    assert info.value.message == str(info.value)
    return info.value


def tenants():
    """init (L2) with 10.0.0.1/24 kept, two L3 tenants web (10.0.0.5) and db (10.0.0.6),
    and an L2 'lab' whose L3 'probe' holds 10.0.0.5/24 too (a separate scope)."""
    sw = Switch()
    sw.address_add("init", "10.0.0.1/24")
    sw.create("web", kind="l3")
    sw.create("db", kind="l3")
    sw.assign_and_push("10.0.0.5/24", "web")
    sw.assign_and_push("10.0.0.6/24", "db")
    sw.create("lab", kind="l2")
    sw.create("probe", kind="l3", parent="lab")
    sw.assign_and_push("10.0.0.5/24", "probe")
    return sw
