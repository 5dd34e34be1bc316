"""Verdict and reason codes of the fast path as Python names, shared by the core's users
and the reference: ``VERDICT_DROP``, ``REASON_SPOOFED_SOURCE``, ``REASON_NAMES``, ...

Derived from the one table in ``fastpath/reasons.py`` (which also generates the C enums
the compiled core uses): a reason added there has its ``REASON_<NAME>`` here.  A *drop*
reason means the frame is gone (counted); a *slow path* reason means pyctl's slow path
gets the frame to answer (ARP, ICMP echo to the switch, ICMP errors, neighbour and peer
resolution).
"""
from fastpath.reasons import (DROP_REASONS, REASON_COUNT, REASON_NAMES, REASONS, SLOWPATH_REASONS,
                              VERDICT_NAMES, VERDICTS)

__all__ = ["VERDICT_NAMES", "REASON_NAMES", "REASON_COUNT", "DROP_REASONS", "SLOWPATH_REASONS",
           "reason_verdict", "REASON_NONE"]

REASON_NONE = 0
for _v in VERDICTS:
    globals()[f"VERDICT_{_v.name.upper()}"] = _v.code
    __all__.append(f"VERDICT_{_v.name.upper()}")
for _r in REASONS:
    globals()[f"REASON_{_r.name.upper()}"] = _r.code
    __all__.append(f"REASON_{_r.name.upper()}")
del _v, _r

_VERDICT_CODE = {v.name: v.code for v in VERDICTS}
_VERDICT_OF = {r.code: _VERDICT_CODE[r.verdict] for r in REASONS}


def reason_verdict(reason):
    """The verdict a reason goes with (VERDICT_DROP or VERDICT_SLOWPATH)."""
    try:
        return _VERDICT_OF[reason]
    except (KeyError, TypeError):
        raise ValueError(f"no verdict for reason {reason!r}") from None
