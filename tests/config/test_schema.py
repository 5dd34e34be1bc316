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


@pytest.mark.parametrize("name", ["two-tenants.toml", "sibling-l2.toml"])
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
])
def test_what_the_schema_refuses_the_loader_refuses_too(text):
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(tomllib.loads(text), schema())
    with pytest.raises(Exception):
        load_config(text)


def test_every_table_the_loader_reads_is_declared():
    assert keys.allowed() == ("daemon", "root", "namespace", "port", "route")
    assert keys.required("port") == ("name", "namespace")
    assert keys.allowed("daemon", "slowpath")[0] == "icmp_errors_per_second"
