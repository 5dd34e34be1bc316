"""The exception hierarchy of tapswitch: defined in ``fastpath.errors`` (the bottom
layer, which the compiled core raises from) and re-exported here, so the control plane
and its users keep importing ``pyctl.errors``."""
from fastpath.errors import (AddressInUse, AlreadyExists, Busy, InvalidArgument, NotFound,
                             NotSupported, PermissionDenied, TapswitchError, from_code)

__all__ = [
    "TapswitchError",
    "NotFound",
    "AlreadyExists",
    "AddressInUse",
    "PermissionDenied",
    "InvalidArgument",
    "Busy",
    "NotSupported",
    "from_code",
]
