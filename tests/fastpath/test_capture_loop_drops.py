"""Every frame the packet loop drops and counts outside process() is in a capture of that
port's drops, with its counter's name for the reason (fastpath/reasons.py LOOP_DROPS): a
refused virtio-net header or read (the ingress port), a failed write, a port the loop
lacks, a fan-out copy over the port's MTU (the egress port), a share of the slow path spent (the ingress port), a frame the
slow path could not send.  The frames the writes lose are those the reference datapath
(``expected``: fastpath/reference.py, the oracle) sends there; a capture of other ports or
of nothing copies none."""
import socket

import pytest

import fastpath
from fastpath import CAPTURE_DROPPED, CAPTURE_RECEIVED, CAPTURE_SENT
from fastpath.reasons import CAPTURE_REASON_NAMES, LOOP_DROPS, LOOP_STATS, VNET_REFUSALS
from fastpath.reference import ReferenceDatapath
from tests.support.io import (GSO_TCPV4, NEEDS_CSUM, FakeTap, arp_request, mac, udp_frame,
                              vnet_hdr, world)
from tests.support.io import expected as decided


def expected(frames):
    """The reference datapath's decisions (the oracle) of [(port, frame)] in world()."""
    return decided(frames, implementation=ReferenceDatapath)


def pump(loop, n=5):
    for _ in range(n):
        loop.run(0)


def drops(dp):
    """The capture's drops as [(port, reason name, bytes)], origlen checked."""
    out = []
    for port, direction, reason, ts, length, data in dp.capture_take():
        assert direction == CAPTURE_DROPPED and length == len(data) and ts > 1.7e18
        out.append((port, CAPTURE_REASON_NAMES[reason], data))
    return out


@pytest.fixture
def loop_of(backend):
    """``make(vnet=(ports with the header), ports=(ports in the loop))``: (dp, loop, taps)."""
    made = []

    def make(vnet=(), ports=(1, 2, 3), slot_size=4096):
        dp = world()
        loop = fastpath.PacketLoop(dp, batch_size=16, slot_size=slot_size, backend=backend)
        taps = {p: FakeTap() for p in ports}
        for p, t in taps.items():
            loop.add_port(p, t.loop_fd, vnet_hdr=p in vnet)
        made.append((loop, taps))
        return dp, loop, taps
    yield make
    for loop, taps in made:
        loop.close()
        for t in taps.values():
            t.close()


def test_every_counter_of_dropped_frames_has_a_capture_reason():
    names = {c.name for c in LOOP_DROPS}
    assert names == ({c.name for c in LOOP_STATS if "dropped" in c.help}
                     | {c.name for c in VNET_REFUSALS[1:]})
    assert {CAPTURE_REASON_NAMES[c.capture] for c in LOOP_DROPS} == names
    assert fastpath._core.C_DROP_CODES == {c.name: c.capture for c in LOOP_DROPS}


BAD_HEADERS = [
    (vnet_hdr(flags=0x80), "vnet_bad_flags"),
    (vnet_hdr(gso_type=9), "vnet_bad_gso_type"),
    (vnet_hdr(flags=NEEDS_CSUM, csum_start=4000, csum_offset=6), "vnet_bad_csum"),
    (vnet_hdr(hdr_len=4000), "vnet_bad_hdr_len"),
    (vnet_hdr(gso_type=GSO_TCPV4, gso_size=1400), "vnet_bad_gso"),     # without NEEDS_CSUM
]


@pytest.mark.parametrize("header, why", BAD_HEADERS)
def test_a_refused_virtio_net_header_is_captured_with_its_reason(loop_of, header, why):
    dp, loop, taps = loop_of(vnet=(1,))
    frame = udp_frame(1, "10.0.0.2")
    assert fastpath.vnet_validate(header, frame) == why          # the core's own verdict
    dp.capture_select({1: CAPTURE_DROPPED, 2: CAPTURE_DROPPED | CAPTURE_RECEIVED})
    taps[1].inject(header + frame)
    taps[1].inject(b"\x01\x02\x03")                              # shorter than the header
    pump(loop)
    assert drops(dp) == [(1, why, frame), (1, "vnet_short", b"\x01\x02\x03")]
    assert loop.stats()[why] == loop.stats()["vnet_short"] == 1
    assert taps[2].drain() == []


def test_an_oversized_read_is_captured(loop_of):
    dp, loop, taps = loop_of(slot_size=512)
    dp.capture_select({1: CAPTURE_DROPPED})
    big = udp_frame(1, "10.0.0.2", b"o" * 600)
    taps[1].inject(big)
    pump(loop)
    [(port, why, data)] = drops(dp)
    assert (port, why) == (1, "rx_oversize") and big.startswith(data)
    assert loop.stats()["rx_oversize"] == 1


def test_a_failed_write_is_captured_with_the_frame_the_port_was_to_get(loop_of):
    dp, loop, taps = loop_of()
    frames = [(1, udp_frame(1, "10.0.0.2", bytes([k]) * 40)) for k in range(3)]
    want, _ = expected(frames)                                   # the oracle's frames for port 2
    taps[2].peer.close()                                         # every write to port 2 fails
    dp.capture_select({2: CAPTURE_DROPPED, 3: CAPTURE_DROPPED})
    for _, frame in frames:
        taps[1].inject(frame)
    pump(loop)
    assert drops(dp) == [(2, "write_errors", data) for data in want[2]]
    assert loop.stats()["write_errors"] == 3


def test_a_full_output_queue_is_captured_frame_by_frame(loop_of):
    dp, loop, taps = loop_of()
    taps[2].loop_sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    frames = [(1, udp_frame(1, "10.0.0.2", k.to_bytes(2, "big") * 500)) for k in range(200)]
    want, _ = expected(frames)
    dp.capture_select({2: CAPTURE_DROPPED})
    for _, frame in frames:
        taps[1].inject(frame)
    pump(loop, 40)
    arrived = taps[2].drain()
    lost = drops(dp)
    assert loop.stats()["write_eagain"] == len(lost) > 0
    assert {why for _, why, _ in lost} == {"write_eagain"}
    assert sorted(arrived + [data for _, _, data in lost]) == sorted(want[2])


def test_a_frame_to_a_port_the_loop_lacks_is_captured_on_that_port(loop_of):
    dp, loop, taps = loop_of(ports=(1, 2))                       # port 3 is in the tables only
    frame = udp_frame(1, "10.0.0.3")
    want, _ = expected([(1, frame)])
    dp.capture_select({3: CAPTURE_DROPPED})
    taps[1].inject(frame)
    pump(loop)
    assert drops(dp) == [(3, "tx_no_port", want[3][0])]


def test_a_fanout_copy_over_its_ports_mtu_is_captured_on_that_port(loop_of):
    dp, loop, taps = loop_of()
    with dp.update():
        dp.set_port(3, 3, mac(3), mtu=1280)
    frame = udp_frame(1, "10.0.0.255", b"b" * 1400, dst_mac=b"\xff" * 6)
    want, _ = expected([(1, frame)])                          # a copy for ports 2 and 3
    dp.capture_select({2: CAPTURE_DROPPED, 3: CAPTURE_DROPPED})
    taps[1].inject(frame)
    pump(loop)
    assert drops(dp) == [(3, "tx_over_mtu", want[3][0])]
    assert taps[2].drain() == want[2] and taps[3].drain() == []


def test_frames_over_a_share_of_the_slow_path_are_captured(loop_of):
    dp, loop, taps = loop_of()
    dp.set_slow_share("arp", 1, 1)                               # one at once, one a second
    request = arp_request(1, "10.0.0.2")
    _, slow = expected([(1, request)])
    assert slow == [(1, fastpath.verdicts.REASON_ARP, request)]  # the oracle hands it up
    dp.capture_select({1: CAPTURE_DROPPED})
    for _ in range(3):
        taps[1].inject(request)
    pump(loop)
    assert drops(dp) == [(1, "slow_refused", request)] * 2
    assert [f for _, _, f in loop.slow_frames()] == [request]


def test_a_frame_the_slow_path_could_not_send_is_captured(loop_of):
    dp, loop, taps = loop_of()
    taps[3].peer.close()
    dp.capture_select({3: CAPTURE_DROPPED | CAPTURE_SENT})
    frame = udp_frame(2, "10.0.0.3")
    assert loop.send(3, frame) is False
    assert drops(dp) == [(3, "write_errors", frame)]


def test_drops_of_ports_not_selected_are_not_copied(loop_of):
    dp, loop, taps = loop_of(vnet=(1,))
    taps[2].peer.close()
    dp.capture_select({3: CAPTURE_DROPPED | CAPTURE_RECEIVED | CAPTURE_SENT})
    taps[1].inject(vnet_hdr(flags=0x80) + udp_frame(1, "10.0.0.2"))
    taps[1].inject(vnet_hdr() + udp_frame(1, "10.0.0.2"))
    pump(loop)
    assert dp.capture_take() == []
    dp.capture_select({})
    taps[1].inject(vnet_hdr(flags=0x80) + udp_frame(1, "10.0.0.2"))
    pump(loop)
    assert dp.capture_take() == [] and loop.stats()["vnet_bad_flags"] == 2
