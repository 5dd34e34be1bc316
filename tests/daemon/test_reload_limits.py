"""A reload applies the [daemon.slowpath] and [daemon.control] limits to the running daemon
(pyctl.daemon.live_limits) together with the model's change, or nothing: the fast path's
shares, the slow path's rates and bounds, the snooper's bound, the control sockets' slots,
idle timeout and request rates; the other [daemon] keys are listed in restart_needed.  A
daemon of an address-only topology (no ports: no root needed) reloaded in-process."""
import dataclasses
import socket as socket_mod
import time

import pytest

from pyctl import errors
from pyctl.config.validate import validate
from pyctl.daemon import live_limits
from pyctl.daemon.daemon import Daemon
from pyctl.daemon.reload import Reloader
from tests.support import config_text

SHARES = {"arp": [200, 100], "icmp": [200, 100], "igmp": [50, 50], "resolve": [1000, 200],
          "other": [200, 100]}


def write(tmp_path, *, slowpath=None, shares=None, control=None, extra_ns=False, **daemon):
    text = config_text.daemon(str(tmp_path / "ctl.sock"), **daemon)
    if slowpath:
        text += config_text.table("[daemon.slowpath]", **slowpath)
    if shares:
        text += config_text.table("[daemon.slowpath.shares]", **shares)
    if control:
        text += config_text.table("[daemon.control]", **control)
    text += config_text.root("10.60.0.1/24")
    text += config_text.namespace("web", "l3", "10.60.0.10/24", socket=True)
    if extra_ns:
        text += config_text.namespace("db", "l3", "10.60.0.20/24")
    path = tmp_path / "switch.toml"
    path.write_text(text)
    return str(path)


@pytest.fixture
def running(tmp_path):
    """A started daemon of the file ``write(tmp_path)`` makes, its Reloader, and the file."""
    path = write(tmp_path)
    report = validate(path)
    assert not report.errors
    daemon = Daemon(report.switch, report.config.daemon, max_namespaces=16, max_ports=8)
    daemon.start()
    daemon.control.bind_namespace("web")
    try:
        yield daemon, Reloader(daemon, path), path
    finally:
        daemon.close(report=False)


def limits_of(daemon):
    sp, igmp, ctl = daemon.slowpath, daemon.multicast.config, daemon.control.limits
    return {"shares": daemon.datapath.slow_shares(), "icmp": (sp.config.icmp_rate,
            sp.config.icmp_burst, sp.icmp.buckets.rate), "arp": sp.config.arp_rate,
            "neighbours": (sp.config.max_neighbours, sp.neighbours.config.max_neighbours),
            "reachable": sp.config.reachable_time, "groups": igmp.max_groups_per_namespace,
            "control": (ctl.idle_timeout, ctl.connections_per_socket, ctl.requests_per_second,
                        ctl.request_bytes), "settings": daemon.settings,
            "tx_cost": (daemon.loop.tx_cost_limit_us, daemon.loop.tx_cost_share_pct)}


def test_a_reload_applies_the_slow_path_and_control_limits(running, tmp_path):
    daemon, reloader, path = running
    write(tmp_path, slowpath={"icmp_errors_per_second": 7, "icmp_errors_burst": 3,
                              "arp_requests_per_second": 9, "neighbours": 500,
                              "neighbour_reachable_time": 12, "igmp_groups_per_namespace": 4},
          shares={**SHARES, "icmp": [20, 5], "other": [0, 0]},
          control={"idle_timeout": 40, "connections_per_socket": 3, "requests_per_second": 50,
                   "request_bytes": 4096})
    result = reloader.reload()
    assert result["restart_needed"] == []
    assert "[daemon.slowpath] icmp_errors_per_second: 100 -> 7" in result["changed"]
    assert "[daemon.slowpath.shares] icmp: [200, 100] -> [20, 5]" in result["changed"]
    assert "[daemon.control] idle_timeout: 300 -> 40" in result["changed"]
    now = limits_of(daemon)
    assert now["shares"]["icmp"] == (20.0, 5.0) and now["shares"]["other"] == (0.0, 0.0)
    assert now["shares"]["arp"] == (200.0, 100.0)
    assert now["icmp"] == (7.0, 3, 7.0) and now["arp"] == 9.0
    assert now["neighbours"] == (500, 500) and now["reachable"] == 12.0 and now["groups"] == 4
    assert now["control"] == (40, 3, 50, 4096)
    assert now["settings"].slowpath.icmp_errors_per_second == 7
    assert now["settings"].control.idle_timeout == 40
    # the same file again: nothing to change
    assert reloader.reload()["changed"] == []


def test_a_reload_sets_the_write_cost_hold_of_the_running_loop(running, tmp_path):
    daemon, reloader, path = running
    assert limits_of(daemon)["tx_cost"] == (100, 10)
    write(tmp_path, tx_cost_limit_us=250, tx_cost_share_pct=20)
    result = reloader.reload(dry_run=True)
    assert result["changed"] == ["[daemon] tx_cost_limit_us: 100 -> 250",
                                 "[daemon] tx_cost_share_pct: 10 -> 20"]
    assert result["restart_needed"] == [] and limits_of(daemon)["tx_cost"] == (100, 10)
    result = reloader.reload()
    assert result["restart_needed"] == [] and len(result["changed"]) == 2
    assert limits_of(daemon)["tx_cost"] == (250, 20)
    assert (daemon.settings.tx_cost_limit_us, daemon.settings.tx_cost_share_pct) == (250, 20)
    write(tmp_path, tx_cost_limit_us=0, tx_cost_share_pct=20)      # never hold
    assert reloader.reload()["changed"] == ["[daemon] tx_cost_limit_us: 250 -> 0"]
    assert limits_of(daemon)["tx_cost"] == (0, 20)
    assert reloader.reload()["changed"] == []


def test_a_write_cost_setting_out_of_the_loops_range_is_refused(running):
    """Settings built in Python, not read from a file the validator checked: prepare()
    refuses what the packet loop would, so that apply() cannot fail halfway."""
    daemon, _, _ = running
    before = limits_of(daemon)
    for bad in ({"tx_cost_share_pct": 0}, {"tx_cost_limit_us": -1},
                {"tx_cost_limit_us": 1_000_001}, {"tx_cost_share_pct": 50, "tx_cost_limit_us": 2.5}):
        with pytest.raises(errors.InvalidArgument, match="tx_cost_"):
            live_limits.prepare(daemon, dataclasses.replace(daemon.settings, **bad))
    assert limits_of(daemon) == before


def test_other_daemon_keys_wait_for_a_restart(running, tmp_path):
    daemon, reloader, path = running
    write(tmp_path, batch_size=32, control={"idle_timeout": 60})
    result = reloader.reload(dry_run=True)
    assert result["changed"] == ["[daemon.control] idle_timeout: 300 -> 60"]
    assert result["restart_needed"] == ["batch_size"]
    assert daemon.control.limits.idle_timeout == 300          # a dry run changes nothing
    result = reloader.reload()
    assert result["restart_needed"] == ["batch_size"]
    assert daemon.control.limits.idle_timeout == 60 and daemon.settings.batch_size == 64


def test_a_bad_limit_refuses_the_whole_reload(running, tmp_path):
    daemon, reloader, path = running
    before, model = limits_of(daemon), daemon.switch.snapshot()
    write(tmp_path, extra_ns=True, control={"idle_timeout": 40}, tx_cost_limit_us=250,
          slowpath={"icmp_errors_per_second": 0}, shares={**SHARES, "icmp": [20, 5]})
    with pytest.raises(errors.InvalidArgument):
        reloader.reload()
    assert limits_of(daemon) == before and daemon.switch.snapshot() == model
    assert reloader.refused == 1


def test_a_limit_the_running_daemon_refuses_changes_nothing(running, tmp_path, monkeypatch):
    """What the file's checks let through but building the new limits refuses (here the
    fast path's check of a share, made to refuse) refuses the reload: neither the model's
    change nor any limit is applied."""
    daemon, reloader, path = running
    before, model = limits_of(daemon), daemon.switch.snapshot()

    def refuse(name, rate, burst):
        raise errors.InvalidArgument(f"slow-path share {name}: refused")
    monkeypatch.setattr(live_limits, "check_share", refuse)
    write(tmp_path, extra_ns=True, control={"idle_timeout": 40}, tx_cost_share_pct=50,
          shares={**SHARES, "icmp": [20, 5]})
    with pytest.raises(errors.InvalidArgument, match="share icmp: refused"):
        reloader.reload()
    assert limits_of(daemon) == before and daemon.switch.snapshot() == model


def _connect(path):
    s = socket_mod.socket(socket_mod.AF_UNIX, socket_mod.SOCK_STREAM)
    s.connect(path)
    s.sendall(b'{"id": 1, "verb": "ping"}\n')
    s.setblocking(False)
    return s


def _answered(server, sockets, seconds=2.0):
    """Which of ``sockets`` got their reply while ``server`` is polled for ``seconds``."""
    got = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and len(got) < len(sockets):
        server.poll(0.02)
        for k, s in enumerate(sockets):
            try:
                if s.recv(4096):
                    got.add(k)
            except BlockingIOError:
                pass
    return got


def test_new_connections_obey_the_new_slot_limit(running, tmp_path):
    daemon, reloader, path = running
    write(tmp_path, control={"connections_per_socket": 1})
    reloader.reload()
    server = daemon.control
    web = server.bindings()["web"]
    first, second = _connect(web), _connect(web)
    try:
        assert _answered(server, [first, second], 0.5) == {0}       # the second waits
        write(tmp_path, control={"connections_per_socket": 2})
        reloader.reload()
        assert _answered(server, [second]) == {0}                   # let in at once
    finally:
        first.close()
        second.close()


def test_an_idle_connection_obeys_the_new_idle_timeout(running, tmp_path):
    daemon, reloader, path = running
    server = daemon.control
    client = _connect(str(tmp_path / "ctl.sock"))
    try:
        assert _answered(server, [client]) == {0}
        write(tmp_path, control={"idle_timeout": 1})
        reloader.reload()
        deadline = time.monotonic() + 5
        while server.idle_closed == 0 and time.monotonic() < deadline:
            server.poll(0.05)
        assert server.idle_closed == 1
    finally:
        client.close()


def _free_port():
    with socket_mod.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_metrics_listener_follows_the_file(running, tmp_path):
    """On, moved, off by reload; an address that cannot be bound refuses the reload and
    leaves the listener and the model as they were (tests/e2e/test_reload.py scrapes a
    moved listener of a running daemon)."""
    daemon, reloader, path = running
    first, second = _free_port(), _free_port()
    write(tmp_path, metrics=f"127.0.0.1:{first}")
    result = reloader.reload()
    assert f"[daemon] metrics: off -> 127.0.0.1:{first}" in result["changed"]
    assert result["restart_needed"] == [] and daemon.metrics_http.address == ("127.0.0.1", first)
    held = socket_mod.socket()
    held.bind(("127.0.0.1", second))
    held.listen()
    try:
        model = daemon.switch.snapshot()
        write(tmp_path, metrics=f"127.0.0.1:{second}", extra_ns=True)
        with pytest.raises(errors.AddressInUse):
            reloader.reload()
        assert daemon.metrics_http.address == ("127.0.0.1", first)
        assert daemon.switch.snapshot() == model
    finally:
        held.close()
    old = daemon.metrics_http
    reloader.reload()
    assert daemon.metrics_http.address == ("127.0.0.1", second) and old is not daemon.metrics_http
    socket_mod.create_connection(("127.0.0.1", second), timeout=2).close()     # it listens
    with pytest.raises(OSError):
        socket_mod.create_connection(("127.0.0.1", first), timeout=2).close()
    write(tmp_path)
    assert "[daemon] metrics: 127.0.0.1:%d -> off" % second in reloader.reload()["changed"]
    assert daemon.metrics_http is None
