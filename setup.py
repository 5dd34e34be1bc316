"""Build the Cython fast path.

Compiler directives are set here, once.  TAPSWITCH_DEBUG=1 turns bounds and
initialisation checks back on (and keeps asserts), for a debug run of the suite.

fastpath/reasons.pxi (the C enums of verdicts, reasons and counters) is generated here
from fastpath/reasons.py, the one table of them, before Cython runs.

io_uring (the packet loop's batched-write backend, fastpath/includes/uring.h) is built when a
test program using <linux/io_uring.h> compiles here; TAPSWITCH_IO_URING=0 leaves it
out.  Either way the extension builds, and ``fastpath.IO_URING_BUILT`` says which.
"""
import importlib.util
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


ROOT = os.path.dirname(os.path.abspath(__file__))


def generate_reasons_pxi(root=ROOT):
    """Write fastpath/reasons.pxi from fastpath/reasons.py (loaded by path: the fastpath
    package itself need not import); rewritten only when it changes, so an unchanged
    table does not force a rebuild."""
    spec = importlib.util.spec_from_file_location("_tapswitch_reasons",
                                                  os.path.join(root, "fastpath", "reasons.py"))
    reasons = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reasons)
    text = reasons.generate_pxi()
    path = os.path.join(root, "fastpath", "reasons.pxi")
    try:
        with open(path) as f:
            if f.read() == text:
                return
    except FileNotFoundError:
        pass
    with open(path, "w") as f:
        f.write(text)


generate_reasons_pxi()
IO_URING = have_io_uring_header()
print(f"tapswitch: io_uring backend {'built' if IO_URING else 'left out'}")

extensions = [
    Extension(
        f"fastpath.{name}",
        [f"fastpath/{name}.pyx"],
        include_dirs=["fastpath/includes"],
        define_macros=[("TAPSWITCH_HAVE_IO_URING", "1")] if IO_URING else [],
        depends=["fastpath/includes/uring.h", "fastpath/includes/xdp.h", "fastpath/reasons.py"],
        extra_compile_args=cflags + ["-Wno-unused-function"],
    )
    for name in ("_core",)
]

setup(ext_modules=cythonize(extensions, compiler_directives=directives,
                            annotate=os.environ.get("TAPSWITCH_ANNOTATE") == "1"))
