"""The daemon: the model, the fast path, the packet loop, the slow path and the control
socket put together on one thread.

``daemon`` (``Daemon``), ``service`` (`tapswitch run`: validation, signals, the service
manager), ``port_manager`` and ``tap_port`` (the TAPs kept in line with the model's ports),
``ownership`` (what it made in the kernel, for a restart), ``slowpath``, ``view`` and
``packets`` (ARP, ICMP: what the fast path hands up), ``igmp`` and ``multicast`` (snooping
and the querier), ``metrics`` and ``metrics_http`` (the Prometheus text, its listener).
"""
