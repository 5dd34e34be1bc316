"""The ring port kinds in the PacketLoop (root: veth pairs in a private network namespace).
AfPacketPort and XdpPort forward as Datapath.process() decides, alone, mixed, and with a
TAP-like port; bursts larger than a batch keep their order; a frame larger than a ring
slot takes the socket path both ways; the slow path's frames come and go; every bad call
is refused; every set-up step that fails leaves nothing behind (fault injection), nor
does closing, nor a loop closed first."""
import contextlib
import os
import socket

import pytest

import fastpath
from fastpath.reasons import CAPTURE_REASON_NAMES
from pyctl.errors import Busy, InvalidArgument, NotFound, TapswitchError
from pyctl.kernel.private_netns import PrivateNamespace
from tests.support.io import (FakeTap, KernelSide, SWITCH_IP, arp_request, expected, mac,
                              udp_frame, world)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="ring ports need root (veth, AF_PACKET)")

PACKET_IGNORE_OUTGOING = 23
SO_RCVBUFFORCE = 33
KINDS = {"afpacket": fastpath.AfPacketPort, "xdp": fastpath.XdpPort}


@pytest.fixture
def ns():
    space = PrivateNamespace("ring test namespace")
    yield space
    space.remove()


class RawEnd(KernelSide):
    """The endpoint end of a veth pair whose switch end a ring port serves: frames are
    injected and read there with a raw AF_PACKET socket (``peer``, the kernel's side)."""

    def __init__(self, ns, n, mtu=None):
        self.ns, self.sw, self.ep = ns, f"rsw{n}", f"rep{n}"
        with ns.ipr() as ipr:
            ipr.link("add", ifname=self.sw, kind="veth", peer={"ifname": self.ep})
        for name in (self.sw, self.ep):
            if mtu is not None:
                ns.set_mtu(name, mtu)
            ns.link_up(name)
        self.ifindex = ns.link_index(self.sw)
        self.peer = ns.call(socket.socket, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
        self.peer.setsockopt(263, PACKET_IGNORE_OUTGOING, 1)
        self.peer.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)
        self.peer.bind((self.ep, 0))
        self.peer.setblocking(False)

    def close(self):
        self.peer.close()


def make_port(kind, ns, loop, end, **kwargs):
    return ns.call(KINDS[kind], loop, end.ifindex, **kwargs)


@contextlib.contextmanager
def afpacket_loop(ns, end_mtu=None, **ring_kwargs):
    """A loop over world() with AF_PACKET ports 1 and 2 (``ring_kwargs``: theirs) on veth
    pairs (their MTU ``end_mtu``): (datapath, loop, {port: RawEnd}, {port: ring});
    everything closed at the end."""
    dp = world()
    loop = fastpath.PacketLoop(dp, batch_size=16)
    ends = {p: RawEnd(ns, p, mtu=end_mtu) for p in (1, 2)}
    rings = {p: make_port("afpacket", ns, loop, e, **ring_kwargs) for p, e in ends.items()}
    try:
        for p, ring in rings.items():
            loop.add_port(p, ring)
        yield dp, loop, ends, rings
    finally:
        loop.close()
        for p in ends:
            rings[p].close()
            ends[p].close()


def run(loop, rounds=20):
    for _ in range(rounds):
        loop.run(5)


@pytest.fixture(params=["afpacket", "xdp", "mixed"])
def rig(request, ns):
    """A loop over world(): ports 1 and 2 of the kind under test ("mixed": one of each),
    port 3 a socket pair standing in for a TAP."""
    if request.param != "afpacket" and fastpath.xdp_unavailable():
        pytest.skip(f"AF_XDP: {fastpath.xdp_unavailable()}")
    kinds = {"afpacket": ("afpacket", "afpacket"), "xdp": ("xdp", "xdp"),
             "mixed": ("afpacket", "xdp")}[request.param]
    dp = world()
    loop = fastpath.PacketLoop(dp, batch_size=16)
    ends = {1: RawEnd(ns, 1), 2: RawEnd(ns, 2)}
    rings = {p: make_port(k, ns, loop, ends[p]) for p, k in zip((1, 2), kinds)}
    tap = FakeTap()
    for p, ring in rings.items():
        loop.add_port(p, ring)
    loop.add_port(3, tap.loop_fd)
    yield loop, {**ends, 3: tap}, rings
    loop.close()
    for ring in rings.values():
        ring.close()
    for end in (*ends.values(), tap):
        end.close()


def test_forwarding_matches_process(rig):
    loop, ends, _ = rig
    frames = [(1, udp_frame(1, "10.0.0.2", bytes([k]) * (k + 20))) for k in range(12)]
    frames += [(2, udp_frame(2, "10.0.0.3", b"from2")), (3, udp_frame(3, "10.0.0.1", b"from3")),
               (3, udp_frame(3, "10.0.0.2", b"3to2" * 300))]
    for port, data in frames:
        ends[port].inject(data)
    run(loop)
    want, slow = expected(frames)
    assert not slow
    assert {p: e.drain() for p, e in ends.items() if p in want} == want
    st = loop.stats()
    assert st["frames_in"] == st["frames_out"] == len(frames)
    assert st["write_errors"] == st["write_eagain"] == st["rx_oversize"] == 0


def test_a_burst_larger_than_the_batch_keeps_its_order(rig):
    loop, ends, rings = rig
    frames = [(1, udp_frame(1, "10.0.0.2", k.to_bytes(4, "big") * 8)) for k in range(300)]
    for _, data in frames:
        ends[1].inject(data)
    run(loop, 60)
    assert ends[2].drain() == expected(frames)[0][2]
    assert loop.stats()["batches"] >= 300 // 16
    assert all(v == 0 for k, v in rings[1].kernel_stats().items() if "drop" in k or "full" in k)


def test_an_idle_loop_waits_once_after_traffic_both_ways(rig):
    """Once the rings are drained and every transmitted frame completed, a wait of 300 ms
    is one epoll_wait that runs to its timeout: no port stays active, no transmit
    completion or ring slot wakes the loop, nothing is read again."""
    loop, ends, _ = rig
    frames = [(1, udp_frame(1, "10.0.0.2", b"a" * 40)), (2, udp_frame(2, "10.0.0.1", b"b" * 40)),
              (3, udp_frame(3, "10.0.0.1", b"c" * 40))] * 20
    for port, data in frames:
        ends[port].inject(data)
    run(loop)
    assert {p: len(e.drain()) for p, e in ends.items()} == {1: 40, 2: 20, 3: 0}
    loop.run(50)                                # completions of the last kick, if any
    before = loop.stats()
    loop.run(300)
    after = loop.stats()
    assert after["epoll_waits"] - before["epoll_waits"] == 1
    assert after["batches"] == before["batches"] and after["frames_in"] == len(frames)


def test_slow_path_frames_come_and_go(rig):
    loop, ends, _ = rig
    ends[1].inject(arp_request(1, SWITCH_IP))
    run(loop, 3)
    got = loop.slow_frames()
    assert [(p, r) for p, r, _ in got] == [(1, fastpath.verdicts.REASON_ARP)]
    reply = b"\x02\xee\x00\x00\x00\x01" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x06" + bytes(28)
    assert loop.send(1, reply) and loop.send(2, reply)
    assert ends[1].drain() == [reply] and ends[2].drain() == [reply]
    assert loop.stats()["sent"] == 2


def test_a_frame_larger_than_a_slot_takes_the_socket_both_ways(ns):
    with afpacket_loop(ns, end_mtu=9000, mtu=1500) as (_, loop, ends, rings):
        frames = [(1, udp_frame(1, "10.0.0.2", b"big!" * 2000)), (1, udp_frame(1, "10.0.0.2", b"s"))]
        for _, data in frames:
            ends[1].inject(data)
        run(loop, 5)
        assert ends[2].drain() == expected(frames)[0][2]        # in order, both whole
        assert loop.stats()["rx_socket_frames"] == 1
        assert rings[1].info()["slot_size"] == 2048


def test_rings_for_a_9000_byte_mtu_carry_jumbo_frames_in_their_slots(ns):
    """12 KiB slots, 5 to a block (afp_slots_per_block): 30 frames of 8000 bytes each way
    through more than one block of both rings, in order, none through the socket path."""
    with afpacket_loop(ns, end_mtu=9000, mtu=9000) as (dp, loop, ends, rings):
        with dp.update():
            for p in (1, 2):
                dp.set_port(p, p, mac(p), mtu=9000)
        assert rings[1].info()["slot_size"] == 12288 and rings[1].info()["rx_slots"] % 5 == 0
        frames = [(1, udp_frame(1, "10.0.0.2", k.to_bytes(2, "big") * 3990)) for k in range(30)]
        for _, data in frames:
            ends[1].inject(data)
        run(loop, 20)
        got = ends[2].drain()               # routed (ports of MTU 9000): payloads intact
        assert [f[42:] for f in got] == [data[42:] for _, data in frames]
        st = loop.stats()
        assert st["rx_socket_frames"] == 0 and st["frames_out"] == 30


def test_slots_of_frames_dropped_as_read_go_back_at_once(ns):
    """A burst a ring port drops as it reads it (VLAN-tagged frames: rx_vlan) fills no
    batch, yet its slots go back to the kernel: after more such frames than the ring has
    slots, the next frame still arrives."""
    with afpacket_loop(ns, rx_frames=32) as (_, loop, ends, _):
        plain = udp_frame(1, "10.0.0.2", b"tagged")
        tagged = plain[:12] + b"\x81\x00\x00\x05" + plain[12:]
        for _ in range(4):
            for _ in range(30):
                ends[1].inject(tagged)
            run(loop, 3)
        frames = [(1, udp_frame(1, "10.0.0.2", b"after"))]
        ends[1].inject(frames[0][1])
        run(loop, 5)
        assert ends[2].drain() == expected(frames)[0][2]
        assert loop.stats()["rx_vlan"] == 120


def test_a_frame_a_ring_port_drops_as_it_reads_it_is_captured(ns):
    """The ring kinds' own drops are capturable as the TAP's are
    (tests/fastpath/test_capture_loop_drops.py): a VLAN-tagged frame, with rx_vlan."""
    with afpacket_loop(ns) as (dp, loop, ends, _):
        dp.capture_select({1: fastpath.CAPTURE_DROPPED})
        plain = udp_frame(1, "10.0.0.2", b"tagged")
        ends[1].inject(plain[:12] + b"\x81\x00\x00\x05" + plain[12:])
        run(loop, 3)
        got = [(port, CAPTURE_REASON_NAMES[reason], data)
               for port, _, reason, _, _, data in dp.capture_take()]
        assert got == [(1, "rx_vlan", plain)]          # the tag is the ring's metadata
        assert loop.stats()["rx_vlan"] == 1


def test_bad_calls_are_refused(ns):
    dp = world()
    loop, other = fastpath.PacketLoop(dp, batch_size=16), fastpath.PacketLoop(dp, batch_size=16)
    end = RawEnd(ns, 1)
    ring = make_port("afpacket", ns, loop, end)
    try:
        with pytest.raises(InvalidArgument, match="another packet loop"):
            other.add_port(1, ring)
        loop.add_port(1, ring)
        with pytest.raises(Busy):
            loop.add_port(2, ring)
        with pytest.raises(Busy, match="remove_port"):
            ring.close()
        loop.remove_port(1)
        with pytest.raises(InvalidArgument, match="rx_frames"):
            make_port("afpacket", ns, loop, end, rx_frames=100)
        with pytest.raises(InvalidArgument, match="mtu"):
            make_port("afpacket", ns, loop, end, mtu=20)
        with pytest.raises(NotFound, match="bind"):
            ns.call(fastpath.AfPacketPort, loop, 4242)
        ring.close()
        assert ring.closed
        with pytest.raises(ValueError, match="closed"):
            loop.add_port(1, ring)
    finally:
        loop.close()
        other.close()
        ring.close()
        end.close()


def held():
    """This process's fds and socket mappings (what a set-up could leak)."""
    with open("/proc/self/maps") as f:
        maps = sum(1 for line in f if "socket:" in line or "xdp" in line)
    return sorted(os.readlink(f"/proc/self/fd/{fd}").split("[")[0] for fd in os.listdir("/proc/self/fd")
                  if os.path.exists(f"/proc/self/fd/{fd}")), maps


def xdp_attached(ns, ifindex):
    with ns.ipr() as ipr:
        xdp = ipr.get_links(ifindex)[0].get_attr("IFLA_XDP")
    return bool(xdp and xdp.get_attr("IFLA_XDP_ATTACHED"))


@pytest.mark.parametrize("kind, step", [("afpacket", s) for s in fastpath.AFP_SETUP_STEPS]
                         + [("xdp", s) for s in fastpath.XDP_SETUP_STEPS])
def test_a_failed_set_up_step_leaves_nothing_behind(ns, kind, step):
    why = fastpath.xdp_unavailable() if kind == "xdp" else None
    if why is not None:
        pytest.skip(f"AF_XDP: {why}")
    loop = fastpath.PacketLoop(world(), batch_size=16)
    end = RawEnd(ns, 1)
    try:
        before = held()
        with pytest.raises(TapswitchError, match="injected fault"):
            make_port(kind, ns, loop, end, _fault=step)
        assert held() == before
        assert loop.arena.rings_in_use == 0
        assert not xdp_attached(ns, end.ifindex)
        ring = make_port(kind, ns, loop, end)       # and the same port works after
        assert loop.arena.rings_in_use > 0
        if kind == "xdp":
            assert xdp_attached(ns, end.ifindex)
        ring.close()
        assert held() == before and loop.arena.rings_in_use == 0
        assert not xdp_attached(ns, end.ifindex)
    finally:
        loop.close()
        end.close()


def test_a_loop_closed_first_lets_its_ports_go(ns):
    end = RawEnd(ns, 1)
    before = held()
    loop = fastpath.PacketLoop(world(), batch_size=16)
    ring = make_port("afpacket", ns, loop, end)
    loop.add_port(1, ring)
    loop.close()
    assert not ring.serving
    ring.close()
    del loop, ring
    assert held() == before
    end.close()


def test_a_deleted_interface_fails_the_port(ns):
    loop = fastpath.PacketLoop(world(), batch_size=16)
    end = RawEnd(ns, 1)
    ring = make_port("afpacket", ns, loop, end)
    try:
        loop.add_port(1, ring)
        ns.delete_link(end.sw)
        run(loop, 3)
        assert loop.ports()[1]["failed"] and loop.ports()[1]["error"] == "ENETDOWN"
        assert loop.stats()["read_errors"] == 1
    finally:
        loop.close()
        ring.close()
        end.close()
