"""Links, addresses and routes of one network namespace (``_Netns``, the operations a
named namespace and the host share), with pyroute2.

Both families: an IPv6 address is added usable at once (``nodad``: no duplicate
address detection to wait for), and ``configure`` readies a link for IPv6 first
(``enable_ipv6``: IPv6 on, router advertisements ignored, no DAD for its own
link-local address either)."""

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
    kernel_error,
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

    def set_gso_max_segs(self, ifname: str, segs: int) -> None:
        """``ip link set IF gso_max_segs SEGS``: the most segments a super-frame the kernel
        hands the interface may hold (its TCP builds none larger)."""
        if not isinstance(segs, int) or not 1 <= segs <= 65535:
            raise BadArgument(f"gso_max_segs must be an integer in 1..65535: {segs!r}")
        self._set_link(ifname, "setting gso_max_segs of", gso_max_segs=segs)

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

    # -- sysctls
    def _sysctl_path(self, key: str) -> str:
        parts = key.split(".") if isinstance(key, str) else []
        if len(parts) < 2 or parts[0] != "net" or any(not p or p in ("..", ".") or "/" in p
                                                       for p in parts):
            raise BadArgument(f"not a per-namespace net.* sysctl: {key!r}")
        return "/proc/sys/" + "/".join(parts)

    def set_sysctl(self, key: str, value) -> None:
        """Set a per-namespace ``net.*`` sysctl, e.g. ``net.ipv6.conf.all.disable_ipv6``."""
        path = self._sysctl_path(key)

        def write():
            with open(path, "w") as f:
                f.write(str(value))

        fd = self._fd()
        try:
            if fd is None:
                write()
            else:
                netns_exec.in_netns_thread(fd, write)
        except OSError as exc:
            raise kernel_error(exc.errno or errno.EIO,
                               f"setting {key} in {self}: {exc.strerror}") from None

    def get_sysctl(self, key: str) -> str:
        """A per-namespace ``net.*`` sysctl's value, as text without the newline."""
        path = self._sysctl_path(key)

        def read():
            with open(path) as f:
                return f.read().strip()

        fd = self._fd()
        try:
            return read() if fd is None else netns_exec.in_netns_thread(fd, read)
        except OSError as exc:
            raise kernel_error(exc.errno or errno.EIO,
                               f"reading {key} in {self}: {exc.strerror}") from None

    def enable_ipv6(self, ifname: str) -> None:
        """IPv6 on for a link, configured by hand: not disabled, router advertisements
        not accepted (nor solicited), and no duplicate address detection, so its
        link-local address is usable at once too."""
        if ifname in (".", "..") or "/" in ifname:
            raise BadArgument(f"not an interface name: {ifname!r}")
        for name, value in IPV6_LINK_SETTINGS:
            self.set_sysctl(f"net.ipv6.conf.{ifname}.{name}", value)

    # -- addresses and routes
    def add_address(self, ifname: str, cidr: str) -> None:
        """Add an address such as ``"10.1.0.2/24"`` or ``"fd00::2/64"`` to an interface
        (IPv6: without duplicate address detection, usable at once)."""
        iface = _parse_interface(cidr)
        extra = {"flags": IFA_F_NODAD} if iface.version == 6 else {}
        with self.ipr() as ipr, _netlink_errors(f"adding {cidr} to {ifname} in {self}"):
            ipr.addr("add", index=_link_index(ipr, ifname, str(self)),
                     address=str(iface.ip), prefixlen=iface.network.prefixlen, **extra)

    def del_address(self, ifname: str, cidr: str) -> None:
        iface = _parse_interface(cidr)
        with self.ipr() as ipr, _netlink_errors(f"removing {cidr} from {ifname} in {self}"):
            ipr.addr("del", index=_link_index(ipr, ifname, str(self)),
                     address=str(iface.ip), prefixlen=iface.network.prefixlen)

    def addresses(self, ifname: str | None = None, family: int = socket.AF_INET) -> list[str]:
        """Addresses as ``"a.b.c.d/len"`` (``family`` AF_INET6: IPv6 ones, 0: both), of
        one interface or all."""
        with self.ipr() as ipr:
            kw = {"index": _link_index(ipr, ifname, str(self))} if ifname else {}
            if family:
                kw["family"] = family
            return [f"{m.get('IFA_ADDRESS')}/{m['prefixlen']}" for m in ipr.get_addr(**kw)]

    def add_route(self, dst: str = "default", gateway: str | None = None,
                  dev: str | None = None) -> None:
        """``ip route add DST [via GATEWAY] [dev DEV]``; DST "default" (of the gateway's
        family, as ``ip`` does; IPv4 without one) or a CIDR of either family."""
        if gateway is None and dev is None:
            raise BadArgument("a route needs a gateway or a device")
        try:
            gw = None if gateway is None else ipaddress.ip_address(gateway)
            default = "::/0" if gw is not None and gw.version == 6 else "0.0.0.0/0"
            net = ipaddress.ip_network(default if dst == "default" else dst)
        except ValueError as exc:
            raise BadArgument(f"bad route {dst} via {gateway}: {exc}") from None
        if gw is not None and gw.version != net.version:
            raise BadArgument(f"bad route {dst} via {gateway}: not of one IP version")
        kw: dict = {"dst": str(net.network_address), "dst_len": net.prefixlen,
                    "family": socket.AF_INET6 if net.version == 6 else socket.AF_INET}
        if gw is not None:
            kw["gateway"] = str(gw)
        with self.ipr() as ipr, _netlink_errors(f"adding route {dst} in {self}"):
            if dev is not None:
                kw["oif"] = _link_index(ipr, dev, str(self))
            ipr.route("add", **kw)

    def routes(self, family: int = socket.AF_INET) -> list[dict]:
        """The main table's routes of ``family`` (AF_INET or AF_INET6)."""
        default = "::" if family == socket.AF_INET6 else "0.0.0.0"
        with self.ipr() as ipr:
            return [{"dst": f"{r.get('RTA_DST') or default}/{r['dst_len']}",
                     "gateway": r.get("RTA_GATEWAY"), "oif": r.get("RTA_OIF")}
                    for r in ipr.get_routes(family=family, table=254)]

    def configure(self, ifname: str, address=None, gateway=None, mtu: int | None = None,
                  txqueuelen: int | None = None, up: bool = True) -> None:
        """Set MTU/txqueuelen, ready the link for IPv6 if an address is IPv6 (``enable_ipv6``),
        add the addresses, bring the link up and add a default route via each gateway,
        in that order (the routes need the link up).  ``address`` and ``gateway`` are one
        string or a list (at most one gateway per family)."""
        addresses = [_parse_interface(a) for a in _as_list(address)]
        gateways = _as_list(gateway)
        if mtu is not None:
            self.set_mtu(ifname, mtu)
        if txqueuelen is not None:
            self.set_txqueuelen(ifname, txqueuelen)
        if any(a.version == 6 for a in addresses) or any(":" in str(g) for g in gateways):
            self.enable_ipv6(ifname)
        for iface in addresses:
            self.add_address(ifname, str(iface))
        if up:
            self.link_up(ifname)
        for gw in gateways:
            self.add_route("default", gateway=gw, dev=ifname)


# net.ipv6.conf.<link>.* of a link configured by hand (enable_ipv6)
IPV6_LINK_SETTINGS = (("disable_ipv6", 0), ("accept_ra", 0), ("accept_dad", 0))
IFA_F_NODAD = 0x02          # <linux/if_addr.h>


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _parse_interface(cidr: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    if not isinstance(cidr, str) or "/" not in cidr:
        raise BadArgument(f"address must be 'a.b.c.d/len' or 'fd00::2/64': {cidr!r}")
    try:
        return ipaddress.ip_interface(cidr)
    except ValueError as exc:
        raise BadArgument(f"bad IP address {cidr!r}: {exc}") from None
