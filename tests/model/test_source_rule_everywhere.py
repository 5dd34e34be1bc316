"""One source rule (fastpath.source_rule.may_send_from) from the model to the wire: the
model's bind check, the slow path's view of the compiled plan and both datapaths compiled
from the same model agree, after the changes that move an address or a namespace."""
import ipaddress

import pytest

from fastpath import Batch, Datapath
from fastpath import verdicts as V
from fastpath.reference import ReferenceDatapath
from fastpath.source_rule import is_martian_source
from pyctl.compile.compiler import Compiler
from pyctl.daemon import packets as pk
from pyctl.daemon.view import PlanView
from tests.support.model import tenants

SOURCES = ["10.0.0.5", "10.0.0.6", "10.0.0.1", "10.0.0.9", "10.0.0.255", "10.0.0.0", "10.1.0.255",
           "8.8.8.8", "0.0.0.0", "127.0.0.1", "224.0.0.1", "239.1.1.1", "255.255.255.255",
           "240.0.0.7"]
CHANGES = [
    lambda sw: None,
    lambda sw: sw.pull("10.0.0.5/24", "web"),
    lambda sw: (sw.pull("10.0.0.5/24", "web"), sw.push("10.0.0.5/24", "db")),
    lambda sw: sw.destroy("db"),
    lambda sw: sw.assign_and_push("10.0.0.9/24", "web"),
]


def switch_with_ports():
    sw = tenants()
    sw.assign_and_push("10.0.0.7/24", "web")
    for name, ns in (("up", "init"), ("tw", "web"), ("td", "db"), ("lab0", "lab"), ("tp", "probe")):
        sw.port_add(name, ns)
    return sw


def refused(dp, port_mac, port, src):
    frame = pk.build_ethernet(port_mac, bytes.fromhex("525400000099"), pk.ETH_P_IP,
                              pk.build_ipv4(src, 0x0A000006, pk.IPPROTO_UDP, b"x" * 8))
    batch = Batch(capacity=1)
    batch.load([(port, frame)])
    dp.process(batch)
    return V.REASON_NAMES[batch.reason[0]] in ("spoofed_source", "martian_source")


@pytest.mark.parametrize("change", range(len(CHANGES)))
def test_model_view_and_datapaths_agree(change):
    sw = switch_with_ports()
    datapaths = [ReferenceDatapath(), Datapath()]
    compilers = [Compiler(sw, dp) for dp in datapaths]
    CHANGES[change](sw)
    for compiler in compilers:
        compiler.sync()
    view = PlanView(compilers[0], datapaths[0])
    checked = 0
    for port in sw.ports():
        ns = sw.namespace(port.ns)
        for text in SOURCES:
            ip = int(ipaddress.IPv4Address(text))
            # a unicast UDP frame: from 0.0.0.0 it does not stay on the link
            on_the_wire = view.source_allowed(port.id, ip) and ip != 0
            for dp in datapaths:
                assert refused(dp, view.port_mac(port.id), port.id, ip) == (not on_the_wire)
            may_bind = sw.may_send_from(ns.name, text)
            assert not on_the_wire or may_bind              # the wire never allows more
            scope = view.port_scope(port.id)
            broadcast = (scope, ip) in compilers[0].plan.broadcasts
            own = ns.is_l2 and compilers[0].plan.addresses.get((scope, ip), (None,))[0] == ns.id
            if not is_martian_source(ip) and not broadcast and not own and ip != 0:
                assert on_the_wire == may_bind               # the same rule below both
            checked += 1
    assert checked == len(sw.ports()) * len(SOURCES)
