"""The config's isolation keys (issue 14): an L2's ``directed_broadcast`` and delegated
kernel namespaces (``netns = [...]``), a port's ``dhcp_server``; read, applied, and every
refusal naming its key."""
import pytest

from pyctl.config import ConfigError, check, load_config



ISOLATION = """
[root]
directed_broadcast = true

[[namespace]]
name = "t"
kind = "l2"
directed_broadcast = false
netns = ["ctr-a", "ctr-b"]

[[namespace]]
name = "a"
kind = "l3"
parent = "t"

[[port]]
name = "srv"
namespace = "a"
dhcp_server = true
netns = "ctr-a"
"""


def test_isolation_options_are_read_and_applied():
    """An L2's directed_broadcast and delegated kernel namespaces, a port's dhcp_server
    (docs/security.md, "Isolation")."""
    config = load_config(ISOLATION)
    assert config.root_options == {"directed_broadcast": True}
    assert [(ns.options, ns.netns) for ns in config.namespaces] == [
        ({"directed_broadcast": False}, ("ctr-a", "ctr-b")), ({}, ())]
    switch = check(config)
    assert switch.namespace_options("init") == {"directed_broadcast": True}
    assert switch.namespace_options("a") == {"directed_broadcast": False}
    assert switch.netns_delegated("t") == ["ctr-a", "ctr-b"]
    assert switch.port("srv").options == {"dhcp_server": True, "netns": "ctr-a"}


@pytest.mark.parametrize("old, new, key, fragment", [
    ("directed_broadcast = false", 'directed_broadcast = "no"', "namespace[0].directed_broadcast",
     "true or false"),
    ("parent = \"t\"", "parent = \"t\"\ndirected_broadcast = true",
     "namespace[1].directed_broadcast", "an L3 has no options"),
    ("parent = \"t\"", "parent = \"t\"\nnetns = [\"x\"]", "namespace[1].netns",
     "delegated to an L2"),
    ('netns = ["ctr-a", "ctr-b"]', 'netns = ["ctr a"]', "namespace[0].netns[0]", ""),
    ("dhcp_server = true", "dhcp_server = 1", "port[0].dhcp_server", ""),
])
def test_isolation_option_refusals_name_the_key(old, new, key, fragment):
    with pytest.raises(ConfigError) as info:
        load_config(ISOLATION.replace(old, new, 1), source="i.toml")
    error = info.value
    assert (error.key, error.code) == (key, "EINVAL") and fragment in error.reason


def test_a_kernel_namespace_delegated_twice_is_refused_on_apply():
    config = load_config(ISOLATION + '[[namespace]]\nname = "u"\nkind = "l2"\nnetns = ["ctr-b"]\n')
    with pytest.raises(ConfigError) as info:
        check(config)
    assert info.value.key == "namespace[2].netns[0]" and info.value.code == "EEXIST"
