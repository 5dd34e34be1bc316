"""Multicast differential test: hypothesis builds two sibling scopes, group memberships
(L3s and the L2 itself), frames to groups (member, non-member and unknown groups,
link-local, IGMP, spoofed sources) and membership / port changes between batches; the
core must give the reference's verdicts, fan-out sets, copy bytes and counters (the
per-group ones included)."""
from hypothesis import HealthCheck, given, settings, strategies as st

from fastpath import Datapath
from fastpath.reference import ReferenceDatapath
from fastpath_frames import assert_same_batch, ip, ipv4_frame, mac
from pyctl.errors import Busy

GROUPS = [ip("239.1.1.1"), ip("239.1.1.2"), ip("232.0.0.9"), ip("224.0.1.1")]
OTHER_DST = [ip("224.0.0.1"), ip("224.0.0.251"), ip("239.9.9.9"), 0xFFFFFFFF]
SCOPES = (0, 1)
NAMESPACES = 12
MAX_PORTS = 10


def address(ns):
    return ip("10.0.0.%d" % (10 + ns))


@st.composite
def worlds(draw):
    """Scopes 0 and 1; L3s 2..9 in either; ports on L3s and L2s; each L3 owns one address."""
    ops = [("set_namespace", s, s, False) for s in SCOPES]
    scope_of = {s: s for s in SCOPES}
    for n in range(2, 2 + draw(st.integers(1, 8))):
        scope_of[n] = draw(st.sampled_from(SCOPES))
        ops.append(("set_namespace", n, scope_of[n], True))
        ops.append(("add_address", scope_of[n], address(n), n))
    port_ns, l3_with_port = {}, set()
    for p in range(draw(st.integers(2, MAX_PORTS))):
        n = draw(st.sampled_from(sorted(scope_of)))
        if n in l3_with_port:
            continue
        if n not in SCOPES:
            l3_with_port.add(n)
        port_ns[p] = n
        ops.append(("set_port", p, n, mac(p + 1)))
    ops += draw(memberships(scope_of))
    return ops, scope_of, port_ns


def memberships(scope_of):
    def members(scope):
        return st.lists(st.sampled_from([n for n, s in scope_of.items() if s == scope]), max_size=6)
    one = st.sampled_from(SCOPES).flatmap(
        lambda s: st.tuples(st.just("set_group"), st.just(s), st.sampled_from(GROUPS), members(s)))
    return st.lists(one, max_size=8)


@st.composite
def frames(draw, scope_of, port_ns):
    port = draw(st.sampled_from(sorted(port_ns)))
    sender = port_ns[port]
    own = [address(sender)] if sender not in SCOPES else [ip("10.0.0.99")]
    src = draw(st.sampled_from(own * 4 + [0, address(draw(st.sampled_from(sorted(scope_of))))]))
    dst = draw(st.sampled_from(GROUPS * 3 + OTHER_DST))
    dmac = draw(st.sampled_from([b"\x01\x00\x5e" + (dst & 0x7FFFFF).to_bytes(3, "big")] * 4
                                + [mac(port + 1), mac(0x77)]))
    proto = draw(st.sampled_from([17] * 6 + [2, 6]))
    frame = ipv4_frame(dmac, mac(0x100 + port), src, dst, proto=proto,
                       ttl=draw(st.sampled_from([1, 64])), payload=draw(st.binary(max_size=40)))
    return port, frame


@st.composite
def changes(draw, scope_of, port_ns):
    """One table write between batches: a membership, a group gone, a port moved or gone."""
    kind = draw(st.sampled_from(["members", "remove", "port", "unport"]))
    if kind == "members":
        return draw(memberships(scope_of).filter(len))[:1]
    if kind == "remove":
        return [("remove_group_if_any", draw(st.sampled_from(SCOPES)), draw(st.sampled_from(GROUPS)))]
    port = draw(st.sampled_from(sorted(port_ns)))
    if kind == "unport":
        return [("remove_port_if_any", port)]
    return [("move_port", port, draw(st.sampled_from(sorted(scope_of))))]


@st.composite
def scenarios(draw):
    ops, scope_of, port_ns = draw(worlds())
    n = draw(st.integers(1, 3))
    batches = [draw(st.lists(frames(scope_of, port_ns), min_size=1, max_size=30)) for _ in range(n)]
    between = [draw(changes(scope_of, port_ns)) for _ in range(n)]
    return ops, batches, between


def apply(dp, ops):
    with dp.update():
        for name, *args in ops:
            if name == "remove_group_if_any":
                if dp.lookup_group(*args) is not None:
                    dp.remove_group(*args)
            elif name == "remove_port_if_any":
                if args[0] in dp.counters()["ports"]:
                    dp.remove_port(args[0])
            elif name == "move_port":
                try:                            # an L3 that has a port refuses a second one
                    dp.set_port(args[0], args[1], mac(args[0] + 1))
                except Busy:
                    pass
            else:
                getattr(dp, name)(*args)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.data_too_large])
@given(scenarios(), st.integers(1, 48))
def test_multicast_core_matches_reference(scenario, max_fanout):
    ops, batches, between = scenario
    core = Datapath(max_namespaces=NAMESPACES, max_ports=MAX_PORTS, route_cache_size=4)
    ref = ReferenceDatapath(max_namespaces=NAMESPACES, max_ports=MAX_PORTS, route_cache_size=4)
    for dp in (core, ref):
        apply(dp, ops)
    for frames_, writes in zip(batches, between):
        assert_same_batch(core, ref, frames_, max_fanout)
        assert {k: core.lookup_group(*k) for k in _keys()} == {k: ref.lookup_group(*k) for k in _keys()}
        for dp in (core, ref):
            apply(dp, writes)


def _keys():
    return [(s, g) for s in SCOPES for g in GROUPS]
