# tapswitch fast path: one extension, its parts included below (uvloop style) so
# the C compiler can inline across them.
#   verdicts.pxi   verdict / reason codes (mirror of verdicts.py)
#   checksum.pxi   Internet checksum (RFC 1071) and incremental update (RFC 1624)
#   batch.pxi      Batch: buffer pool + per-frame results (the contract with io.pxi)

include "verdicts.pxi"
include "checksum.pxi"
include "batch.pxi"
