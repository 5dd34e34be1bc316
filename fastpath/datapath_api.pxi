# Datapath: the control API pyctl's compiler writes the tables through (not per packet).
# Each call checks all its arguments before anything changes -- a refused call leaves
# every table as it was (errors from fastpath.errors, with errno-like codes) -- and keeps
# the rules that span tables: an L3 has at most one port; a namespace with addresses,
# ports or children cannot go; an L2 that goes takes its scope's routes, neighbours,
# broadcast lists and groups with it; a group's egress ports follow its members' ports.
# Writes happen inside ``with datapath.update():`` (datapath.pxi).
#
# Both families through the same methods (no "6" twins): an IPv4 address is a host-order
# int, an IPv6 address an ipaddress.IPv6Address (a prefix: the IPv6Address of the network
# + its length); fastpath/addresses.py checks them and says which.  Each address-keyed
# call goes to that family's table; answers come back in the family asked.  A bad family,
# type or range is InvalidArgument, as for IPv4.  The final API (fastpath.reference's
# ReferenceDatapath has the same; IPv4 signatures as before):
#   set_port(port, ns, mac, mtu=1500, dhcp_server=False, serve_dhcp=False)   mtu: the
#       largest IP packet the port's link carries (68..65535; IPv6 needs 1280+: the model's
#       check): a unicast frame of either family (a super-frame: its largest segment) over
#       the egress port's MTU goes to the slow path, too_big; dhcp_server: a DHCP server
#       the L2 trusts; serve_dhcp: the switch answers DHCP there.
#   port_mtu(port) -> int, port_is_dhcp_server(port) -> bool, port_serves_dhcp(port) -> bool
#   add_address(scope, ip, ns, plen=None)   plen: the prefix length of the address's subnet,
#       IPv4 1..32 (None: 32), IPv6 its on-link prefix 0..128 (None: 128, none known); two
#       owned addresses with the same plen and prefix are on one link (switched, TTL / hop
#       limit kept), else routed; an IPv4 sender's broadcasts reach its subnet only.  No
#       multicast, ::, ::1, fe80::/10 or ::ffff:0:0/96 (the switch answers link-local).
#   remove_address(scope, ip), lookup_address(scope, ip) -> ns or -1
#   address_onlink(scope, ip) -> plen of an owned address, or None
#   set_directed_broadcast(scope, enabled), directed_broadcast(scope) -> bool
#   add_route(scope, prefix, plen, port, gateway=0)   IPv6: plen 0..128, gateway an
#                                       IPv6Address or None (0 accepted) = on-link
#   remove_route(scope, prefix, plen), lookup_route(scope, ip) -> (port, gateway) or None
#                                       (IPv6 on-link: gateway None; IPv4: 0)
#   routes(scope) -> [(prefix, plen, port, gateway)]: IPv4 then IPv6, each by plen, prefix
#   set_neighbour(scope, ip, mac), remove_neighbour(scope, ip), neighbour(scope, ip) -> mac
#   set_group(scope, group, ns_ids), remove_group(scope, group), lookup_group(scope, group)
#       IPv6 groups: ff00::/8 of a scope wider than link, and solicited-node ones
#       (ff02::1:ff00:0/104: their addresses' owners; no entry, no listener); other
#       link-scope groups (ff02::1, ...) reach every L3 of the scope with no entry, like
#       224.0.0.0/24; scope 0/1 are bad_destination drops
#   set_broadcast / remove_broadcast / lookup_broadcast: IPv4 only (IPv6 has none)
#   families == (4, 6)


cdef class Datapath(DatapathTables):
    """The forwarding tables, their control API and the batch function (see process.pxi)."""

    families = (4, 6)           # the IP versions its tables take (the compiler asks)

    cdef DemuxTable _demux(self, int family):
        return self.demux if family == 4 else self.demux6

    cdef NeighbourTable _neigh(self, int family):
        return self.neigh if family == 4 else self.neigh6

    cdef FibTable _fib(self, int family):
        return self.fib if family == 4 else self.fib6

    # ---- namespaces -------------------------------------------------------------------

    def set_namespace(self, ns_id, scope_id, is_l3):
        """Create namespace ``ns_id`` (an L2 is its own scope; an L3's scope is an L2)."""
        self._writing()
        self.ns.check(ns_id)
        is_l3 = bool(is_l3)
        if is_l3:
            self.ns.check_scope(scope_id)
            if scope_id == ns_id:
                raise InvalidArgument(f"L3 namespace {ns_id} cannot be its own scope")
        elif scope_id != ns_id:
            raise InvalidArgument(f"L2 namespace {ns_id} is its own scope, not {scope_id}")
        if self.ns.scope[ns_id] >= 0:
            if self.ns.same(ns_id, scope_id, is_l3):
                return
            if self._busy(ns_id):
                raise Busy(f"namespace {ns_id} still has addresses, ports or children")
        if is_l3:
            self.lists.reserve_l3(scope_id)     # the one allocation, before anything changes
        if self.ns.scope[ns_id] >= 0:
            self._forget_namespace(ns_id)
        self.ns.create(ns_id, scope_id, is_l3)
        if is_l3:
            self.lists.add_l3(scope_id, ns_id)
        self._clear_ns_state(ns_id)
        self._dirty(scope_id)

    def remove_namespace(self, ns_id):
        """Remove a namespace that has no ports, addresses or children.  An L2 takes its
        scope's routes, neighbours, broadcast lists and groups with it."""
        self._writing()
        self.ns.existing(ns_id)
        if self.ports.of_ns.get(ns_id):
            raise Busy(f"namespace {ns_id} still has ports {self.ports.ports_of(ns_id)}")
        if self.ns.n_addresses.get(ns_id):
            raise Busy(f"namespace {ns_id} still owns {self.ns.n_addresses[ns_id]} addresses")
        if self.ns.l3_children(ns_id):
            raise Busy(f"namespace {ns_id} is the scope of {sorted(self.ns.l3_children(ns_id))}")
        self._forget_namespace(ns_id)
        self._clear_ns_state(ns_id)

    cdef bint _busy(self, int ns_id):
        return bool(self.ns.n_addresses.get(ns_id) or self.ports.of_ns.get(ns_id)
                    or self.ns.l3_children(ns_id))

    cdef _forget_namespace(self, int ns_id):
        cdef int scope = self.ns.scope[ns_id]
        if not self.ns.l3[ns_id]:                   # the scope's own tables go with the L2
            for family in (4, 6):
                self._fib(family).forget_scope(ns_id)
                self._neigh(family).delete_tag(ns_id)
            for address in self.lists.addresses_of(ns_id):
                self._drop_broadcast(ns_id, address)
            self.lists.forget_scope(ns_id)
            for key in self.mcast.keys_of_scope(ns_id):
                self._drop_group(key)
        else:
            self.lists.remove_l3(scope, ns_id)
        self.lists.forget_member(ns_id)
        keys = self.mcast.keys_of(ns_id)
        self.mcast.forget_member(ns_id)
        for key in keys:
            self._resolve_group(key)
        self.ns.forget(ns_id)
        self._dirty(scope)

    cdef _clear_ns_state(self, int ns_id):
        self.rcache.clear_ns(ns_id)
        self.rcache6.clear_ns(ns_id)
        self.ctr.clear_ns(ns_id)
        self.shares.clear_ns(ns_id)

    # ---- ports --------------------------------------------------------------------------

    def set_port(self, port_id, ns_id, mac, mtu=PORT_DEFAULT_MTU, dhcp_server=False,
                 serve_dhcp=False):
        """Attach port ``port_id`` to ``ns_id``; ``mac`` is the switch's MAC on it, ``mtu``
        the largest IP packet its link carries (the TAP's MTU); ``dhcp_server``: the
        endpoint behind it is a DHCP server the L2 trusts (its server messages are let in,
        DHCP clients' broadcasts reach it); ``serve_dhcp``: the switch serves the port by
        DHCP (its clients' messages go to the slow path)."""
        self._writing()
        self.ports.check(port_id)
        self.ns.existing(ns_id)
        m = mac_bytes_to_int(mac, "port MAC")
        self.ports.check_mtu(mtu)
        check_flag(dhcp_server, "dhcp_server")
        check_flag(serve_dhcp, "serve_dhcp")
        old_ns = self.ports.ns[port_id]
        if self.ns.l3[ns_id] and self.ns.port[ns_id] not in (-1, port_id):
            raise Busy(f"L3 namespace {ns_id} already has port {self.ns.port[ns_id]}")
        if self.ns.l3[ns_id] and dhcp_server:
            self.lists.reserve_dhcp(self.ns.scope[ns_id])   # before anything changes
        if old_ns != ns_id:
            self.mcast.reserve_for(ns_id)   # the one allocation, before anything changes
            if old_ns >= 0:
                self._detach_port(port_id)
            self.ctr.clear_port(port_id)
            self.shares.clear_port(port_id)
            self.ports.attach(port_id, ns_id)
            if self.ns.l3[ns_id]:
                self.ns.port[ns_id] = port_id
            self._resolve_groups_of(ns_id)
        self.ports.mac[port_id] = m
        self.ports.serve_dhcp[port_id] = serve_dhcp
        self.ports.mtu[port_id] = mtu
        self.ports.dhcp_server[port_id] = dhcp_server
        if self.ns.l3[ns_id]:           # a scope's DHCP servers (listeners.pxi)
            self.lists.set_dhcp(self.ns.scope[ns_id], ns_id, dhcp_server)
        self.dirty_all = True

    def port_mtu(self, port_id):
        self.ports.existing(port_id)
        return int(self.ports.mtu[port_id])

    def remove_port(self, port_id):
        self._writing()
        self.ports.existing(port_id)
        self._detach_port(port_id)
        self.dirty_all = True

    def port_is_dhcp_server(self, port_id):
        self.ports.existing(port_id)
        return bool(self.ports.dhcp_server[port_id])

    cdef _detach_port(self, int port_id):
        cdef int ns_id = self.ports.detach(port_id)
        if self.ns.port[ns_id] == port_id:
            self.ns.port[ns_id] = -1
            self.lists.set_dhcp(self.ns.scope[ns_id], ns_id, False)
        self._resolve_groups_of(ns_id)

    def set_peer_mac(self, port_id, mac):
        """Set (or, with None, forget) the MAC of the endpoint behind a port.  Needs no
        update block: the slow path calls it when it resolves a peer."""
        self.ports.existing(port_id)
        m = 0 if mac is None else mac_bytes_to_int(mac, "peer MAC")
        if self.updating:
            self.ports.peer[port_id] = m
        else:
            with nogil:
                self.lock_for_control()
            self.ports.peer[port_id] = m
            PyThread_release_lock(self.lock)

    def peer_mac(self, port_id):
        self.ports.existing(port_id)
        return self.ports.bytes_of(self.ports.peer[port_id])

    def port_mac_of(self, port_id):
        self.ports.existing(port_id)
        return self.ports.bytes_of(self.ports.mac[port_id])

    def port_serves_dhcp(self, port_id):
        """Whether the switch serves the port by DHCP (set_port's ``serve_dhcp``)."""
        self.ports.existing(port_id)
        return bool(self.ports.serve_dhcp[port_id])

    # ---- addresses (the demux) --------------------------------------------------------------

    def add_address(self, scope_id, ip, ns_id, plen=None):
        """(scope, ip) is owned by ns_id (an L3 child of the scope, or the L2 itself), on
        a subnet of prefix length ``plen`` (IPv4 1..32, None: 32; IPv6 its on-link prefix,
        None: none known).  A sender's subnet is what its broadcasts reach; within it
        frames are switched, TTL / hop limit kept."""
        self._writing()
        self.ns.check_scope(scope_id)
        family, key = host_key(ip)
        onlink = onlink_key(family, plen)
        self.ns.in_scope(ns_id, scope_id)
        if self._demux(family).add_owner(scope_id, key, ns_id, onlink):
            self.ns.count_address(ns_id, 1)
        self._dirty(scope_id)

    def remove_address(self, scope_id, ip):
        self._writing()
        self.ns.check_scope(scope_id)
        family, key = host_key(ip)
        self.ns.count_address(self._demux(family).remove_owner(scope_id, key), -1)
        self._dirty(scope_id)

    def lookup_address(self, scope_id, ip):
        """The namespace owning (scope, ip), or -1."""
        self.ns.check(scope_id, "scope")
        family, key = lookup_key(ip)
        return self._demux(family).owner(scope_id, key)

    def address_onlink(self, scope_id, ip):
        """The prefix length of an owned address's subnet (IPv4 1..32; IPv6 its on-link
        prefix, 128: none), or None."""
        self.ns.check(scope_id, "scope")
        family, key = lookup_key(ip)
        n = self._demux(family).onlink(scope_id, key)
        return None if n < 0 else n

    def set_directed_broadcast(self, scope_id, enabled):
        """Let directed broadcasts of the scope in from other subnets (routed ones, off by
        default: RFC 2644); a sender on the subnet always reaches its broadcast."""
        self._writing()
        self.ns.check_scope(scope_id)
        self.ns.directed[scope_id] = check_flag(enabled, "enabled")

    def directed_broadcast(self, scope_id):
        self.ns.check_scope(scope_id)
        return bool(self.ns.directed[scope_id])

    # ---- routes and neighbours -----------------------------------------------------------

    def add_route(self, scope_id, prefix, plen, port_id, gateway=0):
        """Add (or replace) prefix/plen -> port (via gateway; 0, or None for IPv6: on-link)
        in the scope's FIB of the prefix's family."""
        self._writing()
        self.ns.check_scope(scope_id)
        family, key = prefix_key(prefix, plen)
        self.ports.existing(port_id)
        self._fib(family).add(scope_id, key, plen, port_id, gateway_key(family, gateway))
        self._dirty(scope_id)

    def remove_route(self, scope_id, prefix, plen):
        self._writing()
        self.ns.check_scope(scope_id)
        found = route_key(prefix, plen)
        if found is None or not self._fib(found[0]).remove(scope_id, found[1], plen):
            raise NotFound(f"no route {value_str(prefix)}/{plen!r} in scope {scope_id}")
        self._dirty(scope_id)

    def lookup_route(self, scope_id, ip):
        """Longest-prefix match in the scope's FIB: (port, gateway) or None."""
        self.ns.check(scope_id, "scope")
        family, key = lookup_key(ip)
        hop = self._fib(family).lookup(scope_id, key)
        return None if hop is None else (hop[0], gateway_value(family, hop[1]))

    def routes(self, scope_id):
        """[(prefix, plen, port, gateway)] of the scope: IPv4 then IPv6, each sorted by
        plen, prefix."""
        return self.fib.routes(scope_id) + [
            (V6(p), l, port, gateway_value(6, gw)) for p, l, port, gw in self.fib6.routes(scope_id)]

    def set_neighbour(self, scope_id, ip, mac):
        self._writing()
        self.ns.check_scope(scope_id)
        family, key = host_key(ip, "neighbour")
        self._neigh(family).set(scope_id, key, mac_bytes_to_int(mac, "neighbour MAC"))
        self._dirty(scope_id)

    def remove_neighbour(self, scope_id, ip):
        self._writing()
        self.ns.check_scope(scope_id)
        family, key = host_key(ip, "neighbour")
        if not self._neigh(family).remove(scope_id, key):
            raise NotFound(f"no neighbour {addr_str(family, key)} in scope {scope_id}")
        self._dirty(scope_id)

    def neighbour(self, scope_id, ip):
        self.ns.check(scope_id, "scope")
        family, key = lookup_key(ip)
        return self._neigh(family).mac_of(scope_id, key)

    # ---- the slow path's shares (issue 14) -----------------------------------------------

    def set_slow_share(self, name, rate, burst):
        """Each namespace (or port: SLOW_SHARES says) may hand ``rate`` frames per second
        of share ``name`` to the slow path, ``burst`` at once (rate 0: no limit; every
        bucket of the share starts again full).  Needs no update block (it takes the
        batch lock itself).  The rules of fastpath/shares.py."""
        cdef int k = check_share(name, rate, burst)
        if self.updating_here():
            self.shares.set_rule(k, float(rate), float(burst))
            return
        with nogil:
            self.lock_for_control()
        self.shares.set_rule(k, float(rate), float(burst))
        PyThread_release_lock(self.lock)

    def share_admit_at(self, port_id, reason, now_ns):
        """What the packet loop asks of a slow-path frame with ``reason`` from port
        ``port_id`` at monotonic time ``now_ns``: within its share (True, a token taken) or
        refused (False, counted).  For the tests that compare it with the reference."""
        self.ports.existing(port_id)
        if isinstance(now_ns, bool) or not isinstance(now_ns, int) or now_ns <= 0:
            raise InvalidArgument(f"now_ns must be a positive integer, not {now_ns!r}")
        share_of_reason(reason)                 # a slow-path reason, or InvalidArgument
        cdef uint8_t share = reason_share(<uint8_t>reason)     # as the loop charges it
        cdef bint admitted
        with nogil:
            self.lock_for_control()
        admitted = share_admit(self.shares.view(), self.ports.ns[port_id], port_id, share,
                               <int64_t>now_ns)
        PyThread_release_lock(self.lock)
        return admitted

    def slow_shares(self):
        """{share: (rate, burst)} as set (rate 0: no limit)."""
        return {name: self.shares.rule(k) for k, name in enumerate(SHARE_NAMES)}

    # ---- broadcast lists and multicast groups (issue 6) -------------------------------------

    cdef tuple _members(self, int scope_id, ns_ids):
        """The distinct namespaces of ``ns_ids`` (each of the scope), sorted."""
        try:
            wanted = list(ns_ids)
        except TypeError:
            raise InvalidArgument(f"members must be an iterable of namespace ids, not {ns_ids!r}") from None
        for n in wanted:
            self.ns.in_scope(n, scope_id)
        return tuple(sorted(set(wanted)))

    def set_broadcast(self, scope_id, bcast_ip, ns_ids):
        """Frames to the directed broadcast ``bcast_ip`` of the scope go to ``ns_ids``."""
        self._writing()
        self.ns.check_scope(scope_id)
        check_ip(bcast_ip, "broadcast address")
        members = self._members(scope_id, ns_ids)
        self.demux.check_free(scope_id, bcast_ip)
        self.demux.set_listeners(scope_id, bcast_ip, self.lists.set(scope_id, bcast_ip, members))

    def remove_broadcast(self, scope_id, bcast_ip):
        self._writing()
        self.ns.check_scope(scope_id)
        if self.lists.lookup(scope_id, bcast_ip) is None:
            raise NotFound(f"{value_str(bcast_ip)} is not a broadcast address of scope {scope_id}")
        self._drop_broadcast(scope_id, bcast_ip)

    cdef _drop_broadcast(self, int scope_id, uint32_t ip):
        self.lists.drop(scope_id, ip)
        self.demux.remove(scope_id, ip)

    def lookup_broadcast(self, scope_id, ip):
        """The listening namespaces of a directed broadcast address, or None."""
        return self.lists.lookup(scope_id, ip)

    def set_group(self, scope_id, group_ip, ns_ids):
        """Frames to multicast ``group_ip`` in the scope go to ``ns_ids`` (its member
        namespaces, each in the scope): an L3 gets a copy on its port, an L2 (the scope
        itself, for its uplinks) on each of its ports; never the sender.  Link-local
        groups (224.0.0.0/24, ff02::/16) reach every L3 of the scope and have no entry,
        but for the solicited-node groups (ff02::1:ff00:0/104), whose members are set."""
        self._writing()
        self.ns.check_scope(scope_id)
        family, address = group_key(group_ip)
        members = self._members(scope_id, ns_ids)
        key = (scope_id, group_ip)
        old = self.mcast.members.get(key)
        gid = self.mcast.new_id() if old is None else old[0]    # may raise: nothing changed
        try:
            if old is None:
                self._demux(family).set_group(scope_id, address, gid)
            self.mcast.set(key, gid, members, self._member_ports(members))
        except MemoryError:
            if old is None:
                self._demux(family).remove(scope_id, address)
                self.mcast.release_id(gid)
            raise

    def remove_group(self, scope_id, group_ip):
        """Forget the group of the scope (its frames are then no_listener drops)."""
        self._writing()
        self.ns.check_scope(scope_id)
        if (scope_id, group_ip) not in self.mcast.members:
            raise NotFound(f"{group_str(group_ip)} is not a group of scope {scope_id}")
        self._drop_group((scope_id, group_ip))

    def lookup_group(self, scope_id, group_ip):
        """The member namespaces (sorted) of the group in the scope, or None."""
        self.ns.check(scope_id, "scope")
        return self.mcast.lookup((scope_id, group_ip))

    cdef _drop_group(self, key):
        family, address = group_key(key[1])
        self.mcast.drop(key)
        self._demux(family).remove(key[0], address)

    cdef list _member_ports(self, members):
        """A group's egress ports: each member L3's port, each member L2's ports by id."""
        ports = []
        for n in members:
            if self.ns.l3[n]:
                if self.ns.port[n] >= 0:
                    ports.append(self.ns.port[n])
            else:
                ports.extend(self.ports.ports_of(n))
        return ports

    cdef _resolve_group(self, key):
        gid, members = self.mcast.members[key]
        self.mcast.set(key, gid, members, self._member_ports(members))

    cdef _resolve_groups_of(self, int ns_id):
        for key in self.mcast.keys_of(ns_id):
            self._resolve_group(key)

