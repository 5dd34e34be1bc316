"""The size of a ring port's receive ring: the ``ring_frames`` port option turned into
the arguments of ``fastpath.AfPacketPort`` (kinds veth and attach) or
``fastpath.XdpPort`` (kind xdp), within a bound of kernel memory per port.

The receive ring is what rides out a stall of the packet thread: frames the kernel
cannot put in it while the thread is off its core are the ring's drops (``ctl stats``
rings: ``drops`` of an AF_PACKET ring, ``rx_ring_full`` of an AF_XDP one).  Its slots
are kernel memory, pinned while the port lives, and an AF_PACKET slot is sized for the
port's MTU (2 KiB up to MTU 1946, 68 KiB at 65535).  So the option counts frames and the
bound counts bytes: ``RING_MAX_BYTES`` of receive ring per port, whoever asks (an
operator or a delegated client, whose ports its quota counts).  The model checks the
option alone (``pyctl.model.port_options``); the bytes are checked here, when the port
opens and its MTU is known (an attached interface's is its own), and a refusal leaves
the switch as it was.
"""
from __future__ import annotations

import fastpath
from pyctl.errors import InvalidArgument

__all__ = ["RING_MAX_BYTES", "afpacket_args", "xdp_args"]

RING_MAX_BYTES = 128 << 20


def afpacket_args(ring_frames: int | None, mtu: int) -> dict:
    """``fastpath.AfPacketPort``'s keyword arguments for a receive ring of at least
    ``ring_frames`` slots (None: its default) on a link of ``mtu`` bytes."""
    if ring_frames is None:
        return {}
    slot = fastpath.afp_slot_size(mtu)
    per_block = fastpath.afp_slots_per_block(slot)

    def slots(n):
        return fastpath.afp_round(n, per_block)

    if slots(ring_frames) * slot > RING_MAX_BYTES:
        fits = next((n for n in (1 << k for k in range(14, 5, -1))
                     if slots(n) * slot <= RING_MAX_BYTES), None)
        raise InvalidArgument(
            f"port option 'ring_frames' {ring_frames}: {slots(ring_frames)} AF_PACKET slots for "
            f"MTU {mtu} of {slot} bytes come to {slots(ring_frames) * slot >> 20} MiB, above the "
            f"{RING_MAX_BYTES >> 20} MiB a port's receive ring may take ("
            + (f"ring_frames {fits} fits)" if fits else "no ring_frames fits: lower the MTU)"))
    return {"rx_frames": slots(ring_frames)}


def xdp_args(ring_frames: int | None) -> dict:
    """``fastpath.XdpPort``'s keyword arguments for ``ring_frames`` UMEM chunks per
    direction (None: its default).  Within the bound whatever the MTU: the model's
    largest, 16384 chunks of 4 KiB, is 64 MiB."""
    return {} if ring_frames is None else {"frames": ring_frames}
