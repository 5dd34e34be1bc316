"""A free subnet for a test topology: none of the host's routes overlaps it; one given by
hand is checked."""
import ipaddress
import random

import pytest

from pyctl import errors
from pyctl.rig.subnets import POOL, free_subnet, host_routes, parse_subnet


def test_a_free_subnet_overlaps_no_route():
    taken = [ipaddress.IPv4Network("10.0.0.0/9")]           # half of the pool
    for seed in range(200):
        net = free_subnet(taken, rng=random.Random(seed))
        assert net.subnet_of(POOL) and net.prefixlen == 24 and not net.overlaps(taken[0])


def test_a_full_pool_is_an_error_that_names_the_option():
    with pytest.raises(errors.InvalidArgument, match="--tapswitch-subnet"):
        free_subnet([POOL])


def test_the_host_routes_are_read(tmp_path):
    table = tmp_path / "route"
    table.write_text("Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n"
                     "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
                     "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
                     "vpn0\t0000000A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n")
    assert host_routes(str(table)) == [ipaddress.IPv4Network("192.0.2.0/24"),
                                       ipaddress.IPv4Network("10.0.0.0/16")]
    assert all(not free_subnet(host_routes(str(table))).overlaps(ipaddress.IPv4Network("10.0.0.0/16"))
               for _ in range(50))


def test_a_subnet_given_by_hand():
    assert parse_subnet("10.99.0.0/24") == ipaddress.IPv4Network("10.99.0.0/24")
    for bad in ("10.99.0.1/24", "fd00::/64", "10.99.0.0/30", "nonsense"):
        with pytest.raises(errors.InvalidArgument):
            parse_subnet(bad)
