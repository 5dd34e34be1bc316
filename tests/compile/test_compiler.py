"""The compiler: the model's truth, and only it, reaches the fast path's tables."""
import ipaddress

import pytest

from fastpath import Datapath
from pyctl import Switch
from pyctl.compile.compiler import Compiler
from pyctl.compile.plan_builder import compile_plan
from tests.support.compiler import compiler_over, ids


def ip(text):
    return int(ipaddress.ip_address(text))


@pytest.fixture
def sw():
    sw = Switch()
    sw.create("web", kind="l3", parent="init")
    sw.create("db", kind="l3", parent="init")
    sw.create("blue", kind="l2", parent="init")
    sw.create("b1", kind="l3", parent="blue")
    sw.port_add("tap-web", "web")
    sw.port_add("tap-db", "db")
    sw.port_add("tap-b1", "b1")
    sw.port_add("up0", "init")
    sw.address_add("init", "10.0.0.1/24")
    sw.assign_and_push("10.0.0.2/24", "web")
    sw.assign_and_push("10.0.0.3/24", "db")
    sw.address_add("blue", "10.0.0.1/24")          # siblings overlap
    sw.assign_and_push("10.0.0.2/24", "b1")
    sw.route_add("init", "10.9.0.0/16", via="10.0.0.254", port="up0")
    sw.route_add("init", "10.8.0.0/16", via="10.0.0.3")   # via a tenant: out of its port
    return sw


def test_plan_holds_the_models_facts(sw):
    ns, ports = ids(sw)
    plan = compile_plan(sw)
    assert plan.addresses[(0, ip("10.0.0.2"))] == (ns["web"], 24)      # holder, its subnet
    assert plan.addresses[(ns["blue"], ip("10.0.0.2"))] == (ns["b1"], 24)
    assert plan.addresses[(0, ip("10.0.0.1"))] == (0, 24)
    assert plan.namespaces[ns["b1"]] == (ns["blue"], True)
    assert plan.broadcasts[(0, ip("10.0.0.255"))] == tuple(sorted((ns["web"], ns["db"])))
    assert plan.routes[(0, ip("10.9.0.0"), 16)] == (ports["up0"], ip("10.0.0.254"))
    assert plan.routes[(0, ip("10.8.0.0"), 16)] == (ports["tap-db"], ip("10.0.0.3"))
    assert not any(key[1] >> 24 == 127 for key in plan.addresses)   # loopback stays out


def test_sync_programs_and_follows_changes(sw):
    ns, ports = ids(sw)
    dp = Datapath(max_namespaces=64, max_ports=64)
    comp = Compiler(sw, dp)
    comp.sync()
    assert dp.lookup_address(0, ip("10.0.0.2")) == ns["web"]
    assert dp.lookup_address(ns["blue"], ip("10.0.0.2")) == ns["b1"]
    assert dp.lookup_route(0, ip("10.9.1.1")) == (ports["up0"], ip("10.0.0.254"))
    sw.pull("10.0.0.2/24", "web")
    comp.sync()
    assert dp.lookup_address(0, ip("10.0.0.2")) == 0       # back to the L2
    sw.destroy("db")
    comp.sync()
    assert dp.lookup_address(0, ip("10.0.0.3")) == 0
    assert dp.lookup_route(0, ip("10.8.0.1")) is None       # its gateway has no port now
    sw.route_del("init", "10.9.0.0/16")
    comp.sync()
    assert dp.lookup_route(0, ip("10.9.1.1")) is None


def dp_state(dp, sw_ids, scopes, addrs):
    return ([dp.lookup_address(s, a) for s in scopes for a in addrs],
            [dp.routes(s) for s in scopes],
            [dp.lookup_broadcast(s, a) for s in scopes for a in addrs])


def _three_changes(sw, comp):
    sw.destroy("db")
    sw.assign_and_push("10.0.0.4/24", "web")
    sw.route_del("init", "10.9.0.0/16")
    comp.sync()


def test_the_three_changes_take_eight_writes(sw):
    comp, failing = compiler_over(sw, Datapath(max_namespaces=64, max_ports=64))
    _three_changes(sw, comp)
    assert failing.writes == 8          # each one refused in turn below


@pytest.mark.parametrize("fail_at", range(1, 9))
def test_a_refused_write_leaves_model_and_datapath_as_they_were(sw, fail_at):
    ns, _ = ids(sw)
    real = Datapath(max_namespaces=64, max_ports=64)
    comp, _ = compiler_over(sw, real, fail_at)
    scopes = [0, ns["blue"]]
    addrs = [ip(f"10.0.0.{i}") for i in (1, 2, 3, 4, 255)]
    before_dp = dp_state(real, ns, scopes, addrs)
    before_model = sw.snapshot()
    with pytest.raises(MemoryError):
        with sw.transaction():
            _three_changes(sw, comp)
    assert sw.snapshot() == before_model
    assert dp_state(real, ns, scopes, addrs) == before_dp
