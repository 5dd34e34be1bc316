"""Quotas: what a parent lets an L2's subtree hold, and the switch's own table sizes.

Every L2 counts what its subtree holds (``NamespaceRecord.usage``, kept up to date by
each verb through ``charge``): its descendants (``namespaces``), the addresses, routes,
ports and multicast memberships of itself and its descendants, and its descendants'
control sockets (``sockets``; its own socket is its parent's to give).  A parent (an
ancestor, or the administrator) sets quotas on an L2 below it (``quota_set``); a verb
that would take any L2 on the way to the root past its quota is refused before it changes
anything (``QuotaExceeded``, EDQUOT, naming the quota and the L2), so within one
transaction the whole of it is refused.  The invariants, for every L2 with a quota:
``usage <= quota``, and the quota is at most what every ancestor allows.

The switch's own tables (namespaces, ports of the fast path) have a size; past it a
verb is refused with ``TableFull`` (ENOSPC, naming the table), whatever the quotas say.
"""
from pyctl import errors
from pyctl.model.access import Access, locked
from pyctl.model.events import QuotaSet
from pyctl.model.state import QUOTA_KEYS, ROOT_ID
from pyctl.model.values import L2

__all__ = ["QUOTA_KEYS", "RESOURCE_KEYS", "QuotaVerbs", "charge", "charge_under",
           "effective", "check_limits", "set_limits", "check_capacity"]

# Counted for the L2 holding them as well; the others only for the holder's ancestors.
RESOURCE_KEYS = frozenset(("addresses", "routes", "ports", "groups"))


def _chain(state, ident):
    """L2 ``ident`` and its ancestors, nearest first."""
    while ident is not None:
        l2 = state.namespaces[ident]
        yield l2
        ident = l2.parent


def _first_counting(record, key):
    """The nearest L2 that counts ``key`` held by ``record`` (None: nobody, the root's socket)."""
    return record.id if (key in RESOURCE_KEYS and record.kind == L2) else record.parent


def charge_under(state, l2_id, deltas):
    """Count ``deltas`` ({key: n}) for L2 ``l2_id`` and its ancestors, after checking that
    no quota on the way would be exceeded (nothing changes if one would)."""
    for key, delta in deltas.items():
        if delta <= 0:
            continue
        for l2 in _chain(state, l2_id):
            limit = l2.quota.get(key)
            if limit is not None and l2.usage[key] + delta > limit:
                raise errors.QuotaExceeded(
                    f"quota {key}={limit} of '{l2.name}' is reached: its subtree holds "
                    f"{l2.usage[key]}, {delta} more refused", quota=key, namespace=l2.name)
    for key, delta in deltas.items():
        if delta:
            for l2 in _chain(state, l2_id):
                state.put(l2.usage, key, l2.usage[key] + delta)


def charge(state, record, key, delta=1):
    """Count ``delta`` of ``key`` held by ``record`` for every L2 that counts it (checked
    first, as ``charge_under``)."""
    charge_under(state, _first_counting(record, key), {key: delta})


def effective(state, record, key, *, strict=False):
    """The tightest quota ``key`` on ``record`` and its ancestors (only the ancestors
    with ``strict``), or None: what its subtree may hold at most."""
    ident = record.parent if strict else record.id
    limits = []
    while ident is not None:
        l2 = state.namespaces[ident]
        if l2.quota.get(key) is not None:
            limits.append(l2.quota[key])
        ident = l2.parent
    return min(limits) if limits else None


def check_limits(limits):
    """``{key: int >= 0 or None}`` with known keys; a copy."""
    if not isinstance(limits, dict) or not limits:
        raise errors.InvalidArgument(f"quotas are given as {{key: limit}} (at least one), keys "
                                     f"of {', '.join(QUOTA_KEYS)}; not {limits!r}")
    out = {}
    for key, value in limits.items():
        if key not in QUOTA_KEYS:
            raise errors.InvalidArgument(f"unknown quota {key!r} (known: {', '.join(QUOTA_KEYS)})")
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 0):
            raise errors.InvalidArgument(f"quota {key} must be a non-negative integer or null "
                                         f"(no quota of its own), not {value!r}")
        out[key] = value
    return out


def set_limits(state, record, limits):
    """Give L2 ``record`` the quotas ``limits`` (checked: ``check_limits``), all or none:
    never more than an ancestor allows, never less than it holds, never less than a
    descendant's own quota."""
    if record.kind != L2:
        raise errors.InvalidArgument(f"'{record.name}' is an L3 namespace: quotas are set on "
                                     f"L2 namespaces (its parent's count what it holds)")
    if record.id == ROOT_ID:
        raise errors.PermissionDenied(f"the root '{record.name}' has no quotas: the switch's "
                                      f"table sizes bound it")
    for key, value in limits.items():
        if value is None:
            continue
        above = effective(state, record, key, strict=True)
        if above is not None and value > above:
            raise errors.QuotaExceeded(
                f"quota {key}={value} for '{record.name}' is more than its parent allows "
                f"({above})", quota=key, namespace=record.name)
        if record.usage[key] > value:
            raise errors.Busy(f"'{record.name}' already holds {record.usage[key]} {key}: a "
                              f"quota of {value} is refused (remove some first)")
        for below in state.subtree(record)[1:]:
            own = below.quota.get(key)
            if own is not None and own > value:
                raise errors.Busy(f"'{below.name}' below '{record.name}' has a quota "
                                  f"{key}={own}: lower it first")
    for key, value in limits.items():
        if value is None:
            if key in record.quota:
                state.pop(record.quota, key)
        else:
            state.put(record.quota, key, value)


def check_capacity(state, table, capacity, count, more=1):
    """Refuse (TableFull) a change that takes the switch's ``table`` past ``capacity``."""
    if capacity is not None and count + more > capacity:
        raise errors.TableFull(f"the switch's {table} table is full: it holds {count} of "
                               f"{capacity}", table=table)


class QuotaVerbs(Access):
    """``quota-set`` and ``quota`` (names and arguments: ``pyctl.control.verb_table``)."""

    @locked
    def quota_set(self, namespace, limits=None):
        """Set quotas of L2 ``namespace`` (below the acting one): ``{key: limit}`` with keys
        of ``QUOTA_KEYS``, a limit None removing that quota; all of them or none."""
        actor = self._actor()
        self._configuring(actor, f"setting quotas of {namespace!r}")
        checked = check_limits(limits)
        record = self._resolve(actor, namespace)
        if actor is not None and record.id == actor.id:
            raise errors.PermissionDenied(f"'{record.name}' cannot set its own quotas: its "
                                          f"parent (or the administrator) does")
        set_limits(self._sw._state, record, checked)
        self._sw._commit(QuotaSet, namespace=record.value(),
                         quota=tuple(sorted(record.quota.items())))

    @locked
    def quota(self, namespace=None):
        """L2 ``namespace``'s (default: the acting one) quotas, what its subtree holds, and
        the tightest quota on the way to the root (what it may hold at most)."""
        state = self._sw._state
        record = self._resolve_or_acting(self._actor(), namespace)
        if record.kind != L2:
            raise errors.InvalidArgument(f"'{record.name}' is an L3 namespace: quotas are those "
                                         f"of L2 namespaces (see its parent's)")
        return {"namespace": record.name, "quota": {k: record.quota.get(k) for k in QUOTA_KEYS},
                "usage": dict(record.usage),
                "effective": {k: effective(state, record, k) for k in QUOTA_KEYS}}
