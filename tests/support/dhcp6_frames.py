"""DHCPv6 client messages made by hand (struct-built, every field as given) for the
tests of the switch's DHCPv6 server and its wire format."""
import ipaddress
import struct

from pyctl.daemon import packets6 as pk6
from pyctl.daemon.packets import build_ethernet, checksum

V6 = ipaddress.IPv6Address
CLIENT_MAC = bytes.fromhex("02aa00000007")
SWITCH_MAC = bytes.fromhex("020000000001")
CLIENT_LL = V6("fe80::aa:ff:fe00:7")
DUID = bytes.fromhex("00030001") + CLIENT_MAC          # DUID-LL
ALL_SERVERS = V6("ff02::1:2")


def opt(code, data=b""):
    return struct.pack("!HH", code, len(data)) + data


def ia_na(iaid, *addresses, t1=0, t2=0, extra=b""):
    inner = b"".join(opt(5, V6(a).packed + struct.pack("!II", 0, 0)) for a in addresses)
    return opt(3, struct.pack("!III", iaid, t1, t2) + inner + extra)


def frame(body, *, src=CLIENT_LL, dst=ALL_SERVERS, sport=546, dport=547, length=None,
          csum=None, next_header=17, mac=CLIENT_MAC):
    """Ethernet / IPv6 / UDP around ``body``, struct-built; the UDP checksum right unless
    ``csum`` says otherwise."""
    seg = struct.pack("!HHHH", sport, dport, length if length is not None else 8 + len(body), 0) + body
    if csum is None:
        csum = checksum(pk6.pseudo_header(src, dst, len(seg), 17) + seg) or 0xFFFF
    seg = seg[:6] + csum.to_bytes(2, "big") + seg[8:]
    return build_ethernet(b"\x33\x33\x00\x01\x00\x02", mac, 0x86DD,
                          pk6.build_ipv6(src, dst, next_header, seg, hop_limit=1))


def message(msg_type, *options, xid=0xABCDEF):
    return bytes([msg_type]) + xid.to_bytes(3, "big") + b"".join(options)
