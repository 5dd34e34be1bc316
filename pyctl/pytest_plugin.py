"""tapswitch's pytest plugin (registered through the ``pytest11`` entry point).

The topology fixtures land with the test-rig API (pyctl/topology.py).
"""
