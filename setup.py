"""Build the Cython fast path.

Compiler directives are set here, once.  TAPSWITCH_DEBUG=1 turns bounds and
initialisation checks back on (and keeps asserts), for a debug run of the suite.

fastpath/reasons.pxi (the C enums of verdicts, reasons and counters) is generated here
from fastpath/reasons.py, the one table of them, before Cython runs.

io_uring (the packet loop's batched-write backend, fastpath/includes/uring.h) is built when a
test program using <linux/io_uring.h> compiles here; TAPSWITCH_IO_URING=0 leaves it
out.  Either way the extension builds, and ``fastpath.IO_URING_BUILT`` says which.

Progress: the build takes a minute or two (Cython, then gcc -O3 on one large C file), and
pip captures a build's output, showing it only with -v or when it fails.  So the build's
steps are said on the terminal itself (/dev/tty) when there is one, else on stderr, with a
line every 15 s while the compiler runs; TAPSWITCH_BUILD_QUIET=1 silences them.  All of
this happens in build_ext: pip's metadata steps, which also run this file, build nothing
and say nothing.
"""
import importlib.util
import os
import shlex
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

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


def _progress_stream():
    if os.environ.get("TAPSWITCH_BUILD_QUIET") == "1":
        return None
    if sys.stderr.isatty():
        return sys.stderr
    try:                        # under pip: its captured output is not where people look
        return open("/dev/tty", "w")
    except OSError:
        return sys.stderr


class _Progress:
    """Lines saying what the build does, and a heartbeat while a long step runs."""

    def __init__(self):
        self.stream = _progress_stream()
        self.start = time.monotonic()

    def say(self, text):
        if self.stream is not None:
            print(f"tapswitch build [{time.monotonic() - self.start:5.1f} s]: {text}",
                  file=self.stream, flush=True)

    def during(self, what, every=15.0):
        """A context manager: ``what`` said now, then every ``every`` seconds until done."""
        progress = self

        class _During:
            def __enter__(self):
                self.done = threading.Event()
                self.began = time.monotonic()
                progress.say(what)
                self.thread = threading.Thread(target=self._beat, daemon=True)
                self.thread.start()
                return self

            def _beat(self):
                while not self.done.wait(every):
                    progress.say(f"... still {what.split(' (')[0]} "
                                 f"({time.monotonic() - self.began:.0f} s)")

            def __exit__(self, *exc):
                self.done.set()
                self.thread.join()
                progress.say(f"done in {time.monotonic() - self.began:.1f} s" if exc[0] is None
                             else f"failed after {time.monotonic() - self.began:.1f} s")
        return _During()


class BuildFastPath(build_ext):
    """Generate reasons.pxi, probe io_uring, cythonize, compile: saying so as it goes.  All
    in run(): pip's metadata steps finalize this command too, and must neither build nor
    talk."""

    def _cythonize(self):
        from Cython.Build import cythonize
        generate_reasons_pxi()
        io_uring = have_io_uring_header()
        self.progress.say(f"io_uring backend {'built' if io_uring else 'left out'}"
                          f"{' (debug build)' if DEBUG else ''}")
        for ext in self.extensions:
            if io_uring and ("TAPSWITCH_HAVE_IO_URING", "1") not in ext.define_macros:
                ext.define_macros.append(("TAPSWITCH_HAVE_IO_URING", "1"))
        with self.progress.during("translating fastpath/_core.pyx to C (Cython)"):
            translated = cythonize(self.extensions, compiler_directives=directives, quiet=True,
                                   annotate=os.environ.get("TAPSWITCH_ANNOTATE") == "1")
        for ext, done in zip(self.extensions, translated):   # keep setuptools' own objects
            ext.sources = done.sources

    def _up_to_date(self):
        for ext in self.extensions:
            target = self.get_ext_fullpath(ext.name)
            if self.force or not os.path.exists(target):
                return False
            built = os.path.getmtime(target)
            if any(os.path.getmtime(f) > built for f in [*ext.sources, *ext.depends] if os.path.exists(f)):
                return False
        return True

    def run(self):
        self.progress = _Progress()
        self.progress.say("building the fast path (fastpath._core): Cython, then the C "
                          "compiler; a minute or two on a small machine (pip install -v . "
                          "shows the compiler's own output)")
        self._cythonize()
        if self._up_to_date():
            super().run()
            self.progress.say("the compiled fast path is up to date: nothing to compile")
            return
        with self.progress.during(f"compiling the C extension ({' '.join(cflags)}; the long step)"):
            super().run()
        self.progress.say("fast path built")


extensions = [
    Extension(
        f"fastpath.{name}",
        [f"fastpath/{name}.pyx"],
        include_dirs=["fastpath/includes"],
        depends=["fastpath/includes/uring.h", "fastpath/includes/xdp.h", "fastpath/reasons.py"],
        extra_compile_args=cflags + ["-Wno-unused-function"],
    )
    for name in ("_core",)
]

setup(ext_modules=extensions, cmdclass={"build_ext": BuildFastPath})
