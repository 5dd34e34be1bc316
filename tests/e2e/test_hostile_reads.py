"""A hostile tenant's control socket shows it only its own subtree (issue 14, item 6).

Every read verb of the verb table (the list comes from it: a verb added there is tested
here) is called through an L3's socket (``attacker``: it sees itself) and a delegated
L2's (``evil``, the attacker's parent: it sees its subtree), on a switch whose other
tenants (``victim-a``, ``victim-b`` under ``init``) have addresses, a port each, a
multicast group and traffic.  No reply may name them, their addresses, ports or MACs, or
give switch-wide figures.
"""
import json
import re

import pytest

from pyctl import errors
from pyctl.control.client import ControlClient
from pyctl.control.verb_table import VERBS
from pyctl.rig import probes
from pyctl.rig.topology import Topology
from tests.e2e import hostile as h

READ_VERBS = sorted(name for name, verb in VERBS.items() if verb.access == "read")
ARGS = {"owner": {"address": "10.0.0.2"}, "members": {"group": "239.1.1.1"},  # required ones
        "capture-start": {"target": "attacker"},       # in both clients' subtrees
        "capture-read": {"id": 1}, "capture-stop": {"id": 1}}
# What a client sees of the whole switch: only the administrator.
SWITCH_WIDE = {"stats": {"loop", "slowpath", "slowpath_holds", "igmp", "slowpath_shares",
                         "backend"}}


@pytest.fixture(scope="module")
def switch():
    """The switch, its victims and the attacker's two sockets (built once)."""
    topo = Topology("thread")
    try:
        topo.address_add("init", f"{h.GATEWAY}/24")
        a = topo.tenant("victim-a", "10.0.0.2/24")
        b = topo.tenant("victim-b", "10.0.0.3/24")
        topo.l2("evil", "10.7.0.1/24")
        x = topo.tenant("attacker", "10.7.0.9/24", parent="evil")
        topo.start()
        for victim in (a, b):
            topo.join("239.1.1.1", victim.name)
        topo.join("239.2.2.2", "attacker")           # its scope's group: counted for evil
        assert probes.ping(a, b.ip, count=2) and probes.ping(x, "10.7.0.1", count=1)
        admin = topo.client()
        clients = {name: ControlClient(admin.call("socket-add", namespace=name)["path"])
                   for name in ("attacker", "evil")}
        foreign = {"init", "victim-a", "victim-b", a.ip, b.ip, a.port, b.port}
        foreign |= {p["mac"] for p in admin.call("ports") if p["namespace"] != "attacker"}
        yield admin, clients, foreign
        for client in (admin, *clients.values()):
            client.close()
    finally:
        topo.close()


def reply(client, verb):
    """The verb's result, or its refusal, as JSON text."""
    try:
        return json.dumps(client.call(verb, **ARGS.get(verb, {})))
    except errors.TapswitchError as exc:
        return json.dumps({"refused": exc.code, "message": exc.message})


def named(text, tokens):
    """The tokens ``text`` names (whole words: 10.0.0.2 is not in 10.0.0.25)."""
    return {t for t in tokens if re.search(rf"(?<![\w.:-]){re.escape(t)}(?![\w.:-])", text)}


@pytest.mark.parametrize("verb", READ_VERBS)
@pytest.mark.parametrize("who", ["attacker", "evil"])
def test_6_a_read_verb_shows_a_client_only_its_subtree(switch, verb, who):
    admin, clients, foreign = switch
    text = reply(clients[who], verb)
    assert named(text, foreign) == set(), f"{verb} as {who}: {text}"
    result = json.loads(text)
    if verb in SWITCH_WIDE:
        assert not SWITCH_WIDE[verb] & set(result), f"{verb} as {who}: {text}"
    if verb == "stats":                                  # its own ports, not the switch's
        assert result["ports_up"] == len(clients[who].call("ports"))
    if verb == "counters":
        assert result["reasons"] == {} and set(result["namespaces"]) <= {"evil", "attacker"}
        if who == "attacker":
            assert result["groups"] == {} and set(result["namespaces"]) == {"attacker"}
    if verb == "version":
        assert result["model_version"] is None           # it counts everybody's changes


def test_6_the_administrator_sees_what_the_clients_may_not(switch):
    """The check above can fail: the admin's replies name the victims and give the whole."""
    admin, _, foreign = switch
    for verb in ("namespaces", "ports", "counters", "multicast"):
        assert named(reply(admin, verb), foreign), verb
    assert SWITCH_WIDE["stats"] <= set(json.loads(reply(admin, "stats")))


def test_6_every_read_verb_is_tried(switch):
    required = {name for name in READ_VERBS for p in VERBS[name].params if p.required}
    assert required <= set(ARGS), "give the new verb's required arguments in ARGS"


FOREIGN_ARGS = [("namespace", "victim-a"), ("namespace", "init"), ("port", "victim-b")]


@pytest.mark.parametrize("param,name", FOREIGN_ARGS)
@pytest.mark.parametrize("who", ["attacker", "evil"])
def test_6_naming_a_victim_is_answered_as_naming_nobody(switch, who, param, name):
    """Every read verb that takes a namespace or a port, asked about a victim's (its
    name, or its port's name), answers as for a name that does not exist: the client
    learns neither what the victim holds nor that it is there."""
    admin, clients, foreign = switch
    client = clients[who]
    port = {p["namespace"]: p["name"] for p in admin.call("ports")}.get(name)
    value = port if param == "port" else name
    tried = 0
    for verb in READ_VERBS:
        if param not in {p.name for p in VERBS[verb].params}:
            continue
        asked = reply_with(client, verb, **{param: value})
        nobody = reply_with(client, verb, **{param: "no-such-ns" if param == "namespace"
                                             else "nosuchport"})
        # only the name it gave comes back (in the message), as for a made-up one
        assert json.loads(asked).get("refused") == "ENOENT", f"{verb} as {who}: {asked}"
        assert named(asked, foreign - {value}) == set(), f"{verb} as {who}: {asked}"
        assert asked.replace(value, "?") == nobody.replace(
            "no-such-ns" if param == "namespace" else "nosuchport", "?"), f"{verb}: {asked}"
        tried += 1
    assert tried >= (1 if param == "port" else 8)


@pytest.mark.parametrize("who", ["attacker", "evil"])
def test_6_capturing_a_victim_is_answered_as_capturing_nobody(switch, who):
    """capture-start names its target (a port or a namespace): a victim's is refused as a
    made-up name is, and the answer names nothing foreign."""
    admin, clients, foreign = switch
    for victim in ("victim-a", "init", admin.call("ports", namespace="victim-b")[0]["name"]):
        asked = reply_with(clients[who], "capture-start", target=victim)
        nobody = reply_with(clients[who], "capture-start", target="nosuchtarget")
        assert json.loads(asked).get("refused") == json.loads(nobody).get("refused") is not None, asked
        assert named(asked, foreign - {victim}) == set(), asked
        assert asked.replace(victim, "?") == nobody.replace("nosuchtarget", "?"), asked


def reply_with(client, verb, **args):
    """Like ``reply``, with ``args`` over the verb's required ones."""
    try:
        return json.dumps(client.call(verb, **{**ARGS.get(verb, {}), **args}))
    except errors.TapswitchError as exc:
        return json.dumps({"refused": exc.code, "message": exc.message})
