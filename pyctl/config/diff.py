"""The difference between a running switch and a topology file, as model verbs (a reload).

``reload_steps(current, desired, config, learned)`` compares two snapshots by name (the
running model's and that of a fresh model built from the file, ``Switch.snapshot()``) and
returns the verbs that turn the first into the second, in an order the model accepts:

1. routes that go (or leave through a port that goes or changes), then those ports;
2. addresses that leave an L3 kept (pulled back to its L2);
3. namespaces that go, deepest first (a namespace whose kind or parent changed goes and
   comes back, and with it what is below it);
4. addresses an L2 no longer holds;
5. an L2's quotas, options (``advertise``, ``directed_broadcast``) and delegated kernel
   namespaces (``netns``; those it no longer has are revoked once the ports that go are
   gone), then new namespaces (parents first) with theirs;
6. addresses: an L2's own, then pushed into L3s (``push`` when the L2 holds it already,
   ``assign_and_push`` otherwise);
7. ports, routes, configured multicast memberships.

What does not change is not touched, so the flows of the namespaces, ports and routes
the reload keeps go on (the compiler writes only the entries that moved).  Memberships
the IGMP snooper learned (``learned``) are the snooper's: never removed here.  A port
whose file gives no ``mac`` keeps the MAC it has.  ``same_state`` checks the result.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from pyctl.config.spec import Config
from pyctl.model.namespace_options import NAMESPACE_OPTION_DEFAULTS
from pyctl.model.quotas import QUOTA_KEYS
from pyctl.model.state import ROOT_NAME as ROOT

__all__ = ["Step", "normal_form", "reload_steps", "same_state"]


@dataclass(frozen=True)
class Step:
    """One model verb (its Python name) with its arguments, and what people read."""
    verb: str
    args: tuple
    text: str
    kwargs: dict = field(default_factory=dict, compare=False)

    def apply(self, api) -> None:
        getattr(api, self.verb)(*self.args, **self.kwargs)


def normal_form(snapshot: dict, *, learned=frozenset(), macs=None) -> dict:
    """A snapshot by names: ``{"namespaces": {name: {...}}, "ports": {name: {...}}}``
    without ids, learned memberships, and MACs the file does not give (``macs``: port
    name -> MAC or None; None for all: keep every MAC)."""
    by_id = {ns["id"]: ns for ns in snapshot["namespaces"]}
    namespaces = {}
    for ns in snapshot["namespaces"]:
        parent = by_id[ns["parent"]]["name"] if ns["parent"] is not None else None
        namespaces[ns["name"]] = {
            "kind": ns["kind"], "parent": parent, "addresses": frozenset(ns["addresses"]),
            "routes": frozenset((r["dst"], r["via"], r["port"]) for r in ns["routes"]),
            "groups": frozenset(g for g in ns["groups"] if (ns["name"], g) not in learned),
            "quota": {k: v for k, v in (ns.get("quota") or {}).items() if v is not None},
            "netns": frozenset(ns.get("netns", ())),
            "options": ({**NAMESPACE_OPTION_DEFAULTS, **ns.get("options", {})}
                        if ns["kind"] == "l2" else {})}
    ports = {}
    for p in snapshot["ports"]:
        keep_mac = macs is None or macs.get(p["name"]) is not None
        ports[p["name"]] = {"namespace": by_id[p["ns"]]["name"], "options": p["options"],
                            "mac": p["mac"] if keep_mac else None}
    return {"namespaces": namespaces, "ports": ports}


def same_state(current: dict, desired: dict, config: Config, learned=frozenset()) -> bool:
    macs = {p.name: p.mac for p in config.ports}
    return (normal_form(current, learned=learned, macs=macs)
            == normal_form(desired, macs=macs))


def _depth(tree: dict, name: str) -> int:
    depth = 0
    while tree[name]["parent"] is not None:
        name, depth = tree[name]["parent"], depth + 1
    return depth


def reload_steps(current: dict, desired: dict, config: Config, learned=frozenset()) -> list[Step]:
    """The verbs from ``current`` to ``desired`` (snapshots; module docstring)."""
    c = normal_form(current, learned=learned)
    d = normal_form(desired)
    cn, dn, cp, dp = c["namespaces"], d["namespaces"], c["ports"], d["ports"]
    given_mac = {p.name: p.mac for p in config.ports}

    # -- which namespaces go, come, stay -------------------------------------------------
    moved = {n for n in set(cn) & set(dn) if n != ROOT
             and (cn[n]["kind"], cn[n]["parent"]) != (dn[n]["kind"], dn[n]["parent"])}
    remove = (set(cn) - set(dn)) | moved
    changed = True
    while changed:                       # what is below a namespace that goes, goes too
        below = {n for n in cn if cn[n]["parent"] in remove} - remove
        changed = bool(below)
        remove |= below
    create = (set(dn) - set(cn)) | (remove & set(dn))
    kept = set(cn) - remove

    # -- ports and routes ----------------------------------------------------------------
    def port_changed(name):
        old, new = cp[name], dp[name]
        return (old["namespace"] != new["namespace"] or old["namespace"] in remove
                or old["options"] != new["options"]
                or (given_mac.get(name) is not None and old["mac"] != given_mac[name]))
    del_ports = (set(cp) - set(dp)) | {p for p in set(cp) & set(dp) if port_changed(p)}
    add_ports = (set(dp) - set(cp)) | (del_ports & set(dp))
    steps: list[Step] = []
    for ns in sorted(cn):
        old = cn[ns]["routes"]
        new = dn[ns]["routes"] if ns in kept else frozenset()
        for dst, via, port in sorted(old, key=str):
            if (dst, via, port) not in new or port in del_ports:
                steps.append(Step("route_del", (ns, dst), f"route {dst} in {ns} goes",
                                  {"via": via, "port": port}))
    for name in sorted(del_ports):
        steps.append(Step("port_del", (name,), f"port {name} goes"
                          + (" (changed: it comes back)" if name in add_ports else "")))

    # -- delegations taken back, addresses leaving a kept L3, namespaces going, ----------
    # -- addresses an L2 drops -----------------------------------------------------------
    for ns in sorted(kept):
        for netns in sorted(cn[ns]["netns"] - dn[ns]["netns"]):
            steps.append(Step("netns_revoke", (ns, netns), f"{ns} gives back kernel namespace {netns}"))
    held = {n: set(cn[n]["addresses"]) for n in cn}          # what each holds, as it goes
    for ns in sorted(kept):
        if cn[ns]["kind"] == "l3":
            for address in sorted(cn[ns]["addresses"] - dn[ns]["addresses"]):
                steps.append(Step("pull", (address, ns), f"{address} pulled from {ns}"))
                held[ns].discard(address)
                held[cn[ns]["parent"]].add(address)
    for ns in sorted(remove, key=lambda n: -_depth(cn, n)):
        steps.append(Step("destroy", (ns,), f"namespace {ns} goes"
                          + (" (changed: it comes back)" if ns in create else "")))
        if cn[ns]["kind"] == "l3" and cn[ns]["parent"] in kept:   # its addresses go back
            held[cn[ns]["parent"]] |= held[ns]
    for ns in sorted(kept):
        if cn[ns]["kind"] != "l2":
            continue
        to_push = {a for child, spec in dn.items() if spec["parent"] == ns
                   and spec["kind"] == "l3" for a in spec["addresses"]}
        for address in sorted(held[ns] - dn[ns]["addresses"] - to_push):
            steps.append(Step("address_del", (ns, address), f"{address} of {ns} goes"))
            held[ns].discard(address)

    # -- quotas, namespaces, addresses ---------------------------------------------------
    def quota_step(ns):
        limits = {k: dn[ns]["quota"].get(k) for k in QUOTA_KEYS}
        return Step("quota_set", (ns, limits), f"quotas of {ns}: "
                    + (", ".join(f"{k}={v}" for k, v in sorted(dn[ns]["quota"].items())) or "none"))
    def delegate_steps(ns, old):
        return [Step("netns_delegate", (ns, netns), f"kernel namespace {netns} delegated to {ns}")
                for netns in sorted(dn[ns]["netns"] - old)]
    def options_step(ns, old):
        changed = {k: v for k, v in sorted(dn[ns]["options"].items()) if old.get(k) != v}
        return Step("namespace_set", (ns, changed), f"options of {ns}: "
                    + ", ".join(f"{k}={str(v).lower()}" for k, v in changed.items()))
    for ns in sorted(kept):
        if dn[ns]["kind"] == "l2" and dn[ns]["quota"] != cn[ns]["quota"]:
            steps.append(quota_step(ns))
        if dn[ns]["kind"] == "l2" and dn[ns]["options"] != cn[ns]["options"]:
            steps.append(options_step(ns, cn[ns]["options"]))
        steps.extend(delegate_steps(ns, cn[ns]["netns"]))
    for ns in sorted(create, key=lambda n: _depth(dn, n)):
        steps.append(Step("create", (ns, dn[ns]["kind"]), f"namespace {ns} comes "
                          f"({dn[ns]['kind']} in {dn[ns]['parent']})", {"parent": dn[ns]["parent"]}))
        held[ns] = set()
        if dn[ns]["kind"] == "l2" and dn[ns]["quota"]:
            steps.append(quota_step(ns))
        if dn[ns]["kind"] == "l2" and dn[ns]["options"] != NAMESPACE_OPTION_DEFAULTS:
            steps.append(options_step(ns, NAMESPACE_OPTION_DEFAULTS))
        steps.extend(delegate_steps(ns, frozenset()))
    order = sorted(dn, key=lambda n: _depth(dn, n))
    for ns in order:
        if dn[ns]["kind"] == "l2":
            for address in sorted(dn[ns]["addresses"] - held[ns]):
                steps.append(Step("address_add", (ns, address), f"{address} comes to {ns}"))
                held[ns].add(address)
    for ns in order:
        if dn[ns]["kind"] != "l3":
            continue
        parent = dn[ns]["parent"]
        for address in sorted(dn[ns]["addresses"] - held[ns]):
            if address in held[parent]:
                steps.append(Step("push", (address, ns), f"{address} pushed into {ns}"))
                held[parent].discard(address)
            else:
                steps.append(Step("assign_and_push", (address, ns), f"{address} comes to {ns}"))
            held[ns].add(address)

    # -- ports, routes, memberships ------------------------------------------------------
    for name in sorted(add_ports):
        spec = dp[name]
        steps.append(Step("port_add", (name, spec["namespace"]), f"port {name} comes "
                          f"(in {spec['namespace']})", {"mac": given_mac.get(name),
                                                        "options": dict(spec["options"])}))
    for ns in order:
        old = cn[ns]["routes"] if ns in kept else frozenset()
        for dst, via, port in sorted(dn[ns]["routes"], key=str):
            if (dst, via, port) not in old or port in del_ports:
                steps.append(Step("route_add", (ns, dst), f"route {dst} in {ns} comes",
                                  {"via": via, "port": port}))
    for ns in order:
        old = cn[ns]["groups"] if ns in kept else frozenset()
        for group in sorted(old - dn[ns]["groups"]):
            steps.append(Step("leave", (group, ns), f"{ns} leaves {group}"))
        for group in sorted(dn[ns]["groups"] - old):
            if ns in kept and (ns, group) in learned:     # learned: pin it as configured
                steps.append(Step("leave", (group, ns), f"{ns}'s learned {group} is configured"))
            steps.append(Step("join", (group, ns), f"{ns} joins {group}"))
    return steps
