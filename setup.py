"""Build the Cython fast path.

Compiler directives are set here, once.  TAPSWITCH_DEBUG=1 turns bounds and
initialisation checks back on (and keeps asserts), for a debug run of the suite.

io_uring (the packet loop's batched-write backend, fastpath/uring.h) is built when a
test program using <linux/io_uring.h> compiles here; TAPSWITCH_IO_URING=0 leaves it
out.  Either way the extension builds, and ``fastpath.IO_URING_BUILT`` says which.
"""
import os
import shlex
import subprocess
import sysconfig
import tempfile

from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("TAPSWITCH_DEBUG") == "1"

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "nonecheck": False,
    "embedsignature": True,
}

cflags = ["-O0", "-g"] if DEBUG else ["-O3"]

IO_URING_PROBE = r"""
#include <linux/io_uring.h>
#include <sys/syscall.h>
int main(void) {
    struct io_uring_params p = {0};
    struct io_uring_probe probe = {0};
    (void)probe;
    p.flags = IORING_SETUP_CQSIZE;
    return (int)(__NR_io_uring_setup + __NR_io_uring_enter + __NR_io_uring_register
                 + IORING_OP_WRITE + IORING_OP_WRITEV + IORING_FEAT_SINGLE_MMAP
                 + IORING_FEAT_NODROP + IORING_REGISTER_PROBE + p.flags);
}
"""


def have_io_uring_header() -> bool:
    """Does a program using <linux/io_uring.h> and the io_uring syscall numbers compile?"""
    if os.environ.get("TAPSWITCH_IO_URING") == "0":
        return False
    cc = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(IO_URING_PROBE)
        try:
            done = subprocess.run(cc + ["-c", src, "-o", os.path.join(tmp, "probe.o")],
                                  capture_output=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return False
    return done.returncode == 0


IO_URING = have_io_uring_header()
print(f"tapswitch: io_uring backend {'built' if IO_URING else 'left out'}")

extensions = [
    Extension(
        f"fastpath.{name}",
        [f"fastpath/{name}.pyx"],
        include_dirs=["fastpath"],
        define_macros=[("TAPSWITCH_HAVE_IO_URING", "1")] if IO_URING else [],
        depends=["fastpath/uring.h"],
        extra_compile_args=cflags + ["-Wno-unused-function"],
    )
    for name in ("_core",)
]

setup(ext_modules=cythonize(extensions, compiler_directives=directives,
                            annotate=os.environ.get("TAPSWITCH_ANNOTATE") == "1"))
