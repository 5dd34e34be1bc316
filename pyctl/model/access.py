"""What every verb of the model shares: the lock, name resolution limited to
what the acting namespace may see, and the NET_ADMIN check.

Visibility: the administrator sees everything; a namespace sees only its own
subtree (itself and its descendants). Anything else resolves as ``NotFound``
with the same message as a name that does not exist, so a tenant cannot probe
for its neighbours.
"""
import functools

from pyctl import errors
from pyctl.model.state import ROOT_ID
from pyctl.model.values import L3, Namespace, Port


def _is_id_text(text):
    return text.isascii() and text.isdigit()


def locked(method):
    """Run a verb under the switch's lock (reentrant: verbs may call verbs)."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self._sw._lock:
            return method(self, *args, **kwargs)
    return wrapper


class Access:
    """Resolution and capability checks; ``self._sw`` is the Switch, ``self._actor()`` who acts."""

    def _resolve(self, actor, ref):
        """The record of namespace ``ref`` (a name, an id, a digit string or a ``Namespace``)."""
        state = self._sw._state
        expected_name = None
        if isinstance(ref, Namespace):
            ident, expected_name = ref.id, ref.name
        elif isinstance(ref, bool) or not isinstance(ref, (int, str)):
            raise errors.InvalidArgument(f"a namespace is named by its name or id, not {ref!r}")
        elif isinstance(ref, int):
            ident = ref
        elif _is_id_text(ref):
            ident = int(ref)
        else:
            ident = state.by_name.get(ref)
        record = state.namespaces.get(ident)
        if (record is None or (expected_name is not None and record.name != expected_name)
                or (actor is not None and not state.is_within(record, actor))):
            shown = ref.name if isinstance(ref, Namespace) else ref
            raise errors.NotFound(f"no namespace {shown!r}")
        return record

    def _resolve_or_acting(self, actor, ref):
        """``_resolve``, where ``None`` is the acting namespace (the root for the
        administrator): the default of every verb whose namespace is optional, as on
        the control socket."""
        if ref is None:
            return actor if actor is not None else self._sw._state.namespaces[ROOT_ID]
        return self._resolve(actor, ref)

    def _names_a_namespace(self, ref):
        """Whether ``ref`` names an existing namespace, visible or not (only to read the
        old argument order of join/leave/members: ``pyctl.deprecated.group_first``)."""
        state = self._sw._state
        if isinstance(ref, Namespace):
            return True
        if isinstance(ref, bool) or not isinstance(ref, (int, str)):
            return False
        if isinstance(ref, int) or _is_id_text(ref):
            return int(ref) in state.namespaces
        return ref in state.by_name

    def _configuring(self, actor, verb):
        """Refuse a configuring verb to an L3 actor: it has no NET_ADMIN."""
        if actor is not None and actor.kind == L3:
            raise errors.PermissionDenied(
                f"'{actor.name}' is an L3 namespace without NET_ADMIN: {verb} is refused")

    def _resolve_port(self, actor, ref):
        """The record of port ``ref`` (name, id, digit string or ``Port``), if visible."""
        state = self._sw._state
        if isinstance(ref, Port):
            name = ref.name
        elif isinstance(ref, bool) or not isinstance(ref, (int, str)):
            raise errors.InvalidArgument(f"a port is named by its name or id, not {ref!r}")
        elif isinstance(ref, int) or _is_id_text(ref):
            name = state.port_names.get(int(ref))
        else:
            name = ref
        record = state.ports.get(name)
        if (record is None or (isinstance(ref, Port) and record.id != ref.id)
                or (actor is not None
                    and not state.is_within(state.namespaces[record.ns], actor))):
            shown = ref.name if isinstance(ref, Port) else ref
            raise errors.NotFound(f"no port {shown!r}")
        return record

    def _drop_port(self, record):
        """Remove a port record everywhere (the caller has checked it may go)."""
        state = self._sw._state
        state.pop(state.ports, record.name)
        state.pop(state.port_names, record.id)
        state.pop(state.macs, record.mac)
        state.release_id(state.port_ids, record.id)
        state.remove(state.namespaces[record.ns].ports, record.name)
        state.note_netns(record, False)
