"""`tapswitch demo`: the L2/L3 model with real kernel network stacks, in a minute.

One L2 (the init namespace, the switch's own address 10.0.0.1/24), three L3
tenants (web, db, cache), each a kernel network namespace whose TAP is a port
of the switch.  Real traffic crosses the switch; an address is pushed into a
tenant live; a tenant is destroyed and its address returns to the L2; a
spoofing attempt is dropped and counted.  Everything is removed at the end.
"""
from __future__ import annotations

import os
import sys

from pyctl.rig import probes
from pyctl.daemon.daemon import print_counters
from pyctl.rig.topology import Topology


def _say(out, text):
    print(text, file=out, flush=True)


def _addresses(topo, ns):
    return ", ".join(f"{a.address} ({a.owner})" if hasattr(a, "owner") else str(a)
                     for a in topo.switch.addresses(ns, tagged=True))


def main(out=None) -> int:
    out = out if out is not None else sys.stdout
    if os.geteuid() != 0:
        _say(out, "tapswitch demo: needs root (it creates TAP devices and kernel network namespaces)")
        return 1
    with Topology(vnet_hdr=True) as topo:    # virtio-net header + TSO on every TAP
        _say(out, "== tapswitch demo ==")
        topo.address_add("init", "10.0.0.1/24")
        web = topo.tenant("web", "10.0.0.2/24")
        db = topo.tenant("db", "10.0.0.3/24")
        cache = topo.tenant("cache", "10.0.0.4/24")
        topo.start()
        _say(out, f"built: L2 'init' (switch address 10.0.0.1/24) with L3 tenants web, db, cache, "
                  f"each in kernel namespace {web.netns_name.rsplit('-', 1)[0]}-*; "
                  f"I/O backend {topo.daemon.loop.backend}")
        _say(out, f"init sees (tagged): {_addresses(topo, 'init')}")
        _say(out, f"web sees: {', '.join(map(str, topo.switch.addresses('web')))}")

        rtts = probes.ping(web, "10.0.0.1", count=3)
        _say(out, f"ping web -> switch 10.0.0.1: {len(rtts)}/3 replies"
                  + (f", median {sorted(rtts)[len(rtts) // 2] * 1e3:.2f} ms" if rtts else ""))
        rtts = probes.ping(web, db.ip, count=3)
        _say(out, f"ping web -> db {db.ip}: {len(rtts)}/3 replies")

        sent, got, nbytes, secs = probes.tcp_transfer(web, db, db.ip, 256 << 20)
        _say(out, f"TCP web -> db: {nbytes >> 20} MiB in {secs:.2f} s "
                  f"({nbytes * 8 / secs / 1e9:.2f} Gbit/s), digest {'matches' if sent == got else 'DIFFERS'}")

        rx = probes.udp_receiver(cache, cache.ip, 5000)
        probes.udp_send(web, cache.ip, 5000, [b"hello %d" % i for i in range(20)])
        got_udp = probes.drain(rx, 0.5)
        rx.close()
        _say(out, f"UDP web -> cache: {len(got_udp)}/20 datagrams")

        topo.assign_and_push("10.0.0.10/24", "db")
        rx = probes.udp_receiver(db, "10.0.0.10", 5001)
        probes.udp_send(web, "10.0.0.10", 5001, [b"to the pushed address"] * 5)
        got_push = probes.drain(rx, 0.5)
        rx.close()
        _say(out, f"pushed 10.0.0.10/24 into db live: db now holds "
                  f"{', '.join(map(str, topo.switch.addresses('db')))}; {len(got_push)}/5 datagrams "
                  f"to it arrived at db")

        rx = probes.udp_receiver(db, db.ip, 5002)
        probes.send_spoofed_udp(web, cache.ip, db.ip, 5002, b"forged", count=5)
        forged = probes.drain(rx, 0.5)
        rx.close()
        spoofed = topo.counters()["namespaces"]["web"]["reasons"].get("spoofed_source", 0)
        _say(out, f"web forging cache's address {cache.ip}: {len(forged)} datagrams reached db, "
                  f"{spoofed} dropped as spoofed_source")

        topo.destroy("cache")
        _say(out, f"destroyed tenant cache: its address returned to the L2; init sees (tagged): "
                  f"{_addresses(topo, 'init')}")
        print_counters(topo.counters(), out)
        _say(out, "(unsupported_ethertype: the tenants' kernels send IPv6 neighbour discovery; "
                  "tapswitch forwards IPv4 and counts the rest as drops)")
    _say(out, "cleaned up: no TAP, kernel namespace or socket of the demo remains")
    return 0
