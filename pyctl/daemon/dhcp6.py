"""The switch's DHCPv6 server (RFC 8415, stateful): IPv6 addresses for endpoints nothing
else configures, on the ports the DHCPv4 server serves (``port_options.dhcp_served``:
an ``attach`` port, any L3 port without an ``address`` option).

What it gives is exactly what the model says: in the client's (first) IA_NA, every IPv6
address the port's L3 namespace holds (pushed there by its L2) that has an L2 address on
its subnet (the router the switch's router advertisements announce:
``pyctl.daemon.router_adverts``), each with preferred and valid lifetimes of the port's
``dhcp_lease_time``, T1 at half and T2 at 4/5 of it.  Nothing else is ever offered (no
DNS, no domain, no prefix delegation: an IA_PD or IA_TA gets its IA back with status
NoPrefixAvail / NoAddrsAvail).  So pushing an address is what leases it -- the next
Renew's Reply adds it -- and pulling it ends the lease at the client's next Renew or
Rebind: the Reply gives it back with lifetimes 0 and the client lets it go; a client
whose binding is gone gets NoBinding (Renew), a Confirm of an address no longer held
NotOnLink.

Messages (RFC 8415 16, 18.3): Solicit (Advertise, preference 255; with Rapid Commit a
Reply that binds at once), Request, Renew, Rebind, Release, Decline, Confirm,
Information-request (a Reply naming the server and nothing else).  A message that breaks
16's rules (a Solicit naming a server, a Request naming none, ...) is counted
``invalid_<why>`` and dropped; one naming another server ``other_server``; relay and
server messages ``relayed`` / ``ignored``.  The server's DUID is a DUID-UUID (type 4,
RFC 6355) made from the machine's id and the switch's admin socket (``server_duid``):
the same for every port, and across restarts of the same switch.

The fast path hands the server every client message (UDP 546 -> 547) of a DHCP-served
port and never fans them out; the replies go out of that port only, from the port's
link-local address to the client's.  State is bounded as the DHCPv4 server's
(``LeaseBook``: at most ``max_clients`` IAs per port, each address in one IA at a time);
every message, reply and refusal is counted switch-wide and per namespace, a malformed
message by what was wrong with it (``malformed_<why>``), never raised.
"""
from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass

from pyctl.daemon import dhcp6_wire as wire
from pyctl.daemon import packets6 as pk6
from pyctl.daemon.dhcp_leases import MAX_CLIENTS_PER_PORT, OFFER_HOLD_S, LeaseBook

log = logging.getLogger("tapswitch.dhcp6")

__all__ = ["Dhcp6Server", "Binding", "server_duid"]

DUID_UUID = 4
_DUID_NAMESPACE = uuid.UUID("5d0b7a4e-3c9f-4e55-9a51-7461707377a6")   # tapswitch's own
MAX_PREFERENCE = 255
NO_PREFIX_AVAIL = 6


def server_duid(identity: str, machine_id_path: str = "/etc/machine-id") -> bytes:
    """The switch's DUID-UUID: a name-based UUID of the machine's id (else its host
    name) and ``identity`` (the daemon's admin socket path: one switch on this machine)."""
    try:
        with open(machine_id_path) as f:
            machine = f.read().strip()
    except OSError:
        machine = ""
    name = f"{machine or socket.gethostname()}|{os.path.abspath(identity)}"
    return DUID_UUID.to_bytes(2, "big") + uuid.uuid5(_DUID_NAMESPACE, name).bytes


@dataclass
class Binding:
    addresses: frozenset      # IPv6Address each
    expires: float
    bound: bool               # False: advertised, waiting for the Request


class Dhcp6Server(LeaseBook):
    """``handle(port_id, frame, now)`` -> frames to send ``[(port_id, frame)]``;
    ``port_info(port_id)``: a ``DhcpPort`` or None (``LeaseBook``); ``leases``: port ->
    (client DUID, IAID) -> ``Binding``; ``duid``: the server's (``server_duid``)."""

    wire = wire

    def __init__(self, port_info, duid: bytes, *, max_clients: int = MAX_CLIENTS_PER_PORT,
                 rapid_commit: bool = True):
        super().__init__(port_info, max_clients)
        self.duid = duid
        self.rapid_commit = rapid_commit

    # ------------------------------------------------------------------ messages

    def handle(self, port_id: int, frame: bytes, now: float) -> list[tuple[int, bytes]]:
        found = self._message(port_id, frame)
        if found is None:
            return []
        info, msg = found
        if msg.msg_type in (wire.RELAY_FORW, wire.RELAY_REPL):
            self._count(info.ns, "relayed")          # the client is on the link: no relays
            return []
        handler = self._HANDLERS.get(msg.msg_type)
        if handler is None:
            self._count(info.ns, "ignored")          # what only servers send
            return []
        why = self._invalid(msg)
        if why is not None:
            self._count(info.ns, why)
            return []
        reply = handler(self, port_id, info, msg, now)
        if reply is None:
            return []
        msg_type, body = reply
        self._count(info.ns, f"tx_{wire.TYPE_NAMES[msg_type]}")
        ids = wire.option(wire.OPT_SERVERID, self.duid)
        if msg.client_id is not None:
            ids += wire.option(wire.OPT_CLIENTID, msg.client_id)
        return [(port_id, wire.build_reply(msg, msg_type, ids + body, server_mac=info.mac,
                                           server_ip=pk6.link_local_of(info.mac)))]

    def _invalid(self, msg) -> str | None:
        """Why RFC 8415 16 has the server discard ``msg``, or None."""
        kind = msg.msg_type
        if kind == wire.INFORMATION_REQUEST:
            if msg.ia_nas or msg.other_ias:
                return "invalid_ia_in_information_request"
        elif msg.client_id is None:
            return "invalid_no_client_id"
        if kind in (wire.SOLICIT, wire.CONFIRM, wire.REBIND):
            if msg.server_id is not None:
                return "invalid_server_id_present"
        elif kind in (wire.REQUEST, wire.RENEW, wire.RELEASE, wire.DECLINE) and msg.server_id is None:
            return "invalid_no_server_id"
        if msg.server_id is not None and msg.server_id != self.duid:
            return "other_server"
        return None

    def _solicit(self, port_id, info, msg, now):
        rapid = self.rapid_commit and msg.rapid_commit
        body, given = self._assign_all(port_id, info, msg, now, bind=rapid)
        if not given:
            self._count(info.ns, "no_address")
            return wire.ADVERTISE, wire.status(wire.NO_ADDRS_AVAIL, "no address for this link")
        if rapid:
            return wire.REPLY, body + wire.option(wire.OPT_RAPID_COMMIT)
        return wire.ADVERTISE, body + wire.option(wire.OPT_PREFERENCE, bytes([MAX_PREFERENCE]))

    def _request(self, port_id, info, msg, now):
        body, given = self._assign_all(port_id, info, msg, now, bind=True)
        if not given:
            self._count(info.ns, "no_address")
        return wire.REPLY, body

    def _renew(self, port_id, info, msg, now, rebind=False):
        """Renew (and Rebind, which may find no binding after a restart): the IA's
        addresses now, the ones it no longer has with lifetimes 0."""
        leases = self.leases.setdefault(port_id, {})
        held = info.servable(6)
        body = b""
        for ia in msg.ia_nas:
            key = (msg.client_id, ia.iaid)
            binding = leases.get(key)
            if (binding is None or not binding.bound or binding.expires <= now) and not rebind:
                leases.pop(key, None)
                self._count(info.ns, "no_binding")
                body += wire.ia_na(ia.iaid, 0, 0, wire.status(wire.NO_BINDING, "no binding"))
                continue
            addresses = self._bind(port_id, info, key, held, now, bound=True)
            if addresses is None:
                continue                         # no room for a binding: no answer for it
            old = set(ia.addresses) | (set(binding.addresses) if binding is not None else set())
            body += self._ia(info, ia.iaid, addresses, gone=old - set(addresses))
        body += self._unserved(msg)
        return wire.REPLY, body

    def _rebind(self, port_id, info, msg, now):
        return self._renew(port_id, info, msg, now, rebind=True)

    def _release(self, port_id, info, msg, now, declined=False):
        leases = self.leases.get(port_id, {})
        body = wire.status(wire.SUCCESS)
        for ia in msg.ia_nas:
            binding = leases.pop((msg.client_id, ia.iaid), None)
            if binding is None:
                body += wire.ia_na(ia.iaid, 0, 0, wire.status(wire.NO_BINDING, "no binding"))
            elif declined:
                log.warning("a client on port %d declined %s (in use on its link?)", port_id,
                            ", ".join(sorted(map(str, ia.addresses))))
        return wire.REPLY, body

    def _decline(self, port_id, info, msg, now):
        return self._release(port_id, info, msg, now, declined=True)

    def _confirm(self, port_id, info, msg, now):
        addresses = [a for ia in msg.ia_nas for a in ia.addresses]
        if not addresses:
            self._count(info.ns, "confirm_without_address")     # RFC 8415 18.3.3: no reply
            return None
        held = info.servable(6)
        if all(a in held for a in addresses):
            return wire.REPLY, wire.status(wire.SUCCESS)
        self._count(info.ns, "not_on_link")
        return wire.REPLY, wire.status(wire.NOT_ON_LINK, "address not held")

    def _information_request(self, port_id, info, msg, now):
        return wire.REPLY, b""                   # the server's identifier, nothing else

    _HANDLERS = {wire.SOLICIT: _solicit, wire.REQUEST: _request, wire.RENEW: _renew,
                 wire.REBIND: _rebind, wire.RELEASE: _release, wire.DECLINE: _decline,
                 wire.CONFIRM: _confirm, wire.INFORMATION_REQUEST: _information_request}

    # ------------------------------------------------------------------ helpers

    def _assign_all(self, port_id, info, msg, now, bind):
        """(the IA options of the answer to a Solicit or Request, whether any IA got an
        address): each IA_NA the held addresses nobody else has (the first takes them
        all), bound or advertised."""
        held = info.servable(6)
        body, given = b"", False
        for ia in msg.ia_nas:
            addresses = self._bind(port_id, info, (msg.client_id, ia.iaid), held, now, bound=bind)
            if addresses:
                given = True
                body += self._ia(info, ia.iaid, addresses)
            else:
                body += wire.ia_na(ia.iaid, 0, 0, wire.status(wire.NO_ADDRS_AVAIL, "no address"))
        return body + self._unserved(msg), given

    def _bind(self, port_id, info, key, held, now, bound):
        """The addresses IA ``key`` gets now, sorted: every held one no other IA has; its
        binding recorded (``bound``), or dropped when it gets none (``()``).  None: a new
        binding does not fit the port's book (counted)."""
        leases = self.leases.setdefault(port_id, {})
        addresses = tuple(sorted(a for a in held if self._free(leases, a, key, now)))
        binding = leases.get(key)
        if not addresses:
            leases.pop(key, None)
            return ()
        if binding is None and not self._room(port_id, leases, now):
            self._count(info.ns, "clients_full")
            return None
        if bound or (binding is not None and binding.bound and binding.expires > now):
            leases[key] = Binding(frozenset(addresses), now + info.lease_time, True)
        else:
            leases[key] = Binding(frozenset(addresses), now + OFFER_HOLD_S, False)
        return addresses

    @staticmethod
    def _ia(info, iaid, addresses, gone=()):
        lease = info.lease_time
        inner = b"".join(wire.ia_address(a, lease, lease) for a in addresses)
        inner += b"".join(wire.ia_address(a, 0, 0) for a in sorted(gone))
        return wire.ia_na(iaid, lease // 2, lease * 4 // 5, inner)

    @staticmethod
    def _unserved(msg):
        """Each IA_TA and IA_PD back with its refusal: the switch leases no temporary
        addresses and delegates no prefixes."""
        out = b""
        for code, iaid in msg.other_ias:
            if code == wire.OPT_IA_PD:
                out += wire.ia_na(iaid, 0, 0, wire.status(NO_PREFIX_AVAIL, "no prefixes"),
                                  code=wire.OPT_IA_PD)
            else:
                out += wire.option(wire.OPT_IA_TA, iaid.to_bytes(4, "big")
                                   + wire.status(wire.NO_ADDRS_AVAIL, "no temporary addresses"))
        return out

    @staticmethod
    def _free(leases, address, key, now) -> bool:
        """No other IA holds a live binding (or advertisement) of ``address``."""
        return not any(address in b.addresses and k != key and b.expires > now
                       for k, b in leases.items())

    def leases_of(self, port_id: int) -> list[dict]:
        """The port's bindings, for people: ``[{client, iaid, addresses, expires, bound}]``."""
        return [{"client": duid.hex(), "iaid": iaid,
                 "addresses": sorted(str(a) for a in binding.addresses),
                 "expires": binding.expires, "bound": binding.bound}
                for (duid, iaid), binding in self.leases.get(port_id, {}).items()]
