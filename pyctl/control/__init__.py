"""The control plane's surface: the line-JSON protocol (``protocol``), the socket server
(``server``), how a verb runs (``dispatch``), the verbs themselves (``verbs``), the client
(``client``) and what the CLI prints (``counters``, ``tables``).  See docs/control.md.
"""
