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
"""
from __future__ import annotations

from dataclasses import dataclass

from pyctl.daemon import packets6 as pk6
from pyctl.errors import InvalidArgument

__all__ = ["RouterAdverts", "AdvertConfig"]


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


class _Port:
    __slots__ = ("last", "next", "initial_left")

    def __init__(self, now, initial):
        self.last, self.next, self.initial_left = None, now, initial


class RouterAdverts:
    """``view``: the slow path's ``SwitchView``; ``icmp``: its ``IcmpErrors`` (framing)."""

    def __init__(self, view, icmp, counters, config: AdvertConfig | None = None):
        self.view, self.icmp, self.counters = view, icmp, counters
        self.config = config or AdvertConfig()
        self._ports: dict[int, _Port] = {}      # ports that advertise now

    def tick(self, now: float, out) -> None:
        """Send the advertisements that are due; a last one where advertising stopped."""
        view = self.view
        wanted = {p for scope in view.advertising_scopes() for p in view.scope_ports(scope)}
        for pid in [p for p in self._ports if p not in wanted]:
            del self._ports[pid]
            if view.port_mac(pid) is not None:
                self._send(pid, out, lifetime=0)
                self.counters["nd_advert_final"] += 1
        for pid in sorted(wanted):
            state = self._ports.get(pid)
            if state is None:
                state = self._ports[pid] = _Port(now, self.config.initial_count)
            if now >= state.next:
                self._advertise(pid, state, now, out)
                self.counters["nd_advert_periodic"] += 1

    def solicited(self, port_id: int, now: float, out) -> None:
        """A router solicitation came in on ``port_id`` (its scope advertises)."""
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
        self._send(port_id, out, lifetime=self.config.lifetime)
        state.last = now
        if state.initial_left > 1:
            state.initial_left -= 1
            state.next = now + self.config.initial_interval
        else:
            state.initial_left = 0
            state.next = now + self.config.interval

    def _send(self, port_id, out, lifetime):
        view = self.view
        port_mac = view.port_mac(port_id)
        scope = view.port_scope(port_id)
        if port_mac is None or scope is None:
            return
        prefixes = [n for n in view.own_networks(scope, 6) if n.prefixlen < 128]
        body = pk6.build_router_advertisement(port_mac, view.port_mtu(port_id), prefixes,
                                              lifetime=lifetime)
        src, dst = pk6.link_local_of(port_mac), pk6.ALL_NODES
        message = pk6.build_icmp6(src, dst, pk6.ND_ROUTER_ADVERT, 0, body)
        out.frames.append((port_id, self.icmp.datagram6(port_id, pk6.group_mac(dst), src, dst,
                                                        message, hop_limit=pk6.ND_HOP_LIMIT)))
