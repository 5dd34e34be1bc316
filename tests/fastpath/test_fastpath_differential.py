"""Differential test: hypothesis builds topologies, tables and batches of well-formed and
malformed frames; the compiled core must give the reference's verdicts, bytes and counters.
The tables include what the isolation rules read: each address's subnet (prefix length),
directed-broadcast lists of several subnets, ports marked as DHCP servers, scopes that let
routed directed broadcasts in; frames include UDP to and from the DHCP ports, from 0.0.0.0."""
import struct

from hypothesis import HealthCheck, given, settings, strategies as st

from fastpath.reference import ipv4_checksum
from differential_worlds import common_change, routes_and_neighbours, run_twins, skeleton
from fastpath_frames import BCAST, gso_header, ip, ipv4_frame, arp_frame, mac

ADDRS = [ip("10.0.0.%d" % k) for k in (1, 2, 3, 4, 5, 9)] + [ip("10.1.0.1"), ip("192.168.1.7")]
SPECIAL = [0, 0xFFFFFFFF, ip("10.0.0.255"), ip("239.1.2.3"), ip("224.0.0.1"), ip("127.0.0.1"),
           ip("240.1.1.1"), ip("8.8.8.8"), ip("10.9.1.1"), ip("10.9.200.3"), ip("10.0.0.127"),
           ip("10.1.0.255")]
BROADCASTS = [ip("10.0.0.255"), ip("10.0.0.127"), ip("10.1.0.255")]
PLENS = [24, 24, 24, 25, 16, 30, 31, 32]
UDP_PORTS = [67, 68, 53, 5000]
ROUTES = [(0, 0), (ip("10.9.0.0"), 16), (ip("10.9.1.0"), 24), (ip("10.9.1.0"), 25),
          (ip("10.9.1.1"), 32), (ip("8.0.0.0"), 8), (ip("10.0.0.0"), 8)]
GATEWAYS = [0, ip("10.0.0.100"), ip("10.0.0.9")]
MAX_PORTS = 8
MTUS = [68, 90, 120, 1500]        # frames reach 188 bytes: some fit, some are too_big


@st.composite
def worlds(draw):
    """A list of table writes: L2 scopes 0 and 1, up to 5 L3 namespaces, ports, tables."""
    ops, scopes, _, namespaces, scope_of, ports, _ = skeleton(draw, MAX_PORTS, mtus=MTUS, dhcp=True)
    owned = {}
    for a in draw(st.lists(st.sampled_from(ADDRS), max_size=8)):
        n = draw(st.sampled_from(namespaces))
        if (scope_of[n], a) not in owned:
            owned[(scope_of[n], a)] = n
            ops.append(("add_address", scope_of[n], a, n, draw(st.sampled_from(PLENS))))
    for s in scopes:
        for bcast in BROADCASTS:
            if (s, bcast) not in owned and draw(st.booleans()):
                members = [n for n in namespaces if scope_of[n] == s and draw(st.booleans())]
                ops.append(("set_broadcast", s, bcast, members))
        if draw(st.booleans()):
            ops.append(("set_directed_broadcast", s, True))
        ops += routes_and_neighbours(draw, s, ports, ROUTES, GATEWAYS,
                                     [ip("10.9.1.1"), ip("8.8.8.8")])
    peers = {p: mac(0x100 + p) for p in ports if draw(st.booleans())}
    return ops, ports, owned, peers


def with_header_checksum(f):
    """Frame f with its IPv4 header checksum recomputed (where it has a whole header)."""
    hlen = (f[14] & 15) * 4
    if hlen < 20 or 14 + hlen > len(f):
        return f
    h = f[14:24] + b"\0\0" + f[26:14 + hlen]
    return f[:24] + ipv4_checksum(h).to_bytes(2, "big") + f[26:]


@st.composite
def frames(draw, ports, owned):
    port = draw(st.sampled_from(sorted(ports) + [MAX_PORTS - 1]))
    known = [a for (_, a) in owned]
    src = draw(st.sampled_from(known + [0, ip("10.0.0.77"), ip("127.0.0.1")]) if known else st.just(0))
    dst = draw(st.sampled_from(known + SPECIAL) if known else st.sampled_from(SPECIAL))
    dmac = draw(st.sampled_from([mac(port + 1)] * 6 + [BCAST, bytes.fromhex("01005e010203"), mac(0x77)]))
    smac = draw(st.sampled_from([mac(0x100 + port), mac(0x400), bytes(6), BCAST]))
    kind = draw(st.sampled_from(["ip"] * 8 + ["arp", "ether"]))
    if kind == "arp":
        f = arp_frame(smac, src, dst)
    elif kind == "ether":
        f = dmac + smac + draw(st.sampled_from([b"\x86\xdd", b"\x81\x00", b"\x08\x00"])) + draw(st.binary(max_size=40))
    else:
        proto = draw(st.sampled_from([17, 17, 17, 2, 6, 1]) | st.integers(0, 255))
        payload = draw(st.binary(max_size=30)) + bytes(draw(st.sampled_from([0, 0, 40, 110])))
        if proto == 17 and draw(st.booleans()):
            payload = struct.pack("!HH", draw(st.sampled_from(UDP_PORTS)),
                                  draw(st.sampled_from(UDP_PORTS))) + payload
        f = ipv4_frame(dmac, smac, src, dst, ttl=draw(st.sampled_from([0, 1, 2, 64, 255])),
                       proto=proto, payload=payload,
                       options=draw(st.sampled_from([b"", b"\x01\x01\x01\x00"])),
                       pad=draw(st.sampled_from([b"", bytes(10)])))
    mutation = draw(st.sampled_from(["none"] * 6 + ["truncate", "byte", "ihl", "total", "header"]))
    if mutation == "truncate":
        f = f[:draw(st.integers(0, len(f)))]
    elif mutation == "byte" and f:
        k = draw(st.integers(0, len(f) - 1))
        f = f[:k] + bytes([draw(st.integers(0, 255))]) + f[k + 1:]
    elif mutation == "ihl" and len(f) > 14:
        f = f[:14] + bytes([(f[14] & 0xF0) | draw(st.integers(0, 15))]) + f[15:]
    elif mutation == "total" and len(f) > 17:
        f = f[:16] + draw(st.integers(0, 0xFFFF)).to_bytes(2, "big") + f[18:]
    elif mutation == "header" and len(f) >= 34:
        # any field of the IPv4 header (version, IHL, length, TTL, protocol, addresses),
        # with the checksum made right again so the frame gets past the checksum check
        k = draw(st.integers(14, 33))
        f = with_header_checksum(f[:k] + bytes([draw(st.integers(0, 255))]) + f[k + 1:])
    return port, f


def headers(draw, n):
    """GSO claims before some frames (TCPv4, USO; gso_size around the drawn MTUs' segment
    room), as the packet loop keeps a vnet port's header before each frame."""
    out = {}
    for i in range(n):
        if draw(st.integers(0, 3)) == 0:
            out[i] = gso_header(draw(st.sampled_from([0, 1, 5])), draw(st.integers(1, 200)),
                                34, draw(st.sampled_from([6, 16])))
    return out


@st.composite
def scenarios(draw):
    ops, ports, owned, peers = draw(worlds())
    batches = [(fs, headers(draw, len(fs))) for fs in
               draw(st.lists(st.lists(frames(ports, owned), min_size=1, max_size=40), min_size=1, max_size=3))]
    # between batches, one table write (exercises route-cache invalidation)
    changes = draw(st.lists(st.sampled_from(["route", "unroute", "neigh", "move", "port", "dhcp",
                                             "serve", "directed", "subnet"]),
                            min_size=len(batches), max_size=len(batches)))
    return ops, peers, batches, changes, sorted(ports), owned


def change(dp, what, ports, owned, port_ns):
    with dp.update():
        if common_change(dp, what, ports, owned, route=(ip("10.9.1.0"), 24, ip("10.0.0.9")),
                         default=0, neighbour=ip("10.0.0.9")):
            return
        if what == "port" and ports:
            dp.set_port(ports[0], port_ns[ports[0]], mac(0x555))   # new switch MAC
        elif what == "dhcp" and ports:
            dp.set_port(ports[-1], port_ns[ports[-1]], mac(ports[-1] + 1), dp.port_mtu(ports[-1]),
                        dhcp_server=not dp.port_is_dhcp_server(ports[-1]))
        elif what == "serve" and ports:                           # the switch's DHCP server
            p = ports[len(ports) // 2]
            dp.set_port(p, port_ns[p], mac(p + 1), dp.port_mtu(p),
                        dhcp_server=dp.port_is_dhcp_server(p), serve_dhcp=not dp.port_serves_dhcp(p))
        elif what == "directed":
            dp.set_directed_broadcast(0, not dp.directed_broadcast(0))
        elif what == "subnet" and owned:
            (scope, a), n = sorted(owned.items())[-1]
            if dp.lookup_address(scope, a) == n:                   # another prefix length
                dp.add_address(scope, a, n, 33 - dp.address_onlink(scope, a))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.data_too_large])
@given(scenarios(), st.integers(1, 64))
def test_core_matches_reference(scenario, max_fanout):
    run_twins(scenario, max_fanout, change, MAX_PORTS)
