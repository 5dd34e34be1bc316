"""bench.fastpath_instructions' workloads are what their names say: the forwarding ones
forward every frame, the fan-out one fans every frame out, the two mixes hand the fast path the drops they describe (the
instruction counts themselves need valgrind and are the benchmark's, not a test's)."""
import collections

import pytest

from bench.fastpath_instructions import WORKLOADS, _world
from fastpath import verdicts as V


def verdicts_of(name):
    dp, batches, restore, forwarding = _world(name)
    restore()
    seen = collections.Counter()
    for b in batches:
        dp.process(b)
        seen.update((int(b.verdict[i]), int(b.reason[i])) for i in range(b.count))
    return forwarding, seen


@pytest.mark.parametrize("name", [w for w in WORKLOADS if w not in ("demux100k", "fib10k",
                                                                      "fib6_10k")])
def test_a_workload_does_what_its_name_says(name):
    forwarding, seen = verdicts_of(name)
    total = sum(seen.values())
    if forwarding:
        assert seen == {(V.VERDICT_FORWARD, V.REASON_NONE): total}
    elif name == "fanout8":
        assert seen == {(V.VERDICT_FANOUT, V.REASON_NONE): total}
    elif name == "mixed6":
        assert seen == {(V.VERDICT_FORWARD, V.REASON_NONE): total // 2,
                        (V.VERDICT_DROP, V.REASON_SPOOFED_SOURCE): total // 4,
                        (V.VERDICT_DROP, V.REASON_BAD_EXTENSION_HEADER): total // 4}
    else:
        assert seen[(V.VERDICT_FORWARD, V.REASON_NONE)] == total // 4
        assert len(seen) >= 4
