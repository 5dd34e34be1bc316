"""What the switch's two DHCP servers share (DHCPv4: dhcp.py, DHCPv6: dhcp6.py): the
port as the model describes it (``DhcpPort``: the namespace's addresses, the L2's own,
the MTU, the lease time) and the bounded book of leases both keep per port
(``LeaseBook``: at most ``max_clients`` per port, expiry, forgetting a port, counters
switch-wide and per namespace).  A lease is anything with ``expires`` (seconds of the
monotonic clock) and ``bound`` (False: offered, waiting for the client's request).
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

__all__ = ["DhcpPort", "LeaseBook", "MAX_CLIENTS_PER_PORT", "OFFER_HOLD_S"]

MAX_CLIENTS_PER_PORT = 16
OFFER_HOLD_S = 30.0             # how long an offered address waits for the client's request


@dataclass(frozen=True)
class DhcpPort:
    """What a server needs of a port, read from the model when a message comes."""
    ns: int                 # the port's (L3) namespace
    mac: bytes              # the switch's MAC on the port
    mtu: int
    lease_time: int
    addresses: tuple        # what the namespace holds (IPv4Interface, IPv6Interface)
    gateways: tuple         # the L2's own addresses (both families too)

    def gateway_for(self, iface):
        """The L2's own address on ``iface``'s subnet, or None."""
        for gw in self.gateways:
            if gw.network == iface.network and gw.ip != iface.ip:
                return gw
        return None

    def servable(self, version: int) -> dict:
        """{address: interface} of the addresses of family ``version`` the namespace holds
        that the servers may lease: those with an L2 address on their subnet (the router
        and, for DHCPv4, the server's identifier)."""
        return {iface.ip: iface for iface in self.addresses
                if iface.version == version and self.gateway_for(iface) is not None}


class LeaseBook:
    """``leases``: port -> key (a client, or a client's IA) -> lease; ``port_info(port_id)``
    (given by the daemon) is a ``DhcpPort`` or None for a port the server does not serve;
    ``wire``: the server's wire-format module (``parse_client_message``, ``Malformed``,
    ``TYPE_NAMES``)."""

    wire = None

    def __init__(self, port_info, max_clients: int = MAX_CLIENTS_PER_PORT):
        self.port_info = port_info
        self.max_clients = max_clients
        self.leases: dict[int, dict] = {}
        self.counters: Counter = Counter()
        self.ns_counters: defaultdict = defaultdict(Counter)

    def _message(self, port_id, frame):
        """(the port's ``DhcpPort``, the client's message ``self.wire`` reads in ``frame``),
        or None for a port not served or a malformed message (counted)."""
        info = self.port_info(port_id)
        if info is None:
            self._count(None, "not_served")
            return None
        try:
            msg = self.wire.parse_client_message(frame)
        except self.wire.Malformed as exc:
            self._count(info.ns, f"malformed_{exc.args[0]}")
            return None
        self._count(info.ns, f"rx_{self.wire.TYPE_NAMES[msg.msg_type]}")
        return info, msg

    def _count(self, ns, what):
        self.counters[what] += 1
        if ns is not None:
            self.ns_counters[ns][what] += 1

    def _room(self, port_id, leases, now) -> bool:
        """Whether one more key fits the port's book (expired ones make room)."""
        if len(leases) < self.max_clients:
            return True
        self._expire(port_id, now)
        return len(leases) < self.max_clients

    def _expire(self, port_id, now):
        leases = self.leases.get(port_id, {})
        for key in [k for k, lease in leases.items() if lease.expires <= now]:
            del leases[key]
            self.counters["expired"] += 1

    def tick(self, now: float) -> None:
        """Forget expired leases and offers nobody took."""
        for port_id in list(self.leases):
            self._expire(port_id, now)
            if not self.leases[port_id]:
                del self.leases[port_id]

    def forget_port(self, port_id: int) -> None:
        self.leases.pop(port_id, None)
