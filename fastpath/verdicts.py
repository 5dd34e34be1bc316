"""Verdict and reason codes of the fast path, shared by the core and the reference.

Every frame process() looks at gets one verdict and, unless forwarded, one
reason.  Each reason belongs to exactly one verdict: a *drop* reason means the
frame is gone (counted); a *slow path* reason means pyctl's slow path gets the
frame to answer (ARP, ICMP echo to the switch, ICMP errors, neighbour and peer
resolution).  ``fastpath/verdicts.pxi`` mirrors these numbers for the C code
(a test checks they agree).
"""

VERDICT_DROP = 0
VERDICT_FORWARD = 1      # rewritten in place, out to batch.out_port[i]
VERDICT_FANOUT = 2       # copies in the batch's fan-out list
VERDICT_SLOWPATH = 3     # hand to the slow path; batch.reason[i] says why

VERDICT_NAMES = {
    VERDICT_DROP: "drop",
    VERDICT_FORWARD: "forward",
    VERDICT_FANOUT: "fanout",
    VERDICT_SLOWPATH: "slowpath",
}

REASON_NONE = 0
# drops
REASON_MALFORMED = 1              # truncated, bad version, bad IHL, total length lying, bad ARP
REASON_BAD_CHECKSUM = 2           # IPv4 header checksum wrong
REASON_UNSUPPORTED_ETHERTYPE = 3  # neither IPv4 nor ARP (IPv6, VLAN tags, ...)
REASON_NOT_FOR_US = 4             # unicast MAC other than the port's, or IP unicast in an L2 broadcast
REASON_UNKNOWN_PORT = 5           # ingress port id not configured
REASON_SPOOFED_SOURCE = 6         # source address the sender may not use (or a martian)
REASON_BAD_DESTINATION = 7        # 0.0.0.0/8, 127.0.0.0/8 or 240.0.0.0/4 (not the limited broadcast)
REASON_NO_PORT = 8                # destination namespace (or route) has no usable port
REASON_NO_LISTENER = 9            # broadcast / multicast nobody else listens to
REASON_FANOUT_OVERFLOW = 10       # fan-out copies that did not fit the batch's list (per copy)
# slow path
REASON_ARP = 16                   # ARP: the slow path answers for the switch
REASON_LOCAL = 17                 # to an address the L2 scope itself owns (the switch)
REASON_NO_ROUTE = 18              # no FIB entry: the slow path sends ICMP unreachable
REASON_TTL_EXPIRED = 19           # TTL <= 1 on a routed frame: ICMP time exceeded
REASON_NO_NEIGHBOUR = 20          # next hop's MAC unknown: the slow path resolves it
REASON_PEER_UNKNOWN = 21          # MAC of the endpoint behind the destination port unknown
REASON_IGMP = 22                  # IGMP (IPv4 protocol 2): the switch snoops and is the querier

REASON_COUNT = 23                 # size of reason-indexed counter arrays

REASON_NAMES = {
    REASON_NONE: "none",
    REASON_MALFORMED: "malformed",
    REASON_BAD_CHECKSUM: "bad_checksum",
    REASON_UNSUPPORTED_ETHERTYPE: "unsupported_ethertype",
    REASON_NOT_FOR_US: "not_for_us",
    REASON_UNKNOWN_PORT: "unknown_port",
    REASON_SPOOFED_SOURCE: "spoofed_source",
    REASON_BAD_DESTINATION: "bad_destination",
    REASON_NO_PORT: "no_port",
    REASON_NO_LISTENER: "no_listener",
    REASON_FANOUT_OVERFLOW: "fanout_overflow",
    REASON_ARP: "arp",
    REASON_LOCAL: "local",
    REASON_NO_ROUTE: "no_route",
    REASON_TTL_EXPIRED: "ttl_expired",
    REASON_NO_NEIGHBOUR: "no_neighbour",
    REASON_PEER_UNKNOWN: "peer_unknown",
    REASON_IGMP: "igmp",
}

DROP_REASONS = frozenset(range(REASON_MALFORMED, REASON_FANOUT_OVERFLOW + 1))
SLOWPATH_REASONS = frozenset(range(REASON_ARP, REASON_IGMP + 1))


def reason_verdict(reason):
    """The verdict a reason goes with (VERDICT_DROP or VERDICT_SLOWPATH)."""
    if reason in DROP_REASONS:
        return VERDICT_DROP
    if reason in SLOWPATH_REASONS:
        return VERDICT_SLOWPATH
    raise ValueError(f"no verdict for reason {reason}")
