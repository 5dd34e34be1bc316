"""The model: the truth every other part reads.

``switch.Switch`` holds the namespace tree (an init L2 root, L2 and L3 children),
address ownership and push/pull (``namespaces``), routes, ports and multicast
membership (``resources``), each verb checked by the acting namespace's capabilities
(``access``).  Each change is announced as a typed event (``events``); the
compiler and the daemon read the facts by id through ``reader`` (``Switch.read()``).
``state`` is the mutable records and their indexes, ``values`` the immutable
values handed out, ``addressing`` and ``port_options`` the validation of what
the model is given.  See docs/model.md.
"""
