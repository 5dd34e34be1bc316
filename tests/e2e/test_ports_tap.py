"""TAP ports against the real kernel: flags, vnet header, offloads, txqueuelen,
moving into a namespace, and nothing left behind (root only)."""
import errno
import os
import select
import socket

import pytest
from pyroute2.ethtool import Ethtool

from pyctl import kernel

from pyctl.daemon import tap_port as ports
from pyctl.errors import AlreadyExists, InvalidArgument

FEATURES = {"csum": "tx-checksum-ip-generic", "tso4": "tx-tcp-segmentation",
            "tso6": "tx-tcp6-segmentation", "uso4": "tx-udp-segmentation"}


def sys_exists(name):
    return os.path.exists(f"/sys/class/net/{name}")


def features(name):
    e = Ethtool()
    try:
        f = e.get_features(name).features
        return {key: f[feat].enable for key, feat in FEATURES.items()}
    finally:
        e.close()


@pytest.fixture
def opened():
    """Every TapPort a test opens is closed afterwards, and checked gone."""
    made = []

    def open_port(**kw):
        port = ports.TapPort.open(**kw)
        made.append(port)
        return port
    yield open_port
    for port in made:
        port.close()
    for port in made:
        assert not sys_exists(port.name), f"{port.name} left behind"


def test_plain_tap(opened):
    port = opened()
    assert sys_exists(port.name)
    assert port.tun_flags() & 0xFFFF == ports.IFF_TAP | ports.IFF_NO_PI
    assert port.vnet_hdr is False and port.vnet_hdr_len == 0 and port.offloads == frozenset()
    assert not os.get_blocking(port.fd)
    assert features(port.name) == {"csum": False, "tso4": False, "tso6": False, "uso4": False}
    info = kernel.host.link_info(port.name)
    assert info["txqueuelen"] == ports.DEFAULT_TXQUEUELEN and info["up"]
    assert open(f"/sys/class/net/{port.name}/tun_flags").read().strip() == "0x1002"
    for _ in range(100):              # the kernel may have sent IPv6 chatter already
        try:
            os.read(port.fd, 65536)
        except BlockingIOError:
            break
    else:
        pytest.fail("the fd never reported an empty queue")


def test_vnet_hdr_with_default_offloads(opened):
    port = opened(vnet_hdr=True, txqueuelen=20000)
    assert port.tun_flags() & ports.IFF_VNET_HDR
    assert port.kernel_vnet_hdr_len() == 12 and port.vnet_hdr_len == 12
    assert {"csum", "tso4", "tso6"} <= port.offloads <= ports.DEFAULT_OFFLOADS
    got = features(port.name)
    assert got["csum"] and got["tso4"] and got["tso6"]
    assert got["uso4"] == ("uso4" in port.offloads)
    assert kernel.host.link_info(port.name)["txqueuelen"] == 20000


def test_explicit_offloads(opened):
    port = opened(vnet_hdr=True, offloads=["csum"])
    assert port.offloads == {"csum"}
    assert features(port.name) == {"csum": True, "tso4": False, "tso6": False, "uso4": False}
    port = opened(vnet_hdr=True, offloads=[])
    assert port.offloads == frozenset()
    assert features(port.name)["csum"] is False


def test_mtu_and_name(opened):
    name = kernel.unique_name("tsp")
    port = opened(name=name, mtu=9000)
    assert port.name == name and kernel.host.link_info(name)["mtu"] == 9000


def test_existing_name_is_refused_and_kept(opened):
    port = opened()
    with pytest.raises(AlreadyExists):
        ports.TapPort.open(name=port.name)
    assert sys_exists(port.name) and port.tun_flags()


def test_moved_into_namespace_and_configured(opened, make_netns):
    ns = make_netns()
    port = opened(vnet_hdr=True, netns=ns, address="10.77.0.2/24", gateway="10.77.0.1")
    assert not sys_exists(port.name)                     # gone from the host
    assert port.name in ns.links()
    info = ns.link_info(port.name)
    assert info["up"] and info["txqueuelen"] == ports.DEFAULT_TXQUEUELEN
    assert ns.addresses(port.name) == ["10.77.0.2/24"]
    assert any(r["dst"] == "0.0.0.0/0" and r["gateway"] == "10.77.0.1" for r in ns.routes())
    assert port.kernel_mac() != ":".join(f"{b:02x}" for b in port.mac)
    # The fd still works across the move: a datagram sent in the namespace comes out here.
    with ns.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"hello", ("10.77.0.9", 9))             # on link: the kernel ARPs first
    arp = _read_arp(port.fd, port.vnet_hdr_len)
    assert arp[24:28] == socket.inet_aton("10.77.0.9") and arp[14:18] == socket.inet_aton("10.77.0.2")
    port.close()
    assert port.name not in ns.links()                   # closing deleted it there


def test_dual_stack_in_namespace(opened, make_netns):
    ns = make_netns()
    port = opened(netns=ns, address=["10.77.0.2/24", "fd00:77::2/64"],
                  gateway=["fd00:77::1", "10.77.0.1"])
    assert ns.addresses(port.name) == ["10.77.0.2/24"]
    six = ns.addresses(port.name, family=socket.AF_INET6)
    assert "fd00:77::2/64" in six
    assert any(a.startswith("fe80::") for a in six)      # its link-local, usable at once
    assert ns.get_sysctl(f"net.ipv6.conf.{port.name}.disable_ipv6") == "0"
    assert ns.get_sysctl(f"net.ipv6.conf.{port.name}.accept_ra") == "0"
    assert ns.get_sysctl(f"net.ipv6.conf.{port.name}.accept_dad") == "0"
    assert any(r["dst"] == "::/0" and r["gateway"] == "fd00:77::1"
               for r in ns.routes(socket.AF_INET6))
    assert any(r["dst"] == "0.0.0.0/0" and r["gateway"] == "10.77.0.1" for r in ns.routes())
    # Not tentative: the address can be bound (and used as a source) right away.
    with ns.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.bind(("fd00:77::2", 0))
        s.sendto(b"hello", ("fd00:77::9", 9))            # on link: the kernel solicits first
    ns_frame = _read_ethertype(port.fd, port.vnet_hdr_len, b"\x86\xdd",
                               lambda f: f[20] == 58 and f[54] == 135)
    assert ns_frame[22:38] == socket.inet_pton(socket.AF_INET6, "fd00:77::2")
    assert ns_frame[62:78] == socket.inet_pton(socket.AF_INET6, "fd00:77::9")


def _read_ethertype(fd, hdr_len, ethertype, accept=lambda frame: True, tries=200):
    """The first frame of ``ethertype`` out of the TAP that ``accept`` takes."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    for _ in range(tries):
        if poller.poll(10):
            frame = os.read(fd, 70000)[hdr_len:]
            if frame[12:14] == ethertype and accept(frame):
                return frame
    pytest.fail(f"no frame of ethertype {ethertype.hex()} came out of the TAP")


def _read_arp(fd, hdr_len):
    """The ARP payload of the first ARP frame out of the TAP (IPv6 chatter skipped)."""
    return _read_ethertype(fd, hdr_len, b"\x08\x06")[14:]


def test_failure_after_creation_leaves_nothing(monkeypatch):
    name = kernel.unique_name("tsf")

    def refuse(ifname, qlen):
        raise kernel.kernel_error(errno.EPERM, "refused for the test")
    monkeypatch.setattr(kernel.host, "set_txqueuelen", refuse)
    with pytest.raises(kernel.KernelPermission):
        ports.TapPort.open(name=name)
    assert not sys_exists(name)


def test_gateway_outside_the_subnet_is_refused(make_netns):
    ns = make_netns()
    name = kernel.unique_name("tsf")
    with pytest.raises(InvalidArgument, match="another address inside 10.77.0.0/24"):
        ports.TapPort.open(name=name, netns=ns, address="10.77.0.2/24", gateway="10.99.0.1")
    assert not sys_exists(name) and name not in ns.links()


def test_failure_in_namespace_leaves_nothing(make_netns, monkeypatch):
    ns = make_netns()
    real_configure = ns.configure

    def configure_then_fail(ifname, **kw):
        real_configure(ifname, **kw)                     # the TAP is in ns and configured ...
        assert ifname in ns.links()
        raise kernel.kernel_error(errno.EEXIST, "refused for the test")   # ... then it fails
    monkeypatch.setattr(ns, "configure", configure_then_fail)
    name = kernel.unique_name("tsf")
    with pytest.raises(AlreadyExists):
        ports.TapPort.open(name=name, netns=ns, address="10.77.0.2/24")
    assert not sys_exists(name) and name not in ns.links()


def test_close_is_idempotent(opened):
    port = opened()
    port.close()
    port.close()
    assert port.closed and not sys_exists(port.name)
    with pytest.raises(OSError):
        port.tun_flags()
