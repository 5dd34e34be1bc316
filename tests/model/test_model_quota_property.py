"""Quotas under random sequences of verbs by delegated L2 clients (and quotas set by their
parents): no quota is ever exceeded, a child's quota never passes an ancestor's, the
counts always equal a recount of the model from scratch, and a refused verb changes
nothing at all (issue 14 item 16)."""
import copy

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from pyctl import errors
from pyctl.model.state import QUOTA_KEYS
from pyctl.model.switch import Switch

NAMES = ["n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8"]
ADDRESSES = [f"10.0.{i}.{j}/24" for i in range(2) for j in (1, 2, 3)]
PREFIXES = ["default", "10.8.0.0/16", "10.9.0.0/16"]
GROUPS = ["239.1.1.1", "239.1.1.2"]
PORTS = ["p1", "p2", "p3", "p4"]
LIMITS = st.one_of(st.none(), st.integers(0, 4))


def recount(state, record):
    """What ``record``'s subtree holds, counted from scratch (the oracle)."""
    subtree = state.subtree(record)
    below = subtree[1:]
    return {"namespaces": len(below),
            "addresses": sum(len(r.addresses) for r in subtree),
            "routes": sum(len(r.routes) for r in subtree),
            "ports": sum(len(r.ports) for r in subtree),
            "groups": sum(len(r.groups) for r in subtree),
            "sockets": sum(r.socket for r in below)}


class QuotaMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.sw = Switch()

    @initialize(limits=st.lists(st.fixed_dictionaries({k: st.integers(0, 3) for k in QUOTA_KEYS}),
                                min_size=2, max_size=2))
    def tops(self, limits):
        """Two delegated L2s, p and q, with small quotas of every kind: they are reached."""
        for name, quota in zip(("p", "q"), limits):
            self.sw.create(name, "l2")
            self.sw.quota_set(name, {**quota, "addresses": quota["addresses"] + 1})
            self.sw.address_add(name, "10.0.0.254/24")

    # -- drawing ----------------------------------------------------------------

    def names(self, kind=None):
        return sorted(n.name for n in self.sw.namespaces() if kind is None or n.kind == kind)

    def actor(self, data):
        """A delegated client: an L2 below the root (or, now and then, the administrator)."""
        l2s = [n for n in self.names("l2") if n != "init"]
        choice = data.draw(st.sampled_from(l2s + ["(admin)"]))
        self.api = self.sw if choice == "(admin)" else self.sw.as_namespace(choice)
        return self.api

    def target(self, data, kind=None):
        """Mostly a namespace the last actor sees, sometimes any, or none that exists."""
        seen = sorted(n.name for n in self.api.namespaces() if kind is None or n.kind == kind)
        pools = [st.sampled_from(seen)] * 3 if seen else []
        return data.draw(st.one_of(*pools, st.sampled_from(self.names(kind) + NAMES[:1])))

    def attempt(self, call, *args, **kwargs):
        before, state = self.sw.snapshot(), copy.deepcopy(self.sw._state)
        try:
            call(*args, **kwargs)
        except errors.TapswitchError as error:
            event(f"{getattr(call, '__name__', call)}: {error.code}")
            assert self.sw.snapshot() == before and self.sw._state == state, error.message
            return
        event(f"{getattr(call, '__name__', call)}: done")

    # -- rules ------------------------------------------------------------------

    @rule(data=st.data(), name=st.sampled_from(NAMES), kind=st.sampled_from(["l2", "l3"]))
    def create(self, data, name, kind):
        self.attempt(self.actor(data).create, name, kind, self.target(data, "l2"))

    @rule(data=st.data(), recursive=st.booleans())
    def destroy(self, data, recursive):
        self.attempt(self.actor(data).destroy, self.target(data), recursive)

    @rule(data=st.data(), address=st.sampled_from(ADDRESSES))
    def address_add(self, data, address):
        self.attempt(self.actor(data).address_add, self.target(data, "l2"), address)

    @rule(data=st.data(), address=st.sampled_from(ADDRESSES))
    def address_del(self, data, address):
        self.attempt(self.actor(data).address_del, self.target(data, "l2"), address)

    @rule(data=st.data(), address=st.sampled_from(ADDRESSES))
    def assign_and_push(self, data, address):
        self.attempt(self.actor(data).assign_and_push, address, self.target(data, "l3"))

    @rule(data=st.data(), prefix=st.sampled_from(PREFIXES), add=st.booleans())
    def route(self, data, prefix, add):
        api = self.actor(data)
        verb = api.route_add if add else api.route_del
        self.attempt(verb, self.target(data, "l2"), prefix, via="10.0.0.253" if add else None)

    @rule(data=st.data(), port=st.sampled_from(PORTS), add=st.booleans())
    def port(self, data, port, add):
        api = self.actor(data)
        if add:
            self.attempt(api.port_add, port, self.target(data))
        else:
            self.attempt(api.port_del, port)

    @rule(data=st.data(), group=st.sampled_from(GROUPS), join=st.booleans())
    def membership(self, data, group, join):
        api = self.actor(data)
        self.attempt(api.join if join else api.leave, group, self.target(data))

    @rule(data=st.data(), limits=st.dictionaries(st.sampled_from(QUOTA_KEYS), LIMITS,
                                                 min_size=1, max_size=3))
    def quota_set(self, data, limits):
        self.attempt(self.actor(data).quota_set, self.target(data, "l2"), limits)

    @rule(data=st.data(), open_=st.booleans())
    def socket(self, data, open_):
        """What the control server says as it opens and closes namespace sockets."""
        self.api = self.sw
        name = self.target(data)
        if open_:
            self.attempt(self.sw.socket_opened, name)
        elif name in self.names():
            self.attempt(self.sw.socket_closed, self.sw.namespace(name).id,
                         self.sw.as_namespace(name).uid)

    # -- invariants ---------------------------------------------------------------

    @invariant()
    def counts_equal_a_recount_and_stay_within_every_quota(self):
        state = self.sw._state
        for record in state.namespaces.values():
            if record.kind != "l2":
                continue
            assert record.usage == recount(state, record), record.name
            for key, limit in record.quota.items():
                assert record.usage[key] <= limit, (record.name, key)

    @invariant()
    def no_quota_passes_an_ancestors(self):
        state = self.sw._state
        for record in state.namespaces.values():
            up = record.parent
            while up is not None:
                above = state.namespaces[up]
                for key, limit in record.quota.items():
                    if key in above.quota:
                        assert limit <= above.quota[key], (record.name, above.name, key)
                up = above.parent


QuotaMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
test_quotas_hold_under_random_delegated_verbs = QuotaMachine.TestCase
