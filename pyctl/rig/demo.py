"""`tapswitch demo`: the L2/L3 model with real kernel network stacks, in a minute.

One L2 (the init namespace, the switch's own address 10.0.0.1/24), three L3
tenants (web, db, cache), each a kernel network namespace whose TAP is a port
of the switch.  Real traffic crosses the switch; an address is pushed into a
tenant live and pulled back; a tenant is destroyed and its address returns to
the L2; a spoofing attempt is dropped and counted.  What L2, L3, push and pull
mean is said in one line each as they come; the demo ends with the commands to
try next.  Everything is removed at the end.
"""
from __future__ import annotations

import os
import sys

from pyctl.rig import probes
from pyctl.control.counters import format_counters
from pyctl.rig.topology import Topology


def _say(out, text):
    print(text, file=out, flush=True)


def _addresses(topo, ns):
    return ", ".join(f"{a.address} ({a.owner})" if hasattr(a, "owner") else str(a)
                     for a in topo.switch.addresses(ns, tagged=True))


# One line each, said when the demo first shows the thing.
EXPLAIN = {
    "l2": "L2: a namespace that owns ports, addresses and routes (here the root, 'init', "
          "holds the tenants' gateway 10.0.0.1)",
    "l3": "L3: a leaf namespace that owns only the addresses its parent L2 gives it; it cannot "
          "configure anything and may send only from its own addresses",
    "push": "push: the L2 moves one of its addresses into an L3; from then on only that L3 "
            "sends from it and receives on it",
    "pull": "pull: the address goes back from the L3 to its L2 (destroying the L3 pulls all "
            "of its addresses)",
}

NEXT_COMMANDS = """next, as root:
  tapswitch check examples/two-tenants.toml        # every problem of a topology file at once
  tapswitch run examples/two-tenants.toml          # the daemon (Ctrl-C or SIGTERM stops it, SIGHUP reloads the file)
  tapswitch ctl namespaces                         # in another shell: the tree it built
  tapswitch ctl addresses tenants --tagged         # who holds which address
  tapswitch ctl counters                           # traffic and drops, per namespace and port
  tapswitch ctl verbs                              # everything the control socket can do
more: docs/model.md (the model), docs/operations.md (logs, reload, metrics)"""


def main(out=None) -> int:
    out = out if out is not None else sys.stdout
    from pyctl.kernel.facts import missing_capabilities
    missing = missing_capabilities(("CAP_NET_ADMIN", "CAP_SYS_ADMIN"))
    if missing or os.geteuid() != 0:
        missing = missing or ["root"]
        _say(out, f"tapswitch demo: needs root (missing {' and '.join(missing)}): it creates TAP "
                  f"devices (CAP_NET_ADMIN) and kernel network namespaces (CAP_SYS_ADMIN)")
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
        _say(out, "  " + EXPLAIN["l2"])
        _say(out, "  " + EXPLAIN["l3"])
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

        _say(out, "  " + EXPLAIN["push"])
        topo.assign_and_push("10.0.0.10/24", "db")
        rx = probes.udp_receiver(db, "10.0.0.10", 5001)
        probes.udp_send(web, "10.0.0.10", 5001, [b"to the pushed address"] * 5)
        got_push = probes.drain(rx, 0.5)
        rx.close()
        _say(out, f"pushed 10.0.0.10/24 into db live: db now holds "
                  f"{', '.join(map(str, topo.switch.addresses('db')))}; {len(got_push)}/5 datagrams "
                  f"to it arrived at db")
        _say(out, "  " + EXPLAIN["pull"])
        topo.pull("10.0.0.10/24", "db")
        _say(out, f"pulled 10.0.0.10/24 back from db: db holds "
                  f"{', '.join(map(str, topo.switch.addresses('db')))}; init holds it again")

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
        print(format_counters(topo.counters()), file=out)
        _say(out, "(to the slow path: ARP and neighbour discovery, which the switch answers "
                  "for its L2, the tenants' MLD reports, which it snoops, and 'local' frames for "
                  "the L2's own addresses; everything else stays in the compiled fast path)")
    _say(out, "cleaned up: no TAP, kernel namespace or socket of the demo remains")
    _say(out, NEXT_COMMANDS)
    return 0
