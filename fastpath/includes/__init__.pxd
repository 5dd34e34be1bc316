# fastpath/includes: the C declarations the fast path's parts cimport (uvloop style):
#   compiler.pxd  prefetch and byte-order macros
#   system.pxd    libc / POSIX bits: the monotonic clock
#   epoll.pxd     epoll and eventfd (the packet loop's wait)
#   uring.pxd     the io_uring ring of uring.h (the packet loop's batched writes)
