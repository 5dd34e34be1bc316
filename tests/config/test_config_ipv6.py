"""The topology file with both families: mixed address lists, port address and gateway
lists, IPv6 routes and ``default`` by the gateway's family; refusals name key and line."""
import pytest

from pyctl.config import ConfigError, check, load_config
from tests.support import config_text

DUAL = """\
[root]
addresses = ["10.0.0.1/24", "fd00::1/64"]

[[namespace]]
name = "tenants"
kind = "l2"
addresses = ["10.1.0.1/24", "fd00:1::1/64"]
advertise = true

[[namespace]]
name = "web"
kind = "l3"
parent = "tenants"
addresses = ["10.1.0.11/24", "fd00:1::11/64"]

[[port]]
name = "tsw-web"
namespace = "web"
netns = "tenant-web"
address = ["10.1.0.11/24", "fd00:1::11/64"]
gateway = ["10.1.0.1", "fd00:1::1"]

[[port]]
name = "tsw-up"
namespace = "tenants"
router = true

[[route]]
namespace = "tenants"
prefix = "default"
via = "fd00:1::fe"
port = "tsw-up"

[[route]]
namespace = "tenants"
prefix = "default"
via = "10.1.0.254"

[[route]]
namespace = "tenants"
prefix = "fd00:9::/48"
port = "tsw-up"
"""


def test_dual_stack_file_loads_and_applies():
    config = load_config(DUAL)
    web = next(p for p in config.ports if p.name == "tsw-web")
    assert web.options["address"] == ["10.1.0.11/24", "fd00:1::11/64"]
    assert web.options["gateway"] == ["10.1.0.1", "fd00:1::1"]
    assert [(r.prefix, r.via) for r in config.routes] == [
        ("::/0", "fd00:1::fe"), ("0.0.0.0/0", "10.1.0.254"), ("fd00:9::/48", None)]
    sw = check(config)
    assert sw.addresses("web")[2:] == ["10.1.0.11/24", "fd00:1::11/64"]
    assert sw.addresses("init")[2:] == ["10.0.0.1/24", "fd00::1/64"]
    assert [r.dst for r in sw.routes("web") if not r.connected] == [
        "0.0.0.0/0", "::/0", "fd00:9::/48"]
    assert sw.port("tsw-web").options["gateway"] == ["10.1.0.1", "fd00:1::1"]
    assert sw.port("tsw-up").options["router"] is True
    assert sw.namespace_options("tenants") == {"advertise": True}
    assert sw.namespace_options("web") == {"advertise": True}        # its scope's
    assert sw.namespace_options("init") == {}


def test_ring_ports_take_both_families():
    config = load_config(DUAL.replace('netns = "tenant-web"', 'kind = "xdp"\nnetns = "tenant-web"'))
    web = next(p for p in config.ports if p.name == "tsw-web")
    assert web.options == {"kind": "xdp", "netns": "tenant-web",
                           "address": ["10.1.0.11/24", "fd00:1::11/64"],
                           "gateway": ["10.1.0.1", "fd00:1::1"]}
    assert check(config).port("tsw-web").options == web.options


def test_root_options_and_refusals():
    sw = check(load_config('[root]\naddresses = ["fd00::1/64"]\nadvertise = true\n'))
    assert sw.namespace_options("init") == {"advertise": True}
    for text, key, fragment in [
        ('[root]\nadvertise = 1\n', "root.advertise", "true or false"),
        ('[[namespace]]\nname = "w"\nkind = "l3"\nadvertise = true\n', "namespace[0].advertise",
         "parent L2"),
        ('[[namespace]]\nname = "w"\nkind = "l2"\nadvertize = true\n', "namespace[0]",
         "advertize"),
        ('[[port]]\nname = "p"\nnamespace = "init"\nrouter = "yes"\n', "port[0].router",
         "true or false"),
    ]:
        with pytest.raises(ConfigError) as info:
            load_config(text)
        assert info.value.key.startswith(key) and fragment in str(info.value), str(info.value)


def test_the_same_default_twice_is_refused_per_family():
    text = DUAL + '\n[[route]]\nnamespace = "tenants"\nprefix = "::/0"\nport = "tsw-up"\n'
    with pytest.raises(ConfigError) as info:
        load_config(text)
    assert info.value.key == "route[3].prefix" and "already defined" in info.value.reason


@pytest.mark.parametrize("port_lines, key, fragment", [
    ('address = ["10.1.0.11/24", "fd00:1::11/64"]\ngateway = ["fd00:2::1"]\n',
     "port[0].gateway", "inside fd00:1::/64"),
    ('address = ["10.1.0.11/24"]\ngateway = ["10.1.0.1", "fd00:1::1"]\n',
     "port[0].gateway", "needs an IPv6 address"),
    ('address = []\n', "port[0].address", "empty list"),
    ('address = ["fe80::1/64"]\n', "port[0].address", "link-local"),
    ('address = ["10.1.0.11/24", 7]\n', "port[0].address", "a string or a list"),
    ('gateway = [1]\naddress = "10.1.0.11/24"\n', "port[0].gateway", "a string or a list"),
    ('address = "fd00:1::11/64"\nmtu = 1200\n', "port[0].address", "1280"),
    ('kind = "veth"\naddress = "fd00:1::11/64"\nmtu = 1200\n', "port[0].address", "1280"),
])
def test_port_address_refusals_name_the_key(port_lines, key, fragment):
    text = config_text.text(config_text.namespace("web", "l3", "10.1.0.11/24"),
                            config_text.port("p", "web", netns="t-web")) + port_lines
    with pytest.raises(ConfigError) as info:
        load_config(text)
    assert info.value.key == key
    assert fragment in info.value.reason
    assert info.value.line is not None


def test_link_local_route_is_refused_with_its_line():
    text = DUAL + '\n[[route]]\nnamespace = "tenants"\nprefix = "fe80::/64"\nport = "tsw-up"\n'
    with pytest.raises(ConfigError) as info:
        load_config(text)
    assert info.value.key == "route[3].prefix" and "link-local" in info.value.reason
