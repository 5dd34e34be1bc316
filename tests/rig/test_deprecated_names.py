"""Topology's old verb names (pyctl.deprecated) still work for one release, warning
RenamedWarning; join/leave in the old (namespace, group) order warn ArgumentOrderWarning.
This file keeps the old names on purpose (/work/notes/rename_verbs.py skips it)."""
import pytest

from pyctl.deprecated import ArgumentOrderWarning, RenamedWarning
from pyctl.rig.topology import Topology


def test_old_names_and_order_still_work():
    topo = Topology()
    try:
        with pytest.warns(RenamedWarning, match=r"Topology\.add_address\(\) is deprecated"):
            topo.add_address("init", "10.0.0.1/24")
        with pytest.warns(RenamedWarning):
            topo.add_route("init", dst="default", via="10.0.0.254")     # old keyword too
        with pytest.warns(RenamedWarning):
            topo.add_address("init", "10.0.0.9/24")
        with pytest.warns(RenamedWarning):
            topo.del_address("init", "10.0.0.9/24")
        topo.tenant("a", "10.0.0.2/24")
        with pytest.warns(ArgumentOrderWarning):
            topo.join("a", "239.1.1.1")
        assert topo.groups("a") == ["239.1.1.1"]
        with pytest.warns(ArgumentOrderWarning):
            topo.leave("a", "239.1.1.1")
        assert topo.groups("a") == []
        assert [r["dst"] for r in topo.routes()] == ["0.0.0.0/0", "10.0.0.0/24"]
        assert topo.addresses("init") == ["127.0.0.1/8", "::1/128", "10.0.0.1/24"]
    finally:
        topo.close()
