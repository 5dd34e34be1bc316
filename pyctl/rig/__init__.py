"""Embedding tapswitch in test rigs: ``topology.Topology`` (tenants with real kernel network
stacks on a switch run in-process or as a child daemon; its verbs in ``verbs``, made from
the verb table; starting and closing in ``lifecycle``; ``tenant.Tenant``), traffic
``probes`` and the ``demo``.  The pytest fixtures are in ``pyctl.pytest_plugin``.
"""
