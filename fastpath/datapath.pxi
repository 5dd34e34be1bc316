# Datapath: the tables pyctl compiles into, and their control API (not per packet).
#
# The C arrays here are what process.pxi reads per frame.  Every write happens inside
# ``with datapath.update():``, which holds the lock process() takes for a whole batch;
# leaving the block bumps the generation of every scope whose routes, neighbours,
# addresses or ports changed, so route-cache entries filled before are never used again.
# Arguments are checked before anything changes: a refused call leaves the tables as
# they were (errors from pyctl.errors, with errno-like codes).
from cpython.pythread cimport (PyThread_type_lock, PyThread_allocate_lock, PyThread_free_lock,
                               PyThread_acquire_lock, PyThread_release_lock,
                               WAIT_LOCK, NOWAIT_LOCK)
from libc.stdlib cimport realloc
from pyctl.errors import AddressInUse, Busy, InvalidArgument, NotFound
from fastpath.verdicts import REASON_NAMES as VERDICT_REASON_NAMES
from fastpath.addresses import check_group, check_ip, group_str as _group_str, ip_str as _ip_str, mac_bytes_to_int

COUNTER_NAMES = ("rx_packets", "rx_bytes", "tx_packets", "tx_bytes")


cdef class _UpdateContext:
    cdef Datapath dp

    def __enter__(self):
        self.dp._begin_update()
        return self.dp

    def __exit__(self, *exc):
        self.dp._end_update()
        return False


cdef class Datapath:
    """The forwarding tables and the batch function (see process.pxi)."""
    cdef readonly int max_namespaces, max_ports, route_cache_size
    cdef uint32_t rc_mask
    cdef PyThread_type_lock lock
    cdef bint updating
    # namespaces
    cdef object _ns_scope, _ns_l3, _ns_port, _scope_gen
    cdef int32_t* ns_scope          # -1: no such namespace
    cdef uint8_t* ns_l3
    cdef int32_t* ns_port           # an L3's port, else -1
    cdef uint32_t* scope_gen        # generation per L2 scope (route-cache validity)
    # ports
    cdef object _port_ns, _port_mac, _port_peer
    cdef int32_t* port_ns           # -1: no such port
    cdef uint64_t* port_mac         # the switch's MAC on the port
    cdef uint64_t* port_peer        # the endpoint's MAC behind it (0: unknown)
    # tables
    cdef U64Map demux               # (scope << 32 | ip) -> owner ns | DEMUX_GROUP | list id
                                    #                       | DEMUX_MCAST | multicast group id
    cdef U64Map neigh               # (scope << 32 | ip) -> MAC
    cdef dict fibs                  # scope -> Dir24Fib
    cdef FibView* fib               # per scope, what the hot path reads
    cdef object _nh_port, _nh_gw
    cdef int32_t* nh_port
    cdef uint32_t* nh_gw
    cdef dict nh_index              # (port, gateway) -> nexthop index
    cdef list nh_refs, nh_free
    cdef RouteCacheEntry* rcache    # max_namespaces * route_cache_size, per namespace
    # fan-out lists: id < max_namespaces is the scope's "all L3 namespaces" list (limited
    # broadcast, link-local multicast), ids above are directed-broadcast listener lists
    cdef object _grp_first, _grp_len, _grp_members
    cdef int32_t* grp_first
    cdef int32_t* grp_len
    cdef int32_t* grp_members
    cdef int32_t n_groups
    cdef dict scope_l3              # scope -> set of L3 namespaces
    cdef dict bcast                 # (scope, ip) -> (group id, tuple of namespaces)
    cdef list bcast_free_ids
    cdef int next_bcast_id
    # multicast groups (issue 6): McastGroup per id, found through the demux
    cdef McastGroup* mgroups
    cdef int32_t mgroups_cap
    cdef dict mcast                 # (scope, group ip) -> (id, tuple of member namespaces)
    cdef dict ns_mcast              # ns -> set of (scope, group ip) it is a member of
    cdef list mcast_free_ids
    cdef int32_t next_mcast_id
    # bookkeeping for refusals
    cdef dict ns_addrs              # ns -> number of addresses it owns
    cdef dict ns_ports              # ns -> set of port ids
    cdef dict scope_children        # scope -> set of L3 namespaces
    cdef set dirty_scopes
    cdef bint dirty_all, dirty_groups
    # counters
    cdef object _port_ctr, _ns_ctr, _reason_ctr, _ns_reason_ctr
    cdef uint64_t* port_ctr         # max_ports * NCOUNTERS
    cdef uint64_t* ns_ctr           # max_namespaces * NCOUNTERS
    cdef uint64_t* reason_ctr       # REASON_COUNT
    cdef uint64_t* ns_reason_ctr    # max_namespaces * REASON_COUNT (by sending namespace)

    def __cinit__(self):
        self.lock = PyThread_allocate_lock()
        self.rcache = NULL
        self.fib = NULL
        self.mgroups = NULL
        self.mgroups_cap = 0
        if self.lock == NULL:
            raise MemoryError()

    def __dealloc__(self):
        if self.lock != NULL:
            PyThread_free_lock(self.lock)
        free(self.rcache)
        free(self.fib)
        cdef int32_t g
        if self.mgroups != NULL:
            for g in range(self.mgroups_cap):
                free(self.mgroups[g].ports)
            free(self.mgroups)

    def __init__(self, *, int max_namespaces=4096, int max_ports=1024, int route_cache_size=256):
        if not 1 <= max_namespaces <= 1 << 24:
            raise InvalidArgument(f"max_namespaces must be in 1..{1 << 24}")
        if not 1 <= max_ports <= 0xFFFF:
            raise InvalidArgument("max_ports must be in 1..65535")
        if route_cache_size < 1 or route_cache_size & (route_cache_size - 1) or route_cache_size > 1 << 16:
            raise InvalidArgument("route_cache_size must be a power of two up to 65536")
        self.max_namespaces, self.max_ports = max_namespaces, max_ports
        self.route_cache_size, self.rc_mask = route_cache_size, route_cache_size - 1
        self.updating = False
        self._ns_scope = np.full(max_namespaces, -1, dtype=np.int32)
        self._ns_l3 = np.zeros(max_namespaces, dtype=np.uint8)
        self._ns_port = np.full(max_namespaces, -1, dtype=np.int32)
        self._scope_gen = np.ones(max_namespaces, dtype=np.uint32)
        self._port_ns = np.full(max_ports, -1, dtype=np.int32)
        self._port_mac = np.zeros(max_ports, dtype=np.uint64)
        self._port_peer = np.zeros(max_ports, dtype=np.uint64)
        self._port_ctr = np.zeros(max_ports * NCOUNTERS, dtype=np.uint64)
        self._ns_ctr = np.zeros(max_namespaces * NCOUNTERS, dtype=np.uint64)
        self._reason_ctr = np.zeros(REASON_COUNT, dtype=np.uint64)
        self._ns_reason_ctr = np.zeros(max_namespaces * REASON_COUNT, dtype=np.uint64)
        self.ns_scope = <int32_t*>_ptr(self._ns_scope)
        self.ns_l3 = <uint8_t*>_ptr(self._ns_l3)
        self.ns_port = <int32_t*>_ptr(self._ns_port)
        self.scope_gen = <uint32_t*>_ptr(self._scope_gen)
        self.port_ns = <int32_t*>_ptr(self._port_ns)
        self.port_mac = <uint64_t*>_ptr(self._port_mac)
        self.port_peer = <uint64_t*>_ptr(self._port_peer)
        self.port_ctr = <uint64_t*>_ptr(self._port_ctr)
        self.ns_ctr = <uint64_t*>_ptr(self._ns_ctr)
        self.reason_ctr = <uint64_t*>_ptr(self._reason_ctr)
        self.ns_reason_ctr = <uint64_t*>_ptr(self._ns_reason_ctr)
        self.demux = U64Map()
        self.neigh = U64Map()
        self.fibs = {}
        self.fib = <FibView*>calloc(max_namespaces, sizeof(FibView))
        # calloc: the pages of namespaces that never route stay untouched
        self.rcache = <RouteCacheEntry*>calloc(<size_t>max_namespaces * route_cache_size,
                                               sizeof(RouteCacheEntry))
        if self.fib == NULL or self.rcache == NULL:
            raise MemoryError()
        self.nh_index, self.nh_refs, self.nh_free = {}, [], []
        self._set_nexthop_arrays(np.zeros(64, dtype=np.int32), np.zeros(64, dtype=np.uint32))
        self.scope_l3, self.bcast, self.bcast_free_ids = {}, {}, []
        self.next_bcast_id = max_namespaces
        self.mcast, self.ns_mcast, self.mcast_free_ids, self.next_mcast_id = {}, {}, [], 0
        self.ns_addrs, self.ns_ports, self.scope_children = {}, {}, {}
        self.dirty_scopes, self.dirty_all, self.dirty_groups = set(), False, True
        self._rebuild_groups()

    cdef _set_nexthop_arrays(self, nh_port, nh_gw):
        self._nh_port, self._nh_gw = nh_port, nh_gw
        self.nh_port = <int32_t*>_ptr(nh_port)
        self.nh_gw = <uint32_t*>_ptr(nh_gw)

    # ---- the update lock ------------------------------------------------------------

    def update(self):
        """``with dp.update():`` -- hold the batch lock while writing tables."""
        return _make_ctx(self)

    def _begin_update(self):
        if self.updating:
            raise RuntimeError("datapath.update() blocks do not nest")
        with nogil:
            PyThread_acquire_lock(self.lock, WAIT_LOCK)
        self.updating = True

    def _end_update(self):
        cdef int s
        try:
            if self.dirty_groups:
                self._rebuild_groups()
            if self.dirty_all:
                self.dirty_scopes = set(range(self.max_namespaces))
            for s in self.dirty_scopes:
                self.scope_gen[s] += 1
                if self.scope_gen[s] == 0:      # wrapped: forget every cache entry
                    memset(self.rcache, 0, <size_t>self.max_namespaces * self.route_cache_size
                           * sizeof(RouteCacheEntry))
                    self.scope_gen[s] = 1
            self.dirty_scopes, self.dirty_all = set(), False
        finally:
            self.updating = False
            PyThread_release_lock(self.lock)

    cdef _writing(self):
        if not self.updating:
            raise RuntimeError("table writes must happen inside `with datapath.update():`")

    # ---- checks -----------------------------------------------------------------------

    cdef int _ns(self, ns_id, what="namespace") except -1:
        if not isinstance(ns_id, int) or not 0 <= ns_id < self.max_namespaces:
            raise InvalidArgument(f"{what} id {ns_id!r} is not in 0..{self.max_namespaces - 1}")
        return ns_id

    cdef int _existing_ns(self, ns_id, what="namespace") except -1:
        self._ns(ns_id, what)
        if self.ns_scope[ns_id] < 0:
            raise NotFound(f"{what} {ns_id} does not exist")
        return ns_id

    cdef int _scope(self, scope_id) except -1:
        self._existing_ns(scope_id, "scope")
        if self.ns_l3[scope_id]:
            raise InvalidArgument(f"scope {scope_id} is an L3 namespace, not an L2")
        return scope_id

    cdef uint32_t _addr(self, ip) except? 0xFFFFFFFF:
        """An address to look up: any IPv4 address as an int."""
        if not isinstance(ip, int) or not 0 <= ip <= 0xFFFFFFFF:
            raise InvalidArgument(f"bad address {ip!r}")
        return ip

    cdef int _port(self, port_id) except -1:
        if not isinstance(port_id, int) or not 0 <= port_id < self.max_ports:
            raise InvalidArgument(f"port id {port_id!r} is not in 0..{self.max_ports - 1}")
        return port_id

    cdef int _existing_port(self, port_id) except -1:
        self._port(port_id)
        if self.port_ns[port_id] < 0:
            raise NotFound(f"port {port_id} does not exist")
        return port_id

    # ---- namespaces -------------------------------------------------------------------

    def set_namespace(self, ns_id, scope_id, is_l3):
        """Create namespace ``ns_id`` (an L2 is its own scope; an L3's scope is an L2)."""
        self._writing()
        self._ns(ns_id)
        is_l3 = bool(is_l3)
        if is_l3:
            self._scope(scope_id)
            if scope_id == ns_id:
                raise InvalidArgument(f"L3 namespace {ns_id} cannot be its own scope")
        elif scope_id != ns_id:
            raise InvalidArgument(f"L2 namespace {ns_id} is its own scope, not {scope_id}")
        old_scope = self.ns_scope[ns_id]
        if old_scope >= 0:
            if old_scope == scope_id and bool(self.ns_l3[ns_id]) == is_l3:
                return
            if self.ns_addrs.get(ns_id) or self.ns_ports.get(ns_id) or self.scope_children.get(ns_id):
                raise Busy(f"namespace {ns_id} still has addresses, ports or children")
            self._forget_namespace(ns_id)
        self.ns_scope[ns_id] = scope_id
        self.ns_l3[ns_id] = is_l3
        self.ns_port[ns_id] = -1
        self._clear_ns_state(ns_id)
        if is_l3:
            self.scope_children.setdefault(scope_id, set()).add(ns_id)
            self.scope_l3.setdefault(scope_id, set()).add(ns_id)
            self.dirty_groups = True
        self.dirty_scopes.add(scope_id)

    def remove_namespace(self, ns_id):
        """Remove a namespace that has no ports, addresses or children.  An L2 takes its
        scope's routes, neighbours and broadcast lists with it."""
        self._writing()
        self._existing_ns(ns_id)
        if self.ns_ports.get(ns_id):
            raise Busy(f"namespace {ns_id} still has ports {sorted(self.ns_ports[ns_id])}")
        if self.ns_addrs.get(ns_id):
            raise Busy(f"namespace {ns_id} still owns {self.ns_addrs[ns_id]} addresses")
        if self.scope_children.get(ns_id):
            raise Busy(f"namespace {ns_id} is the scope of {sorted(self.scope_children[ns_id])}")
        self._forget_namespace(ns_id)
        self._clear_ns_state(ns_id)

    cdef _forget_namespace(self, int ns_id):
        cdef int scope = self.ns_scope[ns_id]
        if self.ns_l3[ns_id]:
            self.scope_children[scope].discard(ns_id)
            self.scope_l3[scope].discard(ns_id)
        else:
            # the scope's own tables go with the L2
            fib = self.fibs.pop(ns_id, None)
            if fib is not None:
                for prefix, plen, nh in (<Dir24Fib>fib).routes_list():
                    self._nh_release(nh)
                memset(&self.fib[ns_id], 0, sizeof(FibView))
            for key, _ in self.neigh.items():
                if key >> 32 == <uint64_t>ns_id:
                    self.neigh.delete(key)
            for (s, ip) in [k for k in self.bcast if k[0] == ns_id]:
                self._drop_bcast(s, ip)
            for key in [k for k in self.mcast if k[0] == ns_id]:
                self._drop_group(key)
        for key, (gid, members) in list(self.bcast.items()):
            if ns_id in members:
                self.bcast[key] = (gid, tuple(m for m in members if m != ns_id))
        for key in sorted(self.ns_mcast.pop(ns_id, ())):
            gid, members = self.mcast[key]
            self.mcast[key] = (gid, tuple(m for m in members if m != ns_id))
            self._resolve_group(key)
        self.dirty_groups = True
        self.dirty_scopes.add(scope)
        self.ns_scope[ns_id] = -1
        self.ns_l3[ns_id] = 0
        self.ns_port[ns_id] = -1

    cdef _clear_ns_state(self, int ns_id):
        memset(&self.rcache[<size_t>ns_id * self.route_cache_size], 0,
               self.route_cache_size * sizeof(RouteCacheEntry))
        memset(&self.ns_ctr[<size_t>ns_id * NCOUNTERS], 0, NCOUNTERS * sizeof(uint64_t))
        memset(&self.ns_reason_ctr[<size_t>ns_id * REASON_COUNT], 0, REASON_COUNT * sizeof(uint64_t))

    # ---- ports --------------------------------------------------------------------------

    def set_port(self, port_id, ns_id, mac):
        """Attach port ``port_id`` to ``ns_id``; ``mac`` is the switch's MAC on it."""
        self._writing()
        self._port(port_id)
        self._existing_ns(ns_id)
        m = mac_bytes_to_int(mac, "port MAC")
        old_ns = self.port_ns[port_id]
        if self.ns_l3[ns_id] and self.ns_port[ns_id] not in (-1, port_id):
            raise Busy(f"L3 namespace {ns_id} already has port {self.ns_port[ns_id]}")
        if old_ns != ns_id:
            self._reserve_groups_of(ns_id)      # the one allocation, before anything changes
            if old_ns >= 0:
                self._detach_port(port_id)
            self.port_peer[port_id] = 0
            memset(&self.port_ctr[<size_t>port_id * NCOUNTERS], 0, NCOUNTERS * sizeof(uint64_t))
            self.port_ns[port_id] = ns_id
            self.ns_ports.setdefault(ns_id, set()).add(port_id)
            if self.ns_l3[ns_id]:
                self.ns_port[ns_id] = port_id
            self._resolve_groups_of(ns_id)
        self.port_mac[port_id] = m
        self.dirty_all = True

    def remove_port(self, port_id):
        self._writing()
        self._existing_port(port_id)
        self._detach_port(port_id)
        self.dirty_all = True

    cdef _detach_port(self, int port_id):
        cdef int ns_id = self.port_ns[port_id]
        self.ns_ports[ns_id].discard(port_id)
        if self.ns_port[ns_id] == port_id:
            self.ns_port[ns_id] = -1
        self.port_ns[port_id] = -1
        self.port_mac[port_id] = 0
        self.port_peer[port_id] = 0
        self._resolve_groups_of(ns_id)

    def set_peer_mac(self, port_id, mac):
        """Set (or, with None, forget) the MAC of the endpoint behind a port.  Needs no
        update block: the slow path calls it when it resolves a peer."""
        self._existing_port(port_id)
        m = 0 if mac is None else mac_bytes_to_int(mac, "peer MAC")
        if self.updating:
            self.port_peer[port_id] = m
        else:
            with nogil:
                PyThread_acquire_lock(self.lock, WAIT_LOCK)
            self.port_peer[port_id] = m
            PyThread_release_lock(self.lock)

    def peer_mac(self, port_id):
        self._existing_port(port_id)
        m = self.port_peer[port_id]
        return None if m == 0 else int(m).to_bytes(6, "little")

    def port_mac_of(self, port_id):
        self._existing_port(port_id)
        return int(self.port_mac[port_id]).to_bytes(6, "little")

    # ---- addresses and broadcast lists (the demux) -------------------------------------

    def add_address(self, scope_id, ip, ns_id):
        """(scope, ip) is owned by ns_id (an L3 child of the scope, or the L2 itself)."""
        self._writing()
        self._scope(scope_id)
        check_ip(ip)
        self._existing_ns(ns_id)
        if self.ns_scope[ns_id] != scope_id:
            raise InvalidArgument(f"namespace {ns_id} is not in scope {scope_id}")
        cdef uint64_t v, key = (<uint64_t>scope_id << 32) | <uint32_t>ip
        if self.demux.get(key, &v):
            if v == <uint64_t>ns_id:
                return
            if v & DEMUX_GROUP:
                raise AddressInUse(f"{_ip_str(ip)} is a broadcast address of scope {scope_id}")
            raise AddressInUse(f"{_ip_str(ip)} is owned by namespace {v} in scope {scope_id}")
        self.demux.put(key, ns_id)
        self.ns_addrs[ns_id] = self.ns_addrs.get(ns_id, 0) + 1
        self.dirty_scopes.add(scope_id)

    def remove_address(self, scope_id, ip):
        self._writing()
        self._scope(scope_id)
        cdef uint64_t v, key = (<uint64_t>scope_id << 32) | <uint32_t>check_ip(ip)
        if not self.demux.get(key, &v) or v & DEMUX_GROUP:
            raise NotFound(f"{_ip_str(ip)} is not an address of scope {scope_id}")
        self.demux.delete(key)
        self.ns_addrs[v] -= 1
        self.dirty_scopes.add(scope_id)

    def lookup_address(self, scope_id, ip):
        """The namespace owning (scope, ip), or -1."""
        cdef uint64_t v
        self._ns(scope_id, "scope")
        if self.demux.get((<uint64_t>scope_id << 32) | self._addr(ip), &v) and not v & DEMUX_GROUP:
            return <int>v
        return -1

    def set_broadcast(self, scope_id, bcast_ip, ns_ids):
        """Frames to the directed broadcast ``bcast_ip`` of the scope go to ``ns_ids``."""
        self._writing()
        self._scope(scope_id)
        check_ip(bcast_ip, "broadcast address")
        members = []
        for n in ns_ids:
            self._existing_ns(n)
            if self.ns_scope[n] != scope_id:
                raise InvalidArgument(f"namespace {n} is not in scope {scope_id}")
            members.append(n)
        members = tuple(sorted(set(members)))
        cdef uint64_t v, key = (<uint64_t>scope_id << 32) | <uint32_t>bcast_ip
        if self.demux.get(key, &v) and not v & DEMUX_GROUP:
            raise AddressInUse(f"{_ip_str(bcast_ip)} is owned by namespace {v} in scope {scope_id}")
        old = self.bcast.get((scope_id, bcast_ip))
        if old is not None:
            gid = old[0]
        elif self.bcast_free_ids:
            gid = self.bcast_free_ids.pop()
        else:
            gid = self.next_bcast_id
            self.next_bcast_id += 1
        self.bcast[(scope_id, bcast_ip)] = (gid, members)
        self.demux.put(key, DEMUX_GROUP | <uint64_t>gid)
        self.dirty_groups = True

    def remove_broadcast(self, scope_id, bcast_ip):
        self._writing()
        self._scope(scope_id)
        if (scope_id, bcast_ip) not in self.bcast:
            raise NotFound(f"{_ip_str(bcast_ip)} is not a broadcast address of scope {scope_id}")
        self._drop_bcast(scope_id, bcast_ip)

    cdef _drop_bcast(self, int scope_id, uint32_t ip):
        gid, _ = self.bcast.pop((scope_id, ip))
        self.bcast_free_ids.append(gid)
        self.demux.delete((<uint64_t>scope_id << 32) | ip)
        self.dirty_groups = True

    def lookup_broadcast(self, scope_id, ip):
        """The listening namespaces of a directed broadcast address, or None."""
        entry = self.bcast.get((scope_id, ip))
        return None if entry is None else list(entry[1])

    # ---- multicast groups (issue 6) -----------------------------------------------------

    def set_group(self, scope_id, group_ip, ns_ids):
        """Frames to multicast ``group_ip`` in the scope go to ``ns_ids`` (its member
        namespaces, each in the scope): an L3 gets a copy on its port, an L2 (the scope
        itself, for its uplinks) on each of its ports; never the sender.  Link-local
        groups (224.0.0.0/24) reach every L3 of the scope and have no table entry."""
        self._writing()
        self._scope(scope_id)
        check_group(group_ip)
        try:
            wanted = list(ns_ids)
        except TypeError:
            raise InvalidArgument(f"members must be an iterable of namespace ids, not {ns_ids!r}") from None
        for n in wanted:
            self._existing_ns(n)
            if self.ns_scope[n] != scope_id:
                raise InvalidArgument(f"namespace {n} is not in scope {scope_id}")
        members = tuple(sorted(set(wanted)))
        key = (scope_id, group_ip)
        old = self.mcast.get(key)
        if old is None:
            gid = self._new_group_id()          # may raise MemoryError: nothing changed yet
            self.demux.put((<uint64_t>scope_id << 32) | <uint32_t>group_ip, DEMUX_MCAST | <uint64_t>gid)
            old_members = ()
        else:
            gid, old_members = old
        self.mcast[key] = (gid, members)
        try:
            self._resolve_group(key)
        except MemoryError:
            if old is None:
                self._drop_group(key)
            else:
                self.mcast[key] = old
            raise
        for n in old_members:
            if n not in members:
                self.ns_mcast[n].discard(key)
        for n in members:
            self.ns_mcast.setdefault(n, set()).add(key)

    def remove_group(self, scope_id, group_ip):
        """Forget the group of the scope (its frames are then no_listener drops)."""
        self._writing()
        self._scope(scope_id)
        if (scope_id, group_ip) not in self.mcast:
            raise NotFound(f"{_group_str(group_ip)} is not a group of scope {scope_id}")
        self._drop_group((scope_id, group_ip))

    def lookup_group(self, scope_id, group_ip):
        """The member namespaces (sorted) of the group in the scope, or None."""
        self._ns(scope_id, "scope")
        entry = self.mcast.get((scope_id, group_ip))
        return None if entry is None else list(entry[1])

    cdef int32_t _new_group_id(self) except -1:
        """A free McastGroup slot, zeroed (counters start at 0)."""
        cdef int32_t gid, cap
        cdef McastGroup* grown
        if self.mcast_free_ids:
            gid = self.mcast_free_ids.pop()
        else:
            if self.next_mcast_id >= self.mgroups_cap:
                if self.mgroups_cap >= 1 << 30:
                    raise MemoryError("multicast group table full")
                cap = max(64, self.mgroups_cap * 2)
                grown = <McastGroup*>realloc(self.mgroups, <size_t>cap * sizeof(McastGroup))
                if grown == NULL:
                    raise MemoryError("multicast group table")
                memset(&grown[self.mgroups_cap], 0, <size_t>(cap - self.mgroups_cap) * sizeof(McastGroup))
                self.mgroups, self.mgroups_cap = grown, cap
            gid = self.next_mcast_id
            self.next_mcast_id += 1
        self.mgroups[gid].n = 0
        self.mgroups[gid].rx_packets = self.mgroups[gid].rx_bytes = self.mgroups[gid].copies = 0
        return gid

    cdef _drop_group(self, key):
        gid, members = self.mcast.pop(key)
        for n in members:
            self.ns_mcast.get(n, set()).discard(key)
        self.mgroups[<int32_t>gid].n = 0
        self.mcast_free_ids.append(gid)
        self.demux.delete((<uint64_t>key[0] << 32) | <uint32_t>key[1])

    cdef _reserve_groups_of(self, int ns_id):
        """Room for one more port in each group of ns_id (so a port change cannot fail halfway)."""
        cdef McastGroup* g
        cdef int32_t* grown
        for key in self.ns_mcast.get(ns_id, ()):
            g = &self.mgroups[<int32_t>self.mcast[key][0]]
            if g.n + 1 > g.cap:
                grown = <int32_t*>realloc(g.ports, <size_t>(g.cap * 2 + 4) * sizeof(int32_t))
                if grown == NULL:
                    raise MemoryError("multicast group members")
                g.ports, g.cap = grown, g.cap * 2 + 4

    cdef _resolve_groups_of(self, int ns_id):
        for key in sorted(self.ns_mcast.get(ns_id, ())):
            self._resolve_group(key)

    cdef _resolve_group(self, key):
        """Write the group's egress ports (members in order; an L3's port, an L2's ports
        by id) into its McastGroup.  Raises MemoryError with the entry unchanged."""
        gid, members = self.mcast[key]
        cdef McastGroup* g = &self.mgroups[<int32_t>gid]
        cdef int32_t k, cap
        cdef int32_t* grown
        ports = []
        for n in members:
            if self.ns_l3[n]:
                if self.ns_port[n] >= 0:
                    ports.append(self.ns_port[n])
            else:
                ports.extend(sorted(self.ns_ports.get(n, ())))
        if len(ports) > g.cap:
            cap = max(4, len(ports))
            grown = <int32_t*>realloc(g.ports, <size_t>cap * sizeof(int32_t))
            if grown == NULL:
                raise MemoryError("multicast group members")
            g.ports, g.cap = grown, cap
        for k in range(len(ports)):
            g.ports[k] = ports[k]
        g.n = len(ports)

    cdef _rebuild_groups(self):
        """Flatten the listener lists into the arrays process() reads."""
        n = max(self.next_bcast_id, self.max_namespaces)
        first = np.zeros(n, dtype=np.int32)
        length = np.zeros(n, dtype=np.int32)
        pool = []
        for scope, l3s in self.scope_l3.items():
            first[scope], length[scope] = len(pool), len(l3s)
            pool.extend(sorted(l3s))
        for gid, members in self.bcast.values():
            first[gid], length[gid] = len(pool), len(members)
            pool.extend(members)
        self._grp_first, self._grp_len = first, length
        self._grp_members = np.array(pool + [0], dtype=np.int32)
        self.grp_first = <int32_t*>_ptr(first)
        self.grp_len = <int32_t*>_ptr(length)
        self.grp_members = <int32_t*>_ptr(self._grp_members)
        self.n_groups = n
        self.dirty_groups = False

    # ---- routes and neighbours -----------------------------------------------------------

    def add_route(self, scope_id, prefix, plen, port_id, gateway=0):
        """Add (or replace) prefix/plen -> port (via gateway, 0: on-link) in the scope's FIB."""
        self._writing()
        self._scope(scope_id)
        if not isinstance(plen, int) or not 0 <= plen <= 32:
            raise InvalidArgument(f"prefix length {plen!r} is not in 0..32")
        if not isinstance(prefix, int) or not 0 <= prefix <= 0xFFFFFFFF:
            raise InvalidArgument(f"prefix {prefix!r} is not an IPv4 address as an int")
        if prefix & ~prefix_mask(plen) & 0xFFFFFFFF:
            raise InvalidArgument(f"{_ip_str(prefix)}/{plen} has host bits set")
        self._existing_port(port_id)
        if gateway != 0:
            check_ip(gateway, "gateway")
        fib = self.fibs.get(scope_id)
        if fib is None:
            fib = self.fibs[scope_id] = Dir24Fib()
        cdef uint32_t old = 0
        had = (<Dir24Fib>fib).get_route(prefix, plen, &old)
        nh = self._nh_acquire(port_id, gateway)
        try:
            (<Dir24Fib>fib).insert(prefix, plen, nh)
        except BaseException:
            self._nh_release(nh)
            raise
        if had:
            self._nh_release(old)
        self.fib[scope_id] = (<Dir24Fib>fib).view()
        self.dirty_scopes.add(scope_id)

    def remove_route(self, scope_id, prefix, plen):
        self._writing()
        self._scope(scope_id)
        cdef uint32_t nh
        fib = self.fibs.get(scope_id)
        if (fib is None or not isinstance(plen, int) or not 0 <= plen <= 32
                or not isinstance(prefix, int) or not 0 <= prefix <= 0xFFFFFFFF
                or not (<Dir24Fib>fib).get_route(prefix, plen, &nh)):
            raise NotFound(f"no route {prefix!r}/{plen!r} in scope {scope_id}")
        (<Dir24Fib>fib).remove(prefix, plen)
        self._nh_release(nh)
        if len(fib) == 0:
            del self.fibs[scope_id]
        self.fib[scope_id] = (<Dir24Fib>fib).view()
        self.dirty_scopes.add(scope_id)

    def lookup_route(self, scope_id, ip):
        """Longest-prefix match in the scope's FIB: (port, gateway) or None."""
        self._ns(scope_id, "scope")
        cdef uint32_t e = fib_entry_lookup(&self.fib[scope_id], self._addr(ip))
        if e == 0:
            return None
        nh = (e & FIB_NH_MASK) - 1
        return (int(self.nh_port[nh]), int(self.nh_gw[nh]))

    def routes(self, scope_id):
        """[(prefix, plen, port, gateway)] of the scope (sorted by plen, prefix)."""
        fib = self.fibs.get(scope_id)
        if fib is None:
            return []
        return [(p, l, int(self.nh_port[nh]), int(self.nh_gw[nh]))
                for p, l, nh in (<Dir24Fib>fib).routes_list()]

    cdef uint32_t _nh_acquire(self, int port_id, uint32_t gateway) except? 0xFFFFFFFF:
        key = (port_id, gateway)
        nh = self.nh_index.get(key)
        if nh is None:
            if self.nh_free:
                nh = self.nh_free.pop()
            else:
                nh = len(self.nh_refs)
                if nh >= FIB_MAX_NEXTHOPS:
                    raise MemoryError("FIB: out of next-hop indices")
                self.nh_refs.append(0)
                if nh >= len(self._nh_port):
                    grow = len(self._nh_port) * 2
                    p = np.zeros(grow, dtype=np.int32)
                    g = np.zeros(grow, dtype=np.uint32)
                    p[:len(self._nh_port)] = self._nh_port
                    g[:len(self._nh_gw)] = self._nh_gw
                    self._set_nexthop_arrays(p, g)
            self.nh_index[key] = nh
            self.nh_port[nh] = port_id
            self.nh_gw[nh] = gateway
        self.nh_refs[nh] += 1
        return nh

    cdef _nh_release(self, uint32_t nh):
        self.nh_refs[nh] -= 1
        if self.nh_refs[nh] == 0:
            del self.nh_index[(int(self.nh_port[nh]), int(self.nh_gw[nh]))]
            self.nh_free.append(nh)

    def set_neighbour(self, scope_id, ip, mac):
        self._writing()
        self._scope(scope_id)
        check_ip(ip, "neighbour")
        m = mac_bytes_to_int(mac, "neighbour MAC")
        self.neigh.put((<uint64_t>scope_id << 32) | <uint32_t>ip, m)
        self.dirty_scopes.add(scope_id)

    def remove_neighbour(self, scope_id, ip):
        self._writing()
        self._scope(scope_id)
        check_ip(ip, "neighbour")
        if not self.neigh.delete((<uint64_t>scope_id << 32) | <uint32_t>ip):
            raise NotFound(f"no neighbour {_ip_str(ip)} in scope {scope_id}")
        self.dirty_scopes.add(scope_id)

    def neighbour(self, scope_id, ip):
        cdef uint64_t v
        self._ns(scope_id, "scope")
        if self.neigh.get((<uint64_t>scope_id << 32) | self._addr(ip), &v):
            return int(v).to_bytes(6, "little")
        return None

    # ---- the batch function -----------------------------------------------------------------

    def process(self, Batch batch not None):
        """Decide every frame of ``batch`` (see batch.pxi for what is filled in)."""
        self._process(batch)

    cdef int _process(self, Batch batch) except -1:
        """Python-side entry (GIL held on entry; released while frames are decided)."""
        if self.updating:
            raise RuntimeError("process() inside datapath.update() would deadlock")
        if not PyThread_acquire_lock(self.lock, NOWAIT_LOCK):
            with nogil:
                PyThread_acquire_lock(self.lock, WAIT_LOCK)
        try:
            if batch._count > 16:
                with nogil:
                    self.process_locked(batch)
            else:
                self.process_locked(batch)
        finally:
            PyThread_release_lock(self.lock)
        return 0

    cdef void process_locked(self, Batch batch) noexcept nogil:
        """Decide every frame of ``batch``; the caller holds ``self.lock``.  The packet
        loop (io.pxi) calls this between its reads and writes without the GIL."""
        cdef DpTables t
        cdef BatchView bv
        t.max_ns, t.max_ports = self.max_namespaces, self.max_ports
        t.rc_mask, t.rc_size = self.rc_mask, self.route_cache_size
        t.ns_scope, t.ns_l3, t.ns_port, t.scope_gen = self.ns_scope, self.ns_l3, self.ns_port, self.scope_gen
        t.port_ns, t.port_mac, t.port_peer = self.port_ns, self.port_mac, self.port_peer
        t.demux, t.demux_mask = self.demux.slots, self.demux.mask
        t.neigh, t.neigh_mask = self.neigh.slots, self.neigh.mask
        t.fib, t.nh_port, t.nh_gw, t.rcache = self.fib, self.nh_port, self.nh_gw, self.rcache
        t.grp_first, t.grp_len, t.grp_members, t.n_groups = (
            self.grp_first, self.grp_len, self.grp_members, self.n_groups)
        t.mgroups = self.mgroups
        t.port_ctr, t.ns_ctr = self.port_ctr, self.ns_ctr
        t.reason_ctr, t.ns_reason_ctr = self.reason_ctr, self.ns_reason_ctr
        bv.buf, bv.pool_size, bv.count = batch.c_buf, batch.pool_size, batch._count
        bv.offset, bv.length, bv.port = batch.c_offset, batch.c_length, batch.c_port
        bv.verdict, bv.reason, bv.out_port = batch.c_verdict, batch.c_reason, batch.c_out_port
        bv.fanout_first, bv.fanout_n = batch.c_fanout_first, batch.c_fanout_n
        bv.fanout_port, bv.fanout_frame = batch.c_fanout_port, batch.c_fanout_frame
        bv.fanout_eth, bv.max_fanout = batch.c_fanout_eth, batch.max_fanout
        process_batch(&t, &bv)
        batch.fanout_count = bv.fanout_count

    # ---- counters --------------------------------------------------------------------------

    def counters(self):
        """{"reasons": {name: n}, "ports": {id: {...}}, "namespaces": {id: {..., "reasons": {...}}},
        "groups": {(scope, group ip): {"rx_packets", "rx_bytes", "copies"}}}.
        Reasons count both drops and slow-path hand-offs (verdicts.reason_verdict tells which);
        namespace reasons are charged to the sending namespace."""
        names = [(code, name) for code, name in VERDICT_REASON_NAMES.items() if code]
        out = {"reasons": {name: int(self.reason_ctr[code]) for code, name in names},
               "ports": {}, "namespaces": {}}
        for p in range(self.max_ports):
            if self.port_ns[p] >= 0:
                base = p * NCOUNTERS
                out["ports"][p] = {n: int(self.port_ctr[base + k]) for k, n in enumerate(COUNTER_NAMES)}
        for ns in range(self.max_namespaces):
            if self.ns_scope[ns] >= 0:
                base = ns * NCOUNTERS
                d = {n: int(self.ns_ctr[base + k]) for k, n in enumerate(COUNTER_NAMES)}
                rb = ns * REASON_COUNT
                d["reasons"] = {name: int(self.ns_reason_ctr[rb + code]) for code, name in names}
                out["namespaces"][ns] = d
        cdef McastGroup* g
        out["groups"] = {}
        for key, (gid, _) in self.mcast.items():
            g = &self.mgroups[<int32_t>gid]
            out["groups"][key] = {"rx_packets": int(g.rx_packets), "rx_bytes": int(g.rx_bytes),
                                  "copies": int(g.copies)}
        return out


def _make_ctx(Datapath dp):
    cdef _UpdateContext c = _UpdateContext.__new__(_UpdateContext)
    c.dp = dp
    return c


cdef void* _ptr(arr) except NULL:
    """Address of a C-contiguous numpy array's data (the array must be kept alive)."""
    return <void*><size_t>arr.ctypes.data
