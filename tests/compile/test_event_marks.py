"""The compiler's table of event types: every type the model defines has a handler,
each marks the plan entries of its change (the same when the change is undone),
and a type without one is an error the compiler reports, not a silent full recompile."""
import ipaddress

import pytest

from fastpath.reference import ReferenceDatapath
from pyctl import Switch
from pyctl.compile.compiler import Compiler
from pyctl.compile.event_marks import MARKS_OF, Marks, UnhandledEvent, marks_of
from pyctl.model.events import EVENT_TYPES, ChangeEvent

from tests.support.plan_oracle import expected_plan


def ip(text):
    return int(ipaddress.ip_address(text))


def test_every_event_type_the_model_defines_has_a_handler():
    assert set(MARKS_OF) == set(EVENT_TYPES)


class NamespaceRenamed(ChangeEvent, kind="namespace.rename"):
    """A kind the model might grow one day, and the compiler would not know."""
    categories = ("namespaces",)


def test_an_unknown_event_type_raises():
    with pytest.raises(UnhandledEvent, match="NamespaceRenamed.*namespace.rename.*MARKS_OF"):
        marks_of(NamespaceRenamed(version=1), Marks())


def test_a_compiler_that_saw_an_unknown_event_refuses_to_sync_until_forced():
    sw = Switch()
    dp = ReferenceDatapath(max_namespaces=8, max_ports=8)
    comp = Compiler(sw, dp)
    comp.sync()
    sw.create("web", kind="l3")
    sw._commit(NamespaceRenamed)               # as a model that grew a kind would
    assert sw.subscriber_errors == 1           # the compiler's watcher said so at once
    before = dict(comp.plan.namespaces)
    with pytest.raises(UnhandledEvent):
        comp.sync()
    with pytest.raises(UnhandledEvent):        # every time: its plan may be wrong
        comp.sync()
    assert comp.plan.namespaces == before and dict(dp.namespaces) == before
    comp.sync(force=True)                      # an explicit full recompile clears it
    assert comp.plan == expected_plan(sw.snapshot(), comp.families)
    sw.create("db", kind="l3")
    comp.sync()
    assert comp.plan == expected_plan(sw.snapshot(), comp.families)


def marks_told(sw, verb):
    """The marks of the events ``verb`` causes, as made and as undone by a rollback."""
    made, undone = Marks(), Marks()
    unwatch = sw.watch(lambda event, back: marks_of(event, undone if back else made))
    try:
        verb()
    finally:
        unwatch()
    return made, undone


def as_sets(marks):
    return {name: getattr(marks, name) for name in Marks.__slots__}


def test_handlers_mark_the_entries_of_their_change():
    sw = Switch()
    sw.create("web", kind="l3")
    sw.create("lab", kind="l2")
    sw.port_add("tap-web", "web")
    web, lab = sw.namespace("web").id, sw.namespace("lab").id
    port = sw.port("tap-web").id
    sw.assign_and_push("10.0.0.5/24", "web")

    cases = [
        (lambda: sw.address_add("init", "10.0.0.1/24"),      # and its connected route
         {"addresses": {(0, ip("10.0.0.1"))}, "routes": {(0, ip("10.0.0.0"), 24)}}),
        (lambda: sw.address_add("init", "fd00::1/64"),               # IPv6: its own key
         {"addresses": {(0, ipaddress.ip_address("fd00::1"))},        # and connected route
          "routes": {(0, ipaddress.ip_address("fd00::"), 64)}}),
        (lambda: sw.route_add("init", "10.9.0.0/16", via="10.0.0.5"),
         {"routes": {(0, ip("10.9.0.0"), 16)}}),
        (lambda: sw.route_add("init", "fd00:9::/64", via="fd00::5"),
         {"routes": {(0, ipaddress.ip_address("fd00:9::"), 64)}}),
        (lambda: sw.join("239.1.1.1", "web"),                # that membership, not web's groups
         {"memberships": {(web, ipaddress.ip_address("239.1.1.1"))}}),
        (lambda: sw.leave("239.1.1.1", "web"),
         {"memberships": {(web, ipaddress.ip_address("239.1.1.1"))}}),
        (lambda: sw.port_add("up0", "lab"),                  # an L2's: its connected routes
         {"ports": {port + 1}, "namespaces": {lab}, "connected": {lab}}),
        (lambda: sw.route_replace("init", "10.9.0.0/16", via="10.0.0.6"),
         {"routes": {(0, ip("10.9.0.0"), 16)}}),
        (lambda: sw.namespace_set("lab", {"directed_broadcast": True}), {"namespaces": {lab}}),
        (lambda: sw.netns_delegate("lab", "ctr-x"), {}),
        (lambda: sw.netns_revoke("lab", "ctr-x"), {}),
        (lambda: sw.create("blue", kind="l2"), {"namespaces": {lab + 1}, "scopes": {lab + 1}}),
        (lambda: sw.destroy("web"), {"namespaces": {web}, "addresses": {(0, ip("10.0.0.5"))},
                                     "routes": {(0, ip("10.0.0.0"), 24)}}),
    ]
    for verb, expected in cases:
        made, undone = marks_told(sw, verb)
        want = {name: set() for name in Marks.__slots__}
        want.update(expected)
        assert as_sets(made) == want


def test_an_undone_change_marks_what_it_marked_when_made():
    sw = Switch()
    sw.create("web", kind="l3")
    sw.port_add("tap-web", "web")
    sw.assign_and_push("10.0.0.5/24", "web")
    sw.create("lab", kind="l2")
    sw.create("probe", kind="l3", parent="lab")

    def rolled_back():
        with pytest.raises(RuntimeError):
            with sw.transaction():
                sw.destroy("web")
                sw.destroy("lab", recursive=True)
                sw.route_add("init", "10.9.0.0/16", via="10.0.0.5")
                raise RuntimeError("undo")
    made, undone = marks_told(sw, rolled_back)
    assert made and as_sets(made) == as_sets(undone)
