"""DHCP end to end (issue 17): a tenant whose port has no ``address`` option runs busybox
``udhcpc`` and gets exactly what the switch pushed to its namespace -- the address, the
L2's gateway, the mask, the MTU, nothing else -- and loses the address at its next
renewal once it is pulled (its IPv6 addresses come by DHCPv6: test_dhcp6.py).  Another
tenant of the same L2 sees no DHCP frame.  Runs for every port kind (``port_kinds``);
the attach kind's DHCP is in test_port_kinds.py.
"""
import random
import shutil
import socket
import stat
import time

import pytest

from pyctl.rig import probes
from tests.support.waiting import until

pytestmark = pytest.mark.port_kinds

UDHCPC = shutil.which("busybox")
LEASE_S = 16                    # the least lease udhcpc takes as given (it renews at half)
# udhcpc's hook: configure what was offered, and write down each event with its options.
SCRIPT = """#!/bin/sh
echo "$1 ip=$ip subnet=$subnet router=$router mtu=$mtu lease=$lease serverid=$serverid \
dns=$dns domain=$domain hostname=$hostname ntpsrv=$ntpsrv" >> "$UDHCPC_LOG"
case "$1" in
  deconfig) ip -4 addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/$subnet" dev "$interface"
    [ -n "$router" ] && ip route replace default via "$router" dev "$interface" ;;
esac
"""


@pytest.fixture
def udhcpc(tmp_path, monkeypatch):
    """(argv prefix, log path) of a udhcpc run with the recording hook."""
    if UDHCPC is None:
        pytest.skip("busybox is not installed (apt-get install busybox): no udhcpc")
    script = tmp_path / "hook.sh"
    script.write_text(SCRIPT)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "events"
    monkeypatch.setenv("UDHCPC_LOG", str(log))
    return [UDHCPC, "udhcpc", "-f", "-s", str(script)], log


@pytest.fixture
def dhcp_topo(tapswitch_factory):
    net = random.randint(16, 250)
    topo = tapswitch_factory()
    topo.address_add("init", f"10.{net}.0.1/24")
    topo.address_add("init", f"fd{net:02x}::1/64")
    a = topo.tenant("a", f"10.{net}.0.2/24")
    c = topo.tenant("c", f"10.{net}.0.7/24", f"fd{net:02x}::7/64", dhcp=True)
    return topo, a, c


def events(log):
    return [line.split() for line in log.read_text().splitlines()] if log.exists() else []


def kernel_view(tenant):
    """(IPv4 addresses of its port, its default route's gateway)."""
    netns = tenant.netns
    routes = [r["gateway"] for r in netns.routes() if r["dst"] == "0.0.0.0/0"]
    return netns.addresses(tenant.port), routes


def dhcp_frames_seen(tenant, seconds):
    """Count the UDP 67/68 frames reaching ``tenant``'s port for ``seconds``."""
    sock = tenant.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
    try:
        sock.bind((tenant.port, 0))
        sock.settimeout(0.1)
        seen, end = 0, time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                frame = sock.recv(65536)
            except socket.timeout:
                continue
            ihl = (frame[14] & 15) * 4
            if frame[23] == 17 and int.from_bytes(frame[14 + ihl:16 + ihl], "big") in (67, 68):
                seen += 1
        return seen
    finally:
        sock.close()


def test_the_client_gets_exactly_what_was_pushed_and_nobody_else_hears_it(dhcp_topo, udhcpc):
    topo, a, c = dhcp_topo
    topo.start()
    gateway = a.address.rsplit(".", 1)[0] + ".1"
    assert kernel_view(c) == ([], [])            # no IPv4 mirrored: the port has no address
    assert c.addresses[1] not in c.netns.addresses(c.port, socket.AF_INET6)   # nor IPv6 (DHCPv6)
    argv, log = udhcpc
    proc = c.netns.popen(argv + ["-q", "-n", "-t", "5", "-T", "1", "-i", c.port])
    seen = dhcp_frames_seen(a, 3.0)              # a listens while c asks
    assert proc.wait(20) == 0
    assert seen == 0
    assert kernel_view(c) == ([c.address], [gateway])
    bound = [e for e in events(log) if e[0] == "bound"]
    assert len(bound) == 1
    fields = dict(kv.split("=", 1) for kv in bound[0][1:])
    assert fields == {"ip": c.ip, "subnet": "255.255.255.0", "router": gateway, "mtu": "1500",
                      "lease": "3600", "serverid": gateway, "dns": "", "domain": "",
                      "hostname": "", "ntpsrv": ""}
    assert len(probes.ping(c, a.ip, count=2)) == 2
    stats = topo.stats()["dhcp"]
    assert stats["tx_offer"] == 1 and stats["tx_ack"] == 1
    assert topo.counters()["namespaces"]["c"]["reasons"]["dhcp"] >= 2


def short_lease_tenant(tapswitch_factory, gateway, address):
    """A started topology whose L2 holds ``gateway`` and tenant c ``address``, behind a
    DHCP-served port with leases of ``LEASE_S``: (topology, c)."""
    topo = tapswitch_factory()
    topo.address_add("init", gateway)
    c = topo.tenant("c", address, dhcp=True)
    topo.port_del(c.port)                     # the same port, with a short lease
    options = {"netns": c.netns_name, "dhcp_lease_time": LEASE_S}
    if c.kind != "tap":
        options["kind"] = c.kind
    topo.port_add(c.port, "c", options=options)
    topo.start()
    return topo, c


def test_a_pulled_address_is_lost_at_the_next_renewal(tapswitch_factory, udhcpc):
    net = random.randint(16, 250)
    topo, c = short_lease_tenant(tapswitch_factory, f"10.{net}.0.1/24", f"10.{net}.0.7/24")
    argv, log = udhcpc
    proc = c.netns.popen(argv + ["-t", "10", "-T", "1", "-A", "1", "-i", c.port])
    try:
        assert until(lambda: kernel_view(c)[0] == [c.address], 15, interval=0.1)
        topo.pull(c.address, "c")
        time.sleep(1)
        assert kernel_view(c)[0] == [c.address]           # the lease runs until it is renewed
        # renewal at T1: refused
        assert until(lambda: kernel_view(c)[0] == [], LEASE_S, interval=0.1)
        assert [e[0] for e in events(log)][-1] == "deconfig"
        assert topo.stats()["dhcp"]["tx_nak"] >= 1
        topo.push(c.address, "c")              # pushed again: leased again
        assert until(lambda: kernel_view(c)[0] == [c.address], 15, interval=0.1)
    finally:
        proc.kill()
        proc.wait(5)
