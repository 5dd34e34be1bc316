"""The kernel knobs ``python -m bench.tcp_cost`` turns between samples of one peer, so a
setting and its alternative are measured interleaved in one run (issue 18 item 3: what
makes a TCP sender's copies through a TAP dearer than through veth).

- ``rps``: Receive Packet Steering on both tenants' interfaces to the tenant's CPUs
  (the placement's; every CPU when unpinned): a sender's ACKs are processed, and its
  pages freed, on its own CPU.
- ``txqueuelen``: both tenants' interfaces' transmit queue length. For a TAP it is the
  size of the ring (tun's ptr_ring) between the tenant's kernel and the switch: tun
  orphans a frame as it enters that ring (``skb_orphan`` in ``tun_net_xmit``), so the
  sender's TCP Small Queues stop counting it there, and a full ring drops the frame
  (the TAP's ``tx_dropped``). For veth, which has no ring, it changes nothing.
- ``limit_output``: ``net.ipv4.tcp_limit_output_bytes`` in the sender's namespace (TCP
  Small Queues' bound on the bytes a socket has below it, in qdiscs and drivers).

A ``Knobs`` is one combination; ``variants()`` is the cross product of what was asked
for, and each has a row suffix (``+rps``, ``/q64``, ``/tlo256K``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from bench import placement as placement_mod

LIMIT_OUTPUT = "net.ipv4.tcp_limit_output_bytes"
_SUFFIXES = {"K": 1 << 10, "M": 1 << 20}
_defaults: dict[str, int] = {}       # namespace name -> its limit_output before any sample


@dataclass(frozen=True)
class Knobs:
    rps: bool = False
    txqueuelen: int | None = None        # None: as the peer set it up
    limit_output: int | None = None      # None: the namespace's default

    @property
    def suffix(self) -> str:
        return (("+rps" if self.rps else "")
                + (f"/q{self.txqueuelen}" if self.txqueuelen is not None else "")
                + (f"/tlo{_size_text(self.limit_output)}" if self.limit_output is not None else ""))

    def apply(self, pair, place) -> None:
        """Set them on ``pair``'s tenants (an unset knob is set back to its default where
        an earlier sample may have changed it)."""
        for ep, role in ((pair.a, "sender"), (pair.b, "receiver")):
            placement_mod.steer_rx(ep.ns.name, ep.ifname,
                                   (place.cpus(role) or placement_mod.allowed_cpus())
                                   if self.rps else None)
            if self.txqueuelen is not None:
                ep.ns.set_txqueuelen(ep.ifname, self.txqueuelen)
        ns = pair.a.ns
        if ns.name not in _defaults:
            _defaults[ns.name] = int(ns.get_sysctl(LIMIT_OUTPUT))
        ns.set_sysctl(LIMIT_OUTPUT, _defaults[ns.name] if self.limit_output is None
                      else self.limit_output)


def sender_if_counts(pair) -> tuple[int, int]:
    """(frames sent, frames dropped) on the sender's interface so far: a TAP whose ring is
    full drops what its tenant's kernel hands it."""
    s = pair.a.ns.link_stats(pair.a.ifname)
    return s.tx_packets, s.tx_dropped


def parse_sizes(text: str, what: str) -> list[int]:
    """"10000,64" or "4M,256K" -> byte/entry counts (non-negative integers)."""
    out = []
    for item in (x.strip() for x in text.split(",")):
        scale = _SUFFIXES.get(item[-1:].upper(), 1) if item else 1
        digits = item[:-1] if scale != 1 else item
        if not digits.isdigit():
            raise ValueError(f"{what}: not a count: {item!r} (e.g. 64, 256K, 4M)")
        out.append(int(digits) * scale)
    return out


def variants(rps: bool, txqueuelens: list[int] | None, limits: list[int] | None) -> list[Knobs]:
    """Every combination asked for (a knob not asked for stays as the peer has it)."""
    return [Knobs(r, q, t) for r, q, t in itertools.product(
        (False, True) if rps else (False,), txqueuelens or [None], limits or [None])]


def _size_text(n: int) -> str:
    for unit, scale in (("M", 1 << 20), ("K", 1 << 10)):
        if n and n % scale == 0:
            return f"{n // scale}{unit}"
    return str(n)
