"""ARP in the slow path (RFC 826): the switch answers for its scope and learns senders.

A request from an endpoint for any IPv4 address of its scope (other
namespaces' addresses, the switch's own, and, proxy style, any destination
routed out of another port) is answered with the ingress port's MAC.  A
request for the requester's own address (gratuitous ARP, duplicate address
detection) gets no answer.  Every ARP whose sender address passes the source
rule teaches the sender's MAC (the neighbour table, with expiry; on an L3 port
also ``PeerMac``); replies release frames waiting for that neighbour.
``request`` builds the switch's own requests (resolution and probes).
IPv6's counterpart is ``pyctl.daemon.nd``.
"""
from __future__ import annotations

from pyctl.daemon import packets as pk
from pyctl.daemon.output import PeerMac

__all__ = ["Arp"]


class Arp:
    """``sp``: the ``SlowPath`` whose view, neighbour table and counters it uses."""

    def __init__(self, sp):
        self.sp = sp
        self.view = sp.view
        self.counters = sp.counters

    def handle(self, port_id: int, eth: pk.Ethernet, out) -> None:
        arp = pk.parse_arp(eth.payload)
        if arp is None or pk.is_multicast_mac(arp.sha):
            self.sp.drop(port_id, "drop_malformed_arp")
            return
        if arp.sha != eth.src:
            # Learning from such a frame would let one host speak for another.
            self.sp.drop(port_id, "drop_arp_sha_mismatch")
            return
        view = self.view
        scope = view.port_scope(port_id)
        port_mac = view.port_mac(port_id)
        if arp.spa != 0 and not self.sp.learn_claim(
                scope, arp.spa, arp.sha, port_id, out,
                ("drop_arp_spoofed", "drop_arp_switch_address")):
            return
        namespace = view.port_namespace(port_id)
        if namespace != scope:
            out.learned.append(PeerMac(port_id, arp.sha))   # an L3 port: one endpoint
        if arp.op == pk.ARP_REPLY:
            self.counters["arp_reply_in"] += 1
            return
        if arp.tpa == arp.spa:
            self.counters["arp_gratuitous"] += 1
            return
        owner = view.owner(scope, arp.tpa)
        if owner is not None:
            if owner == namespace and namespace != scope:
                # An L3 asking about its own address: duplicate address detection.
                self.counters["arp_own_address"] += 1
                return
        else:
            route = view.route(scope, arp.tpa)
            if route is None or route.port_id == port_id:
                # Not ours to answer: unroutable, or on the requester's own link.
                self.counters["arp_ignored"] += 1
                return
        reply = pk.build_arp(pk.ARP_REPLY, port_mac, arp.tpa, arp.sha, arp.spa)
        out.frames.append((port_id, pk.build_ethernet(arp.sha, port_mac, pk.ETH_P_ARP, reply)))
        self.counters["arp_reply_sent"] += 1

    def request(self, port_id: int, target: int, eth_dst: bytes | None, out) -> bool:
        """Who has ``target``?  Out of ``port_id`` to ``eth_dst`` (None: broadcast; else
        the MAC a probe checks), from the switch's address there (else 0.0.0.0, a
        probe).  False if the port is gone."""
        port_mac = self.view.port_mac(port_id)
        if port_mac is None:
            return False
        spa = self.view.icmp_source(port_id) or 0
        request = pk.build_arp(pk.ARP_REQUEST, port_mac, spa, pk.ZERO_MAC, target)
        frame = pk.build_ethernet(eth_dst or pk.BROADCAST_MAC, port_mac, pk.ETH_P_ARP, request)
        out.frames.append((port_id, frame))
        return True
