"""Random sequences of create / destroy / add / delete / push / pull /
assign-and-push, checked against a small shadow model after every step.

Invariants: every address has exactly one holder in its scope; an L3 never
has children; a namespace lists exactly its own addresses plus loopback (and
an L2's tagged view adds its descendants'); destroying an L3 returns its
addresses to its parent; a refused step changes nothing at all; the id-keyed
read API (``Switch.read()``) answers the same; a transaction of random verbs (ports,
routes, groups and quotas too) that fails leaves the state equal to a deep-copy checkpoint
taken before it (what transactions took before they kept an undo log).
"""
import copy
import functools
import ipaddress

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from pyctl import Switch, errors

LOOPBACK = ["127.0.0.1/8", "::1/128"]
NAMES = ["init", "a", "b", "c", "d", "e", "f", "ghost"]
ADDRESSES = ["10.0.0.1/24", "10.0.0.2/24", "10.0.0.3/24", "10.0.0.4/24", "10.0.0.5/24",
             "10.0.0.1/16", "fd00::1/64", "10.0.0.0/24"]        # last one is invalid
KINDS = ["l2", "l3"]
PORTS = ["p0", "p1", "p2"]
PREFIXES = ["10.9.0.0/16", "10.9.1.0/24", "default"]
GROUPS = ["239.1.1.1", "239.1.1.2", "ff05::1"]
# Only inside rolled-back transactions: addresses on the edge of another's subnet (the
# model's edge index), kernel namespaces and the port options that name them (its
# kernel-namespace indexes), an L2's options.
EDGE_ADDRESSES = ["10.0.0.255/16", "10.0.255.255/16", "10.0.0.4/30"]
NETNS = ["ctr-a", "ctr-b"]
PORT_OPTIONS = [{"netns": "ctr-a"}, {"netns": "ctr-b", "address": "10.0.0.200/24"},
                {"dhcp_server": True}]


class _Abort(Exception):
    """Raised inside a transaction to roll it back."""


@functools.lru_cache(maxsize=None)
def ip_of(address):
    return ipaddress.ip_interface(address).ip


def ordered(addresses):
    return sorted(addresses, key=lambda a: (ip_of(a).version, int(ip_of(a))))


class ModelMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.sw = Switch()
        self.kind = {"init": "l2"}
        self.parent = {"init": None}
        self.own = {"init": {}}          # name -> {ip: "A/N"}

    # -- shadow helpers -----------------------------------------------------

    def scope(self, name):
        return name if self.kind[name] == "l2" else self.parent[name]

    def holder(self, scope, ip):
        for name, held in self.own.items():
            if self.scope(name) == scope and ip in held:
                return name
        return None

    def subtree(self, name):
        out = [name]
        for child, parent in self.parent.items():
            if parent == name:
                out += self.subtree(child)
        return out

    def attempt(self, expected_ok, call, *args, **kwargs):
        """Run a verb; when the shadow predicts a refusal, check nothing changed."""
        before, state, version = self.sw.snapshot(), copy.deepcopy(self.sw._state), self.sw.version
        try:
            result = call(*args, **kwargs)
        except errors.TapswitchError as error:
            event(f"{call.__name__}: refused")
            assert not expected_ok, f"refused unexpectedly: {error.code} {error.message}"
            assert self.sw.snapshot() == before and self.sw._state == state
            return False
        event(f"{call.__name__}: done")
        assert expected_ok, "accepted although the shadow model refuses it"
        assert self.sw.version == version + 1
        return result if result is not None else True

    def valid(self, address):
        return address != "10.0.0.0/24"

    def holds(self, name, kind, address):
        """``name`` is a namespace of ``kind`` that holds ``address`` (a valid one) itself."""
        return (self.valid(address) and self.kind.get(name) == kind
                and self.own[name].get(ip_of(address)) == address)

    # -- drawing arguments: mostly what exists, sometimes anything ---------------

    def draw_name(self, data, kind=None):
        existing = sorted(n for n, k in self.kind.items() if kind is None or k == kind)
        pool = st.sampled_from(NAMES)
        return data.draw(st.sampled_from(existing) | pool if existing else pool)

    def draw_address(self, data, holder=None):
        """An address ``holder`` has (when it has one), or any known one, or any of the pool."""
        known = sorted({a for held in self.own.values() for a in held.values()})
        preferred = sorted(self.own.get(holder, {}).values())
        choices = [st.sampled_from(c) for c in (preferred, known) if c]
        return data.draw(st.one_of(*choices, st.sampled_from(ADDRESSES)))

    # -- rules ----------------------------------------------------------------

    @initialize(base=st.booleans())
    def start(self, base):
        """Half of the runs start from a small populated tree, so that pushes and
        pulls of existing addresses come early; the other half from the bare root."""
        if not base:
            return
        for name, kind, parent in (("a", "l3", "init"), ("b", "l2", "init"), ("c", "l3", "b")):
            self.sw.create(name, kind=kind, parent=parent)
            self.kind[name], self.parent[name], self.own[name] = kind, parent, {}
        for name, address in (("init", "10.0.0.1/24"), ("init", "10.0.0.2/24"),
                              ("b", "10.0.0.1/24")):
            self.sw.address_add(name, address)
            self.own[name][ip_of(address)] = address

    @rule(data=st.data(), name=st.sampled_from(NAMES), kind=st.sampled_from(KINDS))
    def create(self, data, name, kind):
        parent = self.draw_name(data, "l2")
        ok = name not in self.kind and self.kind.get(parent) == "l2"
        if self.attempt(ok, self.sw.create, name, kind=kind, parent=parent):
            self.kind[name], self.parent[name], self.own[name] = kind, parent, {}

    @rule(data=st.data(), recursive=st.booleans())
    def destroy(self, data, recursive):
        name = self.draw_name(data)
        ok = (name in self.kind and name != "init"
              and (recursive or not any(p == name for p in self.parent.values())))
        if not self.attempt(ok, self.sw.destroy, name, recursive=recursive):
            return
        parent = self.parent[name]
        if self.kind[name] == "l3":
            returned = self.own[name]
            self.own[parent].update(returned)
            listed = self.sw.addresses(parent)
            assert all(address in listed for address in returned.values())
        for gone in self.subtree(name):
            del self.kind[gone], self.parent[gone], self.own[gone]

    @rule(data=st.data(), address=st.sampled_from(ADDRESSES))
    def add_address(self, data, address):
        name = self.draw_name(data, "l2")
        ok = (self.valid(address) and self.kind.get(name) == "l2"
              and self.holder(name, ip_of(address)) is None)
        if self.attempt(ok, self.sw.address_add, name, address):
            self.own[name][ip_of(address)] = address

    @rule(data=st.data())
    def del_address(self, data):
        name = self.draw_name(data, "l2")
        address = self.draw_address(data, name)
        if self.attempt(self.holds(name, "l2", address), self.sw.address_del, name, address):
            del self.own[name][ip_of(address)]

    @rule(data=st.data())
    def push(self, data):
        name = self.draw_name(data, "l3")
        address = self.draw_address(data, self.parent.get(name))
        ok = (self.valid(address) and self.kind.get(name) == "l3"
              and self.own[self.parent[name]].get(ip_of(address)) == address)
        if self.attempt(ok, self.sw.push, address, name):
            self.own[name][ip_of(address)] = self.own[self.parent[name]].pop(ip_of(address))

    @rule(data=st.data())
    def pull(self, data):
        name = self.draw_name(data, "l3")
        address = self.draw_address(data, name)
        if self.attempt(self.holds(name, "l3", address), self.sw.pull, address, name):
            self.own[self.parent[name]][ip_of(address)] = self.own[name].pop(ip_of(address))

    @rule(data=st.data(), address=st.sampled_from(ADDRESSES))
    def assign_and_push(self, data, address):
        name = self.draw_name(data, "l3")
        ok = (self.valid(address) and self.kind.get(name) == "l3"
              and self.holder(self.parent[name], ip_of(address)) is None)
        if self.attempt(ok, self.sw.assign_and_push, address, name):
            self.own[name][ip_of(address)] = address

    @rule(data=st.data(), steps=st.integers(1, 8))
    def failed_transaction_restores_the_checkpoint(self, data, steps):
        """Random verbs in a transaction that then fails: the state is back exactly
        (== a deep copy taken before), versions included; the shadow is unchanged."""
        checkpoint, before = copy.deepcopy(self.sw._state), self.sw.snapshot()
        done = 0
        try:
            with self.sw.transaction():
                for _ in range(steps):
                    verb, args = self.draw_any_verb(data)
                    try:
                        verb(*args)
                        done += 1
                    except errors.TapswitchError:
                        pass
                raise _Abort
        except _Abort:
            pass
        event(f"rolled back {min(done, 3)}+ changes")
        assert self.sw._state == checkpoint
        assert self.sw.snapshot() == before
        assert self.sw._state.log is None

    def draw_any_verb(self, data):
        sw = self.sw
        choice = data.draw(st.integers(0, 17))
        name = self.draw_name(data)
        address = self.draw_address(data, name)
        port = data.draw(st.sampled_from(PORTS))
        if choice == 0:
            return sw.create, (data.draw(st.sampled_from(NAMES)), data.draw(st.sampled_from(KINDS)),
                               name)
        if choice == 1:
            return functools.partial(sw.destroy, recursive=data.draw(st.booleans())), (name,)
        if choice == 2:
            return sw.address_add, (name, address)
        if choice == 3:
            return sw.address_del, (name, address)
        if choice == 4:
            return data.draw(st.sampled_from([sw.push, sw.pull, sw.assign_and_push])), (address, name)
        if choice == 5:
            return sw.port_add, (port, name)
        if choice == 6:
            return sw.port_del, (port,)
        if choice == 7:
            return functools.partial(sw.route_add, via="10.0.0.254"), (
                name, data.draw(st.sampled_from(PREFIXES)))
        if choice == 8:
            return functools.partial(sw.route_add, port=port), (
                name, data.draw(st.sampled_from(PREFIXES)))
        if choice == 9:
            return sw.route_del, (name, data.draw(st.sampled_from(PREFIXES)))
        if choice == 10:
            key = data.draw(st.sampled_from(["addresses", "routes", "ports", "groups",
                                             "namespaces"]))
            return sw.quota_set, (name, {key: data.draw(st.none() | st.integers(0, 3))})
        if choice in (11, 12):
            return data.draw(st.sampled_from([sw.join, sw.leave])), (
                data.draw(st.sampled_from(GROUPS)), name)
        return self.draw_isolation_verb(data, choice, name, port)

    def draw_isolation_verb(self, data, choice, name, port):
        """The verbs of the isolation rules, each writing an index of its own."""
        sw = self.sw
        netns = data.draw(st.sampled_from(NETNS))
        if choice == 13:
            return sw.address_add, (name, data.draw(st.sampled_from(EDGE_ADDRESSES)))
        if choice == 14:
            return functools.partial(sw.route_replace, via=data.draw(
                st.sampled_from(["10.0.0.253", "10.0.0.254"]))), (
                name, data.draw(st.sampled_from(PREFIXES)))
        if choice == 15:
            key = data.draw(st.sampled_from(["directed_broadcast", "advertise"]))
            return sw.namespace_set, (name, {key: data.draw(st.booleans())})
        if choice == 16:
            return data.draw(st.sampled_from([sw.netns_delegate, sw.netns_revoke])), (
                name, netns)
        actor = data.draw(st.sampled_from([None] + NAMES))       # a delegated client or not
        options = dict(data.draw(st.sampled_from(PORT_OPTIONS)))

        def add_port():
            api = sw if actor is None else sw.as_namespace(actor)
            return api.port_add(port, name, options=options)
        return add_port, ()

    # -- invariants -----------------------------------------------------------

    @invariant()
    def tree_matches_and_l3_are_leaves(self):
        listed = self.sw.namespaces()
        assert {n.name: n.kind for n in listed} == self.kind
        by_id = {n.id: n.name for n in listed}
        assert {n.name: by_id.get(n.parent) for n in listed} == self.parent
        parents = {n.parent for n in listed}
        assert all(n.id not in parents for n in listed if n.kind == "l3")

    @invariant()
    def each_namespace_lists_exactly_its_own_plus_loopback(self):
        for name, held in self.own.items():
            assert self.sw.addresses(name) == LOOPBACK + ordered(held.values())

    @invariant()
    def every_address_has_exactly_one_holder_in_its_scope(self):
        for scope in (n for n, k in self.kind.items() if k == "l2"):
            members = [scope] + [n for n in self.kind if self.parent[n] == scope
                                 and self.kind[n] == "l3"]
            held = [(ip_of(a), n) for n in members for a in self.sw.addresses(n)[2:]]
            ips = [ip for ip, _ in held]
            assert len(ips) == len(set(ips))
            for ip, name in held:
                assert self.sw.owner(str(ip), scope).name == name
                assert self.sw.may_send_from(name, str(ip))
                assert all(not self.sw.may_send_from(other, str(ip))
                           for other in members if other != name)

    @invariant()
    def the_reader_answers_like_the_shadow(self):
        ids = {n.name: n.id for n in self.sw.namespaces()}
        with self.sw.read() as reader:
            assert set(reader.namespace_ids()) == set(ids.values())
            assert set(reader.scope_ids()) == {ids[n] for n, k in self.kind.items() if k == "l2"}
            for name, held in self.own.items():
                assert reader.namespace(ids[name]).name == name
                scope = ids[self.scope(name)]
                for ip, address in held.items():
                    assert reader.holding(scope, ip) == (ids[name], ipaddress.ip_interface(address))
            for scope in (n for n, k in self.kind.items() if k == "l2"):
                expected = {ip for n, held in self.own.items() if self.scope(n) == scope
                            for ip in held}
                assert set(reader.held_ips(ids[scope])) == expected

    @invariant()
    def tagged_view_covers_the_subtree(self):
        tagged = self.sw.addresses("init", tagged=True)
        expected = {(a, n) for n, held in self.own.items() for a in held.values()}
        assert set(tagged[2:]) == expected and len(tagged) - 2 == len(expected)


ModelMachine.TestCase.settings = settings(
    max_examples=200, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
test_model_state_machine = ModelMachine.TestCase
