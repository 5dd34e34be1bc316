"""Which kernel network namespaces a client may put a port's kernel side into (issue 14).

A port's kernel side -- its ``netns``, ``address`` and ``gateway`` options -- is set up by
the daemon with the daemon's privileges: the TAP is moved into that kernel namespace (made
if it does not exist), given the address, and a default route via the gateway.  So who
may name which kernel namespace is a rule of the model, checked in ``port_add`` before
anything changes (``check_port_reach``):

- the **administrator** may name any (an existing one, a container's, is entered);
- a **delegated client** (acting as an L2 below the root) only
  - a kernel namespace the administrator delegated to an L2 of its own subtree
    (``netns_delegate``; ``netns = [...]`` of an L2 in the config), or
  - one the switch creates for its subtree: a name no port uses and nobody was given
    (the first port makes it *create-only*: the daemon must create it and refuses,
    EPERM, to enter one that exists in the kernel already, ``Switch.netns_must_be_created``),
    or a create-only one that only ports of its subtree use;
  and never ``address`` or ``gateway`` without ``netns``: they would configure the
  daemon's own (host) namespace.

Anything else is ``PermissionDenied`` (EPERM) naming the rule; nothing changes.  Only
the administrator delegates and revokes: a delegated client that could delegate a name
to itself would make the daemon enter any kernel namespace of that name, someone
else's included.  Who
uses which name is ``State.note_netns``'s index; a name stops being create-only when its
last port goes.
"""
from pyctl import errors
from pyctl.model.access import Access, locked
from pyctl.model.addressing import check_netns_name
from pyctl.model.events import NetnsDelegated, NetnsRevoked
from pyctl.model.values import L2

__all__ = ["KernelReachVerbs", "check_port_reach"]

_RULE = ("a delegated client names only kernel namespaces the switch creates for its "
         "subtree or that were delegated to an L2 of it (netns-delegate; netns = [...] "
         "of an L2 in the config)")


def _may_use(state, actor, netns):
    """May delegated ``actor`` (an L2 record) name kernel namespace ``netns``?"""
    delegate = state.netns_delegated.get(netns)
    if delegate is not None:
        return state.is_within(state.namespaces[delegate], actor)
    users = state.netns_ports.get(netns)
    if not users:
        return True                                   # new: the switch will create it
    return netns in state.netns_create_only and all(
        state.is_within(state.namespaces[state.ports[name].ns], actor) for name in users)


def check_port_reach(state, actor, options):
    """Refuse (EPERM) a port whose checked ``options`` reach outside ``actor``'s subtree."""
    if actor is None:
        return
    netns = options.get("netns")
    if netns is None:
        given = [key for key in ("address", "gateway") if key in options]
        if given:
            raise errors.PermissionDenied(
                f"'{actor.name}' may not set {' and '.join(given)} without netns: they would "
                f"configure the daemon's own host namespace ({_RULE})")
        return
    if not _may_use(state, actor, netns):
        raise errors.PermissionDenied(
            f"'{actor.name}' may not put a port into kernel namespace {netns!r}: {_RULE}")


class KernelReachVerbs(Access):
    """Delegating kernel namespaces to an L2 (verbs ``netns-delegate``, ``netns-revoke``)."""

    def _delegate_target(self, actor, namespace, netns, verb):
        self._configuring(actor, f"{verb} kernel namespace {netns!r}")
        if actor is not None:
            raise errors.PermissionDenied(
                f"'{actor.name}' may not {verb} kernel namespace {netns!r}: only the "
                f"administrator gives kernel namespaces to an L2 ({_RULE})")
        check_netns_name(netns)
        record = self._resolve(actor, namespace)
        if record.kind != L2:
            raise errors.InvalidArgument(f"cannot {verb} {netns!r} to '{record.name}': kernel "
                                         f"namespaces are delegated to an L2")
        return record

    @locked
    def netns_delegate(self, namespace, netns):
        """Let the clients of L2 ``namespace`` (and of its ancestors) put ports into kernel
        namespace ``netns``, existing or not (the administrator only)."""
        record = self._delegate_target(self._actor(), namespace, netns, "delegate")
        state = self._sw._state
        holder = state.netns_delegated.get(netns)
        if holder is not None:
            raise errors.AlreadyExists(
                f"kernel namespace {netns!r} is delegated to "
                f"'{state.namespaces[holder].name}' already: revoke it first")
        outside = sorted(name for name in state.netns_ports.get(netns, ())
                         if not state.is_within(state.namespaces[state.ports[name].ns], record))
        if outside:
            raise errors.Busy(f"kernel namespace {netns!r} holds ports outside '{record.name}' "
                              f"({', '.join(outside)}): it cannot be delegated to it")
        state.put(state.netns_delegated, netns, record.id)
        state.add(record.netns, netns)
        self._sw._commit(NetnsDelegated, namespace=record.value(), netns=netns)

    @locked
    def netns_revoke(self, namespace, netns):
        """Take back kernel namespace ``netns`` from L2 ``namespace`` (no port may use it;
        the administrator only)."""
        record = self._delegate_target(self._actor(), namespace, netns, "revoke")
        state = self._sw._state
        if netns not in record.netns:
            raise errors.NotFound(f"kernel namespace {netns!r} is not delegated to "
                                  f"'{record.name}'")
        users = sorted(state.netns_ports.get(netns, ()))
        if users:
            raise errors.Busy(f"kernel namespace {netns!r} is used by port(s) "
                              f"{', '.join(users)}: delete them first")
        state.pop(state.netns_delegated, netns)
        state.discard(record.netns, netns)
        self._sw._commit(NetnsRevoked, namespace=record.value(), netns=netns)

    @locked
    def netns_delegated(self, namespace=None):
        """The kernel namespaces delegated to L2 ``namespace`` (default: the acting one)."""
        return sorted(self._resolve_or_acting(self._actor(), namespace).netns)

    @locked
    def netns_must_be_created(self, netns):
        """Whether the daemon must create kernel namespace ``netns`` itself and may not
        enter one that exists already (a delegated client named it first)."""
        return netns in self._sw._state.netns_create_only
