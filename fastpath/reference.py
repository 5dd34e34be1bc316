"""The plain-Python reference of the fast path: the test oracle.

Same API and the same forwarding rules as the compiled ``fastpath.Datapath``
(docs/architecture.md, "Forwarding rules"), written to be read, not to be fast:
dicts instead of hash tables, a scan of prefix lengths instead of DIR-24-8, no
route cache (a cache that is never stale cannot change a result), and checksums
recomputed from scratch instead of updated incrementally.  Frames are processed
in a ``fastpath.Batch`` exactly as the core does.
"""
from contextlib import contextmanager
import struct
import threading

from pyctl.errors import AddressInUse, Busy, InvalidArgument, NotFound
from fastpath import verdicts as V
from fastpath.addresses import check_group, check_ip, group_str, ip_str as _ip, mac_bytes_to_int
from fastpath.source_rule import BROADCAST, may_send_from

BROADCAST_MAC = b"\xff" * 6
COUNTER_NAMES = ("rx_packets", "rx_bytes", "tx_packets", "tx_bytes")


def ipv4_checksum(header):
    """RFC 1071 checksum of an IPv4 header: with its checksum field zeroed, the value that
    belongs there; with the field filled in, 0 when the header is valid."""
    s = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


class ReferenceDatapath:
    """Reference implementation of ``fastpath.Datapath`` (same methods, same results)."""

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
        self.ports = {}           # port -> [ns, mac, peer mac or None]
        self.addresses = {}       # (scope, ip) -> ns
        self.broadcasts = {}      # (scope, ip) -> tuple of ns
        self.groups = {}          # (scope, group ip) -> tuple of member ns
        self.group_ctr = {}       # (scope, group ip) -> {"rx_packets", "rx_bytes", "copies"}
        self.routes_ = {}         # scope -> {(prefix, plen): (port, gateway)}
        self.neighbours = {}      # (scope, ip) -> mac
        self.reason_ctr = dict.fromkeys(V.REASON_NAMES, 0)
        self.port_ctr, self.ns_ctr, self.ns_reason_ctr = {}, {}, {}

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

    def _addr(self, ip):
        if not isinstance(ip, int) or not 0 <= ip <= 0xFFFFFFFF:
            raise InvalidArgument(f"bad address {ip!r}")
        return ip

    def _children(self, scope):
        return [n for n, (s, l3) in self.namespaces.items() if l3 and s == scope]

    def _l3_port(self, ns):
        return next((p for p, (n, _, _) in sorted(self.ports.items()) if n == ns), -1) \
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
        return (any(n == ns for n, _, _ in self.ports.values())
                or any(n == ns for n in self.addresses.values()) or self._children(ns))

    def remove_namespace(self, ns_id):
        self._writing()
        self._existing_ns(ns_id)
        if any(n == ns_id for n, _, _ in self.ports.values()):
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

    def set_port(self, port_id, ns_id, mac):
        self._writing()
        self._port(port_id)
        self._existing_ns(ns_id)
        mac_bytes_to_int(mac, "port MAC")
        current = self._l3_port(ns_id)
        if self.namespaces[ns_id][1] and current not in (-1, port_id):
            raise Busy(f"L3 namespace {ns_id} already has port {current}")
        old = self.ports.get(port_id)
        if old is None or old[0] != ns_id:
            self.ports[port_id] = [ns_id, bytes(mac), None]
            self.port_ctr[port_id] = dict.fromkeys(COUNTER_NAMES, 0)
        else:
            old[1] = bytes(mac)

    def remove_port(self, port_id):
        self._writing()
        self._existing_port(port_id)
        del self.ports[port_id]

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

    # ---- addresses, broadcasts, routes, neighbours -------------------------------------------------

    def add_address(self, scope_id, ip, ns_id):
        self._writing()
        self._scope(scope_id)
        check_ip(ip)
        self._existing_ns(ns_id)
        if self.namespaces[ns_id][0] != scope_id:
            raise InvalidArgument(f"namespace {ns_id} is not in scope {scope_id}")
        if (scope_id, ip) in self.broadcasts:
            raise AddressInUse(f"{_ip(ip)} is a broadcast address of scope {scope_id}")
        owner = self.addresses.get((scope_id, ip))
        if owner is not None and owner != ns_id:
            raise AddressInUse(f"{_ip(ip)} is owned by namespace {owner} in scope {scope_id}")
        self.addresses[(scope_id, ip)] = ns_id

    def remove_address(self, scope_id, ip):
        self._writing()
        self._scope(scope_id)
        check_ip(ip)
        if (scope_id, ip) not in self.addresses:
            raise NotFound(f"{_ip(ip)} is not an address of scope {scope_id}")
        del self.addresses[(scope_id, ip)]

    def lookup_address(self, scope_id, ip):
        self._ns(scope_id, "scope")
        return self.addresses.get((scope_id, self._addr(ip)), -1)

    def set_broadcast(self, scope_id, bcast_ip, ns_ids):
        self._writing()
        self._scope(scope_id)
        check_ip(bcast_ip, "broadcast address")
        for n in ns_ids:
            self._existing_ns(n)
            if self.namespaces[n][0] != scope_id:
                raise InvalidArgument(f"namespace {n} is not in scope {scope_id}")
        if (scope_id, bcast_ip) in self.addresses:
            raise AddressInUse(f"{_ip(bcast_ip)} is owned in scope {scope_id}")
        self.broadcasts[(scope_id, bcast_ip)] = tuple(sorted(set(ns_ids)))

    def remove_broadcast(self, scope_id, bcast_ip):
        self._writing()
        self._scope(scope_id)
        if (scope_id, bcast_ip) not in self.broadcasts:
            raise NotFound(f"{_ip(bcast_ip)} is not a broadcast address of scope {scope_id}")
        del self.broadcasts[(scope_id, bcast_ip)]

    def lookup_broadcast(self, scope_id, ip):
        members = self.broadcasts.get((scope_id, ip))
        return None if members is None else list(members)

    def set_group(self, scope_id, group_ip, ns_ids):
        self._writing()
        self._scope(scope_id)
        check_group(group_ip)
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
        if not isinstance(plen, int) or not 0 <= plen <= 32:
            raise InvalidArgument(f"prefix length {plen!r} is not in 0..32")
        if not isinstance(prefix, int) or not 0 <= prefix <= 0xFFFFFFFF:
            raise InvalidArgument(f"prefix {prefix!r} is not an IPv4 address as an int")
        if prefix & ~_mask(plen) & 0xFFFFFFFF:
            raise InvalidArgument(f"{_ip(prefix)}/{plen} has host bits set")
        self._existing_port(port_id)
        if gateway != 0:
            check_ip(gateway, "gateway")
        self.routes_.setdefault(scope_id, {})[(prefix, plen)] = (port_id, gateway)

    def remove_route(self, scope_id, prefix, plen):
        self._writing()
        self._scope(scope_id)
        if (prefix, plen) not in self.routes_.get(scope_id, {}):
            raise NotFound(f"no route {prefix!r}/{plen!r} in scope {scope_id}")
        del self.routes_[scope_id][(prefix, plen)]

    def lookup_route(self, scope_id, ip):
        self._ns(scope_id, "scope")
        self._addr(ip)
        table = self.routes_.get(scope_id, {})
        for plen in range(32, -1, -1):
            hop = table.get((ip & _mask(plen), plen))
            if hop is not None:
                return hop
        return None

    def routes(self, scope_id):
        return [(p, l, port, gw) for (p, l), (port, gw)
                in sorted(self.routes_.get(scope_id, {}).items(), key=lambda r: (r[0][1], r[0][0]))]

    def set_neighbour(self, scope_id, ip, mac):
        self._writing()
        self._scope(scope_id)
        check_ip(ip, "neighbour")
        mac_bytes_to_int(mac, "neighbour MAC")
        self.neighbours[(scope_id, ip)] = bytes(mac)

    def remove_neighbour(self, scope_id, ip):
        self._writing()
        self._scope(scope_id)
        check_ip(ip, "neighbour")
        if (scope_id, ip) not in self.neighbours:
            raise NotFound(f"no neighbour {_ip(ip)} in scope {scope_id}")
        del self.neighbours[(scope_id, ip)]

    def neighbour(self, scope_id, ip):
        self._ns(scope_id, "scope")
        return self.neighbours.get((scope_id, self._addr(ip)))

    # ---- counters ----------------------------------------------------------------------------------

    def counters(self):
        names = {c: n for c, n in V.REASON_NAMES.items() if c}
        return {
            "reasons": {n: self.reason_ctr[c] for c, n in names.items()},
            "ports": {p: dict(self.port_ctr[p]) for p in sorted(self.ports)},
            "namespaces": {ns: {**self.ns_ctr[ns],
                                "reasons": {n: self.ns_reason_ctr[ns][c] for c, n in names.items()}}
                           for ns in sorted(self.namespaces)},
            "groups": {key: dict(ctr) for key, ctr in self.group_ctr.items()},
        }

    def _charge(self, ns, reason, k=1):
        self.reason_ctr[reason] += k
        if ns is not None:
            self.ns_reason_ctr[ns][reason] += k

    def _count(self, port, ns, direction, nbytes):
        for ctr in (self.port_ctr[port], self.ns_ctr[ns]):
            ctr[f"{direction}_packets"] += 1
            ctr[f"{direction}_bytes"] += nbytes

    # ---- the batch function -------------------------------------------------------------------------

    def process(self, batch):
        if self._updating:
            raise RuntimeError("process() inside datapath.update() would deadlock")
        with self._lock:
            copies = []
            for i in range(batch.count):
                verdict, reason, out_port, frame_copies, new_bytes = self._decide(batch, i, len(copies))
                batch.verdict[i], batch.reason[i], batch.out_port[i] = verdict, reason, out_port
                batch.fanout_first[i] = len(copies) if frame_copies else 0
                batch.fanout_n[i] = len(frame_copies)
                copies.extend((i, port, eth) for port, eth in frame_copies)
                if new_bytes is not None:
                    start = int(batch.offset[i])
                    batch.buf[start:start + len(new_bytes)] = bytearray(new_bytes)
            for k, (i, port, eth) in enumerate(copies):
                batch.fanout_frame[k], batch.fanout_port[k] = i, port
                batch.fanout_eth[k] = bytearray(eth)
            batch.fanout_count = len(copies)

    def _decide(self, batch, i, copies_so_far):
        """(verdict, reason, out_port, [(port, eth header)], rewritten frame or None)."""
        port = int(batch.port[i])
        if port not in self.ports:
            self._charge(None, V.REASON_UNKNOWN_PORT)
            return V.VERDICT_DROP, V.REASON_UNKNOWN_PORT, -1, [], None
        ns, port_mac, _ = self.ports[port]
        start, n = int(batch.offset[i]), int(batch.length[i])
        self._count(port, ns, "rx", n)

        def refuse(reason):
            self._charge(ns, reason)
            return V.reason_verdict(reason), reason, -1, [], None

        if start + n > len(batch.buf) or n < 14:
            return refuse(V.REASON_MALFORMED)
        frame = bytes(batch.buf[start:start + n])
        dst_mac, src_mac, ethertype = frame[0:6], frame[6:12], int.from_bytes(frame[12:14], "big")
        group_mac = bool(dst_mac[0] & 1)
        if not group_mac and dst_mac != port_mac:
            return refuse(V.REASON_NOT_FOR_US)
        if ethertype == 0x0806:
            return refuse(V.REASON_MALFORMED if n < 14 + 28 else V.REASON_ARP)
        if ethertype != 0x0800:
            return refuse(V.REASON_UNSUPPORTED_ETHERTYPE)
        if n < 14 + 20:
            return refuse(V.REASON_MALFORMED)
        version, ihl = frame[14] >> 4, frame[14] & 15
        total = int.from_bytes(frame[16:18], "big")
        if version != 4 or ihl < 5 or 14 + ihl * 4 > n or total < ihl * 4 or 14 + total > n:
            return refuse(V.REASON_MALFORMED)
        header = frame[14:14 + ihl * 4]
        if ipv4_checksum(header) != 0:          # RFC 1071: all words, checksum included, sum to
            return refuse(V.REASON_BAD_CHECKSUM)  # all ones (a 0x0000 checksum may come as 0xFFFF)
        ttl = header[8]
        src, dst = int.from_bytes(header[12:16], "big"), int.from_bytes(header[16:20], "big")
        scope, is_l3 = self.namespaces[ns]

        # source rule (fastpath/source_rule.py)
        owner = BROADCAST if (scope, src) in self.broadcasts else self.addresses.get((scope, src))
        if not may_send_from(is_l3, ns, owner, src):
            return refuse(V.REASON_SPOOFED_SOURCE)
        if not src_mac[0] & 1 and src_mac != bytes(6):
            self.ports[port][2] = src_mac

        if header[9] == 2:                      # IGMP: the switch snoops and queries
            return refuse(V.REASON_IGMP)

        # broadcast and multicast
        if dst == 0xFFFFFFFF:
            return self._fan_out(ns, self._l3_ports(self._all_l3(scope)), BROADCAST_MAC,
                                 frame, copies_so_far, batch)
        if dst >> 28 == 0xE:
            mcast_mac = bytes([0x01, 0x00, 0x5E, dst >> 16 & 0x7F, dst >> 8 & 0xFF, dst & 0xFF])
            if dst >> 8 == 0xE00000:            # link-local: every L3 of the scope
                return self._fan_out(ns, self._l3_ports(self._all_l3(scope)), mcast_mac,
                                     frame, copies_so_far, batch)
            members = self.groups.get((scope, dst))
            if members is None:
                return refuse(V.REASON_NO_LISTENER)
            ctr = self.group_ctr[(scope, dst)]
            ctr["rx_packets"] += 1
            ctr["rx_bytes"] += n
            result = self._fan_out(ns, self._member_ports(members), mcast_mac,
                                   frame, copies_so_far, batch)
            ctr["copies"] += len(result[3])
            return result
        if dst >> 24 in (0, 127) or dst >> 28 == 0xF:
            return refuse(V.REASON_BAD_DESTINATION)
        if (scope, dst) in self.broadcasts:
            return self._fan_out(ns, self._l3_ports(self.broadcasts[(scope, dst)]), BROADCAST_MAC,
                                 frame, copies_so_far, batch)
        if group_mac:
            return refuse(V.REASON_NOT_FOR_US)

        # demux
        owner = self.addresses.get((scope, dst))
        if owner is not None:
            if not self.namespaces[owner][1]:
                return refuse(V.REASON_LOCAL)
            out = self._l3_port(owner)
            if out < 0:
                return refuse(V.REASON_NO_PORT)
            if ttl <= 1:
                return refuse(V.REASON_TTL_EXPIRED)
            peer = self.ports[out][2]
            if peer is None:
                return refuse(V.REASON_PEER_UNKNOWN)
            return self._forward(out, peer, frame)

        # route
        hop = self.lookup_route(scope, dst)
        if hop is None:
            return refuse(V.REASON_NO_ROUTE)
        out, gateway = hop
        if out not in self.ports:
            return refuse(V.REASON_NO_PORT)
        if ttl <= 1:
            return refuse(V.REASON_TTL_EXPIRED)
        mac = self.neighbours.get((scope, gateway or dst))
        if mac is None:
            return refuse(V.REASON_NO_NEIGHBOUR)
        return self._forward(out, mac, frame)

    def _all_l3(self, scope):
        return sorted(self._children(scope))

    def _forward(self, out, dst_mac, frame):
        out_ns, out_mac, _ = self.ports[out]
        ihl = frame[14] & 15
        header = bytearray(frame[14:14 + ihl * 4])
        header[8] -= 1
        header[10:12] = b"\0\0"
        header[10:12] = ipv4_checksum(bytes(header)).to_bytes(2, "big")
        self._count(out, out_ns, "tx", len(frame))
        new = dst_mac + out_mac + frame[12:14] + bytes(header) + frame[14 + ihl * 4:]
        return V.VERDICT_FORWARD, V.REASON_NONE, out, [], new

    def _l3_ports(self, members):
        """The ports of a broadcast list: each L3 member's port (an L2 member has none)."""
        return [p for m in members if m in self.namespaces for p in [self._l3_port(m)] if p >= 0]

    def _member_ports(self, members):
        """The ports of a group's members: an L3's port, an L2's ports (its uplinks) by id."""
        ports = []
        for m in members:
            if self.namespaces[m][1]:
                ports += [p for p in [self._l3_port(m)] if p >= 0]
            else:
                ports += sorted(p for p, (n, _, _) in self.ports.items() if n == m)
        return ports

    def _fan_out(self, ns, ports, dst_mac, frame, copies_so_far, batch):
        """Copies out of ``ports``, except the sender's own (the ingress port among them)."""
        copies, overflow = [], 0
        for out in ports:
            if self.ports[out][0] == ns:
                continue
            if copies_so_far + len(copies) >= batch.max_fanout:
                overflow += 1
                continue
            out_ns, out_mac, _ = self.ports[out]
            copies.append((out, dst_mac + out_mac + b"\x08\x00"))
            self._count(out, out_ns, "tx", len(frame))
        if overflow:
            self._charge(ns, V.REASON_FANOUT_OVERFLOW, overflow)
        if copies:
            return (V.VERDICT_FANOUT, V.REASON_FANOUT_OVERFLOW if overflow else V.REASON_NONE,
                    -1, copies, None)
        if overflow:
            return V.VERDICT_DROP, V.REASON_FANOUT_OVERFLOW, -1, [], None
        self._charge(ns, V.REASON_NO_LISTENER)
        return V.VERDICT_DROP, V.REASON_NO_LISTENER, -1, [], None


def _mask(plen):
    return (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF if plen else 0
