"""The exception hierarchy of tapswitch: defined in ``fastpath.errors`` (the bottom layer,
which the compiled core raises from) and re-exported here, every name of it, so the
control plane and its users keep importing ``pyctl.errors``."""
from fastpath.errors import *  # noqa: F401,F403
from fastpath.errors import __all__  # noqa: F401
