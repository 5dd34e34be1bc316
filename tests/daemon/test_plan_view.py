"""``PlanView``: the slow path's questions answered from the compiled plan and its
indexes (the incremental compiler's property test checks it against a scan too)."""
import ipaddress

import pytest

from fastpath.reference import ReferenceDatapath
from pyctl.compile.compiler import Compiler
from pyctl.daemon.slowpath import Route
from pyctl.daemon.view import PlanView

from tests.support.model import tenants


def ip(text):
    return int(ipaddress.ip_address(text))


@pytest.fixture
def rig():
    sw = tenants()                  # init 10.0.0.1/24, web 10.0.0.5, db; lab, its probe
    for port, ns in [("up0", "init"), ("up1", "init"), ("tap-web", "web"), ("up-lab", "lab")]:
        sw.port_add(port, ns)
    sw.address_add("init", "10.0.1.1/24")
    sw.address_add("init", "10.0.0.9/24")
    sw.route_add("init", "10.9.0.0/16", via="10.0.0.254", port="up1")
    dp = ReferenceDatapath(max_namespaces=8, max_ports=8)
    comp = Compiler(sw, dp)
    comp.sync()
    return sw, comp, PlanView(comp, dp)


def test_ports_and_their_places(rig):
    sw, _, view = rig
    web, init = sw.namespace("web").id, sw.namespace("init").id
    tap = sw.port("tap-web").id
    assert view.port_place(tap) == (web, init, True)
    assert view.port_namespace(tap) == web and view.port_scope(tap) == init
    assert view.ports_of(init) == [sw.port("up0").id, sw.port("up1").id]
    assert view.port_place(99) is None and view.ports_of(99) == []


def test_routes_sources_and_owners(rig):
    sw, _, view = rig
    tap, up1 = sw.port("tap-web").id, sw.port("up1").id
    assert view.owner(0, ip("10.0.0.5")) == sw.namespace("web").id
    assert view.route(0, ip("10.0.0.5")) == Route(tap, ip("10.0.0.5"))      # a tenant
    assert view.route(0, ip("10.9.1.1")) == Route(up1, ip("10.0.0.254"))
    assert view.route(0, ip("10.8.1.1")) is None
    assert view.source_allowed(tap, ip("10.0.0.5"))
    assert not view.source_allowed(tap, ip("10.0.0.6"))                      # db's
    assert view.source_allowed(up1, ip("10.0.0.7")) and not view.source_allowed(up1, ip("10.0.0.5"))


def test_icmp_source_is_the_scopes_address_on_the_endpoints_subnet(rig):
    sw, comp, view = rig
    tap, up0, lab_port = sw.port("tap-web").id, sw.port("up0").id, sw.port("up-lab").id
    assert view.icmp_source(tap) == ip("10.0.0.1")     # the lowest on 10.0.0.0/24
    assert view.icmp_source(up0) == ip("10.0.0.1")     # an L2 port: the scope's lowest
    assert view.icmp_source(lab_port) is None          # lab holds no address
    sw.address_del("init", "10.0.0.1/24")
    sw.address_del("init", "10.0.0.9/24")
    comp.sync()
    assert view.icmp_source(tap) == ip("10.0.1.1")     # none on its subnet: the lowest
    assert view.icmp_source(up0) == ip("10.0.1.1")
