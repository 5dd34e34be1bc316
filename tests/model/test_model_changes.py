"""How changes are seen: versions, per-category versions, subscriber events
(and what a failing subscriber does), snapshots and transactions."""
import ipaddress
import json
import logging

import pytest

from tests.support.model import events_of, refused, tenants
from pyctl import Switch, errors
from pyctl.model.events import AddressAssigned


def test_every_change_bumps_the_version_and_its_categories():
    sw = Switch()
    steps = [
        (lambda: sw.create("web", kind="l3"), {"namespaces"}),
        (lambda: sw.address_add("init", "10.0.0.5/24"), {"addresses"}),
        (lambda: sw.push("10.0.0.5/24", "web"), {"addresses"}),
        (lambda: sw.port_add("uplink0", "init"), {"ports"}),
        (lambda: sw.route_add("init", "default", port="uplink0"), {"routes"}),
        (lambda: sw.join("239.1.1.1", "web"), {"groups"}),
        (lambda: sw.port_add("tap-web", "web"), {"ports"}),
        (lambda: sw.destroy("web"), {"namespaces", "addresses", "ports", "groups"}),
    ]
    for number, (step, categories) in enumerate(steps, start=1):
        before = dict(sw.versions)
        step()
        assert sw.version == number
        changed = {c for c in before if sw.versions[c] != before[c]}
        assert changed == categories
        assert all(sw.versions[c] == before[c] + 1 for c in changed)


def test_versions_is_read_only():
    sw = Switch()
    with pytest.raises(TypeError):
        sw.versions["addresses"] = 5


def test_events_describe_each_change_in_order():
    sw = Switch()
    events = events_of(sw)
    sw.create("web", kind="l3")
    sw.assign_and_push("10.0.0.5/24", "web")
    sw.destroy("web")
    assert [(e.kind, e.version) for e in events] == [
        ("namespace.create", 1), ("address.assign_and_push", 2), ("namespace.destroy", 3)]
    assert isinstance(events[1], AddressAssigned)
    assert (events[1].address, events[1].scope.name, events[1].tenant.name) == (
        ipaddress.ip_interface("10.0.0.5/24"), "init", "web")
    assert events[2].returned == (ipaddress.ip_interface("10.0.0.5/24"),)
    assert events[2].categories == ("namespaces", "addresses")
    assert events[1].to_dict() == {
        "kind": "address.assign_and_push", "version": 2, "address": "10.0.0.5/24",
        "scope": {"id": 0, "name": "init", "kind": "l2", "parent": None},
        "tenant": {"id": 1, "name": "web", "kind": "l3", "parent": 0},
        "categories": ["addresses"]}
    json.dumps([e.to_dict() for e in events])


def test_unsubscribe():
    sw = Switch()
    events = []
    unsubscribe = sw.subscribe(events.append)
    sw.create("a", kind="l3")
    unsubscribe()
    unsubscribe()                      # harmless twice
    sw.create("b", kind="l3")
    assert len(events) == 1


def test_a_failing_subscriber_neither_undoes_the_change_nor_starves_the_others(caplog):
    sw = Switch()
    seen = []

    def broken(event):
        raise RuntimeError("compiler exploded")

    sw.subscribe(broken)
    sw.subscribe(seen.append)
    with caplog.at_level(logging.ERROR, logger="tapswitch.model"):
        sw.create("web", kind="l3")
    assert sw.namespace("web").name == "web"
    assert sw.version == 1
    assert [e.kind for e in seen] == ["namespace.create"]
    assert sw.subscriber_errors == 1
    assert "compiler exploded" in caplog.text


def test_subscriber_sees_the_state_after_the_change():
    sw = Switch()
    seen = []
    sw.subscribe(lambda event: seen.append(sw.snapshot()["version"]))
    sw.create("web", kind="l3")
    assert seen == [1]


def test_snapshot_is_deep_json_and_detached():
    sw = tenants()
    sw.port_add("tap-web", "web", options={"offloads": ["csum"]})
    sw.route_add("init", "10.9.0.0/16", via="10.0.0.254")
    sw.join("239.1.1.1", "web")
    snap = sw.snapshot()
    assert json.loads(json.dumps(snap)) == snap
    assert [n["name"] for n in snap["namespaces"]] == ["init", "web", "db", "lab", "probe"]
    assert snap["namespaces"][1] == {"id": 1, "name": "web", "kind": "l3", "parent": 0,
                                     "addresses": ["10.0.0.5/24"], "routes": [],
                                     "ports": ["tap-web"], "groups": ["239.1.1.1"],
                                     "options": {}}
    assert snap["ports"][0]["options"] == {"offloads": ["csum"]}
    snap["ports"][0]["options"]["offloads"].append("tso4")
    snap["namespaces"][0]["addresses"].clear()
    assert sw.snapshot() != snap
    assert sw.snapshot()["ports"][0]["options"] == {"offloads": ["csum"]}


def test_transaction_applies_everything_and_then_announces():
    sw = Switch()
    events = events_of(sw)
    with sw.transaction():
        sw.create("web", kind="l3")
        sw.assign_and_push("10.0.0.5/24", "web")
        assert events == []
    assert [e.version for e in events] == [1, 2]


def test_transaction_rolls_everything_back_on_error():
    sw = tenants()
    events = events_of(sw)
    before = sw.snapshot()
    with pytest.raises(errors.AddressInUse):
        with sw.transaction():
            sw.create("new", kind="l3")
            sw.destroy("web")
            sw.port_add("tap-new", "new")
            sw.assign_and_push("10.0.0.6/24", "new")      # db holds it
    assert sw.snapshot() == before
    assert events == []
    assert sw.create("new", kind="l3").id == 5           # the id was not consumed


def test_nested_transaction_joins_the_outer_one():
    sw = Switch()
    with pytest.raises(errors.NotFound):
        with sw.transaction():
            sw.create("a", kind="l3")
            with sw.transaction():
                sw.create("b", kind="l3")
            sw.destroy("nope")
    assert [n.name for n in sw.namespaces()] == ["init"]


def test_refused_verbs_leave_versions_alone():
    sw = tenants()
    version = sw.version
    refused(sw, errors.NotFound, sw.pull, "10.0.0.99/24", "web")
    assert sw.version == version
