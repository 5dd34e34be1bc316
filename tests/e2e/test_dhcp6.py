"""DHCPv6 end to end (issue 17 item 3, its IPv6 half): a tenant whose port has no
``address`` option hears the switch's router advertisement (ask DHCPv6; no prefix to
pick an address from by SLAAC), runs ISC ``dhclient -6`` and gets exactly the IPv6
addresses its namespace holds -- nothing else: no DNS, no domain -- and loses one at its
next renewal once it is pulled; pushing it again leases it again.  Another tenant of the
same L2 sees no DHCPv6 frame, and a tenant's DHCPv6 server messages reach nobody unless
its port is a trusted ``dhcp_server``.  The daemon itself, with hand-made messages: its answers
come out of the asking port, a malformed message is counted, and a push or pull changes
the port's router advertisement at once.  Runs for every port kind (``port_kinds``).
"""
import random
import shutil
import socket
import time

import pytest
from scapy.layers.dhcp6 import DHCP6OptIA_NA
from scapy.layers.inet6 import ICMPv6ND_RA, ICMPv6NDOptPrefixInfo, IPv6
from scapy.layers.l2 import Ether

from pyctl.daemon import packets6 as pk6
from pyctl.daemon.packets import build_ethernet
from pyctl.rig import probes
from tests.e2e.test_dhcp import LEASE_S, events, short_lease_tenant
from tests.support.dhcp6_frames import DUID, frame, ia_na, message, opt
from tests.support.waiting import until

pytestmark = pytest.mark.port_kinds

DHCLIENT = shutil.which("dhclient")
# dhclient's hook (it hands the script no environment of ours: the log's path is written in):
# configure each address it is given with its lifetimes, drop the ones it loses; write
# each event down with what came with it.
SCRIPT = """#!/bin/sh
echo "$reason addr=$new_ip6_address plen=$new_ip6_prefixlen old=$old_ip6_address \
life=$new_max_life dns=$new_dhcp6_name_servers domain=$new_dhcp6_domain_search" >> {log}
case "$reason" in
  BOUND6|RENEW6|REBIND6|REBOOT6)
    if [ -n "$old_ip6_address" ] && [ "$old_ip6_address" != "$new_ip6_address" ]; then
      ip -6 addr del "$old_ip6_address/$old_ip6_prefixlen" dev "$interface"
    fi
    if [ -n "$new_ip6_address" ]; then
      if [ "$new_max_life" = 0 ]; then
        ip -6 addr del "$new_ip6_address/$new_ip6_prefixlen" dev "$interface"
      else
        ip -6 addr replace "$new_ip6_address/$new_ip6_prefixlen" dev "$interface" \
          valid_lft "$new_max_life" preferred_lft "$new_preferred_life" nodad
      fi
    fi ;;
  EXPIRE6|RELEASE6|STOP6)
    [ -n "$old_ip6_address" ] && ip -6 addr del "$old_ip6_address/$old_ip6_prefixlen" dev "$interface" ;;
esac
exit 0
"""


@pytest.fixture
def dhclient(tmp_path):
    """(argv prefix, log path) of a foreground ``dhclient -6`` with the recording hook."""
    if DHCLIENT is None:
        pytest.skip("ISC dhclient is not installed (apt-get install isc-dhcp-client)")
    log = tmp_path / "events"
    script = tmp_path / "hook.sh"
    script.write_text(SCRIPT.format(log=log))
    script.chmod(0o755)
    (tmp_path / "dhclient.conf").write_text("")
    return [DHCLIENT, "-6", "-d", "-sf", str(script), "-cf", str(tmp_path / "dhclient.conf"),
            "-lf", str(tmp_path / "leases"), "-pf", str(tmp_path / "pid")], log


def global6(tenant):
    """The port's IPv6 addresses other than link-local ones, sorted."""
    return sorted(a for a in tenant.netns.addresses(tenant.port, socket.AF_INET6)
                  if not a.startswith("fe80:"))


def link_local_ready(tenant):
    """Its link-local address is there and no longer tentative (dhclient binds to it)."""
    out = tenant.netns.run(["ip", "-6", "-o", "addr", "show", "dev", tenant.port, "scope", "link"],
                           check=False).stdout
    return "fe80:" in out and "tentative" not in out


def default6(tenant):
    return [r["gateway"] for r in tenant.netns.routes(socket.AF_INET6) if r["dst"] == "::/0"]


@pytest.fixture
def dhcp6_topo(tapswitch_factory):
    net = random.randint(16, 250)
    topo = tapswitch_factory()
    topo.address_add("init", f"10.{net}.0.1/24")
    topo.address_add("init", f"fd{net:02x}::1/64")
    a = topo.tenant("a", f"10.{net}.0.2/24", f"fd{net:02x}::2/64")
    c = topo.tenant("c", f"10.{net}.0.7/24", f"fd{net:02x}::7/64", f"fd{net:02x}::8/64",
                    f"fd{net:02x}:9::5/64", dhcp=True)       # (no L2 address on fdXX:9::/64)
    return topo, a, c, net


def run_client(tenant, argv):
    assert until(lambda: link_local_ready(tenant), 10, interval=0.1)
    return tenant.netns.popen(argv + [tenant.port])


def stop(proc):
    proc.kill()
    proc.wait(5)


def test_the_client_gets_exactly_what_was_pushed_and_nobody_else_hears_it(dhcp6_topo, dhclient):
    topo, a, c, net = dhcp6_topo
    topo.start()
    assert global6(c) == []                      # nothing mirrored, nothing from SLAAC
    argv, log = dhclient
    proc = run_client(c, argv)
    try:
        seen = capture(a, seconds=3.0, want=is_dhcp6, count=1000)     # a listens while c asks
        leased = [f"fd{net:02x}::7/128", f"fd{net:02x}::8/128"]
        assert until(lambda: global6(c) == leased, 15, interval=0.1), events(log)
        assert seen == []
        bound = [dict(kv.split("=", 1) for kv in e[1:]) for e in events(log) if e[0] == "BOUND6"]
        assert bound == [{"addr": f"fd{net:02x}::{i}", "plen": "128", "old": "", "life": "3600",
                          "dns": "", "domain": ""} for i in (7, 8)]
        # the router advertisement: the switch's link-local address is the default router,
        # the subnet on-link, and no address was made from it
        assert until(lambda: default6(c) and default6(c)[0].startswith("fe80:"), 10, interval=0.1)
        assert global6(c) == leased
        assert len(probes.ping(c, f"fd{net:02x}::1", count=2)) == 2      # the switch
        assert len(probes.ping(c, a.ip6, count=2)) == 2
        stats = topo.stats()["dhcp6"]
        assert stats["tx_advertise"] >= 1 and stats["tx_reply"] >= 1
        assert topo.counters()["namespaces"]["c"]["reasons"]["dhcp"] >= 2
    finally:
        stop(proc)


def test_a_pulled_address_is_lost_at_the_next_renewal(tapswitch_factory, dhclient):
    net = random.randint(16, 250)
    topo, c = short_lease_tenant(tapswitch_factory, f"fd{net:02x}::1/64", f"fd{net:02x}::7/64")
    argv, log = dhclient
    mine = f"fd{net:02x}::7"
    proc = run_client(c, argv)
    try:
        assert until(lambda: global6(c) == [f"{mine}/128"], 15, interval=0.1), events(log)
        topo.pull(f"{mine}/64", "c")
        time.sleep(1)
        assert global6(c) == [f"{mine}/128"]          # the lease runs until it is renewed
        assert until(lambda: global6(c) == [], LEASE_S, interval=0.1), events(log)   # Renew at T1
        assert ["RENEW6", f"addr={mine}", "plen=128", f"old={mine}", "life=0", "dns=", "domain="] \
            in events(log)                             # the Reply gave it back with lifetime 0
        topo.push(f"{mine}/64", "c")                   # pushed again: leased again
        assert until(lambda: global6(c) == [f"{mine}/128"], 2 * LEASE_S, interval=0.1), events(log)
    finally:
        stop(proc)


# -- the daemon with hand-made messages ------------------------------------------------------

def port_identity(tenant):
    """(MAC bytes, link-local IPv6Address) of the tenant's side of its port."""
    mac = bytes.fromhex(tenant.netns.link_info(tenant.port)["address"].replace(":", ""))
    return mac, pk6.link_local_of(mac)


def capture(tenant, send=(), seconds=2.0, want=lambda f: True, count=1, then=None):
    """Send the frames ``send`` out of the tenant's port (and call ``then()``), then the
    incoming IPv6 frames ``want`` accepts, until ``count`` of them or ``seconds``."""
    sock = tenant.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x86DD))
    try:
        sock.bind((tenant.port, 0))
        sock.settimeout(0.1)
        for frame in send:
            sock.send(frame)
        if then is not None:
            then()
        got, end = [], time.monotonic() + seconds
        while len(got) < count and time.monotonic() < end:
            try:
                frame, meta = sock.recvfrom(65536)
            except socket.timeout:
                continue
            if meta[2] != socket.PACKET_OUTGOING and want(frame):
                got.append(frame)
        return got
    finally:
        sock.close()


def is_dhcp6(frame):
    return frame[20] == 17 and int.from_bytes(frame[54:56], "big") in (546, 547)


def is_reply(frame):
    return frame[20] == 17 and frame[54:56] == b"\x02\x23"


def is_advert(frame):
    return frame[20] == 58 and frame[54] == pk6.ND_ROUTER_ADVERT


def router_solicitation(mac, ll):
    message = pk6.build_icmp6(ll, pk6.ALL_ROUTERS, pk6.ND_ROUTER_SOLICIT, 0,
                              bytes(4) + pk6.lladdr_option(pk6.OPT_SOURCE_LLADDR, mac))
    return build_ethernet(pk6.group_mac(pk6.ALL_ROUTERS), mac, pk6.ETH_P_IPV6,
                          pk6.build_ipv6(ll, pk6.ALL_ROUTERS, pk6.IPPROTO_ICMPV6, message,
                                         hop_limit=255))


def test_the_daemon_answers_on_the_port_and_says_at_once_what_changed(dhcp6_topo):
    topo, a, c, net = dhcp6_topo
    topo.start()
    assert until(lambda: link_local_ready(c), 10, interval=0.1)
    mac, ll = port_identity(c)
    solicit = frame(message(1, opt(1, DUID), ia_na(1)), src=ll, mac=mac)
    [advertise] = capture(c, [solicit], want=is_reply)
    dhcp = Ether(advertise)[IPv6].payload.payload
    assert dhcp.msgtype == 2 and Ether(advertise).dst == mac.hex(":")
    assert [o.addr for o in dhcp[DHCP6OptIA_NA].ianaopts] == [f"fd{net:02x}::7", f"fd{net:02x}::8"]
    broken = frame(message(1, opt(1, b"\x00")), src=ll, mac=mac)
    assert capture(c, [broken], seconds=0.5, want=is_reply) == []
    assert until(lambda: topo.stats()["dhcp6"].get("malformed_duid_length") == 1, 5, interval=0.1)
    [ra] = capture(c, [router_solicitation(mac, ll)], want=is_advert)
    pkt = Ether(ra)
    assert (pkt[ICMPv6ND_RA].M, pkt[ICMPv6ND_RA].O, pkt[ICMPv6ND_RA].routerlifetime) == (1, 1, 1800)
    assert (pkt[ICMPv6NDOptPrefixInfo].prefix, pkt[ICMPv6NDOptPrefixInfo].A) == (f"fd{net:02x}::", 0)
    # every IPv6 address pulled: a last advertisement at once; one pushed: "ask DHCPv6" at once

    def pull_all():
        for pulled in (f"fd{net:02x}::7/64", f"fd{net:02x}::8/64", f"fd{net:02x}:9::5/64"):
            topo.pull(pulled, "c")
    [last] = capture(c, want=is_advert, seconds=3.0, then=pull_all)
    assert (Ether(last)[ICMPv6ND_RA].M, Ether(last)[ICMPv6ND_RA].routerlifetime) == (0, 0)
    [again] = capture(c, want=is_advert, seconds=3.0,
                      then=lambda: topo.push(f"fd{net:02x}::7/64", "c"))
    assert (Ether(again)[ICMPv6ND_RA].M, Ether(again)[ICMPv6ND_RA].routerlifetime) == (1, 1800)


# -- DHCPv6 servers the L2 does not trust -------------------------------------------------

def send_udp6(tenant, dst, sport, dport, payload=b"dhcp6"):
    """A datagram from the tenant's own stack (link-scope destinations out of its port)."""
    sock = tenant.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("::", sport))
        index = tenant.netns.link_info(tenant.port)["index"]
        sock.sendto(payload, (dst, dport, 0, index if dst.startswith(("ff02", "fe80")) else 0))
    finally:
        sock.close()


def test_dhcpv6_server_messages_come_only_from_a_trusted_port(tapswitch_factory):
    net = random.randint(16, 250)
    topo = tapswitch_factory()
    topo.address_add("init", f"fd{net:02x}::1/64")
    a = topo.tenant("a", f"fd{net:02x}::2/64")
    x = topo.tenant("x", f"fd{net:02x}::9/64")                   # a rogue server
    server = topo.tenant("srv", f"fd{net:02x}::5/64", dhcp_server=True)
    topo.start()
    for t in (a, x, server):
        assert until(lambda: link_local_ready(t), 10, interval=0.1)

    def rogue():
        send_udp6(x, a.ip6, 547, 546, b"advertise")
        send_udp6(x, "ff02::1", 547, 546, b"reconfigure")
    assert capture(a, want=is_dhcp6, seconds=1.5, then=rogue) == []
    assert until(lambda: topo.counters()["namespaces"]["x"]["reasons"]["rogue_dhcp"] == 2, 5, interval=0.1)
    [trusted] = capture(a, want=is_dhcp6, then=lambda: send_udp6(server, a.ip6, 547, 546))
    assert Ether(trusted)[IPv6].src == server.ip6
    # a client's message to All_DHCP_Relay_Agents_and_Servers: the trusted server only
    asked = capture(server, want=is_dhcp6, then=lambda: send_udp6(a, "ff02::1:2", 546, 547))
    assert len(asked) == 1 and capture(x, want=is_dhcp6, seconds=1.0,
                                       then=lambda: send_udp6(a, "ff02::1:2", 546, 547)) == []
