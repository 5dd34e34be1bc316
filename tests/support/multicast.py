"""Helpers for the multicast tests: both datapaths, IGMP frames
as endpoints send them, and a model + compiler + snooping rig without a
packet loop."""
import ipaddress
import struct

from fastpath import Datapath
from fastpath.reference import ReferenceDatapath
from pyctl import Switch
from pyctl.daemon import igmp
from pyctl.daemon import packets as pk
from pyctl.compile.compiler import Compiler
from pyctl.daemon.view import PlanView
from pyctl.daemon.multicast import Multicast


def ip(text):
    return int(ipaddress.ip_address(text))


G1, G2 = ip("239.1.1.1"), ip("239.2.2.2")


def datapaths():
    """Both implementations of the fast path's tables: the compiled one and the reference."""
    return [Datapath, ReferenceDatapath]


def make_datapath(cls):
    return cls(max_namespaces=64, max_ports=64)


# -- IGMP as a Linux endpoint sends it ------------------------------------------------

def _igmp_frame(src_mac, src_ip, dst_ip, message):
    dst = ip(dst_ip)
    head = struct.pack("!BBHHHBBHII", 0x46, 0xC0, 24 + len(message), 0, 0x4000, 1,
                       pk.IPPROTO_IGMP, 0, ip(src_ip), dst) + igmp.ROUTER_ALERT
    head = head[:10] + pk.checksum(head).to_bytes(2, "big") + head[12:]
    dst_mac = b"\x01\x00\x5e" + (dst & 0x7FFFFF).to_bytes(3, "big")
    return pk.build_ethernet(dst_mac, src_mac, pk.ETH_P_IP, head + message)


def _with_checksum(message):
    return message[:2] + pk.checksum(message).to_bytes(2, "big") + message[4:]


def v3_report(src_mac, src_ip, *records):
    """records: (record type, group int, [source ints])"""
    body = b""
    for rtype, group, sources in records:
        body += struct.pack("!BBHI", rtype, 0, len(sources), group)
        body += b"".join(s.to_bytes(4, "big") for s in sources)
    message = _with_checksum(struct.pack("!BBHHH", igmp.IGMP_V3_REPORT, 0, 0, 0, len(records)) + body)
    return _igmp_frame(src_mac, src_ip, "224.0.0.22", message)


def v3_join(src_mac, src_ip, group):
    return v3_report(src_mac, src_ip, (igmp.CHANGE_TO_EXCLUDE, group, []))


def v3_leave(src_mac, src_ip, group):
    return v3_report(src_mac, src_ip, (igmp.CHANGE_TO_INCLUDE, group, []))


def v2_report(src_mac, src_ip, group):
    message = _with_checksum(struct.pack("!BBHI", igmp.IGMP_V2_REPORT, 0, 0, group))
    return _igmp_frame(src_mac, src_ip, pk.ip_str(group), message)


def v2_leave(src_mac, src_ip, group):
    message = _with_checksum(struct.pack("!BBHI", igmp.IGMP_V2_LEAVE, 0, 0, group))
    return _igmp_frame(src_mac, src_ip, "224.0.0.2", message)


# -- the rig ----------------------------------------------------------------------------

PEER = {"web": b"\x02\xee\x00\x00\x00\x02", "db": b"\x02\xee\x00\x00\x00\x03",
        "up0": b"\x02\xee\x00\x00\x00\xfe", "b1": b"\x02\xee\x00\x00\x00\x12"}


def build_switch():
    """init (10.0.0.1/24) with L3s web and db and an uplink; a sibling L2 blue with b1."""
    sw = Switch()
    sw.address_add("init", "10.0.0.1/24")
    for name, addr in (("web", "10.0.0.2/24"), ("db", "10.0.0.3/24")):
        sw.create(name, kind="l3", parent="init")
        sw.assign_and_push(addr, name)
        sw.port_add(f"tap-{name}", name)
    sw.port_add("up0", "init")
    sw.create("blue", kind="l2", parent="init")
    sw.address_add("blue", "10.0.0.1/24")
    sw.create("b1", kind="l3", parent="blue")
    sw.assign_and_push("10.0.0.2/24", "b1")
    sw.port_add("tap-b1", "b1")
    return sw


class Rig:
    """Model, compiler, datapath and the daemon's multicast glue, wired like the daemon
    (``Compiler.change()`` is ``Daemon.change()`` without the TAPs)."""

    def __init__(self, dp_cls=None, dp=None):
        self.sw = build_switch()
        self.dp = dp if dp is not None else make_datapath(dp_cls or datapaths()[0])
        self.compiler = Compiler(self.sw, self.dp)
        self.compiler.sync()
        self.view = PlanView(self.compiler, self.dp)
        self.mc = Multicast(self.sw, self.view, self.compiler.change)
        self.mc.attach()
        self.ids = {ns.name: ns.id for ns in self.sw.namespaces()}
        self.ports = {p.name: p.id for p in self.sw.ports()}
        self.sw.subscribe(lambda event: self.compiler.sync())

    def send(self, port, frame, now):
        return self.mc.handle(self.ports[port], frame, now)

    def group(self, scope, group):
        return self.dp.lookup_group(self.ids[scope], group)

    def names(self, ids):
        back = {v: k for k, v in self.ids.items()}
        return sorted(back[i] for i in ids)


# -- MLD as a Linux endpoint sends it (from its link-local address, hop limit 1) ----------

def link_local(mac):
    from pyctl.daemon.packets6 import link_local_of
    return str(link_local_of(mac))


def _mld_frame(src_mac, dst, message, src=None, hlim=1):
    from scapy.compat import raw
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrHopByHop, RouterAlert
    from scapy.layers.l2 import Ether
    dst_mac = "33:33:" + ":".join(f"{b:02x}" for b in ipaddress.IPv6Address(dst).packed[12:])
    return raw(Ether(dst=dst_mac, src=src_mac.hex(":"))
               / IPv6(src=src or link_local(src_mac), dst=dst, hlim=hlim)
               / IPv6ExtHdrHopByHop(options=[RouterAlert()]) / message)


def mld2_report(src_mac, *records, src=None, hlim=1):
    """records: (record type, group text, [source texts])"""
    from scapy.layers.inet6 import ICMPv6MLDMultAddrRec, ICMPv6MLReport2
    recs = [ICMPv6MLDMultAddrRec(rtype=rtype, dst=group, sources=list(sources))
            for rtype, group, sources in records]
    return _mld_frame(src_mac, "ff02::16", ICMPv6MLReport2(records=recs), src, hlim)


def mld2_join(src_mac, group, **kw):
    return mld2_report(src_mac, (igmp.CHANGE_TO_EXCLUDE, group, []), **kw)


def mld2_leave(src_mac, group, **kw):
    return mld2_report(src_mac, (igmp.CHANGE_TO_INCLUDE, group, []), **kw)


def mld1_report(src_mac, group, **kw):
    from scapy.layers.inet6 import ICMPv6MLReport
    return _mld_frame(src_mac, group, ICMPv6MLReport(mladdr=group), **kw)


def mld1_done(src_mac, group, **kw):
    from scapy.layers.inet6 import ICMPv6MLDone
    return _mld_frame(src_mac, "ff02::2", ICMPv6MLDone(mladdr=group), **kw)
