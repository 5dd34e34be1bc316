"""The neighbour table: one owner, the fast path's copy written with it, expiry and bounds.

The slow path runs over the fixed view of tests/support/slowpath.py and a datapath
(reference and compiled core) holding its scopes, on a clock the test moves."""
import contextlib

import pytest
from scapy.layers.inet import UDP
from scapy.layers.l2 import ARP, Ether

from fastpath import Datapath
from fastpath.reference import ReferenceDatapath
from pyctl import errors
from pyctl.daemon.neighbours import REACHABLE, STALE
from pyctl.daemon import packets as pk
from pyctl.daemon.packets import ip_int
from pyctl.daemon.slowpath import Punt, SlowPath, SlowPathConfig
from tests.support.slowpath import (ENDPOINT_MAC, PORT_MAC, SWITCH_IP, StaticView, arp_frame,
                                    ip_frame, mac_bytes)

ROUTER = ip_int("10.0.0.254")
ROUTER_MAC = mac_bytes(ENDPOINT_MAC[12])


def scoped_datapath(cls):
    """A datapath holding the view's namespaces: L2 scopes 1 and 5, their L3s 2, 3 and 6."""
    dp = cls(max_namespaces=16, max_ports=32)
    with dp.update():
        for ns, scope in ((1, 1), (5, 5), (2, 1), (3, 1), (6, 5)):
            dp.set_namespace(ns, scope, ns != scope)
    return dp


@pytest.fixture(params=[ReferenceDatapath, Datapath], ids=["ref", "core"])
def dp(request):
    return scoped_datapath(request.param)


def slow_path(clock, dp=None, **config):
    return SlowPath(StaticView(), SlowPathConfig(**config), clock=clock, datapath=dp)


def uplink_says(sp, ip, op=1, mac_suffix=None):
    """An ARP from the uplink (port 12, an L2 port) with sender address ``ip``, from its
    endpoint's MAC or from 52:54:00:00:xx:xx numbered ``mac_suffix``."""
    mac = mac_bytes(ENDPOINT_MAC[12]) if mac_suffix is None else \
        bytes([0x52, 0x54, 0, 0, mac_suffix >> 8 & 255, mac_suffix & 255])
    arp = pk.build_arp(op, mac, ip_int(ip), mac_bytes(PORT_MAC[12]), ip_int(SWITCH_IP))
    return sp.handle(12, Punt.ARP, pk.build_ethernet(mac_bytes(PORT_MAC[12]), mac, pk.ETH_P_ARP, arp))


def test_a_learned_neighbour_is_in_the_datapath_at_once(clock, dp):
    sp = slow_path(clock, dp)
    uplink_says(sp, "10.0.0.254", op=2)
    assert dp.neighbour(1, ROUTER) == ROUTER_MAC
    assert sp.neighbour(1, ROUTER) == (ROUTER_MAC, 12)


def test_reachable_then_stale_then_probed_then_gone_from_both(clock, dp):
    sp = slow_path(clock, dp, reachable_time=30.0)
    uplink_says(sp, "10.0.0.254", op=2)
    clock.now += 29.9
    assert sp.tick().frames == [] and sp.neighbours.get(1, ROUTER).state == REACHABLE
    clock.now += 0.1
    assert sp.tick().frames == [] and sp.neighbours.get(1, ROUTER).state == STALE
    assert dp.neighbour(1, ROUTER) == ROUTER_MAC                 # stale still forwards
    for _ in range(3):                                           # arp_max_requests probes
        clock.now += 1.0
        (port, frame), = sp.tick().frames
        pkt = Ether(frame)
        assert port == 12 and pkt.dst == ENDPOINT_MAC[12] and pkt.src == PORT_MAC[12]
        assert (pkt[ARP].op, pkt[ARP].psrc, pkt[ARP].pdst) == (1, SWITCH_IP, "10.0.0.254")
    clock.now += 1.0
    assert sp.tick().frames == []
    assert sp.neighbour(1, ROUTER) is None and dp.neighbour(1, ROUTER) is None
    assert sp.counters["neighbour_expired"] == 1 and sp.counters["arp_probe_sent"] == 3


def test_an_answer_to_a_probe_keeps_the_neighbour(clock, dp):
    sp = slow_path(clock, dp, reachable_time=30.0)
    uplink_says(sp, "10.0.0.254", op=2)
    clock.now += 31.0
    sp.tick()
    clock.now += 1.0
    assert len(sp.tick().frames) == 1                            # the first probe
    uplink_says(sp, "10.0.0.254", op=2)                          # its answer
    assert sp.neighbours.get(1, ROUTER).state == REACHABLE
    clock.now += 29.0
    assert sp.tick().frames == [] and dp.neighbour(1, ROUTER) == ROUTER_MAC


def test_a_new_mac_is_written_through(clock, dp):
    sp = slow_path(clock, dp)
    uplink_says(sp, "10.0.0.254", op=2)
    uplink_says(sp, "10.0.0.254", op=2, mac_suffix=0x77)
    assert dp.neighbour(1, ROUTER) == mac_bytes("52:54:00:00:00:77")


def test_rate_limited_probes_do_not_count_as_tries(clock, dp):
    sp = slow_path(clock, dp, reachable_time=1.0, arp_rate=0.001, arp_burst=1)
    uplink_says(sp, "10.0.0.254", op=2)
    uplink_says(sp, "10.0.0.253", op=2)
    clock.now += 2.0
    sp.tick()
    for _ in range(10):
        clock.now += 1.0
        sp.tick()
    assert sp.counters["arp_probe_sent"] == 1                    # the one token
    assert sp.counters["arp_probe_rate_limited"] >= 9
    assert sp.counters["neighbour_expired"] == 0                 # still stale, still forwarding
    assert dp.neighbour(1, ROUTER) == ROUTER_MAC


def test_a_hostile_uplink_arping_thousands_of_addresses_stays_within_the_scope_bound(clock, dp):
    sp = slow_path(clock, dp, max_neighbours_per_scope=100, max_neighbours=1000)
    for k in range(3000):
        uplink_says(sp, f"10.7.{k >> 8}.{k & 255}", mac_suffix=k)
    assert sp.neighbours.in_scope(1) == 100 and len(sp.neighbours) == 100
    assert sp.counters["neighbour_evicted_scope"] == 2900
    held = [k for k in range(3000) if dp.neighbour(1, ip_int(f"10.7.{k >> 8}.{k & 255}"))]
    assert held == list(range(2900, 3000))                       # the newest, in both tables
    # Another scope still learns.
    sp.handle(20, Punt.ARP, arp_frame(20, 1, "10.0.0.2", SWITCH_IP))
    assert sp.neighbour(5, ip_int("10.0.0.2")) is not None


def test_the_overall_bound_evicts_the_least_recently_confirmed(clock, dp):
    sp = slow_path(clock, dp, max_neighbours_per_scope=100, max_neighbours=3)
    for host in (50, 51, 52):
        uplink_says(sp, f"10.0.0.{host}")
        clock.now += 1.0
    uplink_says(sp, "10.0.0.50")                                 # heard from again
    sp.handle(20, Punt.ARP, arp_frame(20, 1, "10.0.0.2", SWITCH_IP))    # scope 5
    assert sp.neighbour(1, ip_int("10.0.0.51")) is None
    assert dp.neighbour(1, ip_int("10.0.0.51")) is None
    assert sp.neighbour(1, ip_int("10.0.0.50")) is not None
    assert len(sp.neighbours) == 3 and sp.counters["neighbour_evicted"] == 1


class RefusingDatapath:
    """A datapath whose neighbour table refuses every write (the source rule and the
    tables refuse the same addresses today: this stands for a table that is full)."""

    def __init__(self, dp):
        self._dp = dp

    def __getattr__(self, name):
        return getattr(self._dp, name)

    @contextlib.contextmanager
    def update(self):
        with self._dp.update():
            yield self

    def set_neighbour(self, scope, ip, mac):
        raise errors.InvalidArgument(f"neighbour {ip} refused")


def test_a_refused_write_leaves_the_entry_out_of_both(clock, dp):
    sp = slow_path(clock, RefusingDatapath(dp))
    out = uplink_says(sp, "10.0.0.50")
    assert out.learned == [] and sp.neighbour(1, ip_int("10.0.0.50")) is None
    assert dp.neighbour(1, ip_int("10.0.0.50")) is None
    assert sp.counters["neighbour_refused"] == 1 and len(sp.neighbours) == 0


def test_frames_that_waited_leave_before_the_fast_path_learns_their_neighbour(clock, dp):
    """The fast path gets a resolved neighbour only at settle(), which the daemon calls
    after sending the frames that waited: until then it still hands the flow's frames up,
    so a later frame cannot overtake the released ones (the reply itself teaches the
    slow path at once)."""
    from tests.daemon.test_slowpath_neighbour import routed
    sp = slow_path(clock, dp)
    sp.handle(10, Punt.NO_NEIGHBOUR, routed(0))
    sp.handle(10, Punt.NO_NEIGHBOUR, routed(1))
    out = uplink_says(sp, "10.0.0.254", op=2)
    assert [Ether(f)[UDP].load for _, f in out.frames] == [b"frame0", b"frame1"]
    assert dp.neighbour(1, ROUTER) is None and sp.neighbour(1, ROUTER) == (ROUTER_MAC, 12)
    sp.settle()
    assert dp.neighbour(1, ROUTER) == ROUTER_MAC


def test_the_next_punt_settles_a_neighbour_the_daemon_did_not(clock, dp):
    from tests.daemon.test_slowpath_neighbour import routed
    sp = slow_path(clock, dp)
    sp.handle(10, Punt.NO_NEIGHBOUR, routed(0))
    uplink_says(sp, "10.0.0.254", op=2)
    out = sp.handle(10, Punt.NO_NEIGHBOUR, routed(1))
    assert dp.neighbour(1, ROUTER) == ROUTER_MAC
    assert len(out.frames) == 1 and Ether(out.frames[0][1]).dst == ENDPOINT_MAC[12]


def test_a_write_refused_at_settle_leaves_the_entry_out_of_both(clock, dp):
    from tests.daemon.test_slowpath_neighbour import routed
    sp = slow_path(clock, RefusingDatapath(dp))
    sp.handle(10, Punt.NO_NEIGHBOUR, routed(0))
    out = uplink_says(sp, "10.0.0.254", op=2)
    assert len(out.frames) == 1                                  # sent with the MAC heard
    sp.settle()
    assert sp.neighbour(1, ROUTER) is None and dp.neighbour(1, ROUTER) is None
    assert sp.counters["neighbour_refused"] == 1 and len(sp.neighbours) == 0
    assert sp.neighbours._by_port == {} and sp.neighbours._scopes == {}


def test_a_neighbour_forgotten_before_settle_is_not_written(clock, dp):
    from tests.daemon.test_slowpath_neighbour import routed
    sp = slow_path(clock, dp)
    sp.handle(10, Punt.NO_NEIGHBOUR, routed(0))
    uplink_says(sp, "10.0.0.254", op=2)
    sp.forget_port(12)
    sp.settle()
    assert dp.neighbour(1, ROUTER) is None and len(sp.neighbours) == 0


@pytest.mark.parametrize("martian", ["127.0.0.1", "224.0.0.9", "240.0.0.1"])
def test_martian_senders_are_spoofed_not_learned(clock, dp, martian):
    sp = slow_path(clock, dp)
    assert uplink_says(sp, martian) == ([], [])
    assert sp.counters["drop_arp_spoofed"] == 1 and len(sp.neighbours) == 0


def test_forget_port_removes_its_entries_from_both(clock, dp):
    sp = slow_path(clock, dp)
    uplink_says(sp, "10.0.0.254", op=2)
    sp.handle(10, Punt.ARP, arp_frame(10, 1, "10.0.0.2", SWITCH_IP))
    sp.forget_port(12)
    assert dp.neighbour(1, ROUTER) is None and sp.neighbour(1, ROUTER) is None
    assert dp.neighbour(1, ip_int("10.0.0.2")) is not None


def test_a_destroyed_scope_takes_its_neighbours_waiting_frames_and_buckets(clock, dp):
    from tests.daemon.test_slowpath_neighbour import routed
    sp = slow_path(clock, dp)
    uplink_says(sp, "10.0.0.77")
    sp.handle(10, Punt.NO_NEIGHBOUR, routed(0))                  # waits for 10.0.0.254
    sp.handle(10, Punt.TTL_EXCEEDED, routed(1, ttl=1))           # spends from ns 2's bucket
    assert len(sp.icmp.buckets) == 1 and sp.pending_neighbours == 1
    for ns in (2, 3, 1):                                         # children first, as destroy does
        sp.forget_namespace(ns)
    assert len(sp.neighbours) == 0 and dp.neighbour(1, ip_int("10.0.0.77")) is None
    assert sp.pending_neighbours == 0 and sp.pending_bytes == 0
    assert sp.counters["drop_scope_gone"] == 1 and len(sp.icmp.buckets) == 0


def test_forgetting_a_scope_the_datapath_already_removed(clock, dp):
    sp = slow_path(clock, dp)
    sp.handle(20, Punt.ARP, arp_frame(20, 1, "10.0.0.2", SWITCH_IP))
    with dp.update():
        dp.remove_namespace(6)
        dp.remove_namespace(5)                                   # its neighbours go with it
    sp.forget_namespace(5)
    assert len(sp.neighbours) == 0


def test_an_entry_the_datapath_lost_is_written_again_when_used(clock, dp):
    from tests.daemon.test_slowpath_neighbour import routed
    sp = slow_path(clock, dp)
    uplink_says(sp, "10.0.0.254", op=2)
    with dp.update():                                            # a rolled-back sync's doing
        dp.remove_neighbour(1, ROUTER)
    out = sp.handle(10, Punt.NO_NEIGHBOUR, routed(0))
    assert len(out.frames) == 1 and Ether(out.frames[0][1]).dst == ENDPOINT_MAC[12]
    assert dp.neighbour(1, ROUTER) == ROUTER_MAC and sp.counters["neighbour_reinstalled"] == 1


def test_namespace_churn_leaves_nothing_behind(clock, dp):
    from tests.daemon.test_slowpath_neighbour import routed
    sp = slow_path(clock, dp)
    for cycle in range(200):
        sp.handle(10, Punt.TTL_EXCEEDED, routed(cycle, ttl=1))
        sp.handle(10, Punt.ARP, arp_frame(10, 1, "10.0.0.2", SWITCH_IP))
        uplink_says(sp, f"10.0.{cycle}.9", mac_suffix=cycle)
        sp.forget_namespace(2)
        sp.forget_port(12)
    assert len(sp.icmp.buckets) == 0
    assert len(sp.neighbours) == 1 and sp.neighbour(1, ip_int("10.0.0.2")) is not None
    assert sp.neighbours._by_port.keys() == {10} and sp.neighbours._scopes.keys() == {1}


def test_full_icmp_buckets_are_freed(clock):
    sp = slow_path(clock, icmp_rate=10.0, icmp_burst=5)
    sp.handle(10, Punt.TTL_EXCEEDED, ip_frame(10, "10.0.0.2", "10.1.2.3", UDP(), ttl=1))
    assert len(sp.icmp.buckets) == 1
    clock.now += 0.5                                             # burst / rate: full again
    sp.handle(11, Punt.TTL_EXCEEDED, ip_frame(11, "10.0.0.3", "10.1.2.3", UDP(), ttl=1))
    assert sp.counters["icmp_sent_11_0"] == 2
    assert len(sp.icmp.buckets) == 1                             # ns 2's went, ns 3's came


class CountingUpdates:
    """A datapath that counts its update() blocks."""

    def __init__(self, dp):
        self.dp, self.updates = dp, 0

    def update(self):
        self.updates += 1
        return self.dp.update()

    def __getattr__(self, name):
        return getattr(self.dp, name)


def test_hearing_from_a_known_neighbour_writes_nothing(clock, dp):
    counting = CountingUpdates(dp)
    sp = slow_path(clock, counting)
    uplink_says(sp, "10.0.0.254", op=2)
    assert counting.updates == 1
    for _ in range(5):
        clock.now += 1.0
        uplink_says(sp, "10.0.0.254", op=2)
        sp.tick()
    assert counting.updates == 1 and sp.neighbours.get(1, ROUTER).confirmed == clock.now

