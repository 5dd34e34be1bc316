# tapswitch fast path: one extension, its parts included below (uvloop style) so
# the C compiler can inline across them.
#   verdicts.pxi   verdict / reason codes (mirror of verdicts.py)
#   checksum.pxi   Internet checksum (RFC 1071): one summing routine for every check and fill
#   batch.pxi      Batch: buffer pool + per-frame results (the contract with io.pxi)
#   hashtable.pxi  U64Map: open-addressing hash (demux, neighbours, route sets)
#   fib.pxi        Dir24Fib: DIR-24-8 longest-prefix match per L2 scope
#   process.pxi    the per-frame decision and the batch loop (noexcept nogil)
#   datapath.pxi   Datapath: the tables, their control API, process(), counters
#   vnet.pxi       virtio-net header: checks, checksum completion, software GSO
#   io.pxi         PacketLoop: epoll, burst reads, process(), writes (no GIL)

include "verdicts.pxi"
include "checksum.pxi"
include "batch.pxi"
include "hashtable.pxi"
include "fib.pxi"
include "process.pxi"
include "datapath.pxi"
include "vnet.pxi"
include "io.pxi"
