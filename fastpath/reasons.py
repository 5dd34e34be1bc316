"""The fast path's codes, each written down once: verdicts, drop and slow-path reasons,
virtio-net header refusals, and the names of the traffic and packet-loop counters.

Everything else derives from these tables (VPP's ``foreach_ip4_error`` style):
setup.py generates ``fastpath/reasons.pxi`` (the C enums, the loop's counter struct and
``C_CODES``, what the compiled core was built with) from them; ``fastpath.verdicts`` holds
the Python names; the counters are named from them; docs/architecture.md's reason table
is ``markdown_table()`` (a test fails when the docs drift: ``python -m fastpath.reasons``
prints the table to paste).

To add a reason: append a ``Reason`` with the next free code (codes are stable: the slow
queue hands them to pyctl, tests pin them), its verdict and one line of help.  Its C name
is ``REASON_`` + the name in capitals, its counter is the name.  Importing this module
loads nothing else.
"""
from typing import NamedTuple


class Verdict(NamedTuple):
    name: str
    code: int
    help: str


class Reason(NamedTuple):
    name: str
    code: int
    verdict: str            # "drop" or "slowpath"
    help: str


class Counter(NamedTuple):
    name: str
    help: str
    capture: int = 0        # a counter of frames the packet loop dropped: the reason code a
                            # capture of drops gives them (CAPTURE_REASON_NAMES); 0: no frame


class Share(NamedTuple):
    """A share of the slow path: a token bucket per sending namespace (or, ``per="port"``,
    per ingress port) for the frames of ``reasons``; the frames over it are refused before
    the slow path sees them, counted per namespace and share."""
    name: str
    reasons: tuple          # slow-path reason names; () for the share of every other one
    per: str                # "namespace" or "port"
    rate: int               # default: frames per second (0: no limit)
    burst: int              # default: frames saved up
    help: str


VERDICTS = (
    Verdict("drop", 0, "the frame is gone; its reason is counted"),
    Verdict("forward", 1, "rewritten in place, out to batch.out_port[i]"),
    Verdict("fanout", 2, "copies in the batch's fan-out list"),
    Verdict("slowpath", 3, "handed to pyctl's slow path; batch.reason[i] says why"),
)

# Every frame process() looks at gets one verdict and, unless forwarded, one reason; each
# reason belongs to exactly one verdict.  Code 0 ("none") is the reason of a forwarded frame.
REASONS = (
    Reason("malformed", 1, "drop", "truncated, bad IP version or IPv4 IHL, a total / payload length that lies, a short ARP or ICMPv6 header"),
    Reason("bad_checksum", 2, "drop", "IPv4 header checksum wrong"),
    Reason("unsupported_ethertype", 3, "drop", "neither IPv4, IPv6 nor ARP (VLAN tags, ...)"),
    Reason("not_for_us", 4, "drop", "unicast MAC other than the port's, or IP unicast in an L2 broadcast"),
    Reason("unknown_port", 5, "drop", "ingress port id not configured"),
    Reason("spoofed_source", 6, "drop", "a source the sender does not hold: another namespace's, the scope's own "
           "(the gateway's), a directed broadcast of the scope; for an L3 any but its own (IPv6: or a martian; "
           ":: outside ND and MLD)"),
    Reason("bad_destination", 7, "drop", "0.0.0.0/8, 127.0.0.0/8, 240.0.0.0/4 (not the limited broadcast); ::, ::1, ::ffff:0:0/96, IPv6 multicast of scope 0 or 1 (interface-local)"),
    Reason("no_port", 8, "drop", "the destination namespace (or route) has no usable port"),
    Reason("no_listener", 9, "drop", "broadcast or multicast nobody else listens to"),
    Reason("fanout_overflow", 10, "drop", "fan-out copies that did not fit the batch's list (counted per copy)"),
    Reason("bad_extension_header", 11, "drop", "an IPv6 extension-header chain that is malformed, too long or out of order (fastpath/ipv6.py)"),
    Reason("link_local_source_routed", 12, "drop", "an IPv6 link-local source (fe80::/10) in a frame that would leave the sender's link"),
    Reason("martian_source", 13, "drop", "an IPv4 source no router forwards (RFC 1812 5.3.7): 0.0.0.0/8 (0.0.0.0 "
           "itself only for IGMP and a DHCP client's broadcast), 127.0.0.0/8, multicast, 240.0.0.0/4"),
    Reason("directed_broadcast", 14, "drop", "a directed broadcast from outside its subnet (RFC 2644; "
           "the L2's directed_broadcast option lets them in)"),
    Reason("rogue_dhcp", 15, "drop", "a DHCP server message (UDP from port 67; DHCPv6: from 547) from an L3 port not "
           "marked as a DHCP server (port option dhcp_server)"),
    Reason("arp", 16, "slowpath", "ARP: the slow path answers for the switch"),
    Reason("local", 17, "slowpath", "to an address the L2 scope itself owns (the switch)"),
    Reason("no_route", 18, "slowpath", "no FIB entry: the slow path sends ICMP / ICMPv6 unreachable"),
    Reason("ttl_expired", 19, "slowpath", "TTL or hop limit <= 1 on a routed frame: ICMP / ICMPv6 time exceeded"),
    Reason("no_neighbour", 20, "slowpath", "the next hop's MAC is unknown: the slow path resolves it"),
    Reason("peer_unknown", 21, "slowpath", "the MAC of the endpoint behind the destination port is unknown"),
    Reason("igmp", 22, "slowpath", "IGMP (IPv4 protocol 2): the switch snoops and is the querier"),
    Reason("nd", 23, "slowpath", "ICMPv6 neighbour discovery (types 133-137): answered or refused by the switch, never forwarded"),
    Reason("mld", 24, "slowpath", "MLD (ICMPv6 types 130-132, 143): the switch snoops and is the querier"),
    Reason("too_big", 25, "slowpath", "larger than the egress port's MTU (a super-frame: one of its segments): ICMPv6 packet too big; IPv4: fragmentation needed with DF, else fragments"),
    Reason("dhcp", 26, "slowpath", "a DHCP client message (UDP 68 -> 67; DHCPv6: 546 -> 547) on a "
           "port the switch serves by DHCP (a port without an address option, or of kind attach): "
           "the switch answers"),
)

# The slow path's shares (loop.pxi, slow_shares.pxi; [daemon.slowpath.shares] sets them).
# Every slow-path reason belongs to one share; the last one, "other", takes what the others
# do not name (a reason added later is in it until a share names it).
SLOW_SHARES = (
    Share("arp", ("arp", "nd"), "namespace", 200, 100,
          "ARP and IPv6 neighbour discovery to the switch (it answers, learns the sender)"),
    Share("icmp", ("local", "no_route", "ttl_expired", "too_big"), "namespace", 200, 100,
          "what the switch answers with ICMP: echo to its addresses, unreachable, time "
          "exceeded, packet too big"),
    Share("igmp", ("igmp", "mld"), "port", 50, 50,
          "IGMP and MLD reports and leaves (snooping); per port: each uplink its own"),
    Share("resolve", ("no_neighbour", "peer_unknown"), "namespace", 1000, 200,
          "frames that wait while the slow path resolves a MAC"),
    Share("other", (), "namespace", 200, 100, "any slow-path reason no share above names"),
)

# The most segments one GSO super-frame may be cut into (fastpath/vnet.pxi refuses one that
# would need more; issue 14 item 11).  A vnet port's TAP is told so too (its gso_max_segs,
# pyctl/daemon/tap_port.py), so the tenant's own kernel never builds a larger one.
VNET_MAX_SEGMENTS = 256

# Why a port refused a virtio-net header (the frame never reaches process()); code = position.
# A refused frame is a counted drop; a capture of drops shows it with its capture code.
VNET_REFUSALS = (
    Counter("ok", "accepted"),
    Counter("vnet_short", "the read was shorter than the header", 128),
    Counter("vnet_bad_flags", "unknown flag bits", 129),
    Counter("vnet_bad_gso_type", "unknown gso_type, UFO, or ECN without TCP", 130),
    Counter("vnet_bad_csum", "csum_start/csum_offset beyond the frame or inside the Ethernet/IP header", 131),
    Counter("vnet_bad_hdr_len", "hdr_len beyond the frame", 132),
    Counter("vnet_bad_gso", "GSO without NEEDS_CSUM or gso_size, or on a frame that is not what gso_type says", 133),
    Counter("vnet_too_many_segments", f"a GSO super-frame that would need more than "
            f"VNET_MAX_SEGMENTS ({VNET_MAX_SEGMENTS}) segments", 134),
)

# Per port and per namespace, charged by process(); index = position.
TRAFFIC_COUNTERS = (
    Counter("rx_packets", "frames received on the port / sent by the namespace"),
    Counter("rx_bytes", "their bytes"),
    Counter("tx_packets", "frames (and fan-out copies) decided out of the port / to the namespace"),
    Counter("tx_bytes", "their bytes"),
)

# The packet loop's counters (PacketLoop.stats()), in the order of its C struct.  A counter
# of frames the loop drops (its help says "dropped") has a capture code (128..255, distinct):
# a capture of drops shows each such frame with the counter's name for its reason.
LOOP_STATS = (
    Counter("batches", "batches decided"),
    Counter("epoll_waits", "epoll_wait calls that returned (events or the timeout)"),
    Counter("epoll_interrupted", "epoll_wait calls a signal or the kernel's task work "
            "interrupted (EINTR), then retried"),
    Counter("reads", "frames read"),
    Counter("read_bytes", "bytes read (virtio-net headers included)"),
    Counter("frames_in", "frames put in a batch"),
    Counter("writes", "writes that succeeded"),
    Counter("frames_out", "frames written"),
    Counter("bytes_out", "bytes written"),
    Counter("write_eagain", "writes refused with a full queue (dropped)", 141),
    Counter("write_errors", "writes that failed otherwise (dropped)", 142),
    Counter("tx_no_port", "frames to a port the loop does not have (dropped)", 143),
    Counter("tx_over_mtu", "fan-out copies larger than their port's MTU (a super-frame: its "
            "segments), dropped as a bridge does", 144),
    Counter("read_errors", "reads that failed; the port is failed"),
    Counter("read_eof", "reads of 0 bytes; the port is failed"),
    Counter("rx_oversize", "frames that did not fit a slot (dropped)", 140),
    Counter("slow_queued", "frames queued for the slow path"),
    Counter("slow_overflow", "frames the full slow queue refused (dropped)", 146),
    Counter("slow_ns_full", "frames refused because their namespace held its part of the slow queue (dropped)", 147),
    Counter("slow_refused", "frames over their namespace's share of the slow path (dropped; per namespace: counters)", 148),
    Counter("sw_csum", "checksums completed in software"),
    Counter("sw_gso_frames", "super-frames segmented in software"),
    Counter("sw_segments", "segments they were cut into"),
    Counter("sw_gso_refused", "super-frames that could not be segmented (dropped)", 145),
    Counter("sent", "frames the slow path sent with send()"),
    Counter("tx_submits", "write submissions (one per write on epoll, one per batch on io_uring, "
                          "one per kick of a ring port's transmit ring)"),
    Counter("rx_socket_frames", "AF_PACKET frames too large for a ring slot, read from the socket"),
    Counter("rx_vlan", "frames a ring port received VLAN-tagged (the tag in the ring's metadata): dropped", 149),
    Counter("waits", "of the epoll_waits, those that could sleep (no port known to hold frames, "
            "not polling)"),
    Counter("read_empty", "reads that found the port empty (EAGAIN)"),
    Counter("poll_episodes", "times the loop polled after a busy batch instead of sleeping (poll_us)"),
    Counter("polls", "epoll_wait calls made while polling"),
    Counter("poll_hits", "polling episodes that found frames (a sleep and a wake-up saved)"),
    Counter("poll_ns", "time spent polling, ns"),
    Counter("poll_shared", "polling episodes in which another task held the loop's CPU for 250 "
                           "us or more; polling is off for a second after each"),
    Counter("tx_retries", "kicks of a ring port's transmit ring for frames an earlier kick left "
                          "there (the kernel refused them: send buffer full, no carrier, queue stopped)"),
    Counter("ring_batches", "batches begun without an epoll_wait: a ring port the batch before "
                            "emptied held frames again after it (a read of its ring, no system call)"),
    Counter("tx_kicks_deferred", "ring ports' transmit kicks left to the next batch, which began "
                                 "at once (fewer than RING_KICK_MIN frames queued)"),
    Counter("tx_kicks_backed_off", "ring ports' transmit kicks skipped: frames the kernel has "
                                   "refused for RING_RETRY_MS or more are kicked once per RING_RETRY_MS"),
    Counter("tx_ring_stuck", "frames a ring port's transmit ring held that the kernel took none of "
                             "for AFP_TX_STUCK_MS: taken back, dropped (frames_out had counted them)", 150),
    Counter("rx_submits", "io_uring_enter calls that read TAP ports (io_uring backend: one per "
                          "pass over the ports, for all their reads)"),
    Counter("tx_timed", "writes to a TAP made at once and timed for what the port costs "
                        "(tx_cost.pxi: one in 8..23 of a port's frames, each while it is "
                        "watched; on io_uring each is a submit of its own)"),
    Counter("tx_timed_flushes", "io_uring: queued writes submitted before a timed write, which "
                                "must not pass one queued to the same port"),
    Counter("tx_cost_held", "frames to a port held because writing its frames costs the packet "
                            "thread more than tx_cost_limit_us each, beyond its share "
                            "(dropped; per port: tx_cost_drops)", 151),
)

VERDICT_NAMES = {v.code: v.name for v in VERDICTS}
REASON_NAMES = {0: "none", **{r.code: r.name for r in REASONS}}
REASON_COUNT = max(REASON_NAMES) + 1          # size of reason-indexed counter arrays
DROP_REASONS = frozenset(r.code for r in REASONS if r.verdict == "drop")
SLOWPATH_REASONS = frozenset(r.code for r in REASONS if r.verdict == "slowpath")
TRAFFIC_COUNTER_NAMES = tuple(c.name for c in TRAFFIC_COUNTERS)
LOOP_STAT_NAMES = tuple(c.name for c in LOOP_STATS)
VNET_REFUSAL_NAMES = tuple(c.name for c in VNET_REFUSALS)
SHARE_NAMES = tuple(share.name for share in SLOW_SHARES)
LOOP_DROPS = tuple(c for c in LOOP_STATS + VNET_REFUSALS if c.capture)
# The reason of a frame a capture of drops holds: process()'s, or a packet-loop counter's.
CAPTURE_REASON_NAMES = {**REASON_NAMES, **{c.capture: c.name for c in LOOP_DROPS}}


def check_tables():
    """The rules the tables keep (a wrong append fails the build, not a test run later)."""
    verdict_names = {v.name for v in VERDICTS}
    codes = [r.code for r in REASONS]
    names = [r.name for r in REASONS] + [c.name for c in VNET_REFUSALS]
    if len(set(codes)) != len(codes) or min(codes) < 1 or max(codes) > 255:
        raise ValueError("reason codes must be distinct, in 1..255 (a uint8; 0 is 'none')")
    if len(set(names)) != len(names) or not all(n.isidentifier() and n.islower() for n in names):
        raise ValueError("reason names must be distinct lower-case identifiers")
    bad = [r.name for r in REASONS if r.verdict not in ("drop", "slowpath")]
    if bad or not {"drop", "slowpath"} <= verdict_names:
        raise ValueError(f"a reason's verdict is 'drop' or 'slowpath', not that of {bad}")
    slow = {r.name for r in REASONS if r.verdict == "slowpath"}
    named = [name for share in SLOW_SHARES for name in share.reasons]
    if (len(set(named)) != len(named) or not set(named) <= slow or SLOW_SHARES[-1].reasons
            or SLOW_SHARES[-1].name != "other"
            or any(share.per not in ("namespace", "port") for share in SLOW_SHARES)):
        raise ValueError("each slow-path reason is in at most one share, the last share is "
                         "'other' (no reasons), a share is per 'namespace' or per 'port'")
    captures = [c.capture for c in LOOP_DROPS]
    unmarked = [c.name for c in LOOP_STATS + VNET_REFUSALS[1:]
                if bool(c.capture) != ("dropped" in c.help or c in VNET_REFUSALS)]
    if (unmarked or len(set(captures)) != len(captures)
            or not all(max(codes) < code <= 255 for code in captures)):
        raise ValueError(f"every counter of dropped frames (help: 'dropped'; every vnet refusal) "
                         f"and only those has a distinct capture code above the reasons' codes, "
                         f"at most 255 (not so: {unmarked or captures})")


def _c_name(prefix, name):
    return f"{prefix}_{name.upper()}"


def generate_pxi():
    """The text of fastpath/reasons.pxi: the C side of these tables."""
    check_tables()
    out = ["# GENERATED by setup.py from fastpath/reasons.py -- do not edit; edit the tables there.",
           "from libc.stdint cimport uint8_t, uint64_t", "", "cdef enum:"]
    out += [f"    {_c_name('VERDICT', v.name)} = {v.code}" for v in VERDICTS]
    out += ["", "cdef enum:", "    REASON_NONE = 0"]
    out += [f"    {_c_name('REASON', r.name)} = {r.code}" for r in REASONS]
    out += [f"    REASON_COUNT = {max(r.code for r in REASONS) + 1}", "", "cdef enum:"]
    out += [f"    {_c_name('TRAFFIC', c.name)} = {k}" for k, c in enumerate(TRAFFIC_COUNTERS)]
    out += [f"    NCOUNTERS = {len(TRAFFIC_COUNTERS)}", "", "cdef enum:"]
    out += [f"    {_c_name('VNET', c.name.removeprefix('vnet_'))} = {k}" for k, c in enumerate(VNET_REFUSALS)]
    out += [f"    VNET_NREASONS = {len(VNET_REFUSALS)}",
            f"    VNET_MAX_SEGMENTS = {VNET_MAX_SEGMENTS}", "", "cdef enum:"]
    out += [f"    {_c_name('SHARE', share.name)} = {k}" for k, share in enumerate(SLOW_SHARES)]
    out += [f"    NSHARES = {len(SLOW_SHARES)}", "",
            "cdef inline uint8_t reason_share(uint8_t reason) noexcept nogil:",
            '    """The share of the slow path a slow-path reason is charged to."""']
    out += [f"    if reason == {_c_name('REASON', name)}:\n"
            f"        return {_c_name('SHARE', share.name)}"
            for share in SLOW_SHARES for name in share.reasons]
    out += [f"    return SHARE_OTHER", "",
            "cdef inline bint share_per_port(uint8_t share) noexcept nogil:",
            '    """A share whose buckets are per ingress port (else per sending namespace)."""',
            "    return " + (" or ".join(f"share == {_c_name('SHARE', share.name)}"
                                        for share in SLOW_SHARES if share.per == "port")
                             or "False"), "", "cdef struct LoopStats:"]
    out += [f"    uint64_t {c.name}" for c in LOOP_STATS]
    out += ["    uint64_t vnet_drop[VNET_NREASONS]", "", "cdef enum:"]
    out += [f"    {_c_name('DROP', c.name)} = {c.capture}" for c in LOOP_DROPS]
    out += ["", "cdef inline uint8_t vnet_drop_code(uint8_t why) noexcept nogil:",
            '    """The capture code of a frame refused for its virtio-net header."""']
    out += [f"    if why == {k}:\n        return {_c_name('DROP', c.name)}"
            for k, c in enumerate(VNET_REFUSALS) if c.capture]
    out += ["    return 0", "",
            "# The codes as this extension was compiled (a test compares them with fastpath/reasons.py).",
            "C_CODES = {"]
    out += [f"    {_c_name('VERDICT', v.name)!r}: {_c_name('VERDICT', v.name)}," for v in VERDICTS]
    out += ["    'REASON_NONE': REASON_NONE,"]
    out += [f"    {_c_name('REASON', r.name)!r}: {_c_name('REASON', r.name)}," for r in REASONS]
    out += ["    'REASON_COUNT': REASON_COUNT,", "}", "C_DROP_CODES = {"]
    out += [f"    {c.name!r}: {_c_name('DROP', c.name)}," for c in LOOP_DROPS]
    out += ["}", ""]
    return "\n".join(out)


def markdown_table():
    """The reason table of docs/architecture.md (between its reason-table markers)."""
    check_tables()
    rows = ["| code | reason | verdict | what it means |", "|---|---|---|---|"]
    rows += [f"| {r.code} | `{r.name}` | {r.verdict} | {r.help} |" for r in sorted(REASONS, key=lambda r: r.code)]
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
