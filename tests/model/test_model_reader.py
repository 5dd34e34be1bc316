"""The model's id-keyed read API (``Switch.read()``): what the compiler and the daemon
ask, answered from the model's indexes, under the model's lock."""
import ipaddress
import threading

from pyctl import Route, Switch
from pyctl.model.reader import Holding

from tests.support.model import tenants


def test_ports_routes_and_groups_by_id():
    sw = tenants()
    sw.port_add("up0", "init")
    sw.port_add("up1", "init")
    sw.port_add("tap-web", "web")
    sw.route_add("init", "10.9.0.0/16", via="10.0.0.254", port="up1")
    sw.join("239.1.1.1", "web")
    web, init = sw.namespace("web"), sw.namespace("init")
    with sw.read() as reader:
        assert reader.namespace(web.id) == web and reader.namespace(99) is None
        assert reader.port_ids_of(init.id) == (sw.port("up0").id, sw.port("up1").id)
        assert reader.port_ids_of(99) == ()
        assert reader.port(sw.port("tap-web").id) == sw.port("tap-web")
        assert reader.port(99) is None
        assert reader.port_id("up1") == sw.port("up1").id and reader.port_id("nope") is None
        assert set(reader.port_ids()) == {p.id for p in sw.ports()}
        assert reader.groups_of(web.id) == {ipaddress.ip_address("239.1.1.1")}
        assert reader.groups_of(99) == frozenset()
        network = ipaddress.ip_network("10.9.0.0/16")
        assert reader.route(init.id, network) == Route("10.9.0.0/16", "10.0.0.254", "up1")
        assert reader.route(web.id, network) is None                 # an L3 owns no routes
        connected = ipaddress.ip_network("10.0.0.0/24")          # init's own 10.0.0.1/24
        assert reader.route_networks(init.id) == (network, connected)
        assert reader.connected_networks(init.id) == (connected,)
        assert reader.route(init.id, connected) == Route("10.0.0.0/24", connected=True)
        ip = ipaddress.ip_address("10.0.0.5")
        assert reader.holding(init.id, ip) == Holding(web.id, ipaddress.ip_interface("10.0.0.5/24"))
        assert reader.holding(init.id, ipaddress.ip_address("10.0.0.99")) is None
        assert reader.holding(99, ip) is None


def test_reading_holds_the_models_lock():
    sw = Switch()
    done = threading.Event()

    def change():
        sw.create("web", kind="l3")
        done.set()
    with sw.read() as reader:
        worker = threading.Thread(target=change)
        worker.start()
        assert not done.wait(0.2)                 # the verb waits for the reader
        assert reader.namespace_ids() == (0,)
    worker.join(5)
    assert done.is_set() and sw.namespace("web")
