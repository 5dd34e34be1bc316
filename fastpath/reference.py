"""The plain-Python reference of the fast path: the test oracle.

Same API and the same forwarding rules as the compiled ``fastpath.Datapath``
(docs/architecture.md, "Forwarding rules"), written to be read, not to be fast:
dicts instead of hash tables, a scan of prefix lengths instead of DIR-24-8 and the
IPv6 FIB, no route cache (a cache that is never stale cannot change a result), and
checksums recomputed from scratch instead of updated incrementally.  Both families
through the same methods, keyed as the API spells them (IPv4: an int; IPv6: an
``IPv6Address``; fastpath/addresses.py).  Frames are processed in a ``fastpath.Batch``
exactly as the core does (reference_batch.py; IPv6 frames: reference_ipv6.py).
"""
from contextlib import contextmanager
import threading

from fastpath import verdicts as V
from fastpath.addresses import (MAX_PLEN, V6, addr_str, check_flag, check_ip, gateway_key,
                                gateway_value,
                                group_key, group_str, host_key, lookup_key, mac_bytes_to_int,
                                onlink_key, prefix_key, route_key, value_str)
from fastpath.errors import AddressInUse, Busy, InvalidArgument, NotFound
from fastpath.reasons import TRAFFIC_COUNTER_NAMES as COUNTER_NAMES
from fastpath.reference_batch import DEFAULT_MTU, ReferenceBatch, ipv4_checksum
from fastpath.shares import ReferenceShares

__all__ = ["ReferenceDatapath", "ipv4_checksum"]


class ReferenceDatapath(ReferenceBatch, ReferenceShares):
    """Reference implementation of ``fastpath.Datapath`` (same methods, same results);
    its batch function and counters are ReferenceBatch's (reference_batch.py), the
    slow path's shares ReferenceShares' (shares.py)."""

    families = (4, 6)

    def __init__(self, *, max_namespaces=4096, max_ports=1024, route_cache_size=256):
        if not 1 <= max_namespaces <= 1 << 24:
            raise InvalidArgument(f"max_namespaces must be in 1..{1 << 24}")
        if not 1 <= max_ports <= 0xFFFF:
            raise InvalidArgument("max_ports must be in 1..65535")
        if route_cache_size < 1 or route_cache_size & (route_cache_size - 1) or route_cache_size > 1 << 16:
            raise InvalidArgument("route_cache_size must be a power of two up to 65536")
        self.max_namespaces, self.max_ports = max_namespaces, max_ports
        self.route_cache_size = route_cache_size
        self._lock = threading.Lock()
        self._updating = False
        self.namespaces = {}      # ns -> (scope, is_l3)
        self.ports = {}           # port -> [ns, mac, peer mac or None, mtu]
        self.serving_dhcp = set() # ports the switch serves by DHCP
        self.addresses = {}       # (scope, ip) -> ns
        self.onlink = {}          # (scope, ip) -> prefix length of the address's subnet (IPv6: on-link)
        self.broadcasts = {}      # (scope, ip) -> tuple of ns
        self.groups = {}          # (scope, group ip) -> tuple of member ns
        self.group_ctr = {}       # (scope, group ip) -> {"rx_packets", "rx_bytes", "copies"}
        self.routes_ = {}         # scope -> {(prefix, plen): (port, gateway)}; IPv6: gateway None = on-link
        self.neighbours = {}      # (scope, ip) -> mac
        self.dhcp_servers = set() # port ids marked as DHCP servers
        self.directed = set()     # scopes that let directed broadcasts in from other subnets
        self.reason_ctr = dict.fromkeys(V.REASON_NAMES, 0)
        self.port_ctr, self.ns_ctr, self.ns_reason_ctr = {}, {}, {}
        self._init_shares()

    # ---- update lock ----------------------------------------------------------------------

    @contextmanager
    def update(self):
        if self._updating:
            raise RuntimeError("datapath.update() blocks do not nest")
        with self._lock:
            self._updating = True
            try:
                yield self
            finally:
                self._updating = False

    def _writing(self):
        if not self._updating:
            raise RuntimeError("table writes must happen inside `with datapath.update():`")

    # ---- checks -------------------------------------------------------------------------------

    def _ns(self, ns, what="namespace"):
        if not isinstance(ns, int) or not 0 <= ns < self.max_namespaces:
            raise InvalidArgument(f"{what} id {ns!r} is not in 0..{self.max_namespaces - 1}")

    def _existing_ns(self, ns, what="namespace"):
        self._ns(ns, what)
        if ns not in self.namespaces:
            raise NotFound(f"{what} {ns} does not exist")

    def _scope(self, scope):
        self._existing_ns(scope, "scope")
        if self.namespaces[scope][1]:
            raise InvalidArgument(f"scope {scope} is an L3 namespace, not an L2")

    def _port(self, port):
        if not isinstance(port, int) or not 0 <= port < self.max_ports:
            raise InvalidArgument(f"port id {port!r} is not in 0..{self.max_ports - 1}")

    def _existing_port(self, port):
        self._port(port)
        if port not in self.ports:
            raise NotFound(f"port {port} does not exist")

    def _children(self, scope):
        return [n for n, (s, l3) in self.namespaces.items() if l3 and s == scope]

    def _l3_port(self, ns):
        return next((p for p, (n, *_) in sorted(self.ports.items()) if n == ns), -1) \
            if self.namespaces[ns][1] else -1

    # ---- namespaces and ports -------------------------------------------------------------------

    def set_namespace(self, ns_id, scope_id, is_l3):
        self._writing()
        self._ns(ns_id)
        is_l3 = bool(is_l3)
        if is_l3:
            self._scope(scope_id)
            if scope_id == ns_id:
                raise InvalidArgument(f"L3 namespace {ns_id} cannot be its own scope")
        elif scope_id != ns_id:
            raise InvalidArgument(f"L2 namespace {ns_id} is its own scope, not {scope_id}")
        if ns_id in self.namespaces:
            if self.namespaces[ns_id] == (scope_id, is_l3):
                return
            if self._busy(ns_id):
                raise Busy(f"namespace {ns_id} still has addresses, ports or children")
            self._forget(ns_id)
        self.namespaces[ns_id] = (scope_id, is_l3)
        self._clear_counters(ns_id)

    def _busy(self, ns):
        return (any(n == ns for n, *_ in self.ports.values())
                or any(n == ns for n in self.addresses.values()) or self._children(ns))

    def remove_namespace(self, ns_id):
        self._writing()
        self._existing_ns(ns_id)
        if any(n == ns_id for n, *_ in self.ports.values()):
            raise Busy(f"namespace {ns_id} still has ports")
        if any(n == ns_id for n in self.addresses.values()):
            raise Busy(f"namespace {ns_id} still owns addresses")
        if self._children(ns_id):
            raise Busy(f"namespace {ns_id} is the scope of {self._children(ns_id)}")
        self._forget(ns_id)
        self._clear_counters(ns_id)

    def _forget(self, ns_id):
        if not self.namespaces[ns_id][1]:
            self.routes_.pop(ns_id, None)
            self.directed.discard(ns_id)
            self.neighbours = {k: v for k, v in self.neighbours.items() if k[0] != ns_id}
            self.broadcasts = {k: v for k, v in self.broadcasts.items() if k[0] != ns_id}
            for key in [k for k in self.groups if k[0] == ns_id]:
                del self.groups[key], self.group_ctr[key]
        self.broadcasts = {k: tuple(m for m in v if m != ns_id) for k, v in self.broadcasts.items()}
        self.groups = {k: tuple(m for m in v if m != ns_id) for k, v in self.groups.items()}
        del self.namespaces[ns_id]

    def _clear_counters(self, ns_id):
        self.ns_ctr[ns_id] = dict.fromkeys(COUNTER_NAMES, 0)
        self.ns_reason_ctr[ns_id] = dict.fromkeys(V.REASON_NAMES, 0)
        self._clear_ns_shares(ns_id)

    def set_port(self, port_id, ns_id, mac, mtu=DEFAULT_MTU, dhcp_server=False,
                 serve_dhcp=False):
        self._writing()
        self._port(port_id)
        self._existing_ns(ns_id)
        mac_bytes_to_int(mac, "port MAC")
        if isinstance(mtu, bool) or not isinstance(mtu, int) or not 68 <= mtu <= 65535:
            raise InvalidArgument(f"MTU {mtu!r} is not an int in 68..65535")
        check_flag(dhcp_server, "dhcp_server")
        check_flag(serve_dhcp, "serve_dhcp")
        current = self._l3_port(ns_id)
        if self.namespaces[ns_id][1] and current not in (-1, port_id):
            raise Busy(f"L3 namespace {ns_id} already has port {current}")
        old = self.ports.get(port_id)
        if old is None or old[0] != ns_id:
            self.ports[port_id] = [ns_id, bytes(mac), None, mtu]
            self.port_ctr[port_id] = dict.fromkeys(COUNTER_NAMES, 0)
            self._clear_port_shares(port_id)
        else:
            old[1], old[3] = bytes(mac), mtu
        for marked, flag in ((self.dhcp_servers, dhcp_server), (self.serving_dhcp, serve_dhcp)):
            (marked.add if flag else marked.discard)(port_id)

    def port_mtu(self, port_id):
        self._existing_port(port_id)
        return self.ports[port_id][3]

    def remove_port(self, port_id):
        self._writing()
        self._existing_port(port_id)
        del self.ports[port_id]
        self.serving_dhcp.discard(port_id)
        self.dhcp_servers.discard(port_id)

    def port_is_dhcp_server(self, port_id):
        self._existing_port(port_id)
        return port_id in self.dhcp_servers

    def set_peer_mac(self, port_id, mac):
        self._existing_port(port_id)
        if mac is not None:
            mac_bytes_to_int(mac, "peer MAC")
        self.ports[port_id][2] = None if mac is None else bytes(mac)

    def peer_mac(self, port_id):
        self._existing_port(port_id)
        return self.ports[port_id][2]

    def port_mac_of(self, port_id):
        self._existing_port(port_id)
        return self.ports[port_id][1]

    def port_serves_dhcp(self, port_id):
        self._existing_port(port_id)
        return port_id in self.serving_dhcp

    # ---- addresses, broadcasts, routes, neighbours -------------------------------------------------

    def add_address(self, scope_id, ip, ns_id, plen=None):
        self._writing()
        self._scope(scope_id)
        family, _ = host_key(ip)
        onlink = onlink_key(family, plen)
        self._existing_ns(ns_id)
        if self.namespaces[ns_id][0] != scope_id:
            raise InvalidArgument(f"namespace {ns_id} is not in scope {scope_id}")
        if (scope_id, ip) in self.broadcasts:
            raise AddressInUse(f"{value_str(ip)} is a broadcast address of scope {scope_id}")
        owner = self.addresses.get((scope_id, ip))
        if owner is not None and owner != ns_id:
            raise AddressInUse(f"{value_str(ip)} is owned by namespace {owner} in scope {scope_id}")
        self.addresses[(scope_id, ip)] = ns_id
        self.onlink[(scope_id, ip)] = onlink

    def remove_address(self, scope_id, ip):
        self._writing()
        self._scope(scope_id)
        host_key(ip)
        if (scope_id, ip) not in self.addresses:
            raise NotFound(f"{value_str(ip)} is not an address of scope {scope_id}")
        del self.addresses[(scope_id, ip)]
        self.onlink.pop((scope_id, ip), None)

    def lookup_address(self, scope_id, ip):
        self._ns(scope_id, "scope")
        lookup_key(ip)
        return self.addresses.get((scope_id, ip), -1)

    def address_onlink(self, scope_id, ip):
        self._ns(scope_id, "scope")
        lookup_key(ip)
        return self.onlink.get((scope_id, ip))

    def set_directed_broadcast(self, scope_id, enabled):
        self._writing()
        self._scope(scope_id)
        check_flag(enabled, "enabled")
        if enabled:
            self.directed.add(scope_id)
        else:
            self.directed.discard(scope_id)

    def directed_broadcast(self, scope_id):
        self._scope(scope_id)
        return scope_id in self.directed

    def set_broadcast(self, scope_id, bcast_ip, ns_ids):
        self._writing()
        self._scope(scope_id)
        check_ip(bcast_ip, "broadcast address")
        for n in ns_ids:
            self._existing_ns(n)
            if self.namespaces[n][0] != scope_id:
                raise InvalidArgument(f"namespace {n} is not in scope {scope_id}")
        if (scope_id, bcast_ip) in self.addresses:
            raise AddressInUse(f"{value_str(bcast_ip)} is owned in scope {scope_id}")
        self.broadcasts[(scope_id, bcast_ip)] = tuple(sorted(set(ns_ids)))

    def remove_broadcast(self, scope_id, bcast_ip):
        self._writing()
        self._scope(scope_id)
        if (scope_id, bcast_ip) not in self.broadcasts:
            raise NotFound(f"{value_str(bcast_ip)} is not a broadcast address of scope {scope_id}")
        del self.broadcasts[(scope_id, bcast_ip)]

    def lookup_broadcast(self, scope_id, ip):
        members = self.broadcasts.get((scope_id, ip))
        return None if members is None else list(members)

    def set_group(self, scope_id, group_ip, ns_ids):
        self._writing()
        self._scope(scope_id)
        group_key(group_ip)
        try:
            wanted = list(ns_ids)
        except TypeError:
            raise InvalidArgument(f"members must be an iterable of namespace ids, not {ns_ids!r}") from None
        for n in wanted:
            self._existing_ns(n)
            if self.namespaces[n][0] != scope_id:
                raise InvalidArgument(f"namespace {n} is not in scope {scope_id}")
        key = (scope_id, group_ip)
        if key not in self.groups:
            self.group_ctr[key] = {"rx_packets": 0, "rx_bytes": 0, "copies": 0}
        self.groups[key] = tuple(sorted(set(wanted)))

    def remove_group(self, scope_id, group_ip):
        self._writing()
        self._scope(scope_id)
        if (scope_id, group_ip) not in self.groups:
            raise NotFound(f"{group_str(group_ip)} is not a group of scope {scope_id}")
        del self.groups[(scope_id, group_ip)], self.group_ctr[(scope_id, group_ip)]

    def lookup_group(self, scope_id, group_ip):
        self._ns(scope_id, "scope")
        members = self.groups.get((scope_id, group_ip))
        return None if members is None else list(members)

    def add_route(self, scope_id, prefix, plen, port_id, gateway=0):
        self._writing()
        self._scope(scope_id)
        family, _ = prefix_key(prefix, plen)
        self._existing_port(port_id)
        gateway = gateway_value(family, gateway_key(family, gateway))
        self.routes_.setdefault(scope_id, {})[(prefix, plen)] = (port_id, gateway)

    def remove_route(self, scope_id, prefix, plen):
        self._writing()
        self._scope(scope_id)
        if route_key(prefix, plen) is None or (prefix, plen) not in self.routes_.get(scope_id, {}):
            raise NotFound(f"no route {value_str(prefix)}/{plen!r} in scope {scope_id}")
        del self.routes_[scope_id][(prefix, plen)]

    def lookup_route(self, scope_id, ip):
        self._ns(scope_id, "scope")
        family, key = lookup_key(ip)
        table = self.routes_.get(scope_id, {})
        bits = MAX_PLEN[family]
        for plen in range(bits, -1, -1):
            masked = key & (((1 << bits) - 1) ^ ((1 << (bits - plen)) - 1))
            hop = table.get((masked if family == 4 else V6(masked), plen))
            if hop is not None:
                return hop
        return None

    def routes(self, scope_id):
        def order(item):
            (prefix, plen), _ = item
            return isinstance(prefix, V6), plen, int(prefix)
        return [(p, l, port, gw) for (p, l), (port, gw)
                in sorted(self.routes_.get(scope_id, {}).items(), key=order)]

    def set_neighbour(self, scope_id, ip, mac):
        self._writing()
        self._scope(scope_id)
        host_key(ip, "neighbour")
        mac_bytes_to_int(mac, "neighbour MAC")
        self.neighbours[(scope_id, ip)] = bytes(mac)

    def remove_neighbour(self, scope_id, ip):
        self._writing()
        self._scope(scope_id)
        host_key(ip, "neighbour")
        if (scope_id, ip) not in self.neighbours:
            raise NotFound(f"no neighbour {value_str(ip)} in scope {scope_id}")
        del self.neighbours[(scope_id, ip)]

    def neighbour(self, scope_id, ip):
        self._ns(scope_id, "scope")
        lookup_key(ip)
        return self.neighbours.get((scope_id, ip))
