"""The typed change events: each verb emits its own type, carrying ids and parsed
values; ``EVENT_TYPES`` is every type the model has, and the verbs emit them all;
``categories`` are the versions the change bumped; a rollback hands them back."""
import inspect
import ipaddress
import json

import pytest

from pyctl import Switch
from pyctl.model import events as ev

I = ipaddress.ip_interface
A = ipaddress.ip_address
N = ipaddress.ip_network


@pytest.fixture
def sw():
    sw = Switch()
    sw.create("web", kind="l3")
    sw.create("lab", kind="l2")
    sw.port_add("up0", "init")
    return sw


def emitted(sw, verb):
    seen = []
    unsubscribe = sw.subscribe(seen.append)
    try:
        verb()
    finally:
        unsubscribe()
    (event,) = seen
    return event


def ns(sw, name):
    return sw.namespace(name)


def test_each_verb_emits_its_type_with_ids_and_parsed_values(sw):
    init, web = ns(sw, "init"), ns(sw, "web")
    up0 = sw.port("up0")
    cases = [
        (lambda: sw.address_add("init", "10.0.0.1/24"),
         ev.AddressAdded(version=4, address=I("10.0.0.1/24"), scope=init)),
        (lambda: sw.address_add("init", "10.0.0.5/24"),
         ev.AddressAdded(version=5, address=I("10.0.0.5/24"), scope=init)),
        (lambda: sw.push("10.0.0.5/24", "web"),
         ev.AddressPushed(version=6, address=I("10.0.0.5/24"), scope=init, tenant=web)),
        (lambda: sw.pull("10.0.0.5/24", "web"),
         ev.AddressPulled(version=7, address=I("10.0.0.5/24"), scope=init, tenant=web)),
        (lambda: sw.address_del("init", "10.0.0.5/24"),
         ev.AddressDeleted(version=8, address=I("10.0.0.5/24"), scope=init)),
        (lambda: sw.assign_and_push("10.0.0.6/24", "web"),
         ev.AddressAssigned(version=9, address=I("10.0.0.6/24"), scope=init, tenant=web)),
        (lambda: sw.route_add("init", "10.9.0.0/16", via="10.0.0.254", port="up0"),
         ev.RouteAdded(version=10, scope=init, network=N("10.9.0.0/16"), via=A("10.0.0.254"),
                       port=up0)),
        (lambda: sw.route_del("init", "10.9.0.0/16"),
         ev.RouteDeleted(version=11, scope=init, network=N("10.9.0.0/16"), via=A("10.0.0.254"),
                         port=up0)),
        (lambda: sw.route_add("init", "default", via="10.0.0.6"),
         ev.RouteAdded(version=12, scope=init, network=N("0.0.0.0/0"), via=A("10.0.0.6"))),
        (lambda: sw.join("239.1.1.1", "web"),
         ev.GroupJoined(version=13, namespace=web, group=A("239.1.1.1"))),
        (lambda: sw.leave("239.1.1.1", "web"),
         ev.GroupLeft(version=14, namespace=web, group=A("239.1.1.1"))),
    ]
    for verb, expected in cases:
        assert emitted(sw, verb) == expected
    event = emitted(sw, lambda: sw.port_add("tap-web", "web", mac="02:00:00:00:00:05"))
    assert event == ev.PortAdded(version=15, port=sw.port("tap-web"), namespace=web)
    assert event.port.ns == web.id and event.port.id == sw.port("tap-web").id
    event = emitted(sw, lambda: sw.port_del("tap-web"))
    assert isinstance(event, ev.PortDeleted) and event.port.name == "tap-web"
    event = emitted(sw, lambda: sw.create("db", kind="l3", parent="init"))
    assert event == ev.NamespaceCreated(version=17, namespace=ns(sw, "db"))
    event = emitted(sw, lambda: sw.quota_set("lab", {"routes": 3, "ports": None, "groups": 2}))
    assert event == ev.QuotaSet(version=18, namespace=ns(sw, "lab"),
                                quota=(("groups", 2), ("routes", 3)))
    assert event.categories == () and event.limits == {"groups": 2, "routes": 3}


def test_a_route_event_gives_the_models_route_value(sw):
    event = emitted(sw, lambda: sw.route_add("init", "10.9.0.0/16", port="up0"))
    assert event.route == sw.routes("init")[0]
    assert event.route.via is None and event.via is None


def test_destroying_an_l3_returns_its_addresses_to_the_parent(sw):
    sw.assign_and_push("10.0.0.6/24", "web")
    sw.port_add("tap-web", "web")
    sw.join("239.1.1.1", "web")
    web, port = ns(sw, "web"), sw.port("tap-web")
    event = emitted(sw, lambda: sw.destroy("web"))
    assert event.namespace == web and event.parent == ns(sw, "init")
    assert event.returned == (I("10.0.0.6/24"),)
    assert event.destroyed == (ev.DestroyedNamespace(web, (), (), (port,), (A("239.1.1.1"),)),)
    assert event.removed_addresses == () and event.removed_ports == (port,)
    assert event.categories == ("namespaces", "addresses", "groups", "ports")


def test_destroying_an_l2_lists_its_subtree_children_first_with_what_went(sw):
    sw.create("probe", kind="l3", parent="lab")
    sw.address_add("lab", "10.1.0.1/24")
    sw.assign_and_push("10.1.0.5/24", "probe")
    sw.route_add("lab", "10.9.0.0/16", via="10.1.0.5")
    lab, probe = ns(sw, "lab"), ns(sw, "probe")
    event = emitted(sw, lambda: sw.destroy("lab", recursive=True))
    assert event.destroyed == (
        ev.DestroyedNamespace(probe, (I("10.1.0.5/24"),)),
        ev.DestroyedNamespace(lab, (I("10.1.0.1/24"),), (N("10.9.0.0/16"),)))
    assert event.returned == ()
    assert event.categories == ("namespaces", "addresses", "routes")


def concrete_event_types():
    """Every class of pyctl.model.events that a verb can emit (kind set, no subclasses)."""
    out = set()
    for _, cls in inspect.getmembers(ev, inspect.isclass):
        if issubclass(cls, ev.ChangeEvent) and cls.kind and not cls.__subclasses__():
            out.add(cls)
    return out


EVERY_VERB = [                      # one call of every configuring verb, each destroy too
    ("create", "probe", "l3", "lab"), ("address_add", "init", "10.0.0.1/24"),
    ("address_add", "init", "10.0.0.5/24"), ("push", "10.0.0.5/24", "web"),
    ("pull", "10.0.0.5/24", "web"), ("address_del", "init", "10.0.0.5/24"),
    ("assign_and_push", "10.0.0.6/24", "web"), ("route_add", "init", "10.9.0.0/16", None, "up0"),
    ("route_replace", "init", "10.9.0.0/16", "10.0.0.9"),
    ("route_del", "init", "10.9.0.0/16"), ("port_add", "tap-web", "web"), ("port_del", "tap-web"),
    ("namespace_set", "lab", {"directed_broadcast": True}), ("netns_delegate", "lab", "ctr-x"),
    ("netns_revoke", "lab", "ctr-x"),
    ("join", "239.1.1.1", "web"), ("leave", "239.1.1.1", "web"),
    ("quota_set", "lab", {"routes": 3}), ("destroy", "web"),
    ("namespace_set", "lab", {"advertise": True}), ("destroy", "lab", True),
]


def every_verb(sw):
    for verb, *args in EVERY_VERB:
        getattr(sw, verb)(*args)


def test_event_types_is_every_type_and_the_verbs_emit_them_all(sw):
    assert set(ev.EVENT_TYPES) == concrete_event_types()
    assert len({t.kind for t in ev.EVENT_TYPES}) == len(ev.EVENT_TYPES)     # stable, unique
    seen = []
    sw.subscribe(seen.append)
    every_verb(sw)
    assert {type(e) for e in seen} == set(ev.EVENT_TYPES)


def test_categories_are_the_versions_bumped_and_to_dict_is_json(sw):
    seen = []

    def check(event):
        after = dict(sw.versions)
        assert {c for c in after if after[c] != before[c]} == set(event.categories)
        before.update(after)
        seen.append(event)
    before = dict(sw.versions)
    sw.subscribe(check)
    every_verb(sw)
    assert [e.version for e in seen] == list(range(4, sw.version + 1))
    plain = json.loads(json.dumps([e.to_dict() for e in seen]))
    assert [d["kind"] for d in plain] == [e.kind for e in seen]
    assert plain[-1]["destroyed"][0]["namespace"]["name"] == "probe"


def test_a_rollback_hands_every_event_back_newest_first(sw):
    told = []
    sw.watch(lambda event, undone: told.append((event.kind, event.version, undone)))
    with pytest.raises(RuntimeError):
        with sw.transaction():
            sw.address_add("init", "10.0.0.1/24")
            sw.destroy("web")
            raise RuntimeError("changed my mind")
    assert told == [("address.add", 4, False), ("namespace.destroy", 5, False),
                    ("namespace.destroy", 5, True), ("address.add", 4, True)]
