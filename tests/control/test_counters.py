"""pyctl.control.counters: naming, visibility and filters of the `counters` verb, the table people read,
and `tapswitch ctl counters` through a served switch."""
import json

import pytest

from pyctl import errors
from pyctl.cli import main
from pyctl.control.counters import PARAMS, format_counters, format_loop_totals, select
from pyctl.model.switch import Switch
from tests.support.control import Served, tenants


def _traffic(n):
    return {"rx_packets": n, "rx_bytes": 100 * n, "tx_packets": n + 1, "tx_bytes": 100 * n + 100}


def raw_counters(switch):
    """What Datapath.counters() gives for ``switch``: ids, every namespace and port, plus a
    stale port id the model no longer has."""
    namespaces = {ns.id: {**_traffic(ns.id), "reasons": {"spoofed_source": 0, "arp": 0}}
                  for ns in switch.namespaces()}
    namespaces[2]["reasons"] = {"spoofed_source": 7, "arp": 3, "no_route": 0}
    ports = {p.id: _traffic(10 + p.id) for p in switch.ports()}
    ports[99] = _traffic(99)
    return {"namespaces": namespaces, "ports": ports,
            "reasons": {"spoofed_source": 7, "arp": 3, "malformed": 1, "no_route": 0}}


@pytest.fixture
def switch():
    sw = tenants(Switch())
    sw.port_add("tsw-other", "other")
    return sw


def test_admin_sees_everything_named(switch):
    out = select(raw_counters(switch), switch)
    assert list(out["namespaces"]) == ["init", "tenants", "web", "db", "other"]
    assert out["namespaces"]["web"]["reasons"]["spoofed_source"] == 7
    assert out["ports"] == {"tsw-up": {"namespace": "tenants", **_traffic(10)},
                            "tsw-other": {"namespace": "other", **_traffic(11)}}
    assert out["reasons"]["malformed"] == 1


def test_a_namespace_sees_its_subtree_and_no_switch_wide_totals(switch):
    out = select(raw_counters(switch), switch.as_namespace("tenants"))
    assert list(out["namespaces"]) == ["tenants", "web", "db"]
    assert list(out["ports"]) == ["tsw-up"]
    assert out["reasons"] == {}
    out = select(raw_counters(switch), switch.as_namespace("web"))
    assert (list(out["namespaces"]), out["ports"]) == (["web"], {})


def test_namespace_filter_keeps_it_and_its_ports(switch):
    out = select(raw_counters(switch), switch, namespace="tenants")
    assert list(out["namespaces"]) == ["tenants"]
    assert list(out["ports"]) == ["tsw-up"]
    assert out["reasons"] == {}
    assert select(raw_counters(switch), switch, namespace=2)["namespaces"].keys() == {"web"}


def test_port_filter_keeps_that_port_alone(switch):
    out = select(raw_counters(switch), switch, port="tsw-other")
    assert out == {"namespaces": {}, "ports": {"tsw-other": {"namespace": "other",
                                                             **_traffic(11)}},
                   "reasons": {}}
    both = select(raw_counters(switch), switch, namespace="other", port="tsw-other")
    other = raw_counters(switch)["namespaces"][4]
    assert both == {**out, "namespaces": {"other": {**other, "drops": {"spoofed_source": 0},
                                                    "slowpath": {"arp": 0}}}}


def test_drops_and_slow_path_hand_offs_are_apart(switch):
    web = select(raw_counters(switch), switch)["namespaces"]["web"]
    assert web["drops"] == {"spoofed_source": 7}
    assert web["slowpath"] == {"arp": 3, "no_route": 0}
    assert web["reasons"] == {"spoofed_source": 7, "arp": 3, "no_route": 0}


def test_filters_refuse_what_does_not_exist_or_is_not_visible(switch):
    raw = raw_counters(switch)
    with pytest.raises(errors.InvalidArgument, match="'tsw-other' is not in namespace 'tenants'"):
        select(raw, switch, namespace="tenants", port="tsw-other")
    with pytest.raises(errors.NotFound, match="no namespace 'nope'"):
        select(raw, switch, namespace="nope")
    with pytest.raises(errors.NotFound, match="no port 'nope'"):
        select(raw, switch, port="nope")
    tenant = switch.as_namespace("tenants")
    with pytest.raises(errors.NotFound, match="no namespace 'other'"):
        select(raw, tenant, namespace="other")
    with pytest.raises(errors.NotFound, match="no port 'tsw-other'"):
        select(raw, tenant, port="tsw-other")


def test_table(switch):
    text = format_counters(select(raw_counters(switch), switch, namespace="tenants"), "final")
    assert text.splitlines() == [
        "-- final --",
        "NAMESPACE  RX PACKETS  RX BYTES  TX PACKETS  TX BYTES  DROPPED  DROP REASONS  "
        "TO SLOW PATH  SLOW-PATH KINDS",
        "tenants             1       100           2       200        0  -                        0  -",
        "",
        "PORT    NAMESPACE  RX PACKETS  RX BYTES  TX PACKETS  TX BYTES",
        "tsw-up  tenants            10      1000          11      1100",
    ]
    lines = format_counters(select(raw_counters(switch), switch)).splitlines()
    assert "web                 2       200           3       300        7  spoofed_source=7  " \
           "           3  arp=3" in lines
    assert lines[-2:] == ["dropped: malformed=1, spoofed_source=7", "to the slow path: arp=3"]
    assert format_counters({"namespaces": {}, "ports": {}, "reasons": {}}) == "no counters to show"


def test_table_names_what_the_slow_path_dropped_of_each_namespace():
    web = {"rx_packets": 5, "rx_bytes": 500, "tx_packets": 0, "tx_bytes": 0, "reasons": {},
           "slowpath_drops": {"drop_rogue_router": 5, "too_big_ipv6": 1}}
    db = {**web, "slowpath_drops": {}}
    text = format_counters({"namespaces": {"web": web, "db": db}, "ports": {}, "reasons": {}})
    assert text.splitlines()[-1] == \
        "slow path dropped of web's: drop_rogue_router=5, too_big_ipv6=1"
    assert "db's" not in text


@pytest.fixture
def served(tmp_path, switch):
    """A control server whose `counters` verb is the daemon's, over fixed raw counters."""
    from pyctl.control.verbs import standard_dispatcher
    d = standard_dispatcher()
    d.register("counters", lambda s, format=None, **kw: select(raw_counters(switch), s.api, **kw),
               PARAMS)
    with Served(tmp_path, switch, dispatcher=d) as s:
        yield s


def test_ctl_counters(served, capsys):
    assert main(["ctl", "-s", served.path, "counters", "tenants"]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("tenants  ")
    assert main(["ctl", "-s", served.path, "--json", "counters", "--port", "tsw-up"]) == 0
    assert json.loads(capsys.readouterr().out) == select(raw_counters(served.switch),
                                                         served.switch, port="tsw-up")
    assert main(["ctl", "-s", served.path, "counters", "other", "-p", "tsw-up"]) == 1
    assert "EINVAL: port 'tsw-up' is not in namespace 'other'" in capsys.readouterr().err


def test_ctl_counters_through_a_namespace_socket(served, capsys):
    path = served.server.bind_namespace("tenants")
    assert main(["ctl", "-s", path, "--json", "counters"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (list(out["namespaces"]), out["reasons"]) == (["tenants", "web", "db"], {})
    assert main(["ctl", "-s", path, "counters", "other"]) == 1
    assert "ENOENT: no namespace 'other'" in capsys.readouterr().err


def test_the_loop_totals_name_each_drop_counter_that_is_not_zero():
    stats = {"frames_in": 12, "frames_out": 9, "tx_ring_stuck": 2, "write_eagain": 1,
             "write_errors": 0, "batches": 5, "backend": "epoll"}
    assert format_loop_totals(stats, title="packet loop at exit") == (
        "-- packet loop at exit --\n"
        "frames in 12, out 9; dropped by the loop: tx_ring_stuck=2, write_eagain=1")
    assert format_loop_totals({"frames_in": 3, "frames_out": 3}) == (
        "frames in 3, out 3; dropped by the loop: none")
