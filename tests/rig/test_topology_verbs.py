"""Topology's verbs come from the verb table: the wire's names and argument order,
configuring verbs applied all-or-nothing and returning None, reads giving what the
control socket gives for the same model.  Here on a draft topology (no root needed);
tests/e2e/test_topology.py runs them live in both modes."""
import pytest

from pyctl import errors
from pyctl.control.client import ControlClient
from pyctl.rig.topology import Topology
from tests.support.control import Served


@pytest.fixture
def topo():
    topo = Topology()
    topo.address_add("init", "10.0.0.1/24")
    topo.tenant("a", "10.0.0.2/24")
    topo.tenant("b", "10.0.0.3/24")
    yield topo
    topo.close()


def test_configuring_verbs_change_the_draft_and_return_none(topo):
    sw = topo.switch
    assert topo.address_add("init", "10.0.0.9/24") is None
    assert topo.push("10.0.0.9/24", "b") is None
    assert "10.0.0.9/24" in sw.addresses("b")
    assert topo.pull("10.0.0.9/24", "b") is None
    assert topo.address_del("init", "10.0.0.9/24") is None
    assert topo.assign_and_push("10.0.0.10/24", "a") is None
    assert topo.route_add("init", "10.9.0.0/16", via="10.0.0.254") is None
    assert [r.dst for r in sw.routes("init") if not r.connected] == ["10.9.0.0/16"]
    assert topo.route_del("init", "10.9.0.0/16") is None
    assert topo.join("239.1.1.1", "a") is None
    assert sw.groups("a") == ["239.1.1.1"]
    assert topo.leave("239.1.1.1", "a") is None
    assert sw.groups("a") == [] and [r for r in sw.routes("init") if not r.connected] == []


def test_a_refused_verb_changes_nothing(topo):
    before = topo.switch.snapshot()
    with pytest.raises(errors.AddressInUse):
        topo.address_add("init", "10.0.0.2/24")              # a's
    with pytest.raises(errors.InvalidArgument):
        topo.route_add("init", "10.9.0.0/16")                # neither via nor port
    with pytest.raises(errors.NotFound):
        topo.join("239.1.1.1", "nope")
    assert topo.switch.snapshot() == before


def test_reads_are_what_the_control_socket_gives(topo, tmp_path):
    topo.route_add("init", "default", via="10.0.0.254")
    topo.join("239.1.1.1", "a")
    topo.join("239.1.1.1", "b")
    reads = [("addresses", {}), ("addresses", {"namespace": "init", "tagged": True}),
             ("owner", {"address": "10.0.0.3"}), ("routes", {"namespace": "a"}),
             ("ports", {}), ("ports", {"namespace": "b"}), ("groups", {"namespace": "a"}),
             ("members", {"group": "239.1.1.1", "namespace": "init"})]
    with Served(tmp_path, topo.switch) as served, ControlClient(served.path) as client:
        for verb, args in reads:
            assert getattr(topo, verb)(**args) == client.call(verb, **args), verb
        assert topo.namespaces() == [ns["name"] for ns in client.call("namespaces")]
    assert topo.owner("10.0.0.3") == "b"
    assert topo.members("239.1.1.1") == ["a", "b"]


def test_the_daemon_reads_need_a_started_topology(topo):
    with pytest.raises(errors.InvalidArgument, match="not started"):
        topo.counters()
    with pytest.raises(errors.InvalidArgument, match="not started"):
        topo.stats()


def test_destroy_forgets_the_tenant(topo):
    topo.destroy("a")
    assert list(topo.tenants) == ["b"] and topo.namespaces() == ["init", "b"]
    assert "10.0.0.2/24" in topo.addresses("init")           # an L3's address goes back
