"""tapswitch benchmarks.

- ``python -m bench``: the end-to-end comparison of tapswitch with the switches
  people would otherwise use (veth, Linux bridge, Open vSwitch netdev, a naive
  Python TAP bridge, a minimal C forwarder), each between two kernel network
  namespaces; see bench/__main__.py and ``python -m bench --help``.
- ``bench/bench_fastpath.py``: in-memory fast-path benchmarks (pytest-benchmark).
"""
