"""The verbs' old Python names (pyctl.deprecated) still work for one release: each warns
RenamedWarning and does exactly what the new name does; join/leave/members called in the
old (namespace, group) order warn ArgumentOrderWarning and do the same.  This file keeps
the old names on purpose (/work/notes/rename_verbs.py skips it)."""
import inspect
import warnings

import pytest

from pyctl import errors
from pyctl.deprecated import RENAMED, ArgumentOrderWarning, RenamedWarning
from pyctl.model.switch import ActingContext, Switch
from tests.support.model import refused, tenants


@pytest.mark.parametrize("cls", [Switch, ActingContext])
@pytest.mark.parametrize("old", sorted(RENAMED))
def test_every_old_name_is_an_alias_with_the_new_signature(cls, old):
    alias, new = getattr(cls, old), getattr(cls, RENAMED[old])
    assert alias.deprecated_alias_of == RENAMED[old]
    assert inspect.signature(alias) == inspect.signature(new)


def test_old_names_warn_and_act_as_the_new_ones():
    sw, expected = tenants(), tenants()
    with pytest.warns(RenamedWarning, match=r"Switch\.add_address\(\) is deprecated: use "
                                            r"address_add\(\)"):
        sw.add_address("init", "10.0.0.9/24")
    expected.address_add("init", "10.0.0.9/24")
    with pytest.warns(RenamedWarning):
        sw.add_port("up0", "init")
    expected.port_add("up0", "init")
    with pytest.warns(RenamedWarning):
        route = sw.add_route("init", dst="default", via="10.0.0.254", port="up0")  # old keyword
    assert route == expected.route_add("init", "default", via="10.0.0.254", port="up0")
    with pytest.warns(RenamedWarning):
        assert sw.owner_of("10.0.0.5", "init").name == "web"
    with pytest.warns(RenamedWarning):
        sw.del_route("init", "default")
    expected.route_del("init", "default")
    with pytest.warns(RenamedWarning):
        sw.del_port("up0")
    expected.port_del("up0")
    with pytest.warns(RenamedWarning):
        sw.del_address("init", "10.0.0.9/24")
    expected.address_del("init", "10.0.0.9/24")
    assert sw.snapshot() == expected.snapshot()


def test_an_old_name_refuses_as_the_new_one_does():
    sw = tenants()
    with pytest.warns(RenamedWarning):
        refused(sw, errors.PermissionDenied, sw.as_namespace("web").add_address, "web",
                "10.0.0.77/24")


def test_the_old_group_order_warns_and_does_the_same():
    sw = tenants()
    with pytest.warns(ArgumentOrderWarning, match=r"join\(namespace, group\) is deprecated"):
        sw.join("web", "239.1.1.1")
    with pytest.warns(ArgumentOrderWarning):
        sw.as_namespace("db").join("db", "239.1.1.1")
    with pytest.warns(ArgumentOrderWarning):
        assert [n.name for n in sw.members("init", "239.1.1.1")] == ["web", "db"]
    with pytest.warns(ArgumentOrderWarning):
        sw.leave(1, "239.1.1.1")                        # a namespace id
    assert [n.name for n in sw.members("239.1.1.1", "init")] == ["db"]
    with pytest.warns(ArgumentOrderWarning):       # no such namespace: still read as one
        refused(sw, errors.NotFound, sw.join, "nope", "239.1.1.1")
    with pytest.warns(ArgumentOrderWarning):       # a namespace, then a bad group
        refused(sw, errors.InvalidArgument, sw.join, "web", "10.0.0.5")


def test_the_new_order_does_not_warn():
    sw = tenants()
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        sw.join("239.1.1.1", "web")
        sw.join("239.1.1.1")                            # the acting namespace: init
        sw.members("239.1.1.1", "init")
        refused(sw, errors.InvalidArgument, sw.join, "10.0.0.5", "web")
