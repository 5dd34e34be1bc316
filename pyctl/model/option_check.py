"""Checking a mapping of options against a table of per-key checks: the one loop that
port options (``port_options``) and an L2's options (``namespace_options``) share.

A check is ``check(key, value) -> normalised value`` and raises ``InvalidArgument``
naming the key; an unknown key is refused with the known ones, so a typo never passes
silently.
"""
from pyctl.errors import InvalidArgument

__all__ = ["checked_options", "flag"]


def flag(what):
    """The check of a boolean option of ``what`` ("port", "namespace")."""
    def check(key, value):
        if not isinstance(value, bool):
            raise InvalidArgument(f"{what} option {key!r} must be true or false, not {value!r}")
        return value
    return check


def checked_options(what, options, checks):
    """A validated copy of ``options`` (a mapping; ``None`` means none) by ``checks``
    (key -> check); ``what`` names the owner in messages."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise InvalidArgument(f"{what} options must be a mapping, not {type(options).__name__}")
    out = {}
    for key, value in options.items():
        check = checks.get(key)
        if check is None:
            raise InvalidArgument(f"unknown {what} option {key!r} (known: {', '.join(checks)})")
        out[key] = check(key, value)
    return out
