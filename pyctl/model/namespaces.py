"""Verbs of the namespace tree and of address ownership: create, destroy,
address-add/-del, push, pull, assign-and-push, the listings (plain and
tagged), owner and the source-address rule.

Names and argument orders are the control socket's (``pyctl.control.verb_table``;
tests/control/test_verb_table.py holds them to it).

Address ownership: within one L2 scope (an L2 and its L3 children) an IP
address has at most one holder. Sibling L2 namespaces are separate scopes and
may use the same addresses.
"""
from fastpath import source_rule
from pyctl import errors
from pyctl.deprecated import with_renamed_aliases
from pyctl.model.access import Access, locked
from pyctl.model.events import (AddressAdded, AddressAssigned, AddressDeleted, AddressPulled,
                                AddressPushed, DestroyedNamespace, NamespaceCreated,
                                NamespaceDestroyed, NamespaceOptionsSet)
from pyctl.model.namespace_options import check_namespace_options
from pyctl.model.addressing import (LIMITED_BROADCAST, LOOPBACK_INTERFACES, check_namespace_name,
                              parse_interface, parse_ip, sort_key)
from pyctl.model.quotas import QUOTA_KEYS, RESOURCE_KEYS, charge, charge_under, check_capacity
from pyctl.model.state import ROOT_ID
from pyctl.model.subnets import check_edges, forget_scope, note_edges, note_own
from pyctl.model.values import L2, L3, TaggedAddress

KINDS = (L2, L3)


_ADDRESS_VERBS = {    # what the verb is doing: (the kind it takes, else "cannot ...", why)
    "adding": (L2, "add {}", "addresses are created in its parent L2 and pushed; "
                             "see assign_and_push"),
    "deleting": (L2, "delete {}", "its addresses go back with pull"),
    "pushing": (L3, "push {} into", "push moves an address from an L2 into one of its L3 children"),
    "pulling": (L3, "pull {} from", "an L2 keeps its addresses; delete them with address_del"),
    "assigning": (L3, "assign {} to", "use address_add for an L2"),
}


def _check_flag(name, value):
    # strict: a control-socket "false" (a non-empty string) must not mean yes
    if not isinstance(value, bool):
        raise errors.InvalidArgument(f"{name} must be true or false, not {value!r}")


@with_renamed_aliases
class NamespaceVerbs(Access):

    # -- the tree -------------------------------------------------------------

    @locked
    def namespace(self, ref):
        """The namespace named ``ref`` (name or id)."""
        return self._resolve(self._actor(), ref).value()

    @locked
    def namespaces(self):
        """Every visible namespace, in tree order (a parent before its children)."""
        state = self._sw._state
        top = self._actor() or state.namespaces[ROOT_ID]
        return [record.value() for record in state.subtree(top)]

    @locked
    def scope_of(self, ns):
        """The L2 namespace whose routes and address space ``ns`` uses (an L2: itself)."""
        state = self._sw._state
        record = self._resolve(self._actor(), ns)
        return state.namespaces[state.scope_id(record)].value()

    @locked
    def create(self, name, kind, parent=None):
        """Create namespace ``name`` of ``kind`` ("l2" or "l3") under ``parent``
        (default: the root, or the acting namespace)."""
        actor = self._actor()
        self._configuring(actor, f"creating namespace {name!r}")
        state = self._sw._state
        check_namespace_name(name)
        if not isinstance(kind, str) or kind.lower() not in KINDS:
            raise errors.InvalidArgument(f"invalid namespace kind {kind!r}: use 'l2' or 'l3'")
        kind = kind.lower()
        if parent is None:
            parent_record = actor or state.namespaces[ROOT_ID]
        else:
            parent_record = self._resolve(actor, parent)
        if parent_record.kind == L3:
            raise errors.InvalidArgument(
                f"cannot create {name!r} under '{parent_record.name}': "
                f"'{parent_record.name}' is an L3 namespace (a leaf)")
        if name in state.by_name:
            raise errors.AlreadyExists(f"a namespace named {name!r} already exists")
        check_capacity(state, "namespace", state.capacity.get("namespaces"), len(state.namespaces))
        charge_under(state, parent_record.id, {"namespaces": 1})

        record = state.add_namespace(name, kind, parent_record.id)
        value = record.value()
        self._sw._commit(NamespaceCreated, namespace=value)
        return value

    @locked
    def destroy(self, namespace, recursive=False):
        """Destroy a namespace (see docs/model.md for what happens to its addresses).

        An L3's addresses return to its parent. An L2 with children is refused
        unless ``recursive``; then its whole subtree goes, and with it every
        address of the scopes that die. Ports attached to destroyed namespaces
        are removed.
        """
        actor = self._actor()
        self._configuring(actor, f"destroying namespace {namespace!r}")
        state = self._sw._state
        _check_flag("recursive", recursive)
        record = self._resolve(actor, namespace)
        if record.id == ROOT_ID:
            raise errors.PermissionDenied(f"the root namespace '{record.name}' cannot be destroyed")
        if actor is not None and record.id == actor.id:
            raise errors.PermissionDenied(
                f"'{record.name}' cannot destroy itself: its parent (or the administrator) can")
        if record.children and not recursive:
            names = ", ".join(f"'{state.namespaces[c].name}'" for c in record.children)
            raise errors.Busy(f"cannot destroy '{record.name}': it still has children ({names}); "
                              f"destroy them first or destroy recursively")
        doomed = state.subtree(record)
        parent = state.namespaces[record.parent]
        charge_under(state, parent.id, _held_by(record))
        returned = ()
        if record.kind == L3:
            returned = tuple(sorted(record.addresses.values(), key=sort_key))
            for iface in returned:
                _move_address(state, iface, parent, record, parent)
        destroyed = []
        for doomed_record in reversed(doomed):        # children before parents
            ports = tuple(state.ports[name].value() for name in doomed_record.ports)
            for port in ports:
                self._drop_port(state.ports[port.name])
            destroyed.append(DestroyedNamespace(
                doomed_record.value(),
                tuple(sorted(doomed_record.addresses.values(), key=sort_key)),
                tuple(sorted(doomed_record.routes, key=sort_key)), ports,
                tuple(sorted(doomed_record.groups, key=sort_key))))
            if doomed_record.kind == L2:
                state.pop(state.holders, doomed_record.id)
                forget_scope(state, doomed_record.id)
                for netns in sorted(doomed_record.netns):
                    state.pop(state.netns_delegated, netns)
            state.pop(state.namespaces, doomed_record.id)
            state.pop(state.by_name, doomed_record.name)
            state.release_id(state.namespace_ids, doomed_record.id)
        state.remove_child(parent, record)
        self._sw._commit(NamespaceDestroyed, namespace=destroyed[-1].namespace,
                         parent=parent.value(), destroyed=tuple(destroyed), returned=returned)

    @locked
    def namespace_set(self, namespace, options=None):
        """Set options of L2 ``namespace`` (``pyctl.model.namespace_options``: the keys
        given change, the others stay)."""
        actor = self._actor()
        self._configuring(actor, f"setting options of {namespace!r}")
        checked = check_namespace_options(options)
        record = self._resolve(actor, namespace)
        self._l2_only(record, "set options", "options belong to its scope, the parent L2")
        for key, value in checked.items():      # logged: a rolled-back transaction undoes it
            self._sw._state.put(record.options, key, value)
        self._sw._commit(NamespaceOptionsSet, namespace=record.value(),
                         options=tuple(sorted(record.options.items())))

    @locked
    def namespace_options(self, namespace=None):
        """The options of ``namespace``'s scope (default: the acting one's)."""
        state = self._sw._state
        record = self._resolve_or_acting(self._actor(), namespace)
        return dict(state.namespaces[state.scope_id(record)].options)

    # -- addresses ------------------------------------------------------------

    def _address_verb(self, doing, address, namespace):
        """How every address verb starts: the acting namespace may configure, ``address``
        is an interface (``A/N``), ``namespace`` one the actor sees and of the kind the
        verb takes (``_ADDRESS_VERBS``); returns both."""
        actor = self._actor()
        self._configuring(actor, f"{doing} address {address!r}")
        iface, record = parse_interface(address), self._resolve(actor, namespace)
        kind, refusal, hint = _ADDRESS_VERBS[doing]
        only = self._l2_only if kind == L2 else self._l3_only
        only(record, refusal.format(iface), hint)
        return iface, record

    def _check_holds(self, l2, iface, purpose=""):
        """L2 ``l2`` itself holds ``iface`` (that prefix), or NotFound; called once no other
        namespace of its scope holds the address."""
        held = l2.addresses.get(iface.ip)
        if held is None:
            raise errors.NotFound(f"'{l2.name}' has no address {iface}{purpose}")
        if held != iface:
            raise errors.NotFound(f"'{l2.name}' has {held}, not {iface}")

    def _parent_and_holder(self, record, iface):
        """L3 ``record``'s parent L2 and who holds ``iface`` in its scope (AlreadyExists if
        ``record`` does)."""
        parent = self._sw._state.namespaces[record.parent]
        holder = self._sw._state.holders[parent.id].get(iface.ip)
        if holder == record.id:
            raise errors.AlreadyExists(f"'{record.name}' already holds {iface.ip}")
        return parent, holder

    def _holder_name(self, ident):
        return self._sw._state.namespaces[ident].name

    def _l2_only(self, record, verb, hint):
        if record.kind != L2:
            raise errors.InvalidArgument(
                f"cannot {verb} in '{record.name}': it is an L3 namespace ({hint})")

    def _l3_only(self, record, verb, hint):
        if record.kind != L3:
            raise errors.InvalidArgument(
                f"cannot {verb} '{record.name}': it is an L2 namespace ({hint})")

    @locked
    def address_add(self, namespace, address):
        """Create ``address`` (``A/N``) in L2 ``namespace``."""
        iface, record = self._address_verb("adding", address, namespace)
        holders = self._sw._state.holders[record.id]
        holder = holders.get(iface.ip)
        if holder == record.id:
            raise errors.AlreadyExists(
                f"'{record.name}' already has {iface.ip} (as {record.addresses[iface.ip]})")
        if holder is not None:
            raise errors.AddressInUse(f"{iface.ip} is held by '{self._holder_name(holder)}' "
                                      f"in the scope of '{record.name}'")
        check_edges(self._sw._state, record.id, iface)
        _hold_itself(self._sw._state, record, iface, True)
        self._sw._commit(AddressAdded, address=iface, scope=record.value())

    @locked
    def address_del(self, namespace, address):
        """Delete ``address`` from L2 ``namespace`` (it must hold it, not a child)."""
        iface, record = self._address_verb("deleting", address, namespace)
        holder = self._sw._state.holders[record.id].get(iface.ip)
        if holder not in (None, record.id):
            raise errors.AddressInUse(f"{iface} is held by '{self._holder_name(holder)}': "
                                      f"pull it back to '{record.name}' first")
        self._check_holds(record, iface)
        _hold_itself(self._sw._state, record, iface, False)
        self._sw._commit(AddressDeleted, address=iface, scope=record.value())

    @locked
    def push(self, address, namespace):
        """Move ``address`` from the parent L2 of L3 ``namespace`` into it."""
        iface, record = self._address_verb("pushing", address, namespace)
        state = self._sw._state
        parent, holder = self._parent_and_holder(record, iface)
        if holder not in (None, parent.id):
            raise errors.AddressInUse(f"{iface.ip} is held by '{self._holder_name(holder)}', "
                                      f"not by '{parent.name}'")
        self._check_holds(parent, iface, " to push")
        _move_address(state, iface, parent, parent, record)
        self._sw._commit(AddressPushed, address=iface, scope=parent.value(),
                         tenant=record.value())

    @locked
    def pull(self, address, namespace):
        """Give ``address`` held by L3 ``namespace`` back to its parent L2."""
        iface, record = self._address_verb("pulling", address, namespace)
        state = self._sw._state
        if record.addresses.get(iface.ip) != iface:
            raise errors.NotFound(f"'{record.name}' does not hold {iface}")
        parent = state.namespaces[record.parent]
        _move_address(state, iface, parent, record, parent)
        self._sw._commit(AddressPulled, address=iface, scope=parent.value(),
                         tenant=record.value())

    @locked
    def assign_and_push(self, address, namespace):
        """Create ``address`` in the parent L2 of L3 ``namespace`` and push it, in one
        step: the L2 never holds it."""
        iface, record = self._address_verb("assigning", address, namespace)
        state = self._sw._state
        parent, holder = self._parent_and_holder(record, iface)
        if holder is not None:
            raise errors.AddressInUse(f"{iface.ip} is held by '{self._holder_name(holder)}' "
                                      f"in the scope of '{parent.name}'")
        check_edges(state, parent.id, iface)
        charge(state, record, "addresses")

        state.put(record.addresses, iface.ip, iface)
        state.put(state.holders[parent.id], iface.ip, record.id)
        note_edges(state, parent.id, iface, True)
        self._sw._commit(AddressAssigned, address=iface, scope=parent.value(),
                         tenant=record.value())

    @locked
    def addresses(self, namespace=None, tagged=False):
        """Loopback plus the addresses ``namespace`` (default: the acting one) holds,
        as ``A/N`` strings.

        ``tagged=True``: ``TaggedAddress(address, owner)`` tuples, and for an L2
        also every descendant's addresses tagged with the holder's name."""
        _check_flag("tagged", tagged)
        state = self._sw._state
        record = self._resolve_or_acting(self._actor(), namespace)
        own = [str(i) for i in LOOPBACK_INTERFACES]
        own += [str(i) for i in sorted(record.addresses.values(), key=sort_key)]
        if not tagged:
            return own
        out = [TaggedAddress(address, record.name) for address in own]
        for descendant in state.subtree(record)[1:]:
            out += [TaggedAddress(str(i), descendant.name)
                    for i in sorted(descendant.addresses.values(), key=sort_key)]
        return out

    @locked
    def owner(self, address, namespace=None):
        """The namespace holding IP ``address`` in the scope of ``namespace`` (default:
        the acting one), or ``None``."""
        state = self._sw._state
        record = self._resolve_or_acting(self._actor(), namespace)
        ip = parse_ip(address)
        holder = state.holders[state.scope_id(record)].get(ip)
        if holder is None:
            return None
        holder_record = state.namespaces[holder]
        actor = self._actor()
        if actor is not None and not state.is_within(holder_record, actor):
            return None
        return holder_record.value()

    @locked
    def may_send_from(self, ns, source):
        """The bind check: may namespace ``ns`` use IP ``source`` as its source address?

        The source rule (``fastpath.source_rule.may_send_from``: an L3 its own
        addresses, an L2 any address no other namespace of its scope holds, either
        0.0.0.0 / ``::``, martians never), widened by what a socket may bind though
        no link carries it as a source (``_bind_only``)."""
        state = self._sw._state
        record = self._resolve(self._actor(), ns)
        ip = parse_ip(source, what="source address")
        owner = state.holders[state.scope_id(record)].get(ip)
        return (source_rule.may_send_from(record.kind == L3, record.id, owner, ip)
                or _bind_only(record, owner, ip))


def _held_by(record):
    """What destroying ``record`` takes from its ancestors' counts (negative deltas): an
    L3 itself, its ports, memberships and socket (its addresses return to its parent);
    an L2 everything its subtree holds, and itself."""
    if record.kind == L3:
        return {"namespaces": -1, "ports": -len(record.ports), "groups": -len(record.groups),
                "sockets": -int(record.socket)}
    return {key: -(record.usage[key] + (0 if key in RESOURCE_KEYS
                                        else 1 if key == "namespaces" else int(record.socket)))
            for key in QUOTA_KEYS}


def _hold_itself(state, record, iface, add):
    """L2 ``record`` holds ``iface`` itself from now on (``add``: address_add), or no
    longer (address_del): its count, its addresses, its scope's holders and subnets."""
    charge(state, record, "addresses", 1 if add else -1)
    if add:
        state.put(record.addresses, iface.ip, iface)
        state.put(state.holders[record.id], iface.ip, record.id)
    else:
        state.pop(record.addresses, iface.ip)
        state.pop(state.holders[record.id], iface.ip)
    note_edges(state, record.id, iface, add)
    note_own(state, record.id, iface, add)


def _move_address(state, iface, scope, source, target):
    """Move ``iface`` from ``source`` to ``target``: L2 ``scope`` and one of its L3
    children, either way (push, pull, an L3's addresses when it is destroyed)."""
    state.pop(source.addresses, iface.ip)
    state.put(target.addresses, iface.ip, iface)
    state.put(state.holders[scope.id], iface.ip, target.id)
    note_own(state, scope.id, iface, target is scope)


def _bind_only(record, owner, ip):
    """The design thread's derivative addresses: what a socket of ``record`` may bind
    although a link never carries it as a source.  An L2: any address no other
    namespace holds (loopback, multicast, broadcasts).  An L3: loopback, multicast,
    the limited broadcast and the directed broadcasts of its own IPv4 subnets
    (prefixes up to /30).  Either: IPv6 link-local addresses, its link's own (no
    namespace holds them; they never leave the link)."""
    if record.kind == L2:
        return owner is None or owner == record.id
    if ip.is_loopback or ip.is_multicast or ip == LIMITED_BROADCAST:
        return True
    if ip.version == 6 and ip.is_link_local:
        return True
    return any(iface.version == 4 and iface.network.prefixlen <= 30
               and ip == iface.network.broadcast_address
               for iface in record.addresses.values())
