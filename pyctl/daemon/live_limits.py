"""The ``[daemon]`` settings a reload changes in a running daemon: ``[daemon.slowpath]``
(the slow path's rates and bounds, each namespace's shares of it, the IGMP groups a
namespace may learn), ``[daemon.control]`` (the control sockets' connection slots, idle
timeout, request size and nesting, request rates), ``metrics`` (the HTTP listener) and
``tx_cost_limit_us`` / ``tx_cost_share_pct`` (the hold of a port whose frames cost the
packet thread too much to write, fastpath/tx_cost.pxi).

``prepare(daemon, wanted)`` builds and checks every new object first: a value the slow
path, the fast path's shares or the snooper would refuse raises, a metrics address that
cannot be bound raises, and nothing has changed.  The ``LimitsChange`` it returns is
applied with ``apply()``, which cannot fail, once the reload's model change is made, or
dropped with ``discard()`` when that change is refused: a reload applies these settings
and the model's difference together, or nothing.

From ``apply()`` on:
- a slow-path share that changed starts its buckets again, full, under its new rule (the
  fast path's ``set_slow_share``); ICMP error and solicitation buckets, and each namespace
  socket's request bucket, keep the tokens they hold up to the new burst and earn them at
  the new rate (``TokenBucket.retune``);
- bounds (neighbours, neighbours_per_scope, igmp_groups_per_namespace, connections,
  connections_per_socket, admin_connections) hold for what comes next: new entries, new
  connections.  What is held over a lowered bound stays: neighbours are replaced or expire,
  groups expire, connections close or idle out; nothing is cut off at once;
- ``neighbour_reachable_time`` counts from each neighbour's last confirmation, the
  ``idle_timeout`` from each connection's last request; request size and nesting hold for
  the next request read;
- a new metrics address is bound before anything changes and serves from ``apply()``, the
  old listener closed then (its request counts carried over); none: the listener closes;
- the packet loop judges each port by the new ``tx_cost_limit_us`` from its next frame (a
  held port whose estimate is under it is let go, one over it held; 0 lets every port go)
  and fills a held port's bucket at the new ``tx_cost_share_pct`` from its next refill;
  the ports' estimates and buckets stay.

Every other ``[daemon]`` key is bound to what the daemon set up when it started (sockets
bound and their modes, the state file, the packet loop's buffers and I/O backend, its
thread's CPUs and polling): a change there is listed in the reload's ``restart_needed``
(docs/operations.md).
"""
from __future__ import annotations

import dataclasses

from fastpath.shares import check_share
from pyctl import errors
from pyctl.config.keys import TX_COST_LIMIT_US_MAX
from pyctl.config.spec import DaemonSettings, SlowPathLimits
from pyctl.daemon import igmp
from pyctl.daemon.metrics_http import MetricsListener
from pyctl.daemon.slowpath import SlowPathConfig

__all__ = ["LIVE", "LimitsChange", "prepare", "slowpath_config", "igmp_config"]

TX_COST = {"tx_cost_limit_us": (0, TX_COST_LIMIT_US_MAX), "tx_cost_share_pct": (1, 100)}
LIVE = ("slowpath", "control", "metrics", *TX_COST)    # the DaemonSettings fields a reload applies
_UNBOUND = object()                         # LimitsChange.metrics: the listener stays


def slowpath_config(limits: SlowPathLimits) -> SlowPathConfig:
    """The slow path's settings from ``[daemon.slowpath]`` (InvalidArgument if it refuses one)."""
    return SlowPathConfig(
        icmp_rate=float(limits.icmp_errors_per_second), icmp_burst=limits.icmp_errors_burst,
        arp_rate=float(limits.arp_requests_per_second), max_neighbours=limits.neighbours,
        max_neighbours_per_scope=limits.neighbours_per_scope,
        reachable_time=float(limits.neighbour_reachable_time))


def igmp_config(limits: SlowPathLimits, base: igmp.IgmpConfig | None = None) -> igmp.IgmpConfig:
    """The snooper's settings (``base``'s, or the defaults) with ``[daemon.slowpath]``'s bound."""
    return dataclasses.replace(base or igmp.IgmpConfig(),
                               max_groups_per_namespace=limits.igmp_groups_per_namespace)


def _differences(prefix: str, old, new) -> list[str]:
    out = []
    for f in dataclasses.fields(old):
        before, after = getattr(old, f.name), getattr(new, f.name)
        if f.name == "shares":
            out += [f"[{prefix}.shares] {name}: {_pair(before.get(name))} -> {_pair(after.get(name))}"
                    for name in sorted(set(before) | set(after)) if before.get(name) != after.get(name)]
        elif before != after:
            out.append(f"[{prefix}] {f.name}: {before} -> {after}")
    return out


def _pair(share) -> str:
    return "default" if share is None else f"[{share[0]}, {share[1]}]"


@dataclasses.dataclass
class LimitsChange:
    """New limits, built and checked (``prepare``); ``apply()`` makes them the daemon's."""
    daemon: object
    settings: DaemonSettings            # the daemon's settings with the new limits
    changed: list[str]                  # what people read, one line per key
    shares: dict                        # share name -> (rate, burst) that changed
    slowpath: SlowPathConfig | None     # None: unchanged
    igmp: igmp.IgmpConfig | None
    control: object                     # a ControlLimits, or None: unchanged
    metrics: object = _UNBOUND          # the new listener (bound, not serving), or None: off
    tx_cost: tuple | None = None        # (limit_us, share_pct), or None: unchanged

    def __bool__(self) -> bool:
        return bool(self.changed)

    def discard(self) -> None:
        """The reload was refused after ``prepare``: let go of what it bound."""
        if isinstance(self.metrics, MetricsListener):
            self.metrics.close()
        self.metrics = _UNBOUND

    def apply(self) -> None:
        daemon = self.daemon
        if self.metrics is not _UNBOUND:
            old, daemon.metrics_http = daemon.metrics_http, self.metrics
            if self.metrics is not None:
                if old is not None:
                    self.metrics.requests.update(old.requests)
                self.metrics.start()
            if old is not None:
                old.close()
            self.metrics = _UNBOUND         # the daemon's now: discard() leaves it be
        for name, (rate, burst) in sorted(self.shares.items()):
            daemon.datapath.set_slow_share(name, rate, burst)
        if self.slowpath is not None:
            daemon.slowpath.set_config(self.slowpath)
        if self.igmp is not None:
            daemon.multicast.set_config(self.igmp)
        if self.control is not None and daemon.control is not None:
            daemon.control.set_limits(self.control)
        if self.tx_cost is not None:    # in range: the file's check is the loop's (keys.py)
            daemon.loop.tx_cost_limit_us, daemon.loop.tx_cost_share_pct = self.tx_cost
        daemon.settings = self.settings


def prepare(daemon, wanted: DaemonSettings, *, bind: bool = True) -> LimitsChange:
    """The change from ``daemon``'s limits to ``wanted``'s, every new object built (and so
    checked) now; nothing of the daemon changes here.  ``bind``: bind a new metrics
    address now (a dry run does not)."""
    running = daemon.settings
    old_sp, new_sp = running.slowpath, wanted.slowpath
    shares = {name: tuple(pair) for name, pair in new_sp.shares.items()
              if tuple(old_sp.shares.get(name, ())) != tuple(pair)}
    for name, (rate, burst) in shares.items():
        check_share(name, rate, burst)
    same_sp = dataclasses.replace(new_sp, shares=old_sp.shares) == old_sp
    slowpath = None if same_sp else slowpath_config(new_sp)
    groups = None
    if old_sp.igmp_groups_per_namespace != new_sp.igmp_groups_per_namespace:
        groups = igmp_config(new_sp, daemon.multicast.config)
    control = wanted.control if wanted.control != running.control else None
    changed = (_differences("daemon.slowpath", old_sp, new_sp)
               + _differences("daemon.control", running.control, wanted.control))
    metrics = _UNBOUND
    if wanted.metrics != running.metrics:
        changed.append(f"[daemon] metrics: {_address(running.metrics)} -> "
                       f"{_address(wanted.metrics)}")
        metrics = None
        if wanted.metrics is not None and bind:
            metrics = _listener(daemon, wanted.metrics)
    tx_cost = None
    if any(getattr(running, name) != getattr(wanted, name) for name in TX_COST):
        for name, (low, high) in TX_COST.items():      # the loop's own bounds: apply() cannot fail
            value = getattr(wanted, name)
            if not (isinstance(value, int) and low <= value <= high):
                raise errors.InvalidArgument(f"[daemon] {name} must be in {low}..{high}, "
                                             f"not {value!r}")
            if value != getattr(running, name):
                changed.append(f"[daemon] {name}: {getattr(running, name)} -> {value}")
        tx_cost = tuple(getattr(wanted, name) for name in TX_COST)
    return LimitsChange(
        daemon=daemon, changed=changed,
        settings=dataclasses.replace(running, slowpath=new_sp, control=wanted.control,
                                     metrics=wanted.metrics,
                                     **{name: getattr(wanted, name) for name in TX_COST}),
        shares=shares, slowpath=slowpath, igmp=groups, control=control, metrics=metrics,
        tx_cost=tx_cost)


def _address(address) -> str:
    if address is None:
        return "off"
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _listener(daemon, address) -> MetricsListener:
    """A listener bound to ``address`` (not serving yet); AddressInUse when it cannot be."""
    try:
        return MetricsListener(address, daemon.metrics_text)
    except OSError as exc:
        raise errors.AddressInUse(f"[daemon] metrics: {_address(address)} cannot be bound: "
                                  f"{exc.strerror or exc}") from None
