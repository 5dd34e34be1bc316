"""What the hostile-tenant tests share: the topology (an attacker and two victims on real
kernel stacks), frames an attacker crafts and sends on its own link (it is root in its
kernel namespace), receivers, counters, and a victim's link observed byte for byte."""
from __future__ import annotations

import contextlib
import select
import socket
import struct
import time

from pyctl import kernel
from pyctl.kernel import ethtool
from pyctl.daemon import packets as pk
from pyctl.rig import probes
from tests.support.io import FakeTap

GATEWAY = "10.0.0.1"            # init's own address: the victims' gateway
OTHER_GATEWAY = "10.0.1.1"      # init's address on the attacker's subnet
IP_RECVTTL = 12
SO_RCVBUFFORCE = 33            # <asm-generic/socket.h>; not in the socket module


def build(factory, *, attacker="10.0.1.9/24", **tenant):
    """A started topology (in this process: ``topo.daemon``): victims ``victim-a``
    10.0.0.2/24 and ``victim-b`` 10.0.0.3/24, attacker ``attacker`` at ``attacker``
    (another subnet of init's by default).  Returns (topo, a, b, x)."""
    topo = factory(mode="thread")
    topo.address_add("init", f"{GATEWAY}/24")
    topo.address_add("init", f"{OTHER_GATEWAY}/24")
    a = topo.tenant("victim-a", "10.0.0.2/24", **tenant)
    b = topo.tenant("victim-b", "10.0.0.3/24", **tenant)
    x = topo.tenant("attacker", attacker, **tenant)
    topo.start()
    return topo, a, b, x


def reasons(topo, name):
    return topo.counters()["namespaces"][name]["reasons"]


def warm(topo, *tenants):
    """Each tenant has said something (its MAC is known to the switch) and knows the
    gateway's MAC: only the rule under test can drop what follows."""
    for t in tenants:
        gateway = GATEWAY if t.ip.startswith("10.0.0.") else OTHER_GATEWAY
        assert probes.ping(t, gateway, count=1), f"{t.name} cannot reach its gateway"


@contextlib.contextmanager
def receivers(port, *tenants):
    """A UDP socket per tenant bound to 0.0.0.0:``port`` (unicast and broadcasts)."""
    socks = {}
    try:
        for t in tenants:
            s = t.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.setsockopt(socket.SOL_IP, IP_RECVTTL, 1)
            s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)   # they are read at the end
            s.bind(("0.0.0.0", port))
            socks[t.name] = s
        yield socks
    finally:
        for s in socks.values():
            s.close()


def received(sock, timeout=0.5):
    """[(payload, source ip, ttl)] until ``timeout`` passes without a datagram."""
    out = []
    while select.select([sock], [], [], timeout)[0]:
        data, anc, _, addr = sock.recvmsg(65535, socket.CMSG_SPACE(4))
        ttl = next((struct.unpack("i", d[:4])[0] for level, kind, d in anc
                    if level == socket.SOL_IP and kind == socket.IP_TTL), None)
        out.append((data, addr[0], ttl))
    return out


def udp_frame(dst_mac, src_mac, src, dst, sport, dport, payload, ttl=64):
    """Ethernet + IPv4 + UDP, checksums right (``src``/``dst`` dotted)."""
    s, d = pk.ip_int(src), pk.ip_int(dst)
    length = 8 + len(payload)
    pseudo = struct.pack("!IIBBH", s, d, 0, pk.IPPROTO_UDP, length)
    udp = struct.pack("!HHHH", sport, dport, length, 0) + payload
    udp = udp[:6] + struct.pack("!H", pk.checksum(pseudo + udp) or 0xFFFF) + udp[8:]
    return pk.build_ethernet(dst_mac, src_mac, pk.ETH_P_IP,
                             pk.build_ipv4(s, d, pk.IPPROTO_UDP, udp, ttl=ttl))


def switch_mac(topo, tenant):
    """The switch's MAC on the tenant's port (its gateway's, as it sees it)."""
    return bytes.fromhex(topo.switch.port(tenant.port).mac.replace(":", ""))


def own_mac(tenant):
    return bytes.fromhex(tenant.netns.link_info(tenant.port)["address"].replace(":", ""))


send_frames = probes.send_frames       # whole Ethernet frames onto the tenant's link


def send_udp(tenant, dst, port, payloads, *, ttl=None, sport=0, broadcast=False):
    """Datagrams from the tenant's own stack (its address as the source)."""
    sock = tenant.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if broadcast:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        if ttl is not None:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
        sock.bind(("0.0.0.0", sport))
        for payload in payloads:
            sock.sendto(payload, (dst, port))
    finally:
        sock.close()


@contextlib.contextmanager
def observed_link(topo, tenant):
    """The frames the switch writes for ``tenant``, header and all: its port's fd in the
    packet loop is swapped for a socket pair the test reads (``FakeTap.drain()``); the
    TAP comes back in when the block ends."""
    daemon = topo.daemon
    pid = topo.switch.port(tenant.port).id
    entry = daemon.ports.open[pid]
    link = FakeTap()

    def swap(fd):
        daemon.loop.remove_port(pid)
        daemon.loop.add_port(pid, fd, vnet_hdr=entry.tap.vnet_hdr)
    daemon.call(lambda: swap(link.loop_fd))
    try:
        yield link
    finally:
        daemon.call(lambda: swap(entry.tap.fd))
        link.close()


def forwarder_with_checked_sums(tenant, registry):
    """Make ``tenant``'s kernel forward what it receives on a veth pair inside its own
    namespace, with GRO on the receiving end (TSO off on the sending one): the checksums
    GRO verified reach the TAP as the virtio-net header's DATA_VALID claim.  Returns
    ``send(frame)``, which puts a frame on the veth as if it came from elsewhere."""
    ns = tenant.netns
    tag = kernel.process_tag()[:5]
    near, far = f"hn{tag}", f"hf{tag}"
    kernel.create_veth(near, far, netns_a=ns, netns_b=ns, registry=registry)
    for link in (near, far):
        ns.link_up(link)
    ethtool.set_feature(far, "gro", True, netns=ns)
    ethtool.set_feature(near, "tso", False, netns=ns)
    for key in ("net.ipv4.ip_forward", f"net.ipv4.conf.{far}.accept_local",
                "net.ipv4.conf.all.accept_local"):
        ns.set_sysctl(key, 1)
    for key in ("net.ipv4.conf.all.rp_filter", f"net.ipv4.conf.{far}.rp_filter"):
        ns.set_sysctl(key, 0)
    far_mac = bytes.fromhex(ns.link_info(far)["address"].replace(":", ""))
    near_mac = bytes.fromhex(ns.link_info(near)["address"].replace(":", ""))

    def send(frame):
        sock = ns.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        try:
            sock.bind((near, 0))
            sock.send(far_mac + near_mac + frame[12:])
        finally:
            sock.close()
    return send


def tcp_frame(src, dst, payload=b"claimed"):
    """Ethernet (MACs filled in by the sender) + IPv4 + a TCP segment, checksums right."""
    s, d = pk.ip_int(src), pk.ip_int(dst)
    tcp = struct.pack("!HHIIBBHHH", 40000, 5001, 1, 0, 5 << 4, 0x18, 1024, 0, 0) + payload
    pseudo = struct.pack("!IIBBH", s, d, 0, pk.IPPROTO_TCP, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", pk.checksum(pseudo + tcp)) + tcp[18:]
    return bytes(12) + struct.pack("!H", pk.ETH_P_IP) + pk.build_ipv4(s, d, pk.IPPROTO_TCP, tcp)


def until(predicate, timeout=5.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()
