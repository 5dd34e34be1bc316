"""The egress MTU in the frame path, both families, on the reference and the core: a
unicast frame larger than its egress port's MTU (a GSO super-frame: its largest segment)
goes to the slow path as too_big, whether it is switched to an owner's port, routed
through the FIB or through the sender's route cache; a frame of exactly the MTU goes on."""
import pytest

from fastpath import verdicts as V
from fastpath_frames import T1, build_world, from_t1, gso_header, ip, port_mac, run
from fastpath_frames6 import FAR, TCP, UDP, build_world6, from_t1 as from_t1_6, run6
from fastpath_frames6 import A2 as A2_6, A7 as A7_6

A2 = ip("10.0.0.2")
FAR4 = ip("8.8.8.8")            # the default route: port 0 through GW
ONLINK4 = ip("10.9.1.1")        # 10.9.0.0/16 on port 0, no neighbour known
FORWARD = (V.VERDICT_FORWARD, "none")
TOO_BIG = (V.VERDICT_SLOWPATH, "too_big")
TCP_HEADER = bytes(12) + b"\x50\x10" + bytes(6)      # data offset 5, ACK
TCP_HEADER_OPTS = bytes(12) + b"\x80\x10" + bytes(18)  # data offset 8: 12 bytes of options


def verdicts(b):
    return [(int(b.verdict[i]), V.REASON_NAMES[b.reason[i]]) for i in range(b.count)]


def world4(dp, mtu, subnet=False):
    build_world(dp, subnet=subnet)
    with dp.update():
        for port, ns in mtu:
            dp.set_port(port, ns, port_mac(port), mtu=mtu[(port, ns)])
    return dp


@pytest.mark.parametrize("dst,port,ns", [(A2, 2, 2), (FAR4, 0, 0)])
@pytest.mark.parametrize("mtu", [68, 576, 1280, 1500, 9000])
def test_ipv4_at_the_mtu_goes_on_one_byte_over_is_too_big(make_dp, dst, port, ns, mtu):
    dp = world4(make_dp(), {(port, ns): mtu})
    assert dp.port_mtu(port) == mtu
    fits, big = (from_t1(dst, payload=bytes(mtu - 20 + k)) for k in (0, 1))
    b = run(dp, [fits, big], slot_size=16384)
    assert verdicts(b) == [FORWARD, TOO_BIG] and b.out_port[0] == port
    c = dp.counters()
    assert c["reasons"]["too_big"] == 1 and c["namespaces"][T1]["reasons"]["too_big"] == 1
    assert c["ports"][port]["tx_packets"] == 1


def test_ipv4_through_the_route_cache_is_measured_too(make_dp):
    dp = world4(make_dp(), {(0, 0): 1000})
    frames = [from_t1(FAR4, payload=bytes(980)), from_t1(FAR4, payload=bytes(981)),
              from_t1(FAR4, payload=bytes(980))]
    assert verdicts(run(dp, frames, slot_size=2048)) == [FORWARD, TOO_BIG, FORWARD]


def test_ipv4_too_big_comes_before_the_next_hop_is_resolved(make_dp):
    """What the slow path resolves (no_neighbour / peer_unknown) always fits its port."""
    dp = world4(make_dp(), {(0, 0): 1000, (2, 2): 1000})
    with dp.update():
        dp.set_peer_mac(2, None)
    frames = [from_t1(ONLINK4, payload=bytes(981)), from_t1(ONLINK4, payload=bytes(980)),
              from_t1(A2, payload=bytes(981)), from_t1(A2, payload=bytes(980))]
    assert verdicts(run(dp, frames, slot_size=2048)) == [
        TOO_BIG, (V.VERDICT_SLOWPATH, "no_neighbour"), TOO_BIG, (V.VERDICT_SLOWPATH, "peer_unknown")]


def test_ipv4_broadcast_and_multicast_are_not_measured(make_dp):
    """Fan-out copies are bridged, not routed (docs/model.md, "MTU")."""
    dp = world4(make_dp(), {(2, 2): 68}, subnet=True)   # the sender's subnet's listeners
    b = run(dp, [from_t1(0xFFFFFFFF, payload=bytes(200))], slot_size=512)
    assert verdicts(b) == [(V.VERDICT_FANOUT, "none")]


@pytest.mark.parametrize("gso,proto,payload,gso_size,expected", [
    (1, 6, TCP_HEADER, 1460, FORWARD),          # 20 + 20 + 1460 = 1500
    (1, 6, TCP_HEADER, 1461, TOO_BIG),
    (1, 6, TCP_HEADER_OPTS, 1448, FORWARD),     # the TCP header's own length counts
    (1, 6, TCP_HEADER_OPTS, 1449, TOO_BIG),
    (0x81, 6, TCP_HEADER, 1461, TOO_BIG),       # ECN bit: still TCPv4
    (5, 17, bytes(8), 1472, FORWARD),           # USO: 20 + 8 + 1472
    (5, 17, bytes(8), 1473, TOO_BIG),
    (0, 6, TCP_HEADER, 1000, TOO_BIG),          # no GSO: the whole 20 KB frame
])
@pytest.mark.parametrize("dst", [A2, FAR4])
def test_an_ipv4_super_frame_is_judged_by_its_largest_segment(make_dp, gso, proto, payload,
                                                              gso_size, expected, dst):
    dp = world4(make_dp(), {(0, 0): 1500, (2, 2): 1500})
    frame = from_t1(dst, proto=proto, payload=payload + bytes(20000))
    b = run(dp, [frame], {0: gso_header(gso, gso_size, 34, 16 if proto == 6 else 6)},
            slot_size=32768)
    assert verdicts(b) == [expected]
    if expected == FORWARD:
        assert b.frame(0)[14 + 8] == 63                 # the TTL, once for the super-frame


def test_a_small_super_frame_fits_whatever_its_gso_size(make_dp):
    dp = world4(make_dp(), {(2, 2): 576})
    frame = from_t1(A2, proto=6, payload=TCP_HEADER + bytes(500))
    b = run(dp, [frame], {0: gso_header(1, 9000, 34, 16)}, slot_size=2048)
    assert verdicts(b) == [FORWARD]


@pytest.mark.parametrize("dst,port", [(A2_6, 2), (A7_6, 7), (FAR, 0)])
@pytest.mark.parametrize("mtu", [1280, 1500])
def test_ipv6_at_the_mtu_goes_on_one_byte_over_is_too_big(make_dp, dst, port, mtu):
    dp = build_world6(make_dp(), mtu={port: mtu})
    fits, big = (from_t1_6(dst, payload=bytes(mtu - 40 + k)) for k in (0, 1))
    assert verdicts(run6(dp, [fits, big], slot_size=2048)) == [FORWARD, TOO_BIG]


@pytest.mark.parametrize("gso,nh,header,gso_size,expected", [
    (4, TCP, TCP_HEADER, 1440, FORWARD), (4, TCP, TCP_HEADER, 1441, TOO_BIG),
    (5, UDP, bytes(8), 1452, FORWARD), (5, UDP, bytes(8), 1453, TOO_BIG)])
def test_an_ipv6_super_frame_is_judged_by_its_largest_segment(make_dp, gso, nh, header,
                                                              gso_size, expected):
    dp = build_world6(make_dp(), mtu={0: 1500})
    frame = from_t1_6(FAR, nh=nh, payload=header + bytes(20000))
    b = run6(dp, [frame], {0: gso_header(gso, gso_size, 54, 16 if nh == TCP else 6)},
             slot_size=32768)
    assert verdicts(b) == [expected]


def test_the_mtu_is_read_per_frame_after_a_change(make_dp):
    dp = world4(make_dp(), {(0, 0): 1500})
    frame = from_t1(FAR4, payload=bytes(1400))
    assert verdicts(run(dp, [frame], slot_size=2048)) == [FORWARD]     # fills the route cache
    with dp.update():
        dp.set_port(0, 0, port_mac(0), mtu=1280)
    assert verdicts(run(dp, [frame], slot_size=2048)) == [TOO_BIG]
