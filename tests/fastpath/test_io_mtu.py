"""PacketLoop and the egress MTU (issue 14 item 11): nothing the loop writes is larger
than its port's MTU.  A unicast super-frame whose segments would be is handed to the slow
path (too_big) instead of being cut; one whose segments fit is cut into segments that
fit; a fan-out copy (bridged, not routed) larger than a member's MTU is dropped and
counted (tx_over_mtu), the other members still get theirs."""
import pytest

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

import fastpath
from fastpath import verdicts
from tests.support.io import (GSO_TCPV4, GSO_UDP_L4, TENANTS, FakeTap, mac, mac_str, offloaded,
                              peer_mac, udp_frame, world)


@pytest.fixture
def rig(backend):
    """Ports 1 and 2 with the virtio-net header, port 3 without; port 3's MTU is 1280."""
    dp = world()
    with dp.update():
        dp.set_port(3, 3, mac(3), mtu=1280)
    loop = fastpath.PacketLoop(dp, batch_size=32, slot_size=65536 + 256, backend=backend)
    taps = {p: FakeTap() for p in (1, 2, 3)}
    for p, t in taps.items():
        loop.add_port(p, t.loop_fd, vnet_hdr=p != 3)
    yield dp, loop, taps
    loop.close()
    for t in taps.values():
        t.close()


def pump(loop, n=5):
    for _ in range(n):
        loop.run(0)


def super_frame(dst_ip, n, mss, *, udp=False):
    """Tenant 1's TSO (USO) frame of ``n`` payload bytes: (header, frame)."""
    l4 = UDP(sport=4000, dport=5000) if udp else TCP(sport=40000, dport=5001, seq=1, flags="PA")
    dst_mac = "ff:ff:ff:ff:ff:ff" if dst_ip == "255.255.255.255" else mac_str(mac(1))
    frame = bytes(Ether(dst=dst_mac, src=mac_str(peer_mac(1))) /
                  IP(src=TENANTS[1], dst=dst_ip, flags="DF", id=1) / l4 / (b"s" * n))
    return offloaded(frame, GSO_UDP_L4 if udp else GSO_TCPV4, mss)


def test_a_super_frame_whose_segments_exceed_the_mtu_is_too_big_not_cut(rig):
    dp, loop, taps = rig
    hdr, frame = super_frame("10.0.0.3", 20000, 1448)        # 20 + 20 + 1448 > 1280
    taps[1].inject(hdr + frame)
    pump(loop)
    assert taps[3].drain() == []
    assert dp.counters()["namespaces"][1]["reasons"]["too_big"] == 1
    handed_up = loop.slow_frames()        # as on a wire: its segments, for the slow path to answer
    assert len(handed_up) == -(-20000 // 1448)
    assert all(r == verdicts.REASON_TOO_BIG and len(f) == 14 + 20 + 20 + 1448
               for _, r, f in handed_up[:-1])


def test_a_super_frame_whose_segments_fit_is_cut_to_at_most_the_mtu(rig):
    dp, loop, taps = rig
    hdr, frame = super_frame("10.0.0.3", 20000, 1240)        # 20 + 20 + 1240 = 1280
    taps[1].inject(hdr + frame)
    pump(loop)
    out = taps[3].drain()
    assert len(out) == -(-20000 // 1240)
    assert max(len(f) - 14 for f in out) == 1280
    assert dp.counters()["reasons"]["too_big"] == 0


def test_a_fan_out_copy_larger_than_a_members_mtu_is_dropped_and_counted(rig):
    dp, loop, taps = rig
    big = udp_frame(1, "255.255.255.255", b"b" * 1300, dst_mac=b"\xff" * 6)   # 1,328 bytes of IP
    fits = udp_frame(1, "255.255.255.255", b"f" * 1252, dst_mac=b"\xff" * 6)  # 1,280
    taps[1].inject(bytes(12) + big)
    taps[1].inject(bytes(12) + fits)
    pump(loop)
    assert [len(f) for f in taps[3].drain()] == [14 + 1280]
    assert len(taps[2].drain()) == 2                          # port 2's MTU is 1500
    assert loop.stats()["tx_over_mtu"] == 1


def test_a_fan_out_super_frame_is_judged_by_its_segments(rig):
    dp, loop, taps = rig
    for mss, copies_to_3 in ((1252, 4), (1253, 0)):          # 20 + 8 + 1252 = 1280
        hdr, frame = super_frame("255.255.255.255", 5000, mss, udp=True)
        taps[1].inject(hdr + frame)
        pump(loop)
        out = taps[3].drain()
        assert len(out) == copies_to_3 and all(len(f) - 14 <= 1280 for f in out)
        assert len(taps[2].drain()) == 1                      # the super-frame, header and all
    assert loop.stats()["tx_over_mtu"] == 1
