"""IPv6 neighbour discovery in the slow path: ARP's counterpart (RFC 4861).

The fast path hands every ND message up (reason ``nd``) and forwards none, so
no tenant ever hears another's solicitations or advertisements: the switch
answers for the scope, and only the switch.  Every message must be
well-formed, carry hop limit 255 (it was not routed) and come from the
unspecified address (solicitations for duplicate address detection, router
solicitations), a link-local address (the sender's own on its link: ND and
MLD speak from those), or an address the port may send from (the source
rule); else it is a counted drop.  A link-layer address option that is not
the frame's own source MAC is refused, as ARP's sender-MAC check.

- **Neighbour solicitation**: answered with an advertisement carrying the
  ingress port's MAC (every endpoint's next hop is the switch) for the port's
  own link-local address, and, as ARP is, for every address of the scope (the
  switch's own, other namespaces', and proxy style a destination routed out
  of another port).  Never for an address of another scope (its addresses are
  not looked up), never for another link's link-local address, never for the
  asker's own.  Duplicate address detection (from ``::``) is answered only
  for an address someone else holds, to all nodes, so the tenant sees the
  conflict; a free address gets no answer.  A solicitation from a unicast
  address with a source link-layer option teaches its sender (the one
  neighbour table, ``pyctl.daemon.neighbours``).
- **Neighbour advertisement**: teaches the neighbour table (its target must be
  an address the port may send from; the switch's own is refused) and
  releases the frames waiting for it.
- **Router solicitation**: counted; answered with a router advertisement if
  the L2 advertises (its ``advertise`` option: ``pyctl.daemon.router_adverts``)
  or the port is served by DHCP (the advertisement says: ask DHCPv6).
- **Router advertisement, redirect**: a tenant is no router: dropped and
  counted (``drop_rogue_router``), unless the port's ``router`` option says a
  router stands behind it; then relayed, an advertisement to the scope's other
  ports, a redirect to the port of the address it is sent to.

On an L3 port every accepted message also teaches the endpoint's MAC
(``PeerMac``), as ARP does.  The switch's solicitations (``solicit``) resolve
next hops: to the target's solicited-node group, or, probing a stale
neighbour, to its MAC.
"""
from __future__ import annotations

from pyctl.daemon import packets as pk
from pyctl.daemon import packets6 as pk6

__all__ = ["NeighbourDiscovery"]


class NeighbourDiscovery:
    """``sp``: the ``SlowPath`` whose view, neighbour table, counters and clock it uses."""

    def __init__(self, sp, adverts):
        self.sp = sp
        self.view = sp.view
        self.counters = sp.counters
        self.adverts = adverts              # pyctl.daemon.router_adverts.RouterAdverts

    def handle(self, port_id: int, eth: pk.Ethernet, ip: pk6.IPv6, out) -> None:
        icmp = pk6.parse_icmp6(ip)
        if icmp is None or icmp.type not in pk6.ND_TYPES:
            self.sp.drop(port_id, "drop_nd_malformed")
            return
        if ip.hop_limit != pk6.ND_HOP_LIMIT or icmp.code != 0:
            # routed here, or not ND as RFC 4861 has it
            self.sp.drop(port_id, "drop_nd_not_on_link")
            return
        if pk.is_multicast_mac(eth.src):
            self.sp.drop(port_id, "drop_nd_malformed")
            return
        if not self._source_ok(port_id, ip.src, icmp.type):
            self.sp.drop(port_id, "drop_nd_spoofed")
            return
        handler = {pk6.ND_NEIGHBOUR_SOLICIT: self._solicitation,
                   pk6.ND_NEIGHBOUR_ADVERT: self._advertisement,
                   pk6.ND_ROUTER_SOLICIT: self._router_solicitation,
                   pk6.ND_ROUTER_ADVERT: self._router_message,
                   pk6.ND_REDIRECT: self._router_message}[icmp.type]
        handler(port_id, eth, ip, icmp, out)

    def _source_ok(self, port_id, src, itype) -> bool:
        if src.is_unspecified:
            return itype in (pk6.ND_NEIGHBOUR_SOLICIT, pk6.ND_ROUTER_SOLICIT)
        if src.is_link_local:
            return True                     # its own on its link; never learned, never routed
        return self.view.source_allowed(port_id, src)

    def _peer(self, port_id, mac, out) -> None:
        if self.view.port_namespace(port_id) != self.view.port_scope(port_id):
            out.learned.append(self.sp.peer_mac(port_id, mac))     # an L3 port: one endpoint

    # -- neighbours ---------------------------------------------------------------------

    def _solicitation(self, port_id, eth, ip, icmp, out) -> None:
        ns = pk6.parse_solicitation(icmp.body)
        if ns is None:
            self.sp.drop(port_id, "drop_nd_malformed")
            return
        dad = ip.src.is_unspecified
        slla = ns.options.source_lladdr
        if dad and (slla is not None or ip.dst != pk6.solicited_node(ns.target)):
            self.sp.drop(port_id, "drop_nd_malformed")      # RFC 4861 7.1.1
            return
        if slla is not None and slla != eth.src:
            self.sp.drop(port_id, "drop_nd_lladdr_mismatch")
            return
        view, scope = self.view, self.view.port_scope(port_id)
        namespace = view.port_namespace(port_id)
        if not dad and not ip.src.is_link_local:
            if view.owner(scope, ip.src) == scope:
                # someone claims the switch's address
                self.sp.drop(port_id, "drop_nd_switch_address")
                return
            if slla is not None:
                self.sp.learn(scope, ip.src, slla, port_id, out)
        self._peer(port_id, eth.src, out)
        self.counters["nd_solicit_in"] += 1
        if not self._answers(port_id, scope, namespace, ns.target, dad):
            return
        port_mac = view.port_mac(port_id)
        if dad:                                  # the conflict, to all nodes (RFC 4862 5.4.3)
            dst, dst_mac, flags = pk6.ALL_NODES, pk6.group_mac(pk6.ALL_NODES), 0
        else:
            dst, dst_mac, flags = ip.src, slla or eth.src, pk6.NA_SOLICITED
        flags |= pk6.NA_ROUTER | pk6.NA_OVERRIDE
        src = pk6.link_local_of(port_mac)
        body = pk6.build_advertisement(ns.target, flags, port_mac)
        message = pk6.build_icmp6(src, dst, pk6.ND_NEIGHBOUR_ADVERT, 0, body)
        out.frames.append((port_id, self.sp.icmp.datagram6(port_id, dst_mac, src, dst, message,
                                                           hop_limit=pk6.ND_HOP_LIMIT)))
        self.counters["nd_advert_sent"] += 1

    def _answers(self, port_id, scope, namespace, target, dad) -> bool:
        """Whether the switch answers a solicitation for ``target`` (counting why not)."""
        view = self.view
        if target.is_link_local:
            if target == pk6.link_local_of(view.port_mac(port_id)):
                return True
            self.counters["nd_ignored_link_local"] += 1      # another host's, on its own link
            return False
        owner = view.owner(scope, target)
        if owner is not None:
            if owner == namespace and namespace != scope:
                self.counters["nd_own_address"] += 1         # an L3 about its own address
                return False
            return True
        if dad:
            self.counters["nd_dad_free"] += 1                # nobody holds it: no false conflict
            return False
        route = view.route(scope, target)
        if route is None or route.port_id == port_id:
            self.counters["nd_ignored"] += 1                 # unroutable, or on the asker's link
            return False
        return True

    def _advertisement(self, port_id, eth, ip, icmp, out) -> None:
        na = pk6.parse_advertisement(icmp.body)
        if na is None or (ip.dst.is_multicast and na.flags & pk6.NA_SOLICITED):
            self.sp.drop(port_id, "drop_nd_malformed")
            return
        tlla = na.options.target_lladdr
        if tlla is not None and tlla != eth.src:
            self.sp.drop(port_id, "drop_nd_lladdr_mismatch")
            return
        scope = self.view.port_scope(port_id)
        self.counters["nd_advert_in"] += 1
        if not na.target.is_link_local and not self.sp.learn_claim(
                scope, na.target, tlla or eth.src, port_id, out,
                ("drop_nd_spoofed", "drop_nd_switch_address")):
            return
        self._peer(port_id, eth.src, out)

    # -- routers ------------------------------------------------------------------------

    def _router_solicitation(self, port_id, eth, ip, icmp, out) -> None:
        options = pk6.parse_nd_options(icmp.body[4:]) if len(icmp.body) >= 4 else None
        if options is None or (ip.src.is_unspecified and options.source_lladdr is not None):
            self.sp.drop(port_id, "drop_nd_malformed")
            return
        if options.source_lladdr is not None and options.source_lladdr != eth.src:
            self.sp.drop(port_id, "drop_nd_lladdr_mismatch")
            return
        self._peer(port_id, eth.src, out)
        self.counters["nd_router_solicit_in"] += 1
        if not (self.view.advertises(self.view.port_scope(port_id))
                or port_id in self.adverts.managed()):
            self.counters["nd_router_solicit_ignored"] += 1
            return
        self.adverts.solicited(port_id, self.sp.clock(), out)

    def _router_message(self, port_id, eth, ip, icmp, out) -> None:
        """A router advertisement or a redirect: only a router port's go on."""
        view = self.view
        if not view.port_is_router(port_id):
            self.sp.drop(port_id, "drop_rogue_router")
            return
        scope = view.port_scope(port_id)
        if ip.dst.is_multicast:
            targets = [p for p in view.scope_ports(scope) if p != port_id]
        elif ip.dst.is_link_local:
            targets = []                          # another link's host: not the switch's to find
        else:
            route = view.route(scope, ip.dst)
            targets = [] if route is None or route.port_id == port_id else [route.port_id]
        if not targets:
            self.sp.drop(port_id, "drop_router_message_no_port")
            return
        for egress in targets:
            mac = view.port_mac(egress)
            dst_mac = eth.dst if ip.dst.is_multicast else self.sp.neighbour_mac(scope, ip.dst)
            if mac is None or dst_mac is None:
                self.sp.drop(port_id, "drop_router_message_no_port")
                continue
            out.frames.append((egress, pk.build_ethernet(dst_mac, mac, pk6.ETH_P_IPV6, ip.datagram)))
            self.counters["router_message_relayed"] += 1

    # -- the switch's own solicitations ---------------------------------------------------

    def solicit(self, port_id: int, target, eth_dst: bytes | None, out) -> bool:
        """A neighbour solicitation for ``target`` out of ``port_id``: to its solicited-node
        group (``eth_dst`` None), or a probe to ``eth_dst``.  From the switch's address facing
        the port, else its link-local address there.  False if the port is gone."""
        view = self.view
        port_mac = view.port_mac(port_id)
        if port_mac is None:
            return False
        src = view.icmp_source(port_id, 6) or pk6.link_local_of(port_mac)
        if eth_dst is None:
            dst = pk6.solicited_node(target)
            eth_dst = pk6.group_mac(dst)
        else:
            dst = target
        body = pk6.build_solicitation(target, port_mac)
        message = pk6.build_icmp6(src, dst, pk6.ND_NEIGHBOUR_SOLICIT, 0, body)
        out.frames.append((port_id, self.sp.icmp.datagram6(port_id, eth_dst, src, dst, message,
                                                           hop_limit=pk6.ND_HOP_LIMIT)))
        return True
