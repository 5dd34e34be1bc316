"""A datapath that takes both families, for the compiler's and the slow path's tests
until the fast path takes IPv6: the reference datapath, with IPv6 keys taken as the
datapath's API gives them (the same methods for both families), checked as strictly
as IPv4's.

An IPv6 address, prefix, gateway or group is an ``ipaddress.IPv6Address``; a route's
gateway is an ``IPv6Address`` or None (on-link); plen is 0..128; a group is in
ff00::/8 with a scope wider than link-local; ``add_address`` takes an IPv6 address's
on-link prefix length and ``set_port`` a port's MTU (68..65535, 1500 by default).  Entries live in the reference's own
tables beside the IPv4 ones, so its checks of namespaces, scopes and ports (and
the incremental compiler test's ``tables()``) cover both families alike.
"""
import ipaddress

from fastpath.reference import ReferenceDatapath
from pyctl.errors import AddressInUse, InvalidArgument, NotFound

_V6 = ipaddress.IPv6Address


def _check_host(ip, what="address"):
    if ip.is_multicast or ip.is_loopback or ip.is_unspecified or ip.is_link_local \
            or ip.ipv4_mapped is not None:
        raise InvalidArgument(f"{what} {ip} is not a unicast host address")
    return ip


def _mask(plen):
    return ((1 << 128) - 1) ^ ((1 << (128 - plen)) - 1)


class DualStackDatapath(ReferenceDatapath):
    families = (4, 6)

    def __init__(self, **kw):
        super().__init__(**kw)
        self.mtus = {}             # port id -> MTU
        self.onlink = {}           # (scope, IPv6 address) -> its on-link prefix length

    def set_port(self, port_id, ns_id, mac, mtu=1500):
        if isinstance(mtu, bool) or not isinstance(mtu, int) or not 68 <= mtu <= 65535:
            raise InvalidArgument(f"MTU {mtu!r} is not an int in 68..65535")
        super().set_port(port_id, ns_id, mac)
        self.mtus[port_id] = mtu

    def remove_port(self, port_id):
        super().remove_port(port_id)
        del self.mtus[port_id]

    # -- addresses --------------------------------------------------------------------

    def add_address(self, scope_id, ip, ns_id, plen=None):
        if not isinstance(ip, _V6):
            if plen is not None:
                raise InvalidArgument("an IPv4 address takes no on-link prefix length")
            return super().add_address(scope_id, ip, ns_id)
        self._writing()
        self._scope(scope_id)
        _check_host(ip)
        if plen is not None and (not isinstance(plen, int) or not 0 <= plen <= 128):
            raise InvalidArgument(f"prefix length {plen!r} is not in 0..128")
        self._existing_ns(ns_id)
        if self.namespaces[ns_id][0] != scope_id:
            raise InvalidArgument(f"namespace {ns_id} is not in scope {scope_id}")
        owner = self.addresses.get((scope_id, ip))
        if owner is not None and owner != ns_id:
            raise AddressInUse(f"{ip} is owned by namespace {owner} in scope {scope_id}")
        self.addresses[(scope_id, ip)] = ns_id
        self.onlink[(scope_id, ip)] = plen

    def remove_address(self, scope_id, ip):
        if not isinstance(ip, _V6):
            return super().remove_address(scope_id, ip)
        self._writing()
        self._scope(scope_id)
        if (scope_id, ip) not in self.addresses:
            raise NotFound(f"{ip} is not an address of scope {scope_id}")
        del self.addresses[(scope_id, ip)], self.onlink[(scope_id, ip)]

    def lookup_address(self, scope_id, ip):
        if not isinstance(ip, _V6):
            return super().lookup_address(scope_id, ip)
        self._ns(scope_id, "scope")
        return self.addresses.get((scope_id, ip), -1)

    # -- routes -----------------------------------------------------------------------

    def add_route(self, scope_id, prefix, plen, port_id, gateway=0):
        if not isinstance(prefix, _V6):
            return super().add_route(scope_id, prefix, plen, port_id, gateway)
        self._writing()
        self._scope(scope_id)
        if not isinstance(plen, int) or not 0 <= plen <= 128:
            raise InvalidArgument(f"prefix length {plen!r} is not in 0..128")
        if int(prefix) & ~_mask(plen):
            raise InvalidArgument(f"{prefix}/{plen} has host bits set")
        self._existing_port(port_id)
        if gateway is not None:
            if not isinstance(gateway, _V6):
                raise InvalidArgument(f"the gateway of an IPv6 route is an IPv6Address or None, "
                                      f"not {gateway!r}")
            _check_host(gateway, "gateway")
        self.routes_.setdefault(scope_id, {})[(prefix, plen)] = (port_id, gateway)

    def lookup_route(self, scope_id, ip):
        if not isinstance(ip, _V6):
            return super().lookup_route(scope_id, ip)
        self._ns(scope_id, "scope")
        table = self.routes_.get(scope_id, {})
        for plen in range(128, -1, -1):
            hop = table.get((_V6(int(ip) & _mask(plen)), plen))
            if hop is not None:
                return hop
        return None

    def routes(self, scope_id):
        def order(item):
            (prefix, plen), _ = item
            return (isinstance(prefix, _V6), plen, int(prefix))
        return [(p, length, port, gw) for (p, length), (port, gw)
                in sorted(self.routes_.get(scope_id, {}).items(), key=order)]

    # -- groups -----------------------------------------------------------------------

    def set_group(self, scope_id, group_ip, ns_ids):
        if not isinstance(group_ip, _V6):
            return super().set_group(scope_id, group_ip, ns_ids)
        self._writing()
        self._scope(scope_id)
        if not group_ip.is_multicast or group_ip.packed[1] & 0xF <= 2:
            raise InvalidArgument(f"group {group_ip} is not an IPv6 group wider than link-local")
        wanted = list(ns_ids)
        for n in wanted:
            self._existing_ns(n)
            if self.namespaces[n][0] != scope_id:
                raise InvalidArgument(f"namespace {n} is not in scope {scope_id}")
        key = (scope_id, group_ip)
        if key not in self.groups:
            self.group_ctr[key] = {"rx_packets": 0, "rx_bytes": 0, "copies": 0}
        self.groups[key] = tuple(sorted(set(wanted)))

    # -- neighbours -------------------------------------------------------------------

    def set_neighbour(self, scope_id, ip, mac):
        if not isinstance(ip, _V6):
            return super().set_neighbour(scope_id, ip, mac)
        self._writing()
        self._scope(scope_id)
        _check_host(ip, "neighbour")
        if not isinstance(mac, bytes) or len(mac) != 6 or mac[0] & 1:
            raise InvalidArgument(f"neighbour MAC {mac!r} is not a unicast MAC")
        self.neighbours[(scope_id, ip)] = bytes(mac)

    def remove_neighbour(self, scope_id, ip):
        if not isinstance(ip, _V6):
            return super().remove_neighbour(scope_id, ip)
        self._writing()
        self._scope(scope_id)
        if (scope_id, ip) not in self.neighbours:
            raise NotFound(f"no neighbour {ip} in scope {scope_id}")
        del self.neighbours[(scope_id, ip)]

    def neighbour(self, scope_id, ip):
        if not isinstance(ip, _V6):
            return super().neighbour(scope_id, ip)
        self._ns(scope_id, "scope")
        return self.neighbours.get((scope_id, ip))
