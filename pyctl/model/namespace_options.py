"""Validation of an L2 namespace's options (what its scope does on its links).

Known keys and their values:

==============  ==========================================================
``advertise``   bool: the switch sends IPv6 router advertisements out of
                the scope's ports (the L2's own IPv6 prefixes, managed and
                other-configuration flags off, each port's MTU) and answers
                router solicitations; off (the default), solicitations are
                counted and ignored: tenants are configured by hand
==============  ==========================================================

Only an L2 has options (an L3 uses its parent's scope).  Anything else is
refused, so a typo never passes silently.
"""
from pyctl.errors import InvalidArgument

__all__ = ["NAMESPACE_OPTIONS", "NAMESPACE_OPTION_DEFAULTS", "check_namespace_options"]

NAMESPACE_OPTIONS = ("advertise",)
NAMESPACE_OPTION_DEFAULTS = {"advertise": False}     # what an L2 that never set them has


def _bool(key, value):
    if not isinstance(value, bool):
        raise InvalidArgument(f"namespace option {key!r} must be true or false, not {value!r}")
    return value


_CHECKS = {"advertise": _bool}


def check_namespace_options(options):
    """A validated copy of ``options`` (a mapping; ``None`` means none)."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise InvalidArgument(f"namespace options must be a mapping, not {type(options).__name__}")
    out = {}
    for key, value in options.items():
        check = _CHECKS.get(key)
        if check is None:
            raise InvalidArgument(f"unknown namespace option {key!r} "
                                  f"(known: {', '.join(NAMESPACE_OPTIONS)})")
        out[key] = check(key, value)
    return out
