"""Validation of an L2 namespace's options (what its scope does on its links).

Known keys and their values:

======================  ==================================================
``directed_broadcast``  bool: a directed broadcast of one of the scope's
                        subnets (10.0.0.255 for 10.0.0.0/24) is let in
                        from another subnet or an uplink (a routed one);
                        off (the default, RFC 2644), only a sender on
                        that subnet reaches it and the others are counted
                        ``directed_broadcast`` drops
======================  ==================================================

Only an L2 has options (an L3 uses its parent's scope).  Anything else is
refused, so a typo never passes silently.
"""
from pyctl.errors import InvalidArgument

__all__ = ["NAMESPACE_OPTIONS", "check_namespace_options"]

NAMESPACE_OPTIONS = ("directed_broadcast",)


def _bool(key, value):
    if not isinstance(value, bool):
        raise InvalidArgument(f"namespace option {key!r} must be true or false, not {value!r}")
    return value


_CHECKS = {"directed_broadcast": _bool}


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
