# Batch: the unit of work of the fast path -- a buffer pool of frames plus the
# per-frame results that process() fills.  Shared contract between the
# forwarding core (process.pxi) and the packet loop (loop.pxi, port_io.pxi).
#
# Layout (all arrays are owned by the Batch, C pointers below alias numpy arrays
# that Python sees through the properties of the same name):
#
#   buf[pool_size]            uint8   the buffer pool: capacity slots of slot_size bytes.
#                                     Slot i starts at i * slot_size.  A frame need not
#                                     sit at the start of its slot: see offset.
#   offset[capacity]          uint32  where frame i's Ethernet header starts in buf.
#                                     Default: i * slot_size + headroom.  A packet loop's
#                                     batch lies at the start of its FrameArena (arena.pxi):
#                                     a frame read by a ring port kind (AF_PACKET, AF_XDP)
#                                     stays where the kernel put it, in the ring mapped after
#                                     the pool, and its offset points there (below ``span``,
#                                     the bytes of buf frames may lie in).  The headroom
#                                     (>= 16 bytes, default 64) lets a reader put a
#                                     12-byte virtio-net header right before the frame
#                                     (a ring kind has room before each frame in its ring)
#                                     (read into buf + offset - 12) and a writer send
#                                     header + frame as one contiguous buffer.
#   length[capacity]          uint32  frame i's length in bytes (Ethernet header included,
#                                     virtio-net header excluded).  Frames may be up to
#                                     slot_size - headroom bytes: slot_size=65536+128
#                                     gives 64 KB super-frames (issue 5).
#   port[capacity]            int32   ingress port id of frame i.
#   count                             number of valid frames (0..capacity).
#
# Results, filled by Datapath.process(batch) for frames 0..count-1:
#   verdict[capacity]         uint8   VERDICT_DROP / _FORWARD / _FANOUT / _SLOWPATH
#                                     (fastpath/verdicts.py).
#   reason[capacity]          uint8   why it was dropped or handed to the slow path
#                                     (REASON_*); REASON_NONE when forwarded.
#   out_port[capacity]        int32   FORWARD: the egress port; else -1.
#                                     The frame was rewritten in place (MACs, TTL, checksum):
#                                     write buf[offset[i] : offset[i] + length[i]].
#   fanout_first[capacity]    uint32  FANOUT: frame i's copies are entries
#   fanout_n[capacity]        uint32          fanout_first[i] .. fanout_first[i] + fanout_n[i] - 1
#                                     of the fan-out list (0 copies otherwise).
#
# Fan-out list (broadcast / multicast copies; no payload is copied):
#   fanout_count                      number of entries used by the last process().
#   fanout_port[max_fanout]   int32   egress port of copy k.
#   fanout_frame[max_fanout]  uint32  index of the frame copy k is made of.
#   fanout_eth[max_fanout,14] uint8   copy k's own Ethernet header (dst MAC, src MAC = the
#                                     egress port's MAC, ethertype).  Copy k on the wire is
#                                     fanout_eth[k] + buf[offset[f] + 14 : offset[f] + length[f]]
#                                     (f = fanout_frame[k]): a writer uses writev with two
#                                     iovecs (three with a virtio-net header), or copies.
#                                     The frame's own bytes in buf are NOT modified for FANOUT.
#   When the list is full, the copies that do not fit are counted drops (fanout_overflow).
#
# Python helpers (not the hot path): load(), frame(i), copy(k), results().
# C code in the same extension reads the pointers (c_buf, c_offset, ...) directly.

import numpy as np
from libc.stdint cimport uint8_t, uint16_t, uint32_t, int32_t, uint64_t

cdef enum:
    ETH_HLEN = 14


cdef class Batch:
    cdef readonly Py_ssize_t capacity, slot_size, headroom, max_fanout, pool_size
    cdef readonly Py_ssize_t span   # frames lie in buf[0:span]: the pool, or its arena
    cdef readonly FrameArena arena  # None: the pool is a plain array
    cdef public Py_ssize_t fanout_count
    cdef Py_ssize_t _count
    # numpy owners (kept alive) ...
    cdef object _buf, _offset, _length, _port, _verdict, _reason, _out_port
    cdef object _fanout_first, _fanout_n, _fanout_port, _fanout_frame, _fanout_eth
    # ... and the C pointers the core and the packet loop use
    cdef uint8_t* c_buf
    cdef uint32_t* c_offset
    cdef uint32_t* c_length
    cdef int32_t* c_port
    cdef uint8_t* c_verdict
    cdef uint8_t* c_reason
    cdef int32_t* c_out_port
    cdef uint32_t* c_fanout_first
    cdef uint32_t* c_fanout_n
    cdef int32_t* c_fanout_port
    cdef uint32_t* c_fanout_frame
    cdef uint8_t* c_fanout_eth      # max_fanout rows of ETH_HLEN bytes

    def __init__(self, Py_ssize_t capacity=256, Py_ssize_t slot_size=2048,
                 Py_ssize_t headroom=64, max_fanout=None, FrameArena arena=None):
        if capacity < 1 or capacity > 1 << 20:
            raise ValueError(f"capacity must be in 1..{1 << 20}, not {capacity}")
        if headroom < 16 or headroom % 8:
            raise ValueError(f"headroom must be a multiple of 8 and >= 16, not {headroom}")
        if slot_size < headroom + 64 or slot_size > (1 << 17) + 4096:
            raise ValueError(f"slot_size must be in headroom+64..{(1 << 17) + 4096}, not {slot_size}")
        if capacity * slot_size >= 1 << 32:
            raise ValueError("capacity * slot_size must stay below 4 GiB (offsets are 32-bit)")
        if max_fanout is None:
            max_fanout = capacity * 16
        if max_fanout < 0 or max_fanout >= 1 << 31:
            raise ValueError(f"max_fanout must be in 0..2**31-1, not {max_fanout}")
        self.capacity, self.slot_size, self.headroom = capacity, slot_size, headroom
        self.max_fanout = max_fanout
        self.pool_size = capacity * slot_size
        self._count = 0
        self.fanout_count = 0
        if arena is None:
            self._buf = np.zeros(self.pool_size, dtype=np.uint8)
            self.span = self.pool_size
        else:
            if <Py_ssize_t>arena.pool_size < self.pool_size:
                raise ValueError(f"the arena's pool holds {arena.pool_size} bytes, "
                                 f"the batch needs {self.pool_size}")
            self._buf = np.frombuffer(arena, dtype=np.uint8, count=self.pool_size)
            self.span = arena.size
            self.arena = arena
        self._offset = np.arange(capacity, dtype=np.uint32) * np.uint32(slot_size) + np.uint32(headroom)
        self._length = np.zeros(capacity, dtype=np.uint32)
        self._port = np.full(capacity, -1, dtype=np.int32)
        self._verdict = np.zeros(capacity, dtype=np.uint8)
        self._reason = np.zeros(capacity, dtype=np.uint8)
        self._out_port = np.full(capacity, -1, dtype=np.int32)
        self._fanout_first = np.zeros(capacity, dtype=np.uint32)
        self._fanout_n = np.zeros(capacity, dtype=np.uint32)
        self._fanout_port = np.zeros(max(max_fanout, 1), dtype=np.int32)
        self._fanout_frame = np.zeros(max(max_fanout, 1), dtype=np.uint32)
        self._fanout_eth = np.zeros((max(max_fanout, 1), ETH_HLEN), dtype=np.uint8)
        cdef uint8_t[::1] b = self._buf
        cdef uint32_t[::1] off = self._offset, ln = self._length
        cdef uint32_t[::1] ff = self._fanout_first, fn = self._fanout_n, fr = self._fanout_frame
        cdef int32_t[::1] pt = self._port, op = self._out_port, fp = self._fanout_port
        cdef uint8_t[::1] vd = self._verdict, rs = self._reason
        cdef uint8_t[:, ::1] fe = self._fanout_eth
        self.c_buf, self.c_offset, self.c_length, self.c_port = &b[0], &off[0], &ln[0], &pt[0]
        self.c_verdict, self.c_reason, self.c_out_port = &vd[0], &rs[0], &op[0]
        self.c_fanout_first, self.c_fanout_n = &ff[0], &fn[0]
        self.c_fanout_port, self.c_fanout_frame, self.c_fanout_eth = &fp[0], &fr[0], &fe[0, 0]

    @property
    def count(self):
        return self._count

    @count.setter
    def count(self, Py_ssize_t n):
        if n < 0 or n > self.capacity:
            raise ValueError(f"count must be in 0..{self.capacity}, not {n}")
        self._count = n

    @property
    def max_frame(self):
        """The largest frame a slot holds at the default offset."""
        return self.slot_size - self.headroom

    @property
    def buf(self):
        return self._buf

    @property
    def offset(self):
        return self._offset

    @property
    def length(self):
        return self._length

    @property
    def port(self):
        return self._port

    @property
    def verdict(self):
        return self._verdict

    @property
    def reason(self):
        return self._reason

    @property
    def out_port(self):
        return self._out_port

    @property
    def fanout_first(self):
        return self._fanout_first

    @property
    def fanout_n(self):
        return self._fanout_n

    @property
    def fanout_port(self):
        return self._fanout_port

    @property
    def fanout_frame(self):
        return self._fanout_frame

    @property
    def fanout_eth(self):
        return self._fanout_eth

    def load(self, frames):
        """Fill the batch from ``[(port_id, frame_bytes), ...]`` at the default offsets."""
        frames = list(frames)
        if len(frames) > self.capacity:
            raise ValueError(f"{len(frames)} frames do not fit a batch of {self.capacity}")
        for i, (port_id, data) in enumerate(frames):
            data = bytes(data)
            if len(data) > self.max_frame:
                raise ValueError(f"frame {i} is {len(data)} bytes, slots hold {self.max_frame}")
            start = i * self.slot_size + self.headroom
            self._buf[start:start + len(data)] = np.frombuffer(data, dtype=np.uint8)
            self._offset[i] = start
            self._length[i] = len(data)
            self._port[i] = port_id
        self._count = len(frames)
        self.fanout_count = 0

    def frame(self, Py_ssize_t i):
        """Frame i's current bytes (rewritten in place after process() for FORWARD)."""
        if i < 0 or i >= self._count:
            raise IndexError(i)
        start = int(self._offset[i])
        if start + int(self._length[i]) > self.pool_size:
            raise ValueError(f"frame {i} lies outside the pool (in a port's ring)")
        return self._buf[start:start + int(self._length[i])].tobytes()

    def copy(self, Py_ssize_t k):
        """Fan-out copy k as it goes on the wire: (egress port, bytes)."""
        if k < 0 or k >= self.fanout_count:
            raise IndexError(k)
        f = int(self._fanout_frame[k])
        start = int(self._offset[f])
        body = self._buf[start + ETH_HLEN:start + int(self._length[f])].tobytes()
        return int(self._fanout_port[k]), self._fanout_eth[k].tobytes() + body

    def results(self):
        """Per frame: (verdict, reason, out_port, [(port, bytes) of its copies])."""
        out = []
        for i in range(self._count):
            first, n = int(self._fanout_first[i]), int(self._fanout_n[i])
            out.append((int(self._verdict[i]), int(self._reason[i]), int(self._out_port[i]),
                        [self.copy(k) for k in range(first, first + n)]))
        return out
