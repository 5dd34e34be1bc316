"""The incremental compiler against its oracles: after any sequence of model
changes (refused ones, batches, transactions committed or rolled back, syncs
inside them, datapath writes refused halfway) the plan ``Compiler.sync()``
keeps equals a fresh full build (``compile_plan(switch)``, the same rules
applied to everything) and the independent oracle ``expected_plan(snapshot)``
(tests/support/plan_oracle.py), and the datapath holds what a fresh full
compile into an empty datapath installs; the slow path's view of the kept plan
(``PlanView``, answered from the plan's indexes) says what a scan of the model says."""
import copy
import ipaddress

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from fastpath import Datapath
from fastpath.reference import ReferenceDatapath
from pyctl import Switch, errors
from pyctl.compile.compiler import Compiler
from pyctl.compile.plan_builder import PlanBuilder, compile_plan
from pyctl.daemon.view import PlanView

from tests.support.compiler import FailingDatapath
from tests.support.plan_oracle import expected_plan, expected_view

NAMES = ["init", "a", "b", "c", "d", "e"]
PORTS = ["p0", "p1", "p2", "p3"]
# /24s and a /16 over the same hosts (10.0.0.255/16 is also the /24s' broadcast: the
# model refuses one while the other is held), a /30 and a /31 (the widest and narrowest
# subnets with and without a directed broadcast), IPv6 (a /64 and a /48 over the same
# hosts, a /128, fd00:1::2 of fd00::2's solicited-node group) and loopback (it stays in
# the model; so does IPv6 for a datapath without it).
ADDRESSES = ["10.0.0.1/24", "10.0.0.2/24", "10.0.0.3/24", "10.0.0.130/25", "10.0.0.255/16",
             "10.0.1.1/31", "10.0.2.1/30", "fd00::1/64", "fd00::2/64", "fd00::2/48",
             "fd00:1::5/128", "fd00:1::2/64", "127.0.0.2/8"]
GATEWAYS = [None, "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.130", "10.0.0.254",
            "fd00::1", "fd00::2", "fd00::fe"]
ROUTES = ["10.9.0.0/16", "10.8.0.0/16", "0.0.0.0/0", "10.9.1.0/24", "fd00:9::/64", "::/0",
          "fd00::/48", "fd00::/64"]
GROUPS = ["239.1.1.1", "239.2.2.2", "ff05::1", "ff0e::2", "ff02::1"]
# Port options the plan reads: a kernel side on a subnet of either family (an L2's port
# there carries its connected route), a trusted DHCP server.
PORT_OPTIONS = [None, {"netns": "ns-up", "address": "10.0.0.200/24"},
                {"netns": "ns-up2", "address": "10.0.2.2/30"}, {"dhcp_server": True},
                {"netns": "ns-up6", "address": "fd00::200/64"}]
LIMITS = dict(max_namespaces=16, max_ports=16)
REFUSED = (errors.TapswitchError, MemoryError)


class _Rollback(Exception):
    pass


class RefusingOnce(FailingDatapath):
    """Refuses the n-th write; once a write failed (injected or a real refusal), the
    rollback's writes all go through."""

    def __getattr__(self, name):
        write = super().__getattr__(name)
        if name not in self.WRITES:
            return write

        def once(*args, **kwargs):
            if self.failed:
                return getattr(self.dp, name)(*args, **kwargs)
            try:
                return write(*args, **kwargs)
            except REFUSED:
                self.failed = True
                raise
        return once

    failed = False


def tables(dp):
    """Every table of a reference datapath (both families), as plain data."""
    return (dict(dp.namespaces), {p: (v[0], v[1], v[3]) for p, v in dp.ports.items()},
            dict(dp.addresses), dict(dp.onlink), dict(dp.broadcasts), dict(dp.groups),
            {s: dict(r) for s, r in dp.routes_.items() if r}, set(dp.dhcp_servers),
            set(dp.directed))


def probe(dp, keys):
    """The compiled datapath's answers for every key either plan may hold."""
    scopes = range(LIMITS["max_namespaces"])
    ports = {}
    for pid in range(LIMITS["max_ports"]):
        try:
            ports[pid] = (dp.port_mac_of(pid), dp.port_mtu(pid), dp.port_is_dhcp_server(pid))
        except errors.NotFound:
            pass
    directed = {}
    for scope in scopes:
        try:
            directed[scope] = dp.directed_broadcast(scope)
        except errors.TapswitchError:
            pass
    return (ports, directed,
            {k: (dp.lookup_address(*k), dp.address_onlink(*k)) for k in keys["addresses"]},
            {k: dp.lookup_broadcast(*k) for k in keys["broadcasts"]},
            {k: dp.lookup_group(*k) for k in keys["multicast"]},
            {s: dp.routes(s) for s in scopes})


def full_compile(sw, dp):
    """What a fresh compiler installs from nothing (or the refusal it meets)."""
    try:
        return Compiler(sw, dp).sync(), None
    except REFUSED as error:
        return None, type(error)


class IncrementalMachine(RuleBasedStateMachine):
    """The reference and the compiled datapath, each with its own compiler."""
    REFERENCE = ReferenceDatapath
    CORE = Datapath               # None: no compiled datapath to compare

    def __init__(self):
        super().__init__()
        self.sw = Switch()
        self.ref = self.REFERENCE(**LIMITS)
        self.comp = Compiler(self.sw, self.ref)
        self.core = None if self.CORE is None else self.CORE(**LIMITS)
        self.core_comp = None if self.CORE is None else Compiler(self.sw, self.core)
        self.seen = {"addresses": set(), "broadcasts": set(), "multicast": set()}

    @property
    def compilers(self):
        return [c for c in (self.comp, self.core_comp) if c is not None]

    # -- one random verb (refusals are part of the game) -------------------------------

    def names(self, kind=None):
        return [ns.name for ns in self.sw.namespaces() if kind is None or ns.kind == kind]

    def pick(self, data, pool, existing):
        return data.draw(st.sampled_from(sorted(existing)) | st.sampled_from(pool)
                         if existing else st.sampled_from(pool))

    def address(self, data, near):
        """Mostly an address ``near`` or its parent holds (so pushes, pulls and deletes
        find one), else any of the pool."""
        held = []
        for name in (near, getattr(self.sw.namespaces()[0], "name", None)):
            try:
                record = self.sw.namespace(name)
                held += self.sw.addresses(record.name)[2:]
                if record.parent is not None:
                    held += self.sw.addresses(record.parent)[2:]
            except errors.TapswitchError:
                pass
        return self.pick(data, ADDRESSES, set(held) & set(ADDRESSES))

    def verb(self, data):
        sw = self.sw
        verb = data.draw(st.sampled_from([
            "create", "destroy", "address_add", "address_del", "push", "pull",
            "assign_and_push", "route_add", "route_del", "route_replace", "port_add", "port_del",
            "join", "leave", "namespace_set"]))
        ns = self.pick(data, NAMES, self.names())
        l2 = self.pick(data, NAMES, self.names("l2"))
        address = self.address(data, ns if verb in ("push", "pull") else l2)
        calls = {
            "create": lambda: sw.create(data.draw(st.sampled_from(NAMES)),
                                        kind=data.draw(st.sampled_from(["l2", "l3"])), parent=l2),
            "destroy": lambda: sw.destroy(ns, recursive=data.draw(st.booleans())),
            "address_add": lambda: sw.address_add(l2, address),
            "address_del": lambda: sw.address_del(l2, address),
            "push": lambda: sw.push(address, ns),
            "pull": lambda: sw.pull(address, ns),
            "assign_and_push": lambda: sw.assign_and_push(address, ns),
            "route_add": lambda: sw.route_add(
                l2, data.draw(st.sampled_from(ROUTES)), via=data.draw(st.sampled_from(GATEWAYS)),
                port=data.draw(st.none() | st.sampled_from(PORTS))),
            "route_del": lambda: sw.route_del(l2, data.draw(st.sampled_from(ROUTES))),
            "route_replace": lambda: sw.route_replace(
                l2, data.draw(st.sampled_from(ROUTES)), via=data.draw(st.sampled_from(GATEWAYS)),
                port=data.draw(st.none() | st.sampled_from(PORTS))),
            "port_add": lambda: sw.port_add(data.draw(st.sampled_from(PORTS)), ns,
                                            options=data.draw(st.sampled_from(PORT_OPTIONS))),
            "namespace_set": lambda: sw.namespace_set(
                l2, {"directed_broadcast": data.draw(st.booleans())}),
            "port_del": lambda: sw.port_del(data.draw(st.sampled_from(PORTS))),
            "join": lambda: sw.join(data.draw(st.sampled_from(GROUPS)), ns),
            "leave": lambda: sw.leave(data.draw(st.sampled_from(GROUPS)), ns),
        }
        try:
            calls[verb]()
        except errors.TapswitchError:
            pass

    def sync_both(self):
        for comp in self.compilers:
            comp.sync()

    # -- rules -------------------------------------------------------------------------

    @initialize(populated=st.booleans())
    def start(self, populated):
        if populated:
            sw = self.sw
            sw.create("a", kind="l3", parent="init")
            sw.create("b", kind="l2", parent="init")
            sw.create("c", kind="l3", parent="b")
            sw.port_add("p0", "init")
            sw.port_add("p1", "a")
            sw.address_add("init", "10.0.0.1/24")
            sw.assign_and_push("10.0.0.2/24", "a")
            sw.assign_and_push("10.0.0.2/24", "c")
            sw.route_add("init", "10.9.0.0/16", via="10.0.0.2")
            sw.join("239.1.1.1", "a")

    @rule(data=st.data())
    def one_change(self, data):
        self.verb(data)

    @rule(data=st.data(), count=st.integers(2, 5))
    def a_batch_then_one_sync(self, data, count):
        for _ in range(count):
            self.verb(data)

    @rule(data=st.data(), count=st.integers(1, 4), sync_inside=st.booleans(),
          commit=st.booleans())
    def transaction(self, data, count, sync_inside, commit):
        """Like Daemon.change(): verbs, maybe a sync inside, then commit or roll back
        (and sync again after a rollback, as the daemon does)."""
        try:
            with self.sw.transaction():
                for _ in range(count):
                    self.verb(data)
                if sync_inside:
                    try:
                        self.sync_both()
                    except REFUSED:
                        pass              # the invariant checks the retry afterwards
                if not commit:
                    raise _Rollback()
        except _Rollback:
            pass

    @rule(data=st.data(), count=st.integers(1, 4), fail_at=st.integers(1, 12))
    def a_refused_write_leaves_everything_as_it_was(self, data, count, fail_at):
        try:
            self.sync_both()                # start from a synced state, if the datapath takes it
        except REFUSED:
            pass
        before = (self.sw.snapshot(), copy.deepcopy(self.comp.plan), tables(self.ref))
        self.comp.datapath = flaky = RefusingOnce(self.ref, fail_at)
        try:
            with self.sw.transaction():
                for _ in range(count):
                    self.verb(data)
                self.comp.sync()
        except REFUSED:
            assert (self.sw.snapshot(), self.comp.plan, tables(self.ref)) == before
        else:
            assert flaky.writes < fail_at
        finally:
            self.comp.datapath = self.ref

    # -- the oracle --------------------------------------------------------------------

    def check(self):
        families = self.comp.families
        before = [(copy.deepcopy(c.plan), tables(self.ref) if c is self.comp else None)
                  for c in self.compilers]
        _, refused = full_compile(self.sw, self.REFERENCE(**LIMITS))
        for (plan_before, tables_before), comp in zip(before, self.compilers):
            try:
                comp.sync()
            except REFUSED as error:
                # the oracle meets the same refusal; nothing changed
                assert refused is type(error)
                assert comp.plan == plan_before
                if tables_before is not None:
                    assert tables(self.ref) == tables_before
                continue
            assert refused is None
            assert comp.plan == compile_plan(self.sw, families) == \
                expected_plan(self.sw.snapshot(), families)
            with self.sw.read() as reader:      # the memberships' indexes, kept one by one
                fresh = PlanBuilder.build(reader, comp.families).index
            assert (comp.index.memberships, comp.index.multicast_members,
                    comp.index.ns_groups) == (fresh.memberships, fresh.multicast_members,
                                              fresh.ns_groups)
        if refused is not None:
            return
        view = PlanView(self.comp, self.ref)
        for version in families:
            assert {pid: (view.port_place(pid), view.ports_of(view.port_namespace(pid)),
                          view.icmp_source(pid, version)) for pid in self.comp.plan.ports} == \
                expected_view(self.sw.snapshot(), version)
        fresh = self.REFERENCE(**LIMITS)
        Compiler(self.sw, fresh).sync()
        assert tables(self.ref) == tables(fresh)
        if self.core is None:
            return
        fresh_core = self.CORE(**LIMITS)
        Compiler(self.sw, fresh_core).sync()
        for name in self.seen:
            self.seen[name] |= set(getattr(self.comp.plan, name))
        assert probe(self.core, self.seen) == probe(fresh_core, self.seen)

    @invariant()
    def incremental_equals_full(self):
        self.check()


IncrementalMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
test_incremental_plan_equals_the_full_compile = IncrementalMachine.TestCase


# -- targeted cases ------------------------------------------------------------------------

@pytest.fixture
def sw():
    sw = Switch()
    sw.create("web", kind="l3", parent="init")
    sw.port_add("up0", "init")
    sw.port_add("tap-web", "web")
    sw.address_add("init", "10.0.0.1/24")
    sw.assign_and_push("10.0.0.2/24", "web")
    for i in range(200):
        sw.route_add("init", f"10.{64 + i // 256}.{i % 256}.0/24", via="10.0.0.254", port="up0")
    sw.route_add("init", "10.9.0.0/16", via="10.0.0.2")
    return sw


def recorded(sw):
    dp = Datapath(**LIMITS)
    comp = Compiler(sw, dp)
    comp.sync()
    recorder = FailingDatapath(dp, fail_at=0)
    comp.datapath = recorder
    return comp, recorder


def test_a_route_change_writes_that_route_only(sw):
    comp, recorder = recorded(sw)
    sw.route_add("init", "10.99.0.0/16", via="10.0.0.254", port="up0")
    comp.sync()
    assert recorder.calls == [("add_route", (0, int(ipaddress.ip_address("10.99.0.0")), 16,
                                             comp.plan.routes[(0, 0x0A630000, 16)][0],
                                             int(ipaddress.ip_address("10.0.0.254"))))]


def test_pulling_a_gateway_takes_its_routes_out_and_pushing_puts_them_back(sw):
    comp, recorder = recorded(sw)
    key = (0, int(ipaddress.ip_address("10.9.0.0")), 16)
    sw.pull("10.0.0.2/24", "web")
    comp.sync()
    assert key not in comp.plan.routes and key in comp.plan.unresolved
    assert {name for name, _ in recorder.calls} == {"remove_route", "remove_address",
                                                    "add_address", "remove_broadcast"}
    sw.push("10.0.0.2/24", "web")
    comp.sync()
    assert key in comp.plan.routes and key not in comp.plan.unresolved
    assert comp.plan == expected_plan(sw.snapshot(), comp.families)


def test_a_rollback_after_a_sync_inside_the_transaction_is_synced_back(sw):
    """Daemon.change(): the sync inside the transaction worked, something after it
    failed, the model rolled back; the next sync brings the datapath back too."""
    comp, recorder = recorded(sw)
    before = copy.deepcopy(comp.plan)
    with pytest.raises(_Rollback):
        with sw.transaction():
            sw.destroy("web")
            sw.route_del("init", "10.64.0.0/24")
            comp.sync()
            assert comp.plan != before
            raise _Rollback()
    comp.sync()
    assert comp.plan == before == expected_plan(sw.snapshot(), comp.families)


def test_a_refused_write_keeps_the_change_to_retry(sw):
    """Outside a transaction a refused sync cannot undo the model: the datapath keeps
    the last plan that worked and the next sync tries the change again."""
    comp, _ = recorded(sw)
    real = comp.datapath.dp
    comp.datapath = FailingDatapath(real, fail_at=1)
    before = copy.deepcopy(comp.plan)
    sw.route_del("init", "10.64.0.0/24")
    with pytest.raises(MemoryError):
        comp.sync()
    assert comp.plan == before
    comp.datapath = real
    comp.sync()
    assert comp.plan == expected_plan(sw.snapshot(), comp.families)
    assert real.lookup_route(0, int(ipaddress.ip_address("10.64.0.1"))) is None


def test_an_assigned_plan_is_diffed_in_full(sw):
    comp, recorder = recorded(sw)
    comp.plan = compile_plan(Switch())                   # as if the datapath ran an empty switch
    comp.sync()
    assert comp.plan == expected_plan(sw.snapshot(), comp.families)
    assert sum(name == "add_route" for name, _ in recorder.calls) == len(comp.plan.routes)
