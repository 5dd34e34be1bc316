"""A PacketLoop between two kernel network namespaces, for the root e2e tests and
bench/packet_loop_tcp.py.

Two tenants (L3 namespaces 1 and 2 of one L2, addresses 10.R.0.1 and 10.R.0.2/24, R
random) each behind a port whose endpoint side is in its own kernel namespace: a TAP
moved there, or a veth pair whose switch end is served by AF_PACKET rings ("veth") or
an XDP socket ("xdp"), in a private namespace of the rig.  The slow path does not
run here, so ARP is settled by hand: each kernel namespace gets a permanent neighbour
entry for the other tenant's address pointing at the switch's MAC on its port, and the
Datapath learns each tenant's MAC from its TAP.  The loop runs in a thread.
"""
import random
import socket
import threading

import fastpath
from pyctl.daemon import tap_port as ports
from pyctl.daemon.veth_port import VethPort
from pyctl.kernel.private_netns import PrivateNamespace

NUD_PERMANENT = 0x80


def _ip(dotted):
    return int.from_bytes(socket.inet_aton(dotted), "big")


class LoopRig:
    """``side`` options per tenant: "vnet" (TAP, header, default offloads), "vnet-off"
    (TAP, header, no offloads), "plain" (TAP, no header), "veth" (AF_PACKET rings), "xdp"
    (AF_XDP)."""

    def __init__(self, make_netns, sides=("vnet", "vnet"), *, batch_size=256, backend=None):
        net = random.randint(1, 250)
        self.addrs = {1: f"10.{net}.0.1", 2: f"10.{net}.0.2"}
        self.ns, self.taps = {}, {}
        self.dp = fastpath.Datapath(max_namespaces=8, max_ports=8, route_cache_size=16)
        self.loop = fastpath.PacketLoop(self.dp, batch_size=batch_size, backend=backend)
        self._thread = None
        self._done = False
        self.slow = []
        self.switch_ns = None
        try:
            for t, side in zip((1, 2), sides):
                self.ns[t] = make_netns(prefix="tsloop")
                if side in ("veth", "xdp"):
                    if self.switch_ns is None:
                        self.switch_ns = PrivateNamespace("loop rig's switch namespace")
                    self.taps[t] = VethPort.open(kind=side, loop=self.loop, switch_ns=self.switch_ns,
                                                 netns=self.ns[t], address=f"{self.addrs[t]}/24")
                    continue
                opts = {"plain": {}, "vnet": {"vnet_hdr": True},
                        "vnet-off": {"vnet_hdr": True, "offloads": []}}[side]
                self.taps[t] = ports.TapPort.open(netns=self.ns[t], address=f"{self.addrs[t]}/24",
                                                  **opts)
            with self.dp.update():
                self.dp.set_namespace(0, 0, False)
                for t in (1, 2):
                    self.dp.set_namespace(t, 0, True)
                    self.dp.set_port(t, t, self.taps[t].mac)
                    self.dp.add_address(0, _ip(self.addrs[t]), t)
            for t in (1, 2):
                self.dp.set_peer_mac(t, bytes.fromhex(self.taps[t].kernel_mac().replace(":", "")))
                other = 3 - t
                with self.ns[t].ipr() as ipr:
                    idx = ipr.link_lookup(ifname=self.taps[t].name)[0]
                    ipr.neigh("add", dst=self.addrs[other], ifindex=idx, state=NUD_PERMANENT,
                              lladdr=":".join(f"{b:02x}" for b in self.taps[t].mac))
                self.loop.add_port(t, self.taps[t].loop_io, vnet_hdr=self.taps[t].vnet_hdr)
        except BaseException:
            self.close()
            raise

    def start(self):
        self._thread = threading.Thread(target=self._spin, name="packet-loop", daemon=True)
        self._thread.start()
        return self

    def _spin(self):
        while not self._done:
            self.loop.run(-1)
            self.slow += self.loop.slow_frames()

    def close(self):
        if self._thread is not None:
            self._done = True
            self.loop.stop()
            self._thread.join(10)
            self._thread = None
        for t, tap in self.taps.items():
            if t in self.loop.ports():
                self.loop.remove_port(t)
            tap.close()
        for ns in self.ns.values():
            ns.remove()
        if self.switch_ns is not None:
            self.switch_ns.remove()

    def snmp(self, t):
        """The tenant namespace's /proc/net/snmp as {"Ip": {...}, "Tcp": {...}, ...}."""
        text = self.ns[t].run(["cat", "/proc/net/snmp"]).stdout.splitlines()
        out = {}
        for names, values in zip(text[::2], text[1::2]):
            group = names.split(":")[0]
            out[group] = dict(zip(names.split()[1:], map(int, values.split()[1:])))
        return out
