"""Every old Python name of a verb, kept working for one release (removed in the one after).

The verbs' Python names are their wire names with '-' -> '_', with the wire's
argument order (``pyctl.control.verb_table``).  What changed, and how the old
calls keep working meanwhile:

- ``RENAMED``: an old method name is a thin alias of the new one on every class
  decorated with ``with_renamed_aliases`` (the model's ``Switch`` and
  ``ActingContext``, the rig's ``Topology``).  It warns ``RenamedWarning``,
  accepts the old keyword names (``OLD_KEYWORDS``) and calls the new method.
- ``group_first``: ``join``, ``leave`` and ``members`` take ``(group,
  namespace)`` like the wire, no longer ``(namespace, group)``.  Called with
  two positional arguments in the old order (only the first names an existing
  namespace, or else only the second is a multicast address), they swap them
  and warn ``ArgumentOrderWarning``.

CHANGELOG.md lists the same names.
"""
from __future__ import annotations

import functools
import ipaddress
import warnings

__all__ = ["RENAMED", "GROUP_FIRST", "OLD_KEYWORDS", "RenamedWarning", "ArgumentOrderWarning",
           "with_renamed_aliases", "group_first"]

RENAMED = {
    "add_address": "address_add",
    "del_address": "address_del",
    "add_route": "route_add",
    "del_route": "route_del",
    "add_port": "port_add",
    "del_port": "port_del",
    "owner_of": "owner",
}

# Verbs whose group argument moved first (``group_first``).
GROUP_FIRST = ("join", "leave", "members")

# Parameters renamed to the wire's names; an alias still takes the old keyword.
OLD_KEYWORDS = {"ns": "namespace", "dst": "prefix", "scope": "namespace", "ref": "name"}


class RenamedWarning(DeprecationWarning):
    """A verb was called by its old Python name."""


class ArgumentOrderWarning(DeprecationWarning):
    """A verb was called with its old argument order."""


def with_renamed_aliases(cls):
    """Class decorator: an alias for each old name whose new name ``cls`` defines."""
    for old, new in RENAMED.items():
        if new in cls.__dict__ and old not in cls.__dict__:
            setattr(cls, old, _alias(cls.__name__, old, cls.__dict__[new]))
    return cls


def _alias(owner: str, old: str, target):
    new = target.__name__

    @functools.wraps(target)             # the new method's signature
    def alias(self, *args, **kwargs):
        warnings.warn(f"{type(self).__name__}.{old}() is deprecated: use {new}() "
                      f"(the wire's name)",
                      RenamedWarning, stacklevel=2)
        for was, now in OLD_KEYWORDS.items():
            if was in kwargs:
                kwargs[now] = kwargs.pop(was)
        return getattr(self, new)(*args, **kwargs)
    alias.__name__, alias.__qualname__ = old, f"{owner}.{old}"
    alias.__doc__ = f"Deprecated: the old name of ``{new}`` (removed in the next release)."
    alias.deprecated_alias_of = new
    return alias


def _is_group(value) -> bool:
    if not isinstance(value, (str, ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return False
    try:
        return ipaddress.ip_address(value).is_multicast
    except ValueError:
        return False


def group_first(method):
    """``method(group, namespace=None)`` that also takes the old ``(namespace, group)``."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if len(args) == 2 and not kwargs and _old_order(self, *args):
            warnings.warn(f"{method.__name__}(namespace, group) is deprecated: the group comes "
                          f"first, as on the wire: {method.__name__}(group, namespace)",
                          ArgumentOrderWarning, stacklevel=2)
            args = (args[1], args[0])
        return method(self, *args, **kwargs)
    return wrapper


def _old_order(verbs, first, second) -> bool:
    """Whether ``(first, second)`` reads as ``(namespace, group)``: by the namespaces
    that exist, when ``verbs`` can tell (the model), else by which one is a multicast
    address."""
    names = getattr(verbs, "_names_a_namespace", None)
    if names is not None and names(first) != names(second):
        return names(first)
    return _is_group(second) and not _is_group(first)
