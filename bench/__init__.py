"""tapswitch benchmarks.

- ``python -m bench``: the end-to-end comparison of tapswitch (the daemon, with
  and without offloads, per I/O backend) with the switches people would
  otherwise use (veth, Linux bridge, Open vSwitch netdev, a naive Python TAP
  bridge, a minimal C forwarder), each between two kernel network namespaces;
  see bench/__main__.py and ``python -m bench --help``.
- ``bench/bench_fastpath.py`` (pytest-benchmark) and ``python -m bench.fastpath``:
  in-memory fast-path benchmarks; ``python -m bench --fastpath`` or
  ``--fastpath-json FILE`` plots their scaling curves with the run.
- ``python -m bench.hostile``: the hostile-tenant section (issue 14): two victim
  tenants' request/reply RTT and loss with no attack and under each attack of
  ``bench/attacks.py`` (one function per attack), in one run.
- ``python -m bench.igmp_cost``: what one snooped IGMP record costs as its
  namespace's groups grow (in memory, no root).
"""
