"""Validation of an L2 namespace's options (what its scope does on its links).

Known keys and their values:

======================  ==================================================
``advertise``           bool: the switch sends IPv6 router advertisements
                        out of the scope's ports (the L2's own IPv6
                        prefixes, managed and other-configuration flags
                        off, each port's MTU) and answers router
                        solicitations; off (the default), solicitations
                        are counted and ignored: tenants are configured
                        by hand
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
from pyctl.model.option_check import checked_options, flag

__all__ = ["NAMESPACE_OPTIONS", "NAMESPACE_OPTION_DEFAULTS", "check_namespace_options"]

_CHECKS = {"advertise": flag("namespace"), "directed_broadcast": flag("namespace")}
NAMESPACE_OPTIONS = tuple(_CHECKS)
NAMESPACE_OPTION_DEFAULTS = {"advertise": False,      # what an L2 that never set them has
                             "directed_broadcast": False}


def check_namespace_options(options):
    """A validated copy of ``options`` (a mapping; ``None`` means none)."""
    return checked_options("namespace", options, _CHECKS)
