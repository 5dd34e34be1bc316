"""A verb whose namespace is optional on the control socket takes ``namespace=None`` in
the Python API too, meaning the same: the acting namespace (the root ``init`` for the
Switch itself)."""
from pyctl import Route
from tests.support.model import tenants


def test_the_switch_acts_as_the_root():
    sw = tenants()
    sw.port_add("up0", "init")
    sw.route_add("init", "default", via="10.0.0.254")
    sw.join("239.1.1.1")
    assert sw.addresses() == sw.addresses("init")
    assert sw.addresses(tagged=True) == sw.addresses("init", tagged=True)
    assert sw.routes() == [Route("0.0.0.0/0", "10.0.0.254"), Route("10.0.0.0/24", connected=True)]
    assert sw.groups() == ["239.1.1.1"] == sw.groups("init")
    assert [n.name for n in sw.members("239.1.1.1")] == ["init"]
    assert sw.owner("10.0.0.5").name == "web"
    assert sw.owner("10.0.0.5", "lab").name == "probe"
    assert [p.name for p in sw.ports()] == ["up0"]         # ports: every visible one
    sw.leave("239.1.1.1")
    assert sw.groups() == []


def test_an_acting_context_acts_as_its_namespace():
    sw = tenants()
    web = sw.as_namespace("web")
    web.join("239.1.1.1")                                  # an L3 may, for itself
    assert sw.groups("web") == ["239.1.1.1"] and sw.groups("init") == []
    assert web.addresses() == ["127.0.0.1/8", "::1/128", "10.0.0.5/24"]
    assert web.routes() == sw.routes("init")
    assert [n.name for n in web.members("239.1.1.1")] == ["web"]
    assert web.owner("10.0.0.5").name == "web"
    assert web.owner("10.0.0.6") is None                   # db: not visible from web
    lab = sw.as_namespace("lab")
    assert lab.owner("10.0.0.5").name == "probe"
