"""The daemon's ports, kept in line with the model's.

``reconcile()`` opens every port the model has and the daemon does not, as its
kind (``port_kinds``: a TAP, a veth pair on AF_PACKET rings or AF_XDP, an
attached interface), and closes the ones the model no longer has.  Opening
comes first and is all-or-nothing (a failure closes what this call opened), so
a refused change never loses a working port.  It costs what changed: the manager
watches the model (``Switch.watch``: told of each change and of each undone one)
and looks only at the ports a change named and at the ports of the tenants whose
addresses moved; the first call, and one after a change it has no rule for, look
at everything.  A port's kernel side (``netns``,
``address``, ``gateway`` (each one or a list of both families), ``mtu`` options)
is set up with pyroute2: the kernel
network namespace is created if it does not exist (and then removed with the
last port that uses it; an existing one, a container's, is entered and left
as it is, unless a delegated client named it: the switch must make those,
``pyctl.model.kernel_reach``), the TAP (or the veth's endpoint end) is moved
into it and configured there.  The switch ends of veth ports live in one
private namespace of the daemon's (``pyctl.kernel.private_netns``), made with
the first.

The kernel side of a port the switch serves by DHCP (``dhcp_served``) holds no
mirrored addresses: its endpoint takes them from the DHCPv4 and DHCPv6 servers
(``pyctl.daemon.dhcp``, ``pyctl.daemon.dhcp6``), told to ask DHCPv6 by the
switch's router advertisements.

A port can fail under the daemon: its TAP deleted from outside (the packet loop
sees the read error and stops polling it), or its kernel namespace deleted from
outside (``check_netns()`` sees that the name no longer leads to the namespace
the daemon holds).  ``fail()`` then closes the TAP and keeps the port in
``failed`` with the reason, out of ``open``, until the model drops or changes
it: a failed port is not reopened behind the operator's back.
"""
from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, field

from pyctl import errors, kernel
from pyctl.daemon import attach_port, port_kinds
from pyctl.daemon.dhcp_leases import DhcpPort
from pyctl.daemon.ownership import NotRecorded
from pyctl.kernel.private_netns import PrivateNamespace
from pyctl.model.events import (AddressEvent, MembershipEvent, NamespaceCreated,
                                NamespaceDestroyed, PortEvent, QuotaSet, RouteEvent,
                                TenantAddressEvent)
from pyctl.model.port_options import (DEFAULT_LEASE_TIME, dhcp_served, port_gateways,
                                      port_interfaces)

log = logging.getLogger("tapswitch.ports")

__all__ = ["PortManager", "OpenPort"]


@dataclass
class OpenPort:
    id: int
    name: str
    tap: object                      # its kind's port: TapPort, VethPort, AttachPort
    netns: object | None = None      # kernel.NetNamespace the TAP lives in, if any
    options: dict = field(default_factory=dict)
    kernel_addresses: set = field(default_factory=set)   # what we put on the TAP in its netns
    ipv6_ready: bool = False         # its link readied for IPv6 (kernel.links.enable_ipv6)
    failure: str | None = None       # why the port failed (PortManager.fail), None while up


class PortManager:
    def __init__(self, switch, loop, registry):
        self.switch, self.loop, self.registry = switch, loop, registry
        self.open: dict[int, OpenPort] = {}       # forwarding
        self.failed: dict[int, OpenPort] = {}     # failed under the daemon, TAP closed
        self._netns: dict[str, list] = {}     # name -> [NetNamespace, ports in it]
        self._closed: list[int] = []
        self.ownership = NotRecorded(registry)   # the daemon's Ownership once it starts
        self._switch_ns = None                # the veth ports' switch ends' namespace
        self._everything = True               # the next reconcile looks at every port
        self._ports: set[int] = set()         # port ids a change named
        self._tenants: set[int] = set()       # namespaces whose addresses moved
        self._reopen: set[int] = set()        # ports to open again though the model kept them
        self._unwatch = switch.watch(self._note)

    def _note(self, event, undone):
        """A model change (or its undoing): what the next reconcile must look at."""
        if isinstance(event, PortEvent):
            self._ports.add(event.port.id)
        elif isinstance(event, NamespaceDestroyed):
            self._ports.update(port.id for port in event.removed_ports)
        elif isinstance(event, TenantAddressEvent):
            self._tenants.add(event.tenant.id)
        elif not isinstance(event, (NamespaceCreated, AddressEvent, RouteEvent,
                                    MembershipEvent, QuotaSet)):
            self._everything = True           # a change with no rule here: look at all

    def reconcile(self):
        """Bring the TAPs in line with the model's ports (see the top)."""
        everything, ports, tenants = self._everything, self._ports, self._tenants
        reopen = self._reopen
        self._everything, self._ports, self._tenants, self._reopen = False, set(), set(), set()
        try:
            self._reconcile(everything, ports | reopen, tenants, reopen)
        except BaseException:
            self._everything |= everything    # looked at again next time
            self._ports |= ports
            self._tenants |= tenants
            self._reopen |= reopen
            raise

    def attached_mtu_moved(self) -> set[int]:
        """The open ``attach`` ports whose interface's MTU is no longer the one they were
        opened with (their rings' slots, the plan's MTU)."""
        return {pid for pid, entry in self.open.items() if entry.tap.kind == "attach"
                and attach_port.link_mtu(entry.name) not in (None, entry.tap.mtu)}

    def reopen(self, port_ids) -> None:
        """Open these ports anew at the next reconcile, though the model kept them."""
        self._reopen.update(port_ids)

    def _reconcile(self, everything, ports, tenants, reopen=frozenset()):
        with self.switch.read() as reader:
            if everything:
                ports = {*reader.port_ids(), *self.open, *self.failed}
            wanted = {pid: reader.port(pid) for pid in ports}
            for ns in tenants:
                ports.update(reader.port_ids_of(ns))
        added = []
        try:
            for pid, port in wanted.items():
                if port is None:
                    continue
                current = self.open.get(pid) or self.failed.get(pid)
                if current is not None and current.name == port.name and \
                        current.options == port.options and pid not in reopen:
                    continue
                if current is not None:           # same id, another port: replace it
                    self._close(pid)
                added.append(pid)
                self.open[pid] = self._open(port)
        except BaseException:
            for pid in added:
                if pid in self.open:
                    self._close(pid)
            raise
        for pid, port in wanted.items():
            if port is None and (pid in self.open or pid in self.failed):
                self._close(pid)
        for pid in ports:
            entry = self.open.get(pid)
            if entry is not None and entry.netns is not None:
                self._mirror_addresses(entry, wanted.get(pid) or self.switch.port(pid))

    def _mirror_addresses(self, entry, port):
        """A tenant's kernel stack holds exactly the addresses its L3 holds, both families: a
        push adds the address to the TAP in the tenant's kernel namespace (an IPv6 one
        readies the link for IPv6 first), a pull removes it, also one the port's
        ``address`` option put there (docs/model.md, "Ports"), and the option's gateway
        of a family comes back with an address of its subnet.  An L2 port's kernel side
        (the far end of an uplink) keeps its ``address`` option."""
        ns = self.switch.namespace(port.ns)
        if ns.is_l3 and dhcp_served(port.options, ns.is_l3):
            want = set()                # its endpoint asks the switch's DHCP servers
        elif ns.is_l3:
            want = {str(i) for i in map(ipaddress.ip_interface, self.switch.addresses(ns.id))
                    if not i.ip.is_loopback}
        else:
            want = {str(i) for i in port_interfaces(entry.options)}
        for cidr in sorted(entry.kernel_addresses - want):
            try:
                entry.netns.del_address(entry.name, cidr)
            except OSError:
                log.warning("could not remove %s from %s in %s", cidr, entry.name, entry.netns.name)
            entry.kernel_addresses.discard(cidr)
        added = sorted(want - entry.kernel_addresses)
        for cidr in added:
            if ":" in cidr and not entry.ipv6_ready:
                entry.netns.enable_ipv6(entry.name)
                entry.ipv6_ready = True
            entry.netns.add_address(entry.name, cidr)
            entry.kernel_addresses.add(cidr)
        for gateway in port_gateways(entry.options):
            if any(gateway in ipaddress.ip_interface(cidr).network for cidr in added):
                try:                # the route went with the last address of its subnet
                    entry.netns.add_route("default", gateway=str(gateway), dev=entry.name)
                except kernel.KernelExists:
                    pass

    def take_closed(self):
        closed, self._closed = self._closed, []
        return closed

    def _open(self, port):
        opts = port.options
        netns = self._acquire_netns(opts["netns"]) if opts.get("netns") else None
        try:
            tap = port_kinds.open_port(port, loop=self.loop, netns=netns,
                                       switch_ns=self._switch_namespace, registry=self.registry)
            try:
                if self.ownership.marker and tap.kind != "attach":   # an attached one is not ours
                    (netns or kernel.host).set_alias(tap.name, self.ownership.marker)
                self.loop.add_port(port.id, tap.loop_io, vnet_hdr=tap.vnet_hdr)
            except BaseException:
                tap.close()
                raise
        except BaseException:
            if netns is not None:
                self._release_netns(netns.name)
            raise
        log.info("port %s (id %d, %s) up%s, offloads %s", port.name, port.id, tap.kind,
                 f" in kernel namespace {netns.name}" if netns else "",
                 ",".join(sorted(tap.offloads)) or "off")
        entry = OpenPort(port.id, port.name, tap, netns, dict(opts))
        entry.kernel_addresses = {str(i) for i in port_interfaces(opts)}
        entry.ipv6_ready = any(i.version == 6 for i in port_interfaces(opts))
        return entry

    def _close(self, pid):
        entry = self.open.pop(pid, None) or self.failed.pop(pid)
        try:
            if entry.failure is None:
                self.loop.remove_port(pid)
        finally:
            entry.tap.close()
            if entry.netns is not None:
                self._release_netns(entry.netns.name)
            self._closed.append(pid)

    def fail(self, pid, reason):
        """Take open port ``pid`` out of service: out of the loop, its TAP closed (the
        device goes, if it was still there), kept in ``failed`` with ``reason``."""
        entry = self.open.pop(pid)
        entry.failure = reason
        self.failed[pid] = entry
        log.warning("port %s (id %d) failed: %s", entry.name, pid, reason)
        try:
            self.loop.remove_port(pid)
        finally:
            entry.tap.close()

    def check_loop(self):
        """Fail the open ports the packet loop stopped polling (a read error or EOF); a
        ring port whose interface only went down (ENETDOWN, still there) is served again:
        its socket takes frames once the interface is up."""
        for pid, state in self.loop.ports().items():
            if state["failed"] and pid in self.open:
                error, port = state["error"], self.open[pid].tap
                if state["ring"] and port.alive():
                    self.loop.remove_port(pid)
                    self.loop.add_port(pid, port.loop_io, vnet_hdr=port.vnet_hdr)
                    continue
                why = "the TAP was deleted" if error == "EBADFD" else "the TAP's fd failed"
                if state["ring"]:
                    why = "its interface was deleted"
                self.fail(pid, f"read error {error}: {why}")

    def check_links(self):
        """Fail the ring ports whose interface was deleted (an AF_XDP socket is not told)."""
        for pid, entry in list(self.open.items()):
            alive = getattr(entry.tap, "alive", None)
            if alive is not None and not alive():
                self.fail(pid, f"its interface {entry.name} was deleted")

    def check_netns(self):
        """Fail the ports whose kernel namespace was deleted from outside, and let go
        of the namespace (the daemon's handle kept it alive: now the kernel frees it)."""
        for name, (netns, _) in list(self._netns.items()):
            if netns.named:
                continue
            del self._netns[name]
            for pid, entry in list(self.open.items()):
                if entry.netns is netns:
                    self.fail(pid, f"kernel namespace {name} was deleted")
            for entry in self.failed.values():
                if entry.netns is netns:
                    entry.netns = None
            netns.remove()          # the handle only: the name is gone or someone else's
            self.ownership.released(netns)

    def netns_names(self) -> set[str]:
        """The kernel namespaces the daemon's ports are in (created or entered)."""
        return set(self._netns)

    def dhcp_port(self, pid):
        """What the DHCP server needs of port ``pid`` (a ``DhcpPort``); None when the
        switch does not serve it by DHCP or it is not up."""
        entry = self.open.get(pid)
        if entry is None:
            return None
        port = self.switch.port(pid)
        ns = self.switch.namespace(port.ns)
        if not dhcp_served(port.options, ns.is_l3):
            return None

        def held(ns_id):
            return tuple(i for i in map(ipaddress.ip_interface, self.switch.addresses(ns_id))
                         if not i.ip.is_loopback)
        mtu = port.options.get("mtu") or getattr(entry.tap, "mtu", None) or 1500
        return DhcpPort(ns.id, entry.tap.mac, mtu,
                        port.options.get("dhcp_lease_time", DEFAULT_LEASE_TIME),
                        held(ns.id), held(ns.parent))

    def dhcp_ports(self):
        """{port id: ``DhcpPort``} of every open port the switch serves by DHCP."""
        return {pid: info for pid in self.open if (info := self.dhcp_port(pid)) is not None}

    def ring_stats(self):
        """{port name: its ring's own counters (frames the kernel dropped, ...) and
        ``rx_slots``, the frames its receive ring holds} of the open ports of the ring
        kinds."""
        out = {}
        for entry in self.open.values():
            if entry.tap.kind != "tap":
                ring = entry.tap.loop_io
                info = ring.info()
                out[entry.name] = {"rx_slots": info.get("rx_slots", info.get("frames")),
                                   **ring.kernel_stats()}
        return out

    def status(self, pid, with_cost=False):
        """``{"state": "up", "kind": ...}``, ``{"state": "failed", "error": reason, "kind":
        ...}``, or ``{"state": "missing"}`` for a model port the daemon could not open;
        ``kind``: how it is served (``auto`` resolved).  ``with_cost``: an up port also
        says what writing to it costs the packet thread (``PacketLoop.tx_cost``,
        fastpath/tx_cost.pxi): ``tx_cost_us`` per frame, ``tx_cost_excess_us`` (taken
        beyond the limit, not yet paid back), ``tx_cost_held`` and ``tx_cost_drops``."""
        if pid in self.open:
            out = {"state": "up", "kind": self.open[pid].tap.kind}
            cost = self.loop.tx_cost(pid) if with_cost else None
            if cost is not None:
                out.update(tx_cost_us=round(cost["ns"] / 1000, 1),
                           tx_cost_excess_us=round(cost["excess"] / 1000, 1),
                           tx_cost_held=cost["held"],
                           tx_cost_drops=cost["drops"])
            return out
        if pid in self.failed:
            return {"state": "failed", "error": self.failed[pid].failure,
                    "kind": self.failed[pid].tap.kind}
        return {"state": "missing"}

    def _switch_namespace(self):
        """The private namespace of the veth ports' switch ends, made on first use."""
        if self._switch_ns is None or not self._switch_ns.alive:
            self._switch_ns = PrivateNamespace("switch's namespace for veth ends",
                                               registry=self.registry)
        return self._switch_ns

    def _acquire_netns(self, name):
        """The kernel namespace a port goes into.  One tapswitch creates is removed
        with the last port in it; an existing one (a container's) is only entered."""
        slot = self._netns.get(name)
        if slot is not None and not slot[0].named:      # deleted since the last check
            self.check_netns()
            slot = None
        if slot is None:
            if name in kernel.list_netns():
                netns = self.ownership.claim_netns(name)   # a dead predecessor's, or None
                if netns is None and self.switch.netns_must_be_created(name):
                    raise errors.PermissionDenied(
                        f"kernel namespace {name!r} exists and the switch did not make it: "
                        f"a port a delegated client added may not enter it (docs/security.md)")
                if netns is None:
                    netns = kernel.NetNamespace.attach(name)
                    self.ownership.entered(netns)
            else:
                netns = self.ownership.create_netns(name)
            slot = self._netns[name] = [netns, 0]
        slot[1] += 1
        return slot[0]

    def _release_netns(self, name):
        slot = self._netns[name]
        slot[1] -= 1
        if slot[1] == 0:
            del self._netns[name]
            slot[0].remove()            # for an attached namespace: only the handle
            self.ownership.released(slot[0])

    def close_all(self):
        self._unwatch()
        for pid in [*self.open, *self.failed]:
            try:
                self._close(pid)
            except Exception:
                log.exception("closing port %d", pid)
        if self._switch_ns is not None:
            self._switch_ns.remove()
            self._switch_ns = None
