"""The verb table is the one description of every control verb: the socket's dispatchers
(standard and daemon), `tapswitch ctl`, the model's API (Switch, ActingContext), the
test rig's Topology and docs/control.md all agree with it, both ways -- and the check
catches each kind of drift when it is fed a deliberately drifted copy."""
import argparse
import dataclasses

import pytest

from pyctl.config import DaemonSettings
from pyctl.control.declare import Param, Verb
from pyctl.control.verb_table import VERBS
from pyctl.model.switch import Switch
from tests.support.verb_drift import Views, problems


@pytest.fixture(scope="module")
def views(tmp_path_factory):
    from pyctl.daemon.daemon import Daemon
    run = tmp_path_factory.mktemp("run")
    daemon = Daemon(Switch(), DaemonSettings(socket=str(run / "control.sock")),
                    max_namespaces=8, max_ports=8)
    daemon.start(control=True)
    try:
        yield Views.current(daemon.control.dispatcher)
    finally:
        daemon.close(report=False)


def test_every_view_agrees_with_the_table(views):
    assert problems(VERBS, views) == []


def test_api_names_are_the_wire_names(views):
    assert VERBS["address-add"].py_name == "address_add"
    for verb in VERBS.values():
        assert verb.py_name == verb.name.replace("-", "_")


# -- each kind of drift is caught ---------------------------------------------------

def _with(table, verb):
    return {**table, verb.name: verb}


def test_a_verb_no_view_knows_is_reported_everywhere(views):
    extra = Verb("frobnicate", [Param("namespace", "namespace")], served_by="model", rig=True,
                 summary="frobnicate a namespace")
    found = problems(_with(VERBS, extra), views)
    assert "frobnicate: the standard dispatcher does not serve it" in found
    assert "frobnicate: the daemon dispatcher does not serve it" in found
    assert "frobnicate: no ctl subcommand" in found
    assert "frobnicate: Switch has no method frobnicate" in found
    assert "frobnicate: ActingContext has no method frobnicate" in found
    assert "frobnicate: Topology has no method frobnicate" in found
    assert "frobnicate: no line in docs/control.md" in found


def test_a_verb_the_table_lost_is_reported_everywhere(views):
    table = {name: verb for name, verb in VERBS.items() if name != "address-add"}
    found = problems(table, views)
    assert "address-add: the standard dispatcher serves it, but it is no verb" in found
    assert "address-add: a ctl subcommand that is no verb" in found
    assert any(p.startswith("Switch.address_add is no verb") for p in found)
    assert any(p.startswith("Topology.address_add is no verb") for p in found)
    assert "address-add: a line in docs/control.md, but no verb" in found


def test_swapped_arguments_are_reported(views):
    push = VERBS["push"]
    swapped = push.replace(params=tuple(reversed(push.params)))
    found = problems(_with(VERBS, swapped), views)
    assert any(p.startswith("push: ctl takes [('address'") for p in found)
    assert any(p.startswith("push: Switch.push takes [('address', True), ('namespace', True)]")
               for p in found)
    assert any(p.startswith("push: Topology.push takes") for p in found)
    assert "push: the standard dispatcher's declaration differs from the table" in found
    assert "docs/control.md: the verb list differs from the table " \
           "(python -m pyctl.control.verb_docs)" in found


def test_an_argument_made_optional_is_reported(views):
    route_add = VERBS["route-add"]
    namespace, prefix, *rest = route_add.params
    loose = route_add.replace(params=(namespace, prefix.replace(required=False), *rest))
    found = problems(_with(VERBS, loose), views)
    assert any(p.startswith("route-add: ctl takes") for p in found)
    assert any(p.startswith("route-add: Switch.route_add takes") for p in found)


def test_a_ctl_command_of_its_own_is_reported(views):
    sub = next(a for a in views.ctl._actions if isinstance(a, argparse._SubParsersAction))
    sub.add_parser("frobnicate")
    try:
        assert problems(VERBS, views) == ["frobnicate: a ctl subcommand that is no verb"]
    finally:
        del sub.choices["frobnicate"]
    assert problems(VERBS, views) == []


def test_a_model_method_without_a_verb_is_reported(views):
    class Drifted(Switch):
        def address_add(self, address, namespace):     # the old argument order
            pass

        def frobnicate(self, namespace):
            pass
    found = problems(VERBS, dataclasses.replace(views, model=(Drifted,)))
    assert found == [
        "address-add: Drifted.address_add takes [('address', True), ('namespace', True)], "
        "the table declares [('namespace', True), ('address', True)]",
        "Drifted.frobnicate is no verb (declare it, or list it as its own)"]


def test_a_doc_line_edited_by_hand_is_reported(views):
    doc = views.doc.replace("| `pull` | `address, namespace` | config |",
                            "| `pull` | `namespace, address` | config |")
    assert doc != views.doc
    assert problems(VERBS, dataclasses.replace(views, doc=doc)) == [
        "docs/control.md: the verb list differs from the table "
        "(python -m pyctl.control.verb_docs)"]
    no_markers = views.doc.replace("<!-- end of the generated verb list -->", "")
    assert problems(VERBS, dataclasses.replace(views, doc=no_markers)) == [
        "docs/control.md: the generated verb list's markers are missing"]


def test_a_handler_that_takes_other_arguments_is_refused():
    from pyctl.control.dispatch import Dispatcher
    with pytest.raises(ValueError, match="takes \\(address, namespace\\)"):
        Dispatcher().register(VERBS["address-add"], lambda session, address, namespace: None)


def test_declarations_that_ctl_could_not_take_are_refused():
    with pytest.raises(ValueError, match="positional"):
        Param("namespace", "namespace", option=True)
    with pytest.raises(ValueError, match="follows an optional"):
        Verb("x", [Param("a", "str", required=False), Param("b", "str")])
    with pytest.raises(ValueError, match="access"):
        Verb("x", access="root")
