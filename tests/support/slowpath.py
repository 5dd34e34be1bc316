"""A small switch for slow-path tests: one L2 scope with two L3 tenants and an uplink.

scope 1 (L2, switch addresses 10.0.0.1 and fd00::1/64)
  port 10 -> L3 ns 2 (10.0.0.2, fd00::2)    port 11 -> L3 ns 3 (10.0.0.3, fd00::3)
  port 12 -> the L2 itself (uplink): 10.0.0.0/24 on link, 10.1.0.0/16 via 10.0.0.254;
             fd00::/64 on link, fd00:1::/48 via fd00::fe
scope 5 (L2, switch addresses 10.0.0.1 and fd00::1 too: an isolated address space)
  port 20 -> L3 ns 6 (10.0.0.2, fd00::2)
Every port's MTU is 1500 unless ``mtus`` says otherwise.
"""
import ipaddress

from scapy.compat import raw
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether

from fastpath.source_rule import may_send_from
from pyctl.daemon.packets import ip_int
from pyctl.daemon.slowpath import Route

V6 = ipaddress.IPv6Address

PORT_MAC = {10: "02:00:00:00:00:0a", 11: "02:00:00:00:00:0b", 12: "02:00:00:00:00:0c",
            13: "02:00:00:00:00:0d", 20: "02:00:00:00:00:14"}
ENDPOINT_MAC = {10: "52:54:00:00:00:02", 11: "52:54:00:00:00:03", 12: "52:54:00:00:00:fe",
                13: "52:54:00:00:00:fd", 20: "52:54:00:00:06:02"}
SWITCH_IP = "10.0.0.1"
ROUTER_IP = "10.0.0.254"
SWITCH_IP6 = "fd00::1"
ROUTER_IP6 = "fd00::fe"


def mac_bytes(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


class StaticView:
    def __init__(self):
        self.ports = {10: 2, 11: 3, 12: 1, 20: 6}
        self.scopes = {1: 1, 2: 1, 3: 1, 5: 5, 6: 5}
        self.addresses = {(1, ip_int("10.0.0.1")): 1, (1, ip_int("10.0.0.2")): 2,
                          (1, ip_int("10.0.0.3")): 3, (5, ip_int("10.0.0.1")): 5,
                          (5, ip_int("10.0.0.2")): 6,
                          (1, V6("fd00::1")): 1, (1, V6("fd00::2")): 2, (1, V6("fd00::3")): 3,
                          (5, V6("fd00::1")): 5, (5, V6("fd00::2")): 6}
        self.routes = {1: [(ipaddress.ip_network("10.0.0.0/24"), 12, None),
                           (ipaddress.ip_network("10.1.0.0/16"), 12, ROUTER_IP),
                           (ipaddress.ip_network("fd00::/64"), 12, None),
                           (ipaddress.ip_network("fd00:1::/48"), 12, ROUTER_IP6)],
                       5: []}
        self.icmp_sources = {10: SWITCH_IP, 11: SWITCH_IP, 12: SWITCH_IP, 20: SWITCH_IP}
        self.icmp_sources6 = {10: SWITCH_IP6, 11: SWITCH_IP6, 12: SWITCH_IP6, 20: SWITCH_IP6}
        self.mtus = {}
        self.routers = set()                    # ports whose ``router`` option is on
        self.advertising = set()                # scopes whose ``advertise`` option is on

    def port_namespace(self, port_id):
        return self.ports.get(port_id)

    def port_scope(self, port_id):
        ns = self.ports.get(port_id)
        return None if ns is None else self.scopes[ns]

    def port_mac(self, port_id):
        return mac_bytes(PORT_MAC[port_id]) if port_id in self.ports else None

    def owner(self, scope, ip):
        return self.addresses.get((scope, ip))

    def route(self, scope, ip):
        owner = self.owner(scope, ip)
        if owner is not None and owner != scope:
            return Route(next(p for p, ns in self.ports.items() if ns == owner), ip)
        addr = ipaddress.IPv4Address(ip) if isinstance(ip, int) else ip
        best = None
        for net, port, via in self.routes.get(scope, []):
            if net.version == addr.version and addr in net and (
                    best is None or net.prefixlen > best[0].prefixlen):
                best = (net, port, via)
        if best is None:
            return None
        if best[2] is None:
            return Route(best[1], ip)
        return Route(best[1], ip_int(best[2]) if addr.version == 4 else V6(best[2]))

    def source_allowed(self, port_id, ip):
        ns = self.ports.get(port_id)
        scope = self.scopes[ns]
        return may_send_from(ns != scope, ns, self.owner(scope, ip), ip)

    def icmp_source(self, port_id, version=4):
        if version == 6:
            src = self.icmp_sources6.get(port_id)
            return None if src is None else V6(src)
        src = self.icmp_sources.get(port_id)
        return None if src is None else ip_int(src)

    def port_mtu(self, port_id):
        return self.mtus.get(port_id, 1500) if port_id in self.ports else None

    def port_is_router(self, port_id):
        return port_id in self.routers

    def advertises(self, scope):
        return scope in self.advertising

    def advertising_scopes(self):
        return sorted(self.advertising)

    def scope_ports(self, scope):
        return sorted(p for p, ns in self.ports.items() if self.scopes[ns] == scope)

    def own_networks(self, scope, version):
        return sorted({ipaddress.ip_network((ipaddress.ip_address(ip if version == 6 else
                                                                  ipaddress.IPv4Address(ip)),
                                             64 if version == 6 else 24), strict=False)
                       for (s, ip), owner in self.addresses.items()
                       if s == scope and owner == scope
                       and (isinstance(ip, int)) == (version == 4)})


class FakeClock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


def arp_frame(port, op, psrc, pdst, hwdst="00:00:00:00:00:00", eth_dst="ff:ff:ff:ff:ff:ff"):
    mac = ENDPOINT_MAC[port]
    return raw(Ether(dst=eth_dst, src=mac) / ARP(op=op, hwsrc=mac, psrc=psrc, hwdst=hwdst, pdst=pdst))


def ip_frame(port, src, dst, l4, ttl=64, eth_dst=None, **ipkw):
    eth_dst = eth_dst or PORT_MAC[port]
    return raw(Ether(dst=eth_dst, src=ENDPOINT_MAC[port]) / IP(src=src, dst=dst, ttl=ttl, **ipkw) / l4)


def assert_ip_checksums(frame: bytes):
    """The IPv4 header and ICMP/UDP/TCP checksums in ``frame`` are what scapy computes."""
    pkt = Ether(frame)
    ip = pkt[IP]
    fresh = ip.copy()
    del fresh.chksum
    for layer in (ICMP, UDP, TCP):
        if layer in fresh:
            del fresh[layer].chksum
    rebuilt = IP(raw(fresh))
    assert rebuilt.chksum == ip.chksum
    for layer in (ICMP, UDP, TCP):
        if layer in ip:
            assert rebuilt[layer].chksum == ip[layer].chksum


def sent_frames(out, port, eth_dst, count):
    """``out``'s frames, checked to be ``count`` frames out of ``port``, from its MAC to
    ``eth_dst``: [(scapy packet, frame bytes)] in order."""
    assert [p for p, _ in out.frames] == [port] * count
    sent = [(Ether(frame), frame) for _, frame in out.frames]
    for pkt, _ in sent:
        assert pkt.dst == eth_dst and pkt.src == PORT_MAC[port]
    return sent


def ip6_frame(port, src, dst, l4, hlim=64, eth_dst=None, eth_src=None):
    """An IPv6 frame from the endpoint behind ``port`` (to the port's MAC by default)."""
    from scapy.layers.inet6 import IPv6
    eth_dst = eth_dst or PORT_MAC[port]
    return raw(Ether(dst=eth_dst, src=eth_src or ENDPOINT_MAC[port])
               / IPv6(src=src, dst=dst, hlim=hlim) / l4)


def assert_icmp6_checksum(frame: bytes):
    """The ICMPv6 checksum in ``frame`` is the one scapy computes (pseudo-header included)."""
    from scapy.layers.inet6 import IPv6
    pkt = Ether(frame)
    ip = pkt[IPv6]
    icmp = ip.payload
    while not hasattr(icmp, "cksum") and icmp.payload:
        icmp = icmp.payload
    fresh = ip.copy()
    layer = fresh.getlayer(type(icmp))
    del layer.cksum
    assert IPv6(raw(fresh)).getlayer(type(icmp)).cksum == icmp.cksum


def check_every_truncation(frames, reason, headers):
    """Each cut of each frame is handled by a fresh slow path: counted, never raising, and
    no output from a frame cut inside its first ``headers`` bytes."""
    import pytest
    from pyctl.daemon.slowpath import SlowPath
    sp = SlowPath(StaticView(), clock=FakeClock())
    for frame in frames:
        for cut in range(len(frame)):
            before = sum(sp.counters.values())
            out = sp.handle(10, reason, frame[:cut])
            if cut < headers and out.frames:
                pytest.fail(f"truncated frame {frame[:cut].hex()} produced output")
            assert sum(sp.counters.values()) > before
