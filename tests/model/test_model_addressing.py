"""Parsing and validation helpers of the model (pyctl.model.addressing, pyctl.errors)."""
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyctl import errors

from pyctl.model import addressing


@given(st.ip_addresses(v=4), st.integers(0, 32))
def test_parse_interface_accepts_exactly_the_host_addresses(ip, prefix):
    iface = ipaddress.ip_interface((ip, prefix))
    net = iface.network
    bad = (ip.is_loopback or ip.is_multicast or ip in ipaddress.ip_network("0.0.0.0/8")
           or ip == addressing.LIMITED_BROADCAST
           or (prefix <= 30 and ip in (net.network_address, net.broadcast_address)))
    if bad:
        with pytest.raises(errors.InvalidArgument):
            addressing.parse_interface(f"{ip}/{prefix}")
    else:
        assert addressing.parse_interface(f"{ip}/{prefix}") == iface


def test_parse_network():
    assert addressing.parse_network("default") == ipaddress.ip_network("0.0.0.0/0")
    assert addressing.parse_network("fd00::/8") == ipaddress.ip_network("fd00::/8")
    assert addressing.parse_network("0.0.0.0/0") == ipaddress.ip_network("0.0.0.0/0")
    with pytest.raises(errors.InvalidArgument, match="10.9.0.0/16"):
        addressing.parse_network("10.9.1.0/16")


def test_parse_ip_forms():
    assert addressing.parse_ip(0x0A000001) == ipaddress.ip_address("10.0.0.1")
    assert addressing.parse_ip(ipaddress.ip_address("fd00::1")) == ipaddress.ip_address("fd00::1")
    for bad in (True, -1, 2**32, 1.0, "10.0.0.1/32", "fe80::1%2"):
        with pytest.raises(errors.InvalidArgument):
            addressing.parse_ip(bad)


def test_sort_key_orders_v4_before_v6_numerically():
    items = [ipaddress.ip_interface(a) for a in ("fd00::1/64", "10.0.0.10/24", "10.0.0.9/24")]
    assert [str(i) for i in sorted(items, key=addressing.sort_key)] == [
        "10.0.0.9/24", "10.0.0.10/24", "fd00::1/64"]


def test_errors_have_stable_codes_and_round_trip():
    expected = {errors.NotFound: "ENOENT", errors.AlreadyExists: "EEXIST",
                errors.AddressInUse: "EADDRINUSE", errors.PermissionDenied: "EPERM",
                errors.InvalidArgument: "EINVAL", errors.Busy: "EBUSY",
                errors.NotSupported: "ENOTSUP"}
    for cls, code in expected.items():
        error = cls("a message naming 'x'")
        assert isinstance(error, errors.TapswitchError)
        assert error.to_dict() == {"code": code, "message": "a message naming 'x'"}
        again = errors.from_code(code, error.message)
        assert type(again) is cls and again.message == error.message
    odd = errors.from_code("EWEIRD", "m")
    assert type(odd) is errors.TapswitchError and odd.code == "EWEIRD"
