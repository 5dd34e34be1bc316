"""IPv6 router advertisements from the switch, for the L2s whose ``advertise``
option is on (``pyctl.model.namespace_options``; off by default: tenants are
configured by hand, and their router solicitations are counted and ignored).

Out of every port of such a scope: the L2's own IPv6 prefixes (on-link, and
autonomous for /64s), managed and other-configuration flags off, the port's
MTU and MAC, router lifetime 1800 s, from the port's link-local address to
all nodes, hop limit 255.  A port gets three at once-then-16 s apart when it
appears (RFC 4861 6.2.4), then one every ``interval`` seconds, and one at
once for a router solicitation, or, if the last went out less than
``min_delay`` seconds before, as soon as that delay is over (RFC 4861 6.2.6;
counted).  A port whose scope stops
advertising gets a last one with router lifetime 0 (RFC 4861 6.2.5).

A port the switch serves by DHCP (``port_options.dhcp_served``: its endpoint is
configured by nobody else; ``dhcp_ports``) is answered whatever its L2's option,
and says what the DHCPv6 server (``pyctl.daemon.dhcp6``) gives there: the managed
and other-configuration flags on while its namespace holds an IPv6 address the
server leases (one with an L2 address on its subnet), the subnets of those
addresses on-link but never autonomous (no tenant picks its own address by
SLAAC), the MTU, and router lifetime 0 while it holds none.  It advertises
unsolicited only while it holds such an address; when what it would say changes
(an address pushed or pulled: ``changed()``) it starts again with the three at
once-then-16 s apart, so a client learns at once to ask DHCPv6.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from pyctl.daemon import packets6 as pk6
from pyctl.errors import InvalidArgument

__all__ = ["RouterAdverts", "AdvertConfig", "Managed", "managed_advert"]


@dataclass(frozen=True)
class AdvertConfig:
    interval: float = 200.0           # between unsolicited ones (RFC 4861 MinRtrAdvInterval)
    min_delay: float = 3.0            # MIN_DELAY_BETWEEN_RAS
    initial_count: int = 3            # MAX_INITIAL_RTR_ADVERTISEMENTS
    initial_interval: float = 16.0    # MAX_INITIAL_RTR_ADVERT_INTERVAL
    lifetime: int = 1800              # router lifetime, seconds

    def __post_init__(self):
        for name in ("interval", "min_delay", "initial_interval"):
            if not getattr(self, name) > 0:
                raise InvalidArgument(f"router advertisement setting {name} must be > 0")
        if not 0 <= self.lifetime <= 9000 or self.initial_count < 1:
            raise InvalidArgument("router lifetime must be in 0..9000 s, initial_count >= 1")


class Managed(NamedTuple):
    """What a DHCP-served port's advertisement says."""
    leases: bool              # its namespace holds an address the DHCPv6 server leases
    prefixes: tuple           # the subnets of those addresses (on-link, not autonomous)


def managed_advert(info) -> Managed:
    """``Managed`` of a DHCP-served port (its ``pyctl.daemon.dhcp_leases.DhcpPort``)."""
    held = info.servable(6).values()
    return Managed(bool(held), tuple(sorted({iface.network for iface in held})))


class _Port:
    __slots__ = ("last", "next", "initial_left", "router")

    def __init__(self, now, initial):
        self.last, self.next, self.initial_left = None, now, initial
        self.router = False       # its last advertisement named the switch a router


class RouterAdverts:
    """``view``: the slow path's ``SwitchView``; ``icmp``: its ``IcmpErrors`` (framing)."""

    def __init__(self, view, icmp, counters, config: AdvertConfig | None = None,
                 dhcp_ports=None):
        self.view, self.icmp, self.counters = view, icmp, counters
        self.config = config or AdvertConfig()
        self.dhcp_ports = dhcp_ports or dict     # () -> {port id: DhcpPort} served by DHCP
        self._ports: dict[int, _Port] = {}      # ports that advertise now
        self._managed: dict[int, Managed] | None = None   # None: read again (changed())
        self._said: dict[int, Managed] = {}     # what each DHCP-served port's last one said

    def changed(self) -> None:
        """The model changed: read the DHCP-served ports again before the next advert."""
        self._managed = None

    def managed(self) -> dict[int, Managed]:
        """{port id: what its advertisement says} of the DHCP-served ports."""
        if self._managed is None:
            self._managed = {pid: managed_advert(info) for pid, info in self.dhcp_ports().items()}
        return self._managed

    def tick(self, now: float, out) -> None:
        """Send the advertisements that are due; a last one where advertising stopped."""
        view = self.view
        managed = self.managed()
        wanted = {p for scope in view.advertising_scopes() for p in view.scope_ports(scope)}
        wanted |= {p for p, says in managed.items() if says.leases}
        for pid in [p for p in self._ports if p not in wanted]:
            if self._ports.pop(pid).router and view.port_mac(pid) is not None:
                self._send(pid, out, lifetime=0)
                self.counters["nd_advert_final"] += 1
        for pid in [p for p in self._said if p not in managed]:
            del self._said[pid]
        for pid in sorted(wanted):
            state = self._ports.get(pid)
            if state is None or (pid in managed and self._said.get(pid) != managed[pid]):
                state = self._ports[pid] = _Port(now, self.config.initial_count)
            if now >= state.next:
                self._advertise(pid, state, now, out)
                self.counters["nd_advert_periodic"] += 1

    def solicited(self, port_id: int, now: float, out) -> None:
        """A router solicitation came in on ``port_id`` (its scope advertises, or it is
        served by DHCP)."""
        state = self._ports.get(port_id)
        if state is None:
            state = self._ports[port_id] = _Port(now, self.config.initial_count)
        if state.last is not None and now - state.last < self.config.min_delay:
            self.counters["nd_advert_delayed"] += 1
            state.next = min(state.next, state.last + self.config.min_delay)
            return
        self._advertise(port_id, state, now, out)
        self.counters["nd_advert_solicited"] += 1

    def _advertise(self, port_id, state, now, out):
        state.router = self._send(port_id, out, lifetime=self.config.lifetime) > 0
        state.last = now
        if state.initial_left > 1:
            state.initial_left -= 1
            state.next = now + self.config.initial_interval
        else:
            state.initial_left = 0
            state.next = now + self.config.interval

    def _send(self, port_id, out, lifetime) -> int:
        """One advertisement out of ``port_id``; the router lifetime it said (0: none sent)."""
        view = self.view
        port_mac = view.port_mac(port_id)
        scope = view.port_scope(port_id)
        if port_mac is None or scope is None:
            return 0
        says = self.managed().get(port_id)
        if says is None:
            prefixes = [n for n in view.own_networks(scope, 6) if n.prefixlen < 128]
            body = pk6.build_router_advertisement(port_mac, view.port_mtu(port_id), prefixes,
                                                  lifetime=lifetime)
        else:
            self._said[port_id] = says
            lifetime = lifetime if says.leases else 0
            body = pk6.build_router_advertisement(port_mac, view.port_mtu(port_id), says.prefixes,
                                                  lifetime=lifetime, managed=says.leases,
                                                  autonomous=False)
        src, dst = pk6.link_local_of(port_mac), pk6.ALL_NODES
        message = pk6.build_icmp6(src, dst, pk6.ND_ROUTER_ADVERT, 0, body)
        out.frames.append((port_id, self.icmp.datagram6(port_id, pk6.group_mac(dst), src, dst,
                                                        message, hop_limit=pk6.ND_HOP_LIMIT)))
        return lifetime
