"""Differential test of the IPv6 frame path: hypothesis builds dual-stack topologies (two
sibling scopes, L3s with addresses of both families and random on-link prefixes, ports
with random MTUs, DHCP servers behind some and DHCP served on some, IPv6 routes, neighbours and groups) and batches of IPv6 frames --
owned, foreign, link-local, unspecified and martian sources; tenant, switch, routed,
link-local, multicast and bad destinations; extension-header chains in and out of
bounds; ND, MLD, DHCPv6 (to and from servers) and other upper layers; hop limits; truncations, lying lengths and
flipped bytes; GSO claims in the virtio-net header before the frame -- with IPv4 frames
mixed in.  The core must give the reference's verdicts, bytes and counters."""
from hypothesis import HealthCheck, given, settings, strategies as st

from differential_worlds import common_change, routes_and_neighbours, run_twins, skeleton
from fastpath_frames import ip, ipv4_frame, mac
from fastpath_frames6 import (AUTH, DEST_OPTS, FRAGMENT, HBH, ICMPV6, NO_NEXT, ROUTING, TCP, UDP,
                              V6, ext, gso_header, icmp6, ipv6_frame, mcast_mac)

ADDRS = [V6(a) for a in ("fd00:1::1", "fd00:1::2", "fd00:1::3", "fd00:2::1", "fd00:2::9",
                         "2001:db8:5::1", "fd00:1:0:0:1::1")]
SPECIAL = [V6(a) for a in ("::", "::1", "::ffff:10.0.0.1", "fe80::1", "fe80::2:3", "ff02::1",
                           "ff02::1:ff00:2", "ff02::1:ff00:1", "ff02::fb", "ff02::1:2", "ff05::1:3", "ff0e::9",
                           "ff01::1", "ff00::7", "2001:db8::1", "2001:db8:9:1::5", "fd00:9::1",
                           "fd00:9ab::1", "fd00:1::ff")]
# wider than link scope, and solicited-node groups (of fd00:1::2, of fd00:1::1 and fd00:2::1)
GROUPS = [V6("ff05::1:3"), V6("ff0e::9"), V6("ff08::77"), V6("ff02::1:ff00:2"),
          V6("ff02::1:ff00:1")]
ROUTES = [(V6("::"), 0), (V6("2001:db8::"), 32), (V6("2001:db8:9::"), 48), (V6("2001:db8:9:1::"), 64),
          (V6("2001:db8:9:1::5"), 128), (V6("fd00::"), 16), (V6("fd00:900::"), 24), (V6("2000::"), 3)]
GATEWAYS = [None, V6("fd00:1::64"), V6("fd00:2::9")]
PLENS = [None, 64, 64, 64, 48, 120, 128, 0]
MTUS = [1500, 1500, 1280, 1300, 9000]
MAX_PORTS = 8


@st.composite
def worlds(draw):
    ops, scopes, _, namespaces, scope_of, ports, used_l3 = skeleton(draw, MAX_PORTS, MTUS, dhcp=True)
    owned = {}
    wanted = [(draw(st.sampled_from(ADDRS)), n) for n in sorted(used_l3) if draw(st.integers(0, 4))]
    wanted += [(a, draw(st.sampled_from(namespaces))) for a in
               draw(st.lists(st.sampled_from(ADDRS + [ip("10.0.0.1"), ip("10.0.0.2")]), max_size=6))]
    for a, n in wanted:
        if (scope_of[n], a) not in owned:
            owned[(scope_of[n], a)] = n
            plen = draw(st.sampled_from(PLENS)) if isinstance(a, V6) else None
            ops.append(("add_address", scope_of[n], a, n, plen))
    for s in scopes:
        ops += routes_and_neighbours(draw, s, ports, ROUTES, GATEWAYS,
                                     [V6("2001:db8:9:1::5"), V6("fd00:9::1")])
        for g in draw(st.lists(st.sampled_from(GROUPS), max_size=2, unique=True)):
            members = [n for n in namespaces if scope_of[n] == s and draw(st.booleans())]
            ops.append(("set_group", s, g, members))
    peers = {p: mac(0x100 + p) for p in ports if draw(st.booleans())}
    return ops, ports, owned, peers


CHAINS = [[], [], [], [ext(HBH)], [ext(DEST_OPTS), ext(ROUTING, b"\0\0\0\0")],
          [ext(HBH), ext(DEST_OPTS), ext(FRAGMENT)], [ext(FRAGMENT, b"\0\0\x08")],
          [ext(AUTH, b"\1" * 6)], [ext(DEST_OPTS, bytes(200))], [ext(DEST_OPTS, bytes(255))],
          [ext(DEST_OPTS), ext(HBH)], [ext(DEST_OPTS)] * 9, [ext(ROUTING, b"\0\1")]]
DHCP6_CLIENT, DHCP6_SERVER = b"\x02\x22\x02\x23", b"\x02\x23\x02\x22"     # UDP 546 <-> 547
UPPER = [(UDP, b"u" * 12), (UDP, DHCP6_CLIENT + b"\0\x0c\0\0\x01dhc"), (UDP, DHCP6_CLIENT[:3]),
         (UDP, DHCP6_SERVER + b"\0\x0c\0\0\x02dhc"),
         (TCP, bytes(12) + b"\x50\x10" + bytes(6)), (NO_NEXT, b""), (50, b"esp"),
         (ICMPV6, icmp6(128)), (ICMPV6, icmp6(135)), (ICMPV6, icmp6(134)), (ICMPV6, icmp6(143)),
         (ICMPV6, icmp6(131)), (ICMPV6, b"\x88"), (ICMPV6, icmp6(1))]


@st.composite
def frames(draw, ports, owned):
    port = draw(st.sampled_from(sorted(ports) * 4 + [MAX_PORTS - 1]))
    known = [a for (_, a) in owned if isinstance(a, V6)]
    own = [a for (_, a), n in owned.items() if isinstance(a, V6) and n == ports.get(port)]
    src = draw(st.sampled_from(own * 12 + known + SPECIAL[:5] + [V6("2001:db8:77::1")] * 3))
    dst = draw(st.sampled_from(known * 2 + SPECIAL))
    multicast_mac = mcast_mac(dst) if dst.is_multicast else bytes.fromhex("333300000001")
    dmac = draw(st.sampled_from([mac(port + 1)] * 10 + [multicast_mac] * 3 + [b"\xff" * 6, mac(0x77)]))
    smac = draw(st.sampled_from([mac(0x100 + port), mac(0x400), bytes(6)]))
    nh, payload = draw(st.sampled_from(UPPER))
    payload += bytes(draw(st.sampled_from([0, 0, 1200, 1240, 1260, 1400, 1500])))
    if draw(st.integers(0, 9)) == 0:
        return port, ipv4_frame(dmac, smac, ip("10.0.0.1"), ip("10.0.0.2"), pad=bytes(draw(st.integers(0, 9))))
    f = ipv6_frame(dmac, smac, src, dst, hop=draw(st.sampled_from([0, 1, 2, 64, 255])), nh=nh,
                   payload=payload, exts=draw(st.sampled_from(CHAINS)),
                   pad=draw(st.sampled_from([b"", bytes(7)])))
    mutation = draw(st.sampled_from(["none"] * 16 + ["truncate", "byte", "plen", "version"]))
    if mutation == "truncate":
        f = f[:draw(st.integers(0, len(f)))]
    elif mutation == "byte" and f:
        k = draw(st.integers(0, min(len(f), 140) - 1))
        f = f[:k] + bytes([draw(st.integers(0, 255))]) + f[k + 1:]
    elif mutation == "plen" and len(f) > 19:
        f = f[:18] + draw(st.integers(0, 0xFFFF)).to_bytes(2, "big") + f[20:]
    elif mutation == "version" and len(f) > 14:
        f = f[:14] + bytes([(draw(st.integers(0, 15)) << 4) | (f[14] & 15)]) + f[15:]
    return port, f


def headers(draw, n):
    """GSO claims before some frames (the packet loop keeps every frame's header there)."""
    out = {}
    for i in range(n):
        if draw(st.integers(0, 4)) == 0:
            out[i] = gso_header(draw(st.sampled_from([0, 1, 4, 5, 0x84])), draw(st.integers(0, 2000)),
                                54, draw(st.sampled_from([6, 16])))
    return out


@st.composite
def scenarios(draw):
    ops, ports, owned, peers = draw(worlds())
    batches = []
    for _ in range(draw(st.integers(1, 3))):
        fs = draw(st.lists(frames(ports, owned), min_size=1, max_size=30))
        batches.append((fs, headers(draw, len(fs))))
    changes = draw(st.lists(st.sampled_from(["route", "unroute", "neigh", "move", "mtu"]),
                            min_size=len(batches), max_size=len(batches)))
    return ops, peers, batches, changes, sorted(ports), owned


def change(dp, what, ports, owned, port_ns):
    with dp.update():
        if common_change(dp, what, ports, owned, route=(V6("2001:db8:9::"), 48, V6("fd00:2::9")),
                         default=V6("::"), neighbour=V6("fd00:2::9"), order=str):
            return
        if what == "mtu" and ports:
            dp.set_port(ports[0], port_ns[ports[0]], mac(ports[0] + 1), mtu=1280)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.data_too_large])
@given(scenarios(), st.integers(1, 64))
def test_core_matches_reference_on_ipv6(scenario, max_fanout):
    run_twins(scenario, max_fanout, change, MAX_PORTS, slot_size=2048)
