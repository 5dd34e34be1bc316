"""PacketLoop with virtio-net header ports (socket pairs standing in for TAPs): the header
travels with the frame between vnet ports, is added for frames from plain ports, and is
resolved in software (checksum, segmentation) for plain ports; bad headers are counted
drops that never reach the fast path."""
import pytest

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

import fastpath
from tests.support.io import (GSO_TCPV4, GSO_UDP_L4, NEEDS_CSUM, SWITCH_IP, TENANTS, FakeTap,
                              checksums_ok, expected, mac, mac_str, offloaded, peer_mac, udp_frame,
                              vnet_hdr, world)


def tcp_super_frame(src_port, dst_ip, n, mss=1448):
    """A TSO frame tenant ``src_port`` sends: (header, frame with partial checksum)."""
    data = (bytes(range(256)) * (n // 256 + 1))[:n]
    frame = bytes(Ether(dst=mac_str(mac(src_port)), src=mac_str(peer_mac(src_port))) /
                  IP(src=TENANTS[src_port], dst=dst_ip, flags="DF", id=1) /
                  TCP(sport=40000, dport=5001, seq=1000, flags="PA") / data)
    return offloaded(frame, GSO_TCPV4, mss)


@pytest.fixture
def rig(backend):
    """Ports 1 and 2 with the header, port 3 without."""
    dp = world()
    loop = fastpath.PacketLoop(dp, batch_size=32, slot_size=65536 + 256, backend=backend)
    taps = {p: FakeTap() for p in (1, 2, 3)}
    for p, t in taps.items():
        loop.add_port(p, t.loop_fd, vnet_hdr=p != 3)
    yield dp, loop, taps
    for t in taps.values():
        t.close()


def pump(loop, n=5):
    for _ in range(n):
        loop.run(0)


def through(loop, taps, port, data, to):
    """``data`` (a header and frame, or a frame) into port ``port``'s TAP, the loop run:
    what port ``to``'s TAP got."""
    taps[port].inject(data)
    pump(loop)
    return taps[to].drain()


def test_vnet_to_vnet_keeps_the_header_and_the_super_frame(rig):
    dp, loop, taps = rig
    hdr, frame = tcp_super_frame(1, "10.0.0.2", 30000)
    out = through(loop, taps, 1, hdr + frame, 2)
    want, _ = expected([(1, frame)], {0: hdr})
    assert out == [hdr + want[2][0]]                  # TTL and MACs rewritten, header as read
    assert loop.stats()["sw_segments"] == 0


def test_vnet_to_plain_segments_in_software(rig):
    dp, loop, taps = rig
    hdr, frame = tcp_super_frame(1, "10.0.0.3", 30000)
    out = through(loop, taps, 1, hdr + frame, 3)
    assert len(out) == -(-30000 // 1448)
    switched = expected([(1, frame)], {0: hdr})[0][3][0]
    assert out == fastpath.vnet_to_plain(hdr, switched)
    assert all(checksums_ok(s) and s[22] == 64 for s in out)        # one subnet: TTL kept
    st = loop.stats()
    assert st["sw_gso_frames"] == 1 and st["sw_segments"] == len(out) == st["frames_out"]


def test_more_segments_than_the_io_ring_holds_arrive_in_order(rig, backend):
    """200 segments from one batch: the io_uring ring (32 entries here) is flushed and
    reused mid-batch; every segment arrives once, in order, with its own headers."""
    dp, loop, taps = rig
    hdr, frame = tcp_super_frame(1, "10.0.0.3", 40000, mss=200)
    out = through(loop, taps, 1, hdr + frame, 3)
    routed = expected([(1, frame)], {0: hdr})[0][3][0]
    assert out == fastpath.vnet_to_plain(hdr, routed) and len(out) == 200
    st = loop.stats()
    assert st["frames_out"] == 200 and st["write_errors"] == 0
    assert st["tx_submits"] == (200 if backend == "epoll" else 7)     # ceil(200 / 32)


def test_vnet_checksum_only_frame_is_completed_for_a_plain_port(rig):
    _, loop, taps = rig
    plain = udp_frame(1, "10.0.0.3", b"u" * 999)
    hdr, partial = offloaded(plain)
    (out,) = through(loop, taps, 1, hdr + partial, 3)
    assert checksums_ok(out)
    assert out == expected([(1, plain)])[0][3][0]
    assert loop.stats()["sw_csum"] == 1


def test_plain_to_vnet_gets_a_zero_header(rig):
    _, loop, taps = rig
    plain = udp_frame(3, "10.0.0.1", b"hello")
    taps[3].inject(plain)
    pump(loop)
    assert taps[1].drain() == [bytes(12) + expected([(3, plain)])[0][1][0]]


def test_udp_gso_to_a_plain_port(rig):
    _, loop, taps = rig
    plain = udp_frame(2, "10.0.0.3", bytes(range(256)) * 200)
    hdr, partial = offloaded(plain, GSO_UDP_L4, 1400)
    out = through(loop, taps, 2, hdr + partial, 3)
    assert len(out) == -(-51200 // 1400)
    assert all(checksums_ok(s) for s in out)
    assert b"".join(s[42:] for s in out) == bytes(range(256)) * 200


def test_broadcast_copies_fit_each_port(rig):
    dp, loop, taps = rig
    plain = udp_frame(1, "255.255.255.255", b"b" * 300, dst_mac=b"\xff" * 6)
    hdr, partial = offloaded(plain)
    taps[1].inject(hdr + partial)
    pump(loop)
    want = expected([(1, plain)])[0]
    assert set(want) == {2, 3}
    (to3,) = taps[3].drain()
    assert to3 == want[3][0] and checksums_ok(to3)
    (to2,) = taps[2].drain()
    assert fastpath.vnet_to_plain(to2[:12], to2[12:]) == want[2]      # header + own copy


def test_slow_path_gets_frames_without_header_and_with_a_full_checksum(rig):
    _, loop, taps = rig
    plain = udp_frame(1, SWITCH_IP, b"q" * 50)
    hdr, partial = offloaded(plain)
    taps[1].inject(hdr + partial)
    loop.run(-1)
    assert loop.slow_frames() == [(1, 17, plain)]

def test_slow_path_gets_a_super_frame_as_its_segments(rig):
    """A TSO frame for the switch itself (or waiting for ARP) reaches the slow path as
    the frames a wire would carry: segments with full checksums, no virtio header."""
    _, loop, taps = rig
    hdr, frame = tcp_super_frame(1, SWITCH_IP, 5000)
    taps[1].inject(hdr + frame)
    loop.run(-1)
    slow = loop.slow_frames()
    assert [s for _, _, s in slow] == fastpath.vnet_to_plain(hdr, frame)
    assert len(slow) == 4 and {p for p, _, _ in slow} == {1}
    assert all(checksums_ok(s) and s[22] == 64 for _, _, s in slow)
    assert loop.stats()["slow_queued"] == 4


@pytest.mark.parametrize("wire,counter", [
    (b"\x01\x02\x03", "vnet_short"),
    (vnet_hdr(flags=4) + udp_frame(1, "10.0.0.2"), "vnet_bad_flags"),
    (vnet_hdr(gso_type=3) + udp_frame(1, "10.0.0.2"), "vnet_bad_gso_type"),
    (vnet_hdr(flags=NEEDS_CSUM, csum_start=60, csum_offset=600) + udp_frame(1, "10.0.0.2"),
     "vnet_bad_csum"),
    (vnet_hdr(hdr_len=5000) + udp_frame(1, "10.0.0.2"), "vnet_bad_hdr_len"),
    (vnet_hdr(NEEDS_CSUM, GSO_TCPV4, 0, 1000, 34, 16) + udp_frame(1, "10.0.0.2"), "vnet_bad_gso"),
])
def test_malformed_headers_are_counted_and_never_processed(rig, wire, counter):
    dp, loop, taps = rig
    taps[1].inject(wire)
    taps[1].inject(vnet_hdr() + udp_frame(1, "10.0.0.2"))      # a good one after it
    pump(loop)
    st = loop.stats()
    assert st[counter] == 1
    assert sum(v for k, v in st.items() if k.startswith("vnet_")) == 1
    assert len(taps[2].drain()) == 1
    assert dp.counters()["ports"][1]["rx_packets"] == 1


def test_a_frame_too_big_for_the_slot_is_counted(backend):
    dp = world()
    loop = fastpath.PacketLoop(dp, batch_size=4, slot_size=2048, backend=backend)
    tap = FakeTap()
    try:
        loop.add_port(1, tap.loop_fd)
        tap.inject(udp_frame(1, "10.0.0.2", b"x" * 3000))
        loop.run(0)
        assert loop.stats()["rx_oversize"] == 1
        assert dp.counters()["ports"][1]["rx_packets"] == 0
    finally:
        tap.close()


# -- checksum claims end at the port they came in on (issue 14 item 12) ------------------

DATA_VALID = 2


def test_a_checksum_claim_is_not_passed_on(rig):
    """A tenant's DATA_VALID ("checksum verified") is cleared in the header written for
    another tenant; the rest of the header is as read."""
    _, loop, taps = rig
    plain = udp_frame(1, "10.0.0.2", b"v" * 40)
    (out,) = through(loop, taps, 1, vnet_hdr(flags=DATA_VALID) + plain, 2)
    assert out[:12] == vnet_hdr() and out[12:] == expected([(1, plain)])[0][2][0]


def test_a_claim_with_a_partial_checksum_keeps_the_request(rig):
    _, loop, taps = rig
    hdr, frame = tcp_super_frame(1, "10.0.0.2", 20000)
    claimed = bytes([hdr[0] | DATA_VALID]) + hdr[1:]
    (out,) = through(loop, taps, 1, claimed + frame, 2)
    assert out[:12] == hdr                          # NEEDS_CSUM and GSO as read, no claim
    hdr, partial = offloaded(udp_frame(1, "10.0.0.3", b"w" * 99))
    (plain_out,) = through(loop, taps, 1, bytes([hdr[0] | DATA_VALID]) + hdr[1:] + partial, 3)
    assert checksums_ok(plain_out)                  # completed for the port without a header


def test_a_claim_on_a_broadcast_is_cleared_for_every_copy(rig):
    _, loop, taps = rig
    plain = udp_frame(1, "255.255.255.255", b"b" * 64, dst_mac=b"\xff" * 6)
    (to2,) = through(loop, taps, 1, vnet_hdr(flags=DATA_VALID) + plain, 2)
    (to3,) = taps[3].drain()
    assert to2[:12] == vnet_hdr() and to2[12 + 12:] == to3[12:]          # but the MACs
