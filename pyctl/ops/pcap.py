"""Capture files in pcapng (what ``tcpdump -r``, tshark and Wireshark read).

``PcapngWriter(stream)`` writes a section header, then one interface description per capture
point (a port, or a namespace's view) the first time a frame of it is written, then each
frame as an enhanced packet block with nanosecond timestamps, its direction (``in``: the
switch received it, ``out``: the switch sent it) and an optional comment, which is where a
dropped frame's reason goes (``drop: spoofed_source``).  Frames are Ethernet (link type 1).
Layout: the pcapng specification (draft-ietf-opsawg-pcapng), little-endian.
"""
from __future__ import annotations

import struct

__all__ = ["PcapngWriter", "LINKTYPE_ETHERNET", "SNAPLEN"]

LINKTYPE_ETHERNET = 1
SNAPLEN = 262144

_SHB, _IDB, _EPB = 0x0A0D0D0A, 0x00000001, 0x00000006
_BYTE_ORDER_MAGIC = 0x1A2B3C4D
_OPT_END, _OPT_COMMENT = 0, 1
_IF_NAME, _IF_DESCRIPTION, _IF_TSRESOL = 2, 3, 9
_EPB_FLAGS = 2
_DIRECTION = {"in": 1, "out": 2}           # epb_flags bits 0-1: inbound / outbound


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + _pad(value)


def _options(opts) -> bytes:
    body = b"".join(_option(code, value) for code, value in opts if value is not None)
    return body + struct.pack("<HH", _OPT_END, 0) if body else b""


def _block(kind: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", kind, total) + body + struct.pack("<I", total)


class PcapngWriter:
    """Writes frames to a binary stream as pcapng; interfaces are declared on first use."""

    def __init__(self, stream, *, application: str = "tapswitch"):
        self.stream = stream
        self.interfaces: dict[str, int] = {}
        self.frames = 0
        shb_options = _options([(4, application.encode())])       # shb_userappl
        stream.write(_block(_SHB, struct.pack("<IHHq", _BYTE_ORDER_MAGIC, 1, 0, -1) + shb_options))

    def _interface(self, name: str, description: str | None) -> int:
        index = self.interfaces.get(name)
        if index is None:
            index = self.interfaces[name] = len(self.interfaces)
            opts = _options([(_IF_NAME, name.encode()),
                             (_IF_DESCRIPTION, description.encode() if description else None),
                             (_IF_TSRESOL, bytes([9]))])             # timestamps in ns
            self.stream.write(_block(_IDB, struct.pack("<HHI", LINKTYPE_ETHERNET, 0, SNAPLEN) + opts))
        return index

    def write(self, interface: str, frame: bytes, timestamp_ns: int, *, direction: str | None = None,
              comment: str | None = None, description: str | None = None,
              original_length: int | None = None) -> None:
        """One frame seen at ``interface`` (a port or namespace name) at ``timestamp_ns``
        (nanoseconds since the epoch).  ``original_length`` when ``frame`` was cut short."""
        if direction is not None and direction not in _DIRECTION:
            raise ValueError(f"direction must be 'in' or 'out', not {direction!r}")
        index = self._interface(interface, description)
        data = bytes(frame[:SNAPLEN])
        opts = _options([(_OPT_COMMENT, comment.encode() if comment else None),
                         (_EPB_FLAGS, struct.pack("<I", _DIRECTION[direction]) if direction else None)])
        body = struct.pack("<IIIII", index, timestamp_ns >> 32, timestamp_ns & 0xFFFFFFFF,
                           len(data), original_length if original_length is not None else len(frame))
        self.stream.write(_block(_EPB, body + _pad(data) + opts))
        self.frames += 1

    def flush(self) -> None:
        self.stream.flush()
