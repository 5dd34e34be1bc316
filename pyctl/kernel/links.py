"""Links, addresses and routes of one network namespace (``_Netns``, the operations a
named namespace and the host share), with pyroute2."""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import socket
from dataclasses import dataclass

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from pyctl.kernel import netns_exec
from pyctl.kernel.errors import (
    _GONE,
    BadArgument,
    KernelNotFound,
    _netlink_errors,
    _os_error,
)


def _link_index(ipr: IPRoute, ifname: str, where: str) -> int:
    found = ipr.link_lookup(ifname=ifname)
    if not found:
        raise KernelNotFound(errno.ENODEV, f"no interface {ifname!r} in {where}")
    return found[0]


@dataclass(frozen=True)
class LinkStats:
    """Counters of one interface, as the kernel reports them (IFLA_STATS64)."""
    rx_packets: int
    tx_packets: int
    rx_bytes: int
    tx_bytes: int
    rx_dropped: int
    tx_dropped: int
    rx_errors: int
    tx_errors: int

    def __sub__(self, other: "LinkStats") -> "LinkStats":
        return LinkStats(*(getattr(self, f) - getattr(other, f)
                           for f in self.__dataclass_fields__))


class _Netns:
    """Operations common to a named namespace and the caller's own one."""

    name: str

    def _fd(self) -> int | None:
        raise NotImplementedError

    @contextlib.contextmanager
    def ipr(self):
        """An IPRoute whose netlink socket lives in this namespace."""
        fd = self._fd()
        if fd is None:
            ipr = IPRoute()
        else:
            sock = netns_exec.in_netns_thread(
                fd, socket.socket, socket.AF_NETLINK, socket.SOCK_DGRAM, socket.NETLINK_ROUTE)
            ipr = IPRoute(fileno=sock.detach())
        try:
            yield ipr
        finally:
            ipr.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    # -- links
    def links(self) -> list[str]:
        with self.ipr() as ipr:
            return sorted(l.get("ifname") for l in ipr.get_links())

    def has_link(self, ifname: str) -> bool:
        with self.ipr() as ipr:
            return bool(ipr.link_lookup(ifname=ifname))

    def link_index(self, ifname: str) -> int:
        with self.ipr() as ipr:
            return _link_index(ipr, ifname, str(self))

    def _set_link(self, ifname: str, what: str, **attrs) -> None:
        with self.ipr() as ipr, _netlink_errors(f"{what} {ifname} in {self}"):
            ipr.link("set", index=_link_index(ipr, ifname, str(self)), **attrs)

    def link_up(self, ifname: str) -> None:
        self._set_link(ifname, "setting up", state="up")

    def link_down(self, ifname: str) -> None:
        self._set_link(ifname, "setting down", state="down")

    def set_mtu(self, ifname: str, mtu: int) -> None:
        if not isinstance(mtu, int) or not 68 <= mtu <= 65535:
            raise BadArgument(f"MTU must be an integer in 68..65535: {mtu!r}")
        self._set_link(ifname, "setting MTU of", mtu=mtu)

    def set_txqueuelen(self, ifname: str, qlen: int) -> None:
        if not isinstance(qlen, int) or not 0 <= qlen <= 0xFFFFFFFF:
            raise BadArgument(f"txqueuelen must be a non-negative integer: {qlen!r}")
        self._set_link(ifname, "setting txqueuelen of", txqlen=qlen)

    def set_alias(self, ifname: str, alias: str) -> None:
        """``ip link set IF alias ALIAS`` (IFLA_IFALIAS: a note on the interface itself)."""
        self._set_link(ifname, "setting the alias of", ifalias=alias)

    def link_aliases(self) -> dict[str, str]:
        """Interface name -> alias, for the interfaces that have one."""
        with self.ipr() as ipr:
            return {l.get("ifname"): l.get("ifalias") for l in ipr.get_links()
                    if l.get("ifalias")}

    def delete_link(self, ifname: str) -> bool:
        """Delete an interface; False if it was already gone."""
        with self.ipr() as ipr:
            found = ipr.link_lookup(ifname=ifname)
            if not found:
                return False
            try:
                ipr.link("del", index=found[0])
            except NetlinkError as exc:
                if exc.code in _GONE:
                    return False
                raise _os_error(exc, f"deleting {ifname} in {self}") from None
            return True

    def link_info(self, ifname: str) -> dict:
        """State of an interface: index, mtu, txqueuelen, MAC, up, operstate."""
        with self.ipr() as ipr:
            msg = ipr.get_links(_link_index(ipr, ifname, str(self)))[0]
            return {"index": msg["index"], "ifname": ifname,
                    "mtu": msg.get("mtu"), "txqueuelen": msg.get("txqlen"),
                    "address": msg.get("address"), "up": bool(msg["flags"] & 1),
                    "operstate": msg.get("operstate"), "master": msg.get("master")}

    def link_stats(self, ifname: str) -> LinkStats:
        """rx/tx packets, bytes, drops and errors of an interface."""
        with self.ipr() as ipr:
            msg = ipr.get_links(_link_index(ipr, ifname, str(self)))[0]
        s = msg.get("stats64") or msg.get("stats")
        return LinkStats(s["rx_packets"], s["tx_packets"], s["rx_bytes"], s["tx_bytes"],
                         s["rx_dropped"], s["tx_dropped"], s["rx_errors"], s["tx_errors"])

    # -- addresses and routes
    def add_address(self, ifname: str, cidr: str) -> None:
        """Add an address such as ``"10.1.0.2/24"`` to an interface."""
        iface = _parse_interface(cidr)
        with self.ipr() as ipr, _netlink_errors(f"adding {cidr} to {ifname} in {self}"):
            ipr.addr("add", index=_link_index(ipr, ifname, str(self)),
                     address=str(iface.ip), prefixlen=iface.network.prefixlen)

    def del_address(self, ifname: str, cidr: str) -> None:
        iface = _parse_interface(cidr)
        with self.ipr() as ipr, _netlink_errors(f"removing {cidr} from {ifname} in {self}"):
            ipr.addr("del", index=_link_index(ipr, ifname, str(self)),
                     address=str(iface.ip), prefixlen=iface.network.prefixlen)

    def addresses(self, ifname: str | None = None) -> list[str]:
        """IPv4 addresses as ``"a.b.c.d/len"``, of one interface or all."""
        with self.ipr() as ipr:
            kw = {"index": _link_index(ipr, ifname, str(self))} if ifname else {}
            return [f"{m.get('IFA_ADDRESS')}/{m['prefixlen']}"
                    for m in ipr.get_addr(family=socket.AF_INET, **kw)]

    def add_route(self, dst: str = "default", gateway: str | None = None,
                  dev: str | None = None) -> None:
        """``ip route add DST [via GATEWAY] [dev DEV]``; DST "default" or a CIDR."""
        if gateway is None and dev is None:
            raise BadArgument("a route needs a gateway or a device")
        try:
            net = ipaddress.IPv4Network("0.0.0.0/0" if dst == "default" else dst)
            gw = None if gateway is None else ipaddress.IPv4Address(gateway)
        except ValueError as exc:
            raise BadArgument(f"bad route {dst} via {gateway}: {exc}") from None
        kw: dict = {"dst": str(net.network_address), "dst_len": net.prefixlen}
        if gw is not None:
            kw["gateway"] = str(gw)
        with self.ipr() as ipr, _netlink_errors(f"adding route {dst} in {self}"):
            if dev is not None:
                kw["oif"] = _link_index(ipr, dev, str(self))
            ipr.route("add", **kw)

    def routes(self) -> list[dict]:
        with self.ipr() as ipr:
            return [{"dst": f"{r.get('RTA_DST') or '0.0.0.0'}/{r['dst_len']}",
                     "gateway": r.get("RTA_GATEWAY"), "oif": r.get("RTA_OIF")}
                    for r in ipr.get_routes(family=socket.AF_INET, table=254)]

    def configure(self, ifname: str, address: str | None = None,
                  gateway: str | None = None, mtu: int | None = None,
                  txqueuelen: int | None = None, up: bool = True) -> None:
        """Set MTU/txqueuelen, add the address, bring the link up and add the
        default route, in that order (the route needs the link up)."""
        if mtu is not None:
            self.set_mtu(ifname, mtu)
        if txqueuelen is not None:
            self.set_txqueuelen(ifname, txqueuelen)
        if address is not None:
            self.add_address(ifname, address)
        if up:
            self.link_up(ifname)
        if gateway is not None:
            self.add_route("default", gateway=gateway, dev=ifname)


def _parse_interface(cidr: str) -> ipaddress.IPv4Interface:
    if not isinstance(cidr, str) or "/" not in cidr:
        raise BadArgument(f"address must be 'a.b.c.d/len': {cidr!r}")
    try:
        return ipaddress.IPv4Interface(cidr)
    except ValueError as exc:
        raise BadArgument(f"bad IPv4 address {cidr!r}: {exc}") from None
