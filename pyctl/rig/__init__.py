"""Embedding tapswitch in test rigs: ``topology.Topology`` (tenants with real kernel network
stacks on a switch run in-process or as a child daemon), traffic ``probes`` and the
``demo``.  The pytest fixtures are in ``pyctl.pytest_plugin``.
"""
