"""IPv4 and the egress MTU end to end (issue 14 item 11, issue 15's too_big): real kernel
stacks on both sides of tapswitch, tenant a on a 1500-byte link, tenant b on a 1280-byte
one, in two subnets the switch routes between.  A don't-fragment datagram larger than
b's link gets ICMP fragmentation needed with b's MTU, which a's kernel learns (its route
cache shows the path MTU) and TCP then uses; one without DF is fragmented by the switch.
(IPv6's packet too big is test_ipv6.py's.)"""
import random

import pytest

from pyctl.rig import probes

pytestmark = pytest.mark.port_kinds     # a ring port's MTU holds as a TAP's


def a_and_small_b(factory):
    """Started: a (10.N.1.2, MTU 1500) and b (10.N.2.2, MTU 1280), both routed by init.
    b advertises an MSS for a larger link (as a host behind one would): only path MTU
    discovery keeps a's segments small enough."""
    net = random.randint(16, 250)
    topo = factory()
    topo.address_add("init", f"10.{net}.1.1/24")
    topo.address_add("init", f"10.{net}.2.1/24")
    a = topo.tenant("a", f"10.{net}.1.2/24")
    b = topo.tenant("b", f"10.{net}.2.2/24", mtu=1280)
    topo.start()
    b.run(["ip", "route", "replace", f"10.{net}.1.0/24", "via", f"10.{net}.2.1", "dev", b.port,
           "advmss", "1460"])
    return topo, net, a, b


def test_a_df_ping_over_the_mtu_gets_fragmentation_needed_and_tcp_goes_through(tapswitch_factory):
    topo, net, a, b = a_and_small_b(tapswitch_factory)
    assert probes.ping(a, b.ip, count=3)            # neighbours first: only the MTU can refuse

    def df_ping():      # 1,372 bytes of data + 8 (ICMP) + 20 (IP) = 1,400 bytes, DF set
        a.run(["ping", "-M", "do", "-s", "1372", "-c", "1", "-W", "1", b.ip], check=False)
    errors = probes.icmp_errors(a, df_ping)
    assert (3, 4, f"10.{net}.1.1", 1280) in errors, errors
    route = a.run(["ip", "route", "get", b.ip]).stdout
    assert "mtu 1280" in route, route               # a's kernel learnt the path MTU
    again = a.run(["ping", "-M", "do", "-s", "1372", "-c", "1", "-W", "1", b.ip],
                  check=False)
    assert again.returncode != 0 and "1280" in again.stdout + again.stderr
    assert probes.ping(a, b.ip, count=1)            # small ones still go

    sent, received, nbytes, _ = probes.tcp_transfer(a, b, b.ip, 8 << 20, timeout=30)
    assert nbytes == 8 << 20 and received == sent
    slow = topo.stats()["slowpath"]
    assert slow["too_big_df"] >= 1 and slow["icmp_sent_3_4"] >= 1


def test_a_datagram_without_df_is_fragmented_by_the_switch(tapswitch_factory):
    topo, net, a, b = a_and_small_b(tapswitch_factory)
    assert probes.ping(a, b.ip, count=3)
    done = a.run(["ping", "-M", "dont", "-s", "1372", "-c", "3", "-W", "2", b.ip],
                 check=False)
    assert done.returncode == 0, done.stdout + done.stderr   # b reassembled and answered
    slow = topo.stats()["slowpath"]
    assert slow["too_big_fragmented"] >= 3 and slow.get("too_big_df", 0) == 0
    route = a.run(["ip", "route", "get", b.ip]).stdout
    assert "mtu" not in route, route                # nothing learnt: no error was sent
