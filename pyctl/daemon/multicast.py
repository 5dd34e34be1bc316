"""Multicast in the daemon: IGMP and MLD snooping and the querier, tied to the model.

The fast path hands every IGMP frame up (reason ``igmp``) and every MLD one
(reason ``mld``: IPv6's, ``pyctl.daemon.mld``); ``Multicast.handle`` feeds it to
the ``IgmpSnooper`` (pyctl/daemon/igmp.py, which holds both families' groups) as
the namespace of the port it came in on, and applies the joins and leaves it
learns to the model *as that namespace* (``switch.as_namespace(ns).join(...)``
inside ``Daemon.change()``): a learned membership is an ordinary model
membership, compiled into the fast path's group table like any other, listed
by ``groups``/``members``.  MLD is IGMP exactly, timers and bounds included.

Learned and configured memberships (docs/multicast.md):

- *configured*: set through the API, the control socket or the config file.
  It never expires, and the endpoint's own IGMP leave does not remove it; only
  a ``leave`` verb does.  Joining through the API a group the namespace has
  learned answers ``EEXIST``; ``leave`` then ``join`` (one transaction) pins it.
- *learned*: from a report.  It lasts the Group Membership Interval (260 s)
  after the last report; an L3's leave removes it at once (an L3 is one
  endpoint: fast leave); an L2 port's leave (several hosts may sit behind an
  uplink) cuts it to the Last Member Query Time (2 s) and sends a
  group-specific query out of that namespace's ports.

The model is the truth of *who* is a member; the snooper's tables keep *how*
(learned, with its expiry, or configured).  Model events keep them in line:
a ``GroupJoined`` the snooper did not make is configured, a ``GroupLeft`` drops
the entry, a ``NamespaceDestroyed`` takes the entries of what it destroyed.

The querier: Linux hosts repeat their reports only when queried, so every open
port gets an IGMPv3 and an MLDv2 general query when it first appears (and a
second pair a quarter of the query interval later, RFC 3376's startup
queries), then every 125 s.  IGMP queries come from the scope's own address on
the endpoint's subnet (0.0.0.0 when it has none), MLD queries from the port's
link-local address, both from the port's MAC.
"""
from __future__ import annotations

import ipaddress
import logging
from collections import defaultdict

from pyctl import errors
from pyctl.daemon import igmp, mld
from pyctl.daemon import packets as pk
from pyctl.daemon import packets6 as pk6
from pyctl.daemon.igmp import group_order, group_text
from pyctl.model.addressing import is_link_scope_group
from pyctl.model.events import GroupJoined, GroupLeft, NamespaceDestroyed

log = logging.getLogger("tapswitch.multicast")

__all__ = ["Multicast", "group_counters", "group_keys", "STARTUP_QUERY_COUNT"]

STARTUP_QUERY_COUNT = 2          # RFC 3376 8.7: the robustness variable
LAST_MEMBER_QUERY_INTERVAL = 1.0  # RFC 3376 8.8: max response time of a group-specific query


class Multicast:
    """Snooping tables, querier and their glue to the model, for one daemon.

    ``view`` is what the fast path runs, as the slow path sees it
    (``pyctl.daemon.view.PlanView``: ports, namespaces, ``icmp_source``, ``source_allowed``),
    ``change`` is ``Daemon.change`` (a model transaction applied to the fast
    path, undone as a whole on failure).  Every method takes ``now``
    (``time.monotonic()`` seconds) and returns the frames to send, as
    ``[(port_id, frame)]``."""

    def __init__(self, switch, view, change, config: igmp.IgmpConfig | None = None):
        self.switch = switch
        self.view = view
        self._change = change
        self.snooper = igmp.IgmpSnooper(config)
        self.config = self.snooper.config
        self.counters = self.snooper.counters
        self._learning = False            # True while applying what the snooper learned
        self._ports: dict[int, list] = {}   # port id -> [token, next startup query, queries left]
        self._unsubscribe = None

    def set_config(self, config: igmp.IgmpConfig) -> None:
        """New snooping settings, from now (a reload: pyctl.daemon.live_limits)."""
        self.snooper.set_config(config)
        self.config = config

    # ------------------------------------------------------------------ the model

    def attach(self) -> None:
        """Take the model's memberships as configured and follow its changes."""
        for ns in self.switch.snapshot()["namespaces"]:
            scope = ns["id"] if ns["kind"] == "l2" else ns["parent"]
            for text in ns["groups"]:
                self._pin(scope, ns["id"], text)
        self._unsubscribe = self.switch.subscribe(self._on_event)

    def detach(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _pin(self, scope, ns_id, group):
        group = _table_group(group)
        if group is not None:
            self.snooper.table(scope).join(ns_id, group)

    def _on_event(self, event):
        if isinstance(event, NamespaceDestroyed):
            for gone in event.destroyed:
                ns = gone.namespace
                for table in self.snooper.tables.values():
                    table.remove_namespace(ns.id)
                if ns.is_l2:
                    self.snooper.remove_scope(ns.id)
        elif self._learning:
            return                        # the snooper's own change: its table has it
        elif isinstance(event, GroupJoined):
            self._pin(event.namespace.scope_id, event.namespace.id, event.group)
        elif isinstance(event, GroupLeft):
            group = _table_group(event.group)
            table = self.snooper.tables.get(event.namespace.scope_id)
            if group is not None and table is not None:
                table.drop(event.namespace.id, group)

    # ------------------------------------------------------------------ snooping

    def handle(self, port_id: int, frame: bytes, now: float) -> list[tuple[int, bytes]]:
        """One IGMP or MLD frame the fast path handed up from ``port_id``."""
        eth = pk.parse_ethernet(frame)
        protocol = "mld" if eth is not None and eth.ethertype == pk6.ETH_P_IPV6 else "igmp"
        where = self._port(port_id)
        if where is None:
            self.counters[f"drop_{protocol}_unknown_port"] += 1
            return []
        ns, scope, is_l3 = where
        if protocol == "mld":
            ip6 = pk6.parse_ipv6(eth.payload)
            events = None if ip6 is None else mld.parse_mld(ip6)
            changes, queries = self.snooper.apply(scope, ns, events, now, is_l3, "mld")
            return self._after(changes, queries, scope, now)
        ip = None if eth is None or eth.ethertype != pk.ETH_P_IP else pk.parse_ipv4(eth.payload)
        if ip is None:
            self.counters["drop_igmp_malformed"] += 1
            return []
        # A report may come from 0.0.0.0 (a host without an address yet, RFC 3376 4.2.13).
        if ip.src != 0 and not self.view.source_allowed(port_id, ip.src):
            self.counters["drop_igmp_spoofed_source"] += 1
            return []
        changes, queries = self.snooper.handle(scope, ns, eth.payload, now, fast_leave=is_l3)
        return self._after(changes, queries, scope, now)

    def _after(self, changes, queries, scope, now):
        """Apply what a message taught; the group-specific queries it asks for."""
        self._apply([(scope, c) for c in changes], now)
        out = []
        for request in queries:
            self.counters[f"{_protocol(request.group)}_group_queries"] += 1
            out.extend(self._queries(self._ports_of(request.namespace), request.group))
        return out

    def _apply(self, changes, now):
        """Put what the snooper learned into the model; if the model or the fast path
        refuses, put the snooper's tables back (a join is forgotten, a leave is retried
        after the Last Member Query Time)."""
        if not changes:
            return
        self._learning = True
        try:
            with self._change() as sw:
                for _, change in changes:
                    acting = sw.as_namespace(change.namespace)
                    group = group_text(change.group)
                    with sw.read() as reader:       # O(1): a flood of reports is many changes
                        member = reader.is_member(change.namespace, ipaddress.ip_address(group))
                    if change.joined and not member:
                        acting.join(group, change.namespace)
                    elif not change.joined and member:
                        acting.leave(group, change.namespace)
        except errors.TapswitchError as exc:
            self.counters["igmp_apply_failed"] += len(changes)
            log.warning("snooped membership change refused (%s: %s); %d change(s) undone",
                        exc.code, exc.message, len(changes))
            for scope, change in changes:
                table = self.snooper.table(scope)
                if change.joined:
                    table.drop(change.namespace, change.group)
                else:
                    try:
                        table.report(change.namespace, change.group, now)
                    except OverflowError:
                        continue
                    table.leave(change.namespace, change.group, now, fast=False)
        finally:
            self._learning = False

    # ------------------------------------------------------------------ timers

    def tick(self, now: float, open_ports) -> list[tuple[int, bytes]]:
        """Expire memberships whose reports stopped; send the queries that are due.

        ``open_ports`` maps the id of every open port to an object that changes
        when the port is reopened (the daemon's ``PortManager.open``)."""
        self._apply(self.snooper.expire(now), now)
        out = []
        for pid in [p for p in self._ports if p not in open_ports]:
            del self._ports[pid]
        due = []
        for pid, token in open_ports.items():
            state = self._ports.get(pid)
            if state is None or state[0] is not token:
                state = self._ports[pid] = [token, now, STARTUP_QUERY_COUNT]
            if state[2] and now >= state[1]:
                state[1] = now + self.config.query_interval / 4
                state[2] -= 1
                due.append(pid)
        if self.snooper.general_query_due(now):
            due = list(open_ports)
        if due:
            self.counters["igmp_general_queries"] += len(due)
            self.counters["mld_general_queries"] += len(due)
            out.extend(self._queries(sorted(set(due)), 0))
            out.extend(self._queries(sorted(set(due)), None))
        return out

    def _queries(self, port_ids, group):
        """Queries out of each port: IGMP general (``group`` 0), MLD general (None), or
        group-specific for ``group`` in its family."""
        out = []
        interval = int(self.config.query_interval)
        specific = {} if group in (0, None) else {"max_resp_time": LAST_MEMBER_QUERY_INTERVAL}
        for pid in port_ids:
            mac = self.view.port_mac(pid)
            if mac is None:
                continue
            if group is None or isinstance(group, ipaddress.IPv6Address):
                frame = mld.build_query_frame(mac, group, query_interval=interval, **specific)
            else:
                frame = igmp.build_query_frame(mac, self.view.icmp_source(pid) or 0, group,
                                               query_interval=interval, **specific)
            out.append((pid, frame))
        return out

    # ------------------------------------------------------------------ reading

    def memberships(self, api, now: float) -> dict:
        """``{scope: {group: [{"namespace", "origin", "expires_in"}]}}`` for the
        namespaces ``api`` sees (the ``multicast`` verb)."""
        names = {ns.id: ns.name for ns in api.namespaces()}
        out = {}
        for scope, table in sorted(self.snooper.tables.items()):
            for group, members in sorted(table.groups().items(), key=lambda i: group_order(i[0])):
                rows = []
                for ns in sorted(members):
                    if ns not in names:
                        continue
                    expiry = table.expiry(group, ns)
                    learned = expiry != float("inf")
                    rows.append({"namespace": names[ns],
                                 "origin": "learned" if learned else "configured",
                                 "expires_in": round(max(0.0, expiry - now), 1) if learned else None})
                if rows:
                    scope_name = names.get(scope) or api.scope_of(rows[0]["namespace"]).name
                    out.setdefault(scope_name, {})[group_text(group)] = rows
        return out

    # ------------------------------------------------------------------ helpers

    def _port(self, port_id):
        return self.view.port_place(port_id)

    def _ports_of(self, ns):
        return self.view.ports_of(ns)


def group_counters(raw_groups: dict, api, namespace=None) -> dict:
    """The fast path's per-group counters (``{(scope, group): {...}}``) as
    ``{scope name: {group: {...}}}``, for the scopes ``api`` sees (an L3 sees none: a
    group's counters are its scope's, everybody's traffic to it), only ``namespace``'s
    scope if given."""
    visible = {ns.id: ns for ns in api.namespaces()}
    only = None if namespace is None else api.scope_of(namespace).id
    out = defaultdict(dict)
    for (scope, group), value in sorted(raw_groups.items(),
                                        key=lambda i: (i[0][0], group_order(i[0][1]))):
        if (only is None or scope == only) and scope in visible:
            out[visible[scope].name][group_text(group)] = dict(value)
    return dict(out)


def group_keys(api, datapath, namespace=None):
    """The fast path's group keys ``group_counters`` may show ``api`` (None: all of them,
    the administrator's unfiltered view), read from the datapath's per-scope index."""
    acting = api.acting
    if namespace is not None:
        scopes = [api.scope_of(namespace).id]
    elif acting is None:
        return None
    elif acting.kind == "l3":
        return []                 # a group's counters are its scope's (group_counters)
    else:
        scopes = [ns.id for ns in api.namespaces() if ns.kind == "l2"]
    return [key for scope in scopes for key in datapath.group_keys(scope)]


def _table_group(group):
    """The group (text or an ``ipaddress`` address) as the snooping tables and the fast
    path key it (IPv4 an int, IPv6 an ``IPv6Address``), or None for a group of link
    scope (no table)."""
    group = ipaddress.ip_address(group)
    if is_link_scope_group(group):
        return None
    return int(group) if group.version == 4 else group


def _protocol(group):
    return "mld" if isinstance(group, ipaddress.IPv6Address) else "igmp"
