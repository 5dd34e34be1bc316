"""TAP port options are checked before any kernel call (no root needed)."""
import pytest

from pyctl.daemon import tap_port as ports
from pyctl.errors import InvalidArgument


@pytest.mark.parametrize("kwargs,match", [
    ({"vnet_hdr": 1}, "vnet_hdr"),
    ({"offloads": ["csum"]}, "virtio-net header"),
    ({"vnet_hdr": True, "offloads": ["tso4"]}, "need 'csum'"),
    ({"vnet_hdr": True, "offloads": ["csum", "gso"]}, "unknown offload 'gso'"),
    ({"vnet_hdr": True, "offloads": "csum"}, "list"),
    ({"txqueuelen": -1}, "txqueuelen"),
    ({"txqueuelen": True}, "txqueuelen"),
    ({"txqueuelen": 2**31}, "txqueuelen"),
    ({"mtu": 67}, "mtu"),
    ({"mac": "01:00:5e:00:00:01"}, "unicast"),
    ({"mac": "00:00:00:00:00:00"}, "unicast"),
    ({"mac": "02:00:00:00:01"}, "look like"),
    ({"mac": "02:00:00:00:00:zz"}, "look like"),
    ({"mac": 5}, "string or 6 bytes"),
    ({"netns": "somename"}, "NetNamespace"),
    ({"gateway": "10.0.0.1"}, "needs option 'address'"),
    ({"address": ["10.0.0.2/24"], "gateway": "fd00::1"}, "needs an IPv6 address"),
    ({"address": ["10.0.0.2/24", "fd00::2/64"], "mtu": 1200}, "1280"),
    ({"address": ["10.0.0.2/24", "10.0.0.2/16"]}, "twice"),
    ({"address": "10.0.0.2"}, "prefix length is required"),
    ({"name": "a/b"}, "invalid interface name"),
    ({"name": "x" * 16}, "1..15"),
])
def test_bad_options_are_refused_before_the_kernel(kwargs, match):
    with pytest.raises(InvalidArgument, match=match):
        ports.TapPort.open(**kwargs)


def test_offload_masks():
    assert ports.offload_mask(ports.DEFAULT_OFFLOADS) == 0x67
    assert ports.offload_mask(["csum", "tso_ecn"]) == 0x09
    assert ports._check_offloads(True, None) == (frozenset({"csum", "tso4", "tso6"}),
                                                 frozenset({"uso4", "uso6"}))
    assert ports._check_offloads(False, None) == (frozenset(), frozenset())
    assert ports._check_offloads(True, []) == (frozenset(), frozenset())


def test_random_mac_is_local_unicast():
    for _ in range(100):
        mac = ports.random_mac()
        assert len(mac) == 6 and mac[0] & 0x03 == 0x02


def test_mac_parsing():
    assert ports._parse_mac("02:00:00:00:00:0a") == bytes.fromhex("02000000000a")
    assert ports._parse_mac(bytes.fromhex("02000000000a")) == bytes.fromhex("02000000000a")


@pytest.mark.parametrize("kwargs,match", [
    ({"address": "10.0.0.2"}, "prefix length is required"),
    ({"address": "10.0.0.300/24"}, "not an IPv4 or IPv6 address"),
    ({"address": "10.0.0.2/24", "gateway": "10.0.1.1"}, "another address inside 10.0.0.0/24"),
    ({"address": "10.0.0.2/24", "gateway": "10.0.0.2"}, "another address inside"),
    ({"address": "10.0.0.2/24", "gateway": "x"}, "not an IPv4 or IPv6 address"),
    ({"address": ["fd00::2/64"], "gateway": "fd01::1"}, "another address inside fd00::/64"),
    ({"address": ["fe80::2/64"]}, "link-local"),
])
def test_bad_addresses_are_refused_before_the_kernel(kwargs, match):
    with pytest.raises(InvalidArgument, match=match):
        ports.TapPort.open(**kwargs)


def _fake_ioctl(refused_bits, calls):
    def ioctl(fd, request, mask):
        calls.append(mask)
        if mask & refused_bits:
            raise OSError(22, "Invalid argument")
    return ioctl


def test_uso_refused_falls_back_to_tso(monkeypatch):
    calls = []
    monkeypatch.setattr(ports.fcntl, "ioctl", _fake_ioctl(ports.TUN_F_USO4 | ports.TUN_F_USO6, calls))
    got = ports._set_offloads(3, "tapx", frozenset({"csum", "tso4", "tso6"}), ports.OPTIONAL_OFFLOADS)
    assert got == {"csum", "tso4", "tso6"} and calls == [0x67, 0x07]


def test_uso_accepted(monkeypatch):
    calls = []
    monkeypatch.setattr(ports.fcntl, "ioctl", _fake_ioctl(0, calls))
    got = ports._set_offloads(3, "tapx", frozenset({"csum", "tso4", "tso6"}), ports.OPTIONAL_OFFLOADS)
    assert got == ports.DEFAULT_OFFLOADS and calls == [0x67]


def test_required_offload_refused_is_an_error(monkeypatch):
    calls = []
    monkeypatch.setattr(ports.fcntl, "ioctl", _fake_ioctl(ports.TUN_F_USO4, calls))
    with pytest.raises(OSError, match="uso4"):
        ports._set_offloads(3, "tapx", frozenset({"csum", "uso4"}), frozenset())
    assert calls == [0x21]
