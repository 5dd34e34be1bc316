"""docs/config.schema.json: written from the keys' declarations, current, and it agrees with
the loader about the examples and about keys that do not exist."""
import json
import tomllib

import jsonschema
import pytest

from pyctl.config import keys, load_config
from pyctl.config.schema import schema
from tests.support import EXAMPLES, REPO

COMMITTED = REPO / "docs" / "config.schema.json"


def test_the_committed_schema_is_current():
    assert json.loads(COMMITTED.read_text()) == schema(), \
        "docs/config.schema.json is stale: python -m pyctl.config.schema > docs/config.schema.json"


@pytest.mark.parametrize("name", ["two-tenants.toml", "sibling-l2.toml", "dual-stack.toml"])
def test_the_examples_are_valid(name):
    jsonschema.validate(tomllib.loads((EXAMPLES / name).read_text()), schema())


@pytest.mark.parametrize("text", [
    '[daemon]\ncolour = "blue"\n',                                 # unknown key
    '[daemon]\nbatch_size = 0\n',                                  # out of range
    '[[namespace]]\nname = "web"\n',                               # kind is required
    '[[namespace]]\nname = "web"\nkind = "l4"\n',                  # not a kind
    '[[port]]\nname = "a-name-far-too-long"\nnamespace = "init"\n',  # an interface name
    '[[port]]\nname = "p"\nnamespace = "init"\noffloads = ["gro"]\n',
    '[daemon.slowpath]\nneighbours = 0\n',
    '[root]\nadvertise = "yes"\n',                                 # a boolean
    '[[port]]\nname = "p"\nnamespace = "init"\nnetns = "n"\naddress = []\n',   # empty list
    '[[port]]\nname = "p"\nnamespace = "init"\nnetns = "n"\naddress = "10.0.0.2/24"\n'
    'gateway = ["10.0.0.1", "fd00::1", "10.0.0.3"]\n',               # one per family
    '[[port]]\nname = "p"\nnamespace = "init"\nrouter = 1\n',
    '[daemon]\ncpus = []\n',                                        # at least one CPU
    '[daemon]\npoll_us = 5000\n',
])
def test_what_the_schema_refuses_the_loader_refuses_too(text):
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(tomllib.loads(text), schema())
    with pytest.raises(Exception):
        load_config(text)


def test_a_port_address_and_gateway_take_a_string_or_a_list_of_both_families():
    text = ('[[port]]\nname = "p"\nnamespace = "init"\nnetns = "n"\nmtu = 1500\n'
            'address = ["10.0.0.2/24", "fd00::2/64"]\ngateway = ["10.0.0.1", "fd00::1"]\n')
    jsonschema.validate(tomllib.loads(text), schema())
    assert load_config(text).ports[0].options["gateway"] == ["10.0.0.1", "fd00::1"]


def test_the_models_options_are_the_declared_keys():
    from pyctl.model import port_options
    from pyctl.model.namespace_options import NAMESPACE_OPTIONS
    for table in ("root", "namespace"):
        assert set(NAMESPACE_OPTIONS) <= set(keys.allowed(table))
    declared = set(keys.allowed("port")) - {"name", "namespace", "mac"}
    assert declared == set(port_options._CHECKS)


def test_every_table_the_loader_reads_is_declared():
    assert keys.allowed() == ("daemon", "root", "namespace", "port", "route")
    assert keys.required("port") == ("name", "namespace")
    assert keys.allowed("daemon", "slowpath")[0] == "icmp_errors_per_second"
