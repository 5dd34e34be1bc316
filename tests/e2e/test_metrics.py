"""Metrics with real traffic: the Prometheus text of `counters --format prometheus`, parsed
by prometheus-client, moves with the frames that cross the switch; drops and slow-path
hand-offs are apart; a namespace's socket sees only its own series; the HTTP listener
serves the admin's, and `tapswitch run` opens it from [daemon] metrics."""
import socket
import subprocess
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from pyctl import kernel
from pyctl.control.client import ControlClient
from pyctl.daemon.metrics_http import MetricsListener
from pyctl.rig import probes
from pyctl.rig.subnets import free_subnet
from tests.e2e.daemon_process import DaemonProcess
from tests.support import config_text
from tests.support.waiting import wait_for


def parse(text):
    """{(sample name, frozenset of labels): value}."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


def families(text):
    return {f.name for f in text_string_to_metric_families(text)}


def test_prometheus_text_moves_with_traffic_and_keeps_drops_apart(two_tenants, tapswitch_subnet):
    topo, a, b = two_tenants
    net = tapswitch_subnet
    before = parse(topo.counters(format="prometheus"))
    assert len(probes.ping(a, b.ip, count=5)) == 5
    probes.send_spoofed_udp(a, str(net.network_address + 77), b.ip, 7000, b"forged", count=4)
    spoofed = value(before, "tapswitch_drops_total", reason="spoofed_source")
    # the loop takes the forged frames on its own thread: read once it has dropped them
    wait_for(lambda: value(parse(topo.counters(format="prometheus")), "tapswitch_drops_total",
                           reason="spoofed_source") >= spoofed + 4, 10, "the forged frames dropped")
    text = topo.counters(format="prometheus")
    after = parse(text)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)
    assert moved("tapswitch_namespace_rx_packets_total", namespace="a") >= 9     # 5 requests + 4 forged
    assert moved("tapswitch_namespace_tx_packets_total", namespace="b") >= 5
    assert moved("tapswitch_namespace_rx_packets_total", namespace="b") >= 5     # the replies
    port_a = topo.switch.ports("a")[0].name
    assert moved("tapswitch_port_rx_packets_total", port=port_a, namespace="a") >= 9
    assert value(after, "tapswitch_port_up", port=port_a, namespace="a") == 1
    port_b = topo.switch.ports("b")[0].name       # written to: its cost measured, cheap
    assert 0 < value(after, "tapswitch_port_tx_cost_seconds", port=port_b, namespace="b") < 100e-6
    assert value(after, "tapswitch_port_tx_cost_held", port=port_b, namespace="b") == 0
    assert value(after, "tapswitch_port_tx_cost_excess_seconds", port=port_b, namespace="b") == 0
    assert value(after, "tapswitch_port_tx_cost_drops_total", port=port_b, namespace="b") == 0
    assert moved("tapswitch_namespace_drops_total", namespace="a", reason="spoofed_source") == 4
    assert moved("tapswitch_drops_total", reason="spoofed_source") == 4
    # hand-offs to the slow path are their own family, never a drop
    assert value(after, "tapswitch_namespace_slowpath_total", namespace="a", kind="arp") >= 1
    assert ("tapswitch_namespace_drops_total", frozenset({"namespace": "a", "reason": "arp"}.items())) \
        not in after
    assert value(after, "tapswitch_table_entries", table="ports") == 2
    assert value(after, "tapswitch_table_limit", table="namespaces") == topo.daemon.datapath.max_namespaces
    assert moved("tapswitch_loop_frames_in_total") >= 9

    # the HTTP listener serves the same families (the admin's view)
    listener = MetricsListener(("127.0.0.1", 0), topo.daemon.metrics_text).start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{listener.address[1]}/metrics", timeout=10) as r:
            served = r.read().decode()
    finally:
        listener.close()
    assert families(served) == families(text)
    assert value(parse(served), "tapswitch_namespace_drops_total", namespace="a",
                 reason="spoofed_source") == value(after, "tapswitch_namespace_drops_total",
                                                   namespace="a", reason="spoofed_source")

    # a namespace's socket: only its own series
    path = topo.daemon.call(lambda: topo.daemon.control.bind_namespace("a"))
    with ControlClient(path) as client:
        client.call("ping")
        own = client.call("counters", format="prometheus")
    seen = {dict(labels).get("namespace") for (_, labels) in parse(own)}
    assert seen == {"a"}
    assert not any(name.startswith(("tapswitch_loop_", "tapswitch_table_", "tapswitch_drops"))
                   for name in families(own))
    assert value(parse(own), "tapswitch_control_operations_total", namespace="a", verb="ping",
                 result="ok") == 1


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_tapswitch_run_serves_metrics_on_http_and_through_ctl(tmp_path):
    tag = kernel.unique_name("m")[-6:]
    net = free_subnet()
    addr = lambda k: f"{net.network_address + k}/{net.prefixlen}"     # noqa: E731
    port, sock = _free_port(), str(tmp_path / "ctl.sock")
    cfg = tmp_path / "metrics.toml"
    gateway = str(net.network_address + 1)
    cfg.write_text(config_text.daemon(sock, metrics=f"127.0.0.1:{port}") + config_text.root(addr(1))
                   + config_text.tenant("a", addr(2), port=f"ta{tag}", netns=f"tsa-{tag}",
                                        gateway=gateway)
                   + config_text.tenant("b", addr(3), port=f"tb{tag}", netns=f"tsb-{tag}",
                                        gateway=gateway))
    with DaemonProcess(cfg, sock, netns=[f"tsa-{tag}", f"tsb-{tag}"],
                       links=[f"ta{tag}", f"tb{tag}"]) as daemon:
        url = f"http://127.0.0.1:{port}/metrics"

        def ping(count):        # the first one resolves b's MAC through the slow path
            subprocess.run(["ip", "netns", "exec", f"tsa-{tag}", "ping", "-c", str(count), "-i",
                            "0.2", "-W", "2", str(net.network_address + 3)], check=True,
                           capture_output=True, timeout=30)
        ping(1)
        with urllib.request.urlopen(url, timeout=10) as r:
            before = parse(r.read().decode())
        ping(3)
        done = subprocess.run([sys.executable, "-m", "pyctl", "ctl", "--socket", sock, "counters",
                               "--format", "prometheus"], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        by_ctl = parse(done.stdout)
        with urllib.request.urlopen(url, timeout=10) as r:
            by_http = parse(r.read().decode())
        status, _, err = daemon.stop()
    assert status == 0, err
    for now in (by_ctl, by_http):
        assert value(now, "tapswitch_namespace_tx_packets_total", namespace="b") - \
            value(before, "tapswitch_namespace_tx_packets_total", namespace="b") >= 3
    assert value(by_http, "tapswitch_metrics_requests_total", code="200") >= 1
    assert "metrics listener on http://127.0.0.1:" in err
