"""The switch's DHCPv4 server: addresses for endpoints nothing else configures -- a
virtual machine behind an ``attach`` port, any endpoint of a port without an
``address`` option (``pyctl.model.port_options.dhcp_served``).

What it offers is exactly what the model says: an address the port's L3 namespace holds
(pushed there by its L2), the subnet's mask, the L2's own address on that subnet as the
router (and as the server's identifier), the port's MTU, and a lease of the port's
``dhcp_lease_time``.  Nothing else is ever offered (no DNS, no domain, no routes).  So
pushing an address is what leases it, and pulling it ends the lease at the client's next
renewal: its REQUEST is refused (DHCPNAK) and the client lets the address go.  An
address without an L2 address on its subnet is not offered (no router, no server id).

The fast path hands the server every client message (UDP 68 -> 67) of a DHCP-served
port -- before its source rule, so a renewal from a pulled address still arrives -- and
never fans them out; the replies go out of that port only.  No DHCP traffic reaches
another tenant.

State is bounded: per port at most ``max_clients`` clients (by client identifier, else
hardware address), and each address leased to one client at a time.  Leases expire
(``tick``), go with their port (``forget_port``), and every message, reply and refusal
is counted switch-wide (``counters``) and per namespace (``ns_counters``); a malformed
message is counted by what was wrong with it (``malformed_<why>``), never raised.
"""
from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass

from pyctl.daemon import dhcp_wire as wire
from pyctl.daemon.dhcp_leases import (MAX_CLIENTS_PER_PORT, OFFER_HOLD_S, DhcpPort,  # noqa: F401
                                      LeaseBook)

log = logging.getLogger("tapswitch.dhcp")

__all__ = ["DhcpServer", "DhcpPort", "Lease", "MAX_CLIENTS_PER_PORT", "OFFER_HOLD_S"]


@dataclass
class Lease:
    ip: int
    expires: float
    bound: bool               # False: offered, waiting for the REQUEST


class DhcpServer(LeaseBook):
    """``handle(port_id, frame, now)`` -> frames to send ``[(port_id, frame)]``;
    ``port_info(port_id)``: a ``DhcpPort`` or None (``LeaseBook``); ``leases``: port ->
    client id -> ``Lease``."""

    wire = wire

    def __init__(self, port_info, *, max_clients: int = MAX_CLIENTS_PER_PORT):
        super().__init__(port_info, max_clients)

    # ------------------------------------------------------------------ messages

    def handle(self, port_id: int, frame: bytes, now: float) -> list[tuple[int, bytes]]:
        found = self._message(port_id, frame)
        if found is None:
            return []
        info, msg = found
        if msg.giaddr:
            self._count(info.ns, "relayed")      # the client is on the link: no relays
            return []
        handler = {wire.DISCOVER: self._discover, wire.REQUEST: self._request,
                   wire.RELEASE: self._release, wire.DECLINE: self._decline}.get(msg.msg_type)
        if handler is None:
            self._count(info.ns, "ignored")      # INFORM, and what only servers send
            return []
        reply = handler(port_id, info, msg, now)
        return [] if reply is None else [(port_id, reply)]

    def _discover(self, port_id, info, msg, now):
        leases = self.leases.setdefault(port_id, {})
        held = self._servable(info)
        lease = leases.get(msg.client_id)
        choice = lease.ip if lease is not None and lease.ip in held else None
        if choice is None and msg.requested in held and self._free(leases, msg.requested, msg.client_id, now):
            choice = msg.requested
        if choice is None:
            choice = next((ip for ip in sorted(held) if self._free(leases, ip, msg.client_id, now)), None)
        if choice is None:
            self._count(info.ns, "no_address")
            return None
        if lease is None and not self._room(port_id, leases, now):
            self._count(info.ns, "clients_full")
            return None
        bound = lease is not None and lease.bound and lease.ip == choice
        leases[msg.client_id] = Lease(choice, lease.expires if bound else now + OFFER_HOLD_S, bound)
        return self._reply(info, msg, wire.OFFER, held[choice])

    def _request(self, port_id, info, msg, now):
        leases = self.leases.setdefault(port_id, {})
        held = self._servable(info)
        if msg.server_id is not None:                       # SELECTING: answers our offer
            lease = leases.get(msg.client_id)
            ip = msg.requested
            if ip is None or msg.server_id != self._server_ip(held.get(ip), info):
                if lease is not None and not lease.bound:
                    del leases[msg.client_id]               # it took another server's
                self._count(info.ns, "other_server")
                return None
        else:                                               # INIT-REBOOT, RENEWING, REBINDING
            ip = msg.requested if msg.requested is not None else msg.ciaddr
        if not ip or ip not in held or not self._free(leases, ip, msg.client_id, now):
            leases.pop(msg.client_id, None)
            gateway = self._gateway_near(info, ip)
            if gateway is None:
                self._count(info.ns, "no_gateway")
                return None
            self._count(info.ns, "tx_nak")
            return wire.build_reply(msg, wire.NAK, server_mac=info.mac, server_ip=gateway)
        if msg.client_id not in leases and not self._room(port_id, leases, now):
            self._count(info.ns, "clients_full")
            return None
        leases[msg.client_id] = Lease(ip, now + info.lease_time, True)
        return self._reply(info, msg, wire.ACK, held[ip])

    def _release(self, port_id, info, msg, now):
        lease = self.leases.get(port_id, {}).get(msg.client_id)
        if lease is not None and lease.ip == msg.ciaddr:
            del self.leases[port_id][msg.client_id]
        return None

    def _decline(self, port_id, info, msg, now):
        lease = self.leases.get(port_id, {}).get(msg.client_id)
        if lease is not None and lease.ip == msg.requested:
            del self.leases[port_id][msg.client_id]
            log.warning("a client on port %d declined %s (in use on its link?)", port_id,
                        ipaddress.IPv4Address(lease.ip))
        return None

    # ------------------------------------------------------------------ helpers

    def _reply(self, info, msg, msg_type, iface):
        gateway = info.gateway_for(iface)
        self._count(info.ns, f"tx_{wire.TYPE_NAMES[msg_type]}")
        return wire.build_reply(msg, msg_type, server_mac=info.mac, server_ip=int(gateway.ip),
                                yiaddr=int(iface.ip), lease_time=info.lease_time,
                                mask=int(iface.network.netmask), router=int(gateway.ip),
                                mtu=info.mtu)

    @staticmethod
    def _servable(info) -> dict[int, ipaddress.IPv4Interface]:
        """The IPv4 addresses the server may lease (``DhcpPort.servable``), by ``int``."""
        return {int(ip): iface for ip, iface in info.servable(4).items()}

    @staticmethod
    def _server_ip(iface, info):
        gateway = None if iface is None else info.gateway_for(iface)
        return None if gateway is None else int(gateway.ip)

    @staticmethod
    def _gateway_near(info, ip):
        """The server's identifier in a refusal: the L2's address on the subnet of the
        address asked for, else its first address."""
        gateways = [gw for gw in info.gateways if gw.version == 4]
        for gw in gateways:
            if ip and ipaddress.IPv4Address(ip) in gw.network:
                return int(gw.ip)
        return int(gateways[0].ip) if gateways else None

    @staticmethod
    def _free(leases, ip, client, now) -> bool:
        """Nobody else holds a live lease (or offer) of ``ip``."""
        return not any(lease.ip == ip and key != client and lease.expires > now
                       for key, lease in leases.items())

    def leases_of(self, port_id: int) -> list[dict]:
        """The port's leases and offers, for people: ``[{client, address, expires, bound}]``."""
        return [{"client": key.hex(), "address": str(ipaddress.IPv4Address(lease.ip)),
                 "expires": lease.expires, "bound": lease.bound}
                for key, lease in self.leases.get(port_id, {}).items()]
