"""The daemon's fast-path tables have a size, and the model knows it: a change past it is
refused before anything moves, with ENOSPC naming the table, never with an id out of
range from the compiler (issue 14 item 16; no root needed: no ports are opened)."""
import pytest

from pyctl import Switch, errors
from pyctl.config import DaemonSettings
from pyctl.daemon.daemon import Daemon


@pytest.fixture
def small(tmp_path):
    d = Daemon(Switch(), DaemonSettings(socket=str(tmp_path / "s.sock")), max_namespaces=4,
               max_ports=2)
    d.start(control=False)
    yield d
    d.close(report=False)


def test_a_full_namespace_table_is_enospc_naming_it(small):
    with small.change() as sw:
        sw.create("t", "l2")
        sw.create("a", "l3", parent="t")
        sw.create("b", "l3", parent="t")
    before = small.switch.snapshot()
    with pytest.raises(errors.TableFull, match="namespace table is full: it holds 4 of 4"):
        with small.change() as sw:
            sw.create("c", "l3", parent="t")
    assert small.switch.snapshot() == before
    with small.change() as sw:                      # room again once one goes
        sw.destroy("b")
        sw.create("c", "l3", parent="t")
    assert small.compiler.synced_version == small.switch.version


def test_the_model_is_told_both_table_sizes(small):
    # (a port past the port table is refused the same way: tests/model/test_model_quotas.py;
    # here no port is added, since the daemon would open its TAP)
    assert small.switch._state.capacity == {"namespaces": 4, "ports": 2}


def test_a_model_bigger_than_the_tables_is_refused_at_once(tmp_path):
    switch = Switch()
    for i in range(5):
        switch.create(f"n{i}", "l3")
    with pytest.raises(errors.TableFull, match="namespace table"):
        Daemon(switch, DaemonSettings(socket=str(tmp_path / "s.sock")), max_namespaces=4)
