"""Build the Cython fast path.

Compiler directives are set here, once.  TAPSWITCH_DEBUG=1 turns bounds and
initialisation checks back on (and keeps asserts), for a debug run of the suite.
"""
import os

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

extensions = [
    Extension(
        f"fastpath.{name}",
        [f"fastpath/{name}.pyx"],
        extra_compile_args=cflags + ["-Wno-unused-function"],
    )
    for name in ("_core",)
]

setup(ext_modules=cythonize(extensions, compiler_directives=directives,
                            annotate=os.environ.get("TAPSWITCH_ANNOTATE") == "1"))
