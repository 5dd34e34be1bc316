"""Every verdict, reason and counter name of the fast path is written once, in
fastpath/reasons.py: the compiled core, the Python names, the counters and the docs
table all come from it, and drift fails here."""
import os
import re

import pytest

import fastpath
from fastpath import reasons, verdicts as V
from fastpath.reference import ReferenceDatapath

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_the_core_was_compiled_from_the_table():
    want = {f"VERDICT_{v.name.upper()}": v.code for v in reasons.VERDICTS}
    want.update({f"REASON_{r.name.upper()}": r.code for r in reasons.REASONS})
    want.update(REASON_NONE=0, REASON_COUNT=reasons.REASON_COUNT)
    assert fastpath._core.C_CODES == want
    with open(os.path.join(ROOT, "fastpath", "reasons.pxi")) as f:
        assert f.read() == reasons.generate_pxi(), "stale build: run setup.py build_ext again"


def test_the_python_names_derive_from_the_table():
    for r in reasons.REASONS:
        assert getattr(V, f"REASON_{r.name.upper()}") == r.code
        assert V.REASON_NAMES[r.code] == r.name
        assert V.reason_verdict(r.code) == (V.VERDICT_DROP if r.verdict == "drop" else V.VERDICT_SLOWPATH)
    assert set(V.REASON_NAMES) == {0} | V.DROP_REASONS | V.SLOWPATH_REASONS
    assert max(V.REASON_NAMES) < V.REASON_COUNT
    with pytest.raises(ValueError):
        V.reason_verdict(0)


def test_counters_are_named_from_the_table(make_dp):
    dp = make_dp(max_namespaces=4, max_ports=4)
    with dp.update():
        dp.set_namespace(0, 0, False)
        dp.set_port(1, 0, b"\x02\0\0\0\0\x01")
    c = dp.counters()
    assert list(c["reasons"]) == [r.name for r in sorted(reasons.REASONS, key=lambda r: r.code)]
    assert list(c["ports"][1]) == list(reasons.TRAFFIC_COUNTER_NAMES)
    assert list(c["namespaces"][0]) == list(reasons.TRAFFIC_COUNTER_NAMES) + ["reasons",
                                                                             "slow_refused"]
    assert list(c["namespaces"][0]["slow_refused"]) == list(reasons.SHARE_NAMES)


def test_the_loop_stats_are_named_from_the_table():
    loop = fastpath.PacketLoop(fastpath.Datapath(max_namespaces=4, max_ports=4),
                               batch_size=4, slot_size=2048, backend="epoll")
    try:
        names = list(loop.stats())
    finally:
        loop.close()
    assert names == (list(reasons.LOOP_STAT_NAMES) + list(reasons.VNET_REFUSAL_NAMES[1:])
                     + ["slow_pending", "backend"])
    assert fastpath.vnet_validate(bytes(12), bytes(60)) == reasons.VNET_REFUSALS[0].name


def test_the_docs_table_is_the_table():
    with open(os.path.join(ROOT, "docs", "architecture.md")) as f:
        doc = f.read()
    found = re.search(r"<!-- reasons:begin -->\n(.*?)\n<!-- reasons:end -->", doc, re.DOTALL)
    assert found, "docs/architecture.md lost its reason table markers"
    assert found.group(1) == reasons.markdown_table(), \
        "docs/architecture.md's reason table drifted: paste `python -m fastpath.reasons` there"


@pytest.mark.parametrize("bad", [
    reasons.Reason("arp_again", 16, "slowpath", "a code taken twice"),
    reasons.Reason("arp", 40, "slowpath", "a name taken twice"),
    reasons.Reason("too_big", 256, "drop", "a code that does not fit a uint8"),
    reasons.Reason("maybe", 41, "forward", "a verdict a reason cannot have"),
    reasons.Reason("Bad-Name", 42, "drop", "not a lower-case identifier"),
])
def test_a_wrong_append_fails_the_build(monkeypatch, bad):
    monkeypatch.setattr(reasons, "REASONS", reasons.REASONS + (bad,))
    with pytest.raises(ValueError):
        reasons.generate_pxi()


def test_an_appended_reason_gets_its_enum_and_counter(monkeypatch):
    code = max(r.code for r in reasons.REASONS) + 1
    new = reasons.Reason("rate_limited", code, "drop", "over the sender's rate")
    monkeypatch.setattr(reasons, "REASONS", reasons.REASONS + (new,))
    pxi = reasons.generate_pxi()
    assert f"    REASON_RATE_LIMITED = {code}\n" in pxi and f"    REASON_COUNT = {code + 1}\n" in pxi
    assert f"| {code} | `rate_limited` | drop | over the sender's rate |" in reasons.markdown_table()


def test_the_reference_charges_the_same_names():
    assert set(ReferenceDatapath().counters()["reasons"]) == {r.name for r in reasons.REASONS}
