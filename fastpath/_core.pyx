# tapswitch fast path: one extension, its parts included below (uvloop style) so
# the C compiler can inline across them.

include "checksum.pxi"
