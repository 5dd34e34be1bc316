"""The daemon: the model, the fast path, the packet loop, the slow path and the control
socket put together on one thread.

``daemon`` (``Daemon``, ``run_config``), ``port_manager`` and ``tap_port`` (the TAPs kept in
line with the model's ports), ``slowpath``, ``view`` and ``packets`` (ARP, ICMP: what the
fast path hands up), ``igmp`` and ``multicast`` (snooping and the querier).
"""
