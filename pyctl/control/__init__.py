"""The control plane's surface.  Every verb is declared once in ``verb_table`` (with the
types of ``declare``); from it come how the socket runs a verb (``dispatch``, with the
model's and the server's handlers in ``verbs``), `tapswitch ctl` (``ctl``, printing with
``render``, ``counters``, ``tables``) and the verb list of docs/control.md (``verb_docs``).
The socket: the line-JSON ``protocol``, the ``server`` (connections), its namespace
sockets (``bindings``) and socket files (``sockets``), the ``client``.  See docs/control.md.
"""
