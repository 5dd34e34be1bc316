"""bench.runner.rep_order: each repetition starts with the next peer, so every peer
is measured first, second, ... equally often over a multiple of the peers' count."""
from collections import Counter

from bench.runner import rep_order


def test_each_rep_starts_with_the_next_peer():
    names = ["veth", "minimal-forwarder-vnet", "tapswitch"]
    assert rep_order(names, 1) == names
    assert rep_order(names, 2) == ["minimal-forwarder-vnet", "tapswitch", "veth"]
    assert rep_order(names, 3) == ["tapswitch", "veth", "minimal-forwarder-vnet"]
    assert rep_order(names, 4) == names
    assert names == ["veth", "minimal-forwarder-vnet", "tapswitch"]      # not changed


def test_every_peer_takes_every_place_equally_often():
    names = [f"p{i}" for i in range(4)]
    places = Counter((name, order.index(name)) for rep in range(1, 9)
                     for order in [rep_order(names, rep)] for name in order)
    assert set(places.values()) == {2}
    assert rep_order([], 3) == [] and rep_order(["solo"], 5) == ["solo"]
