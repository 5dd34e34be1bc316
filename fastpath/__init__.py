"""tapswitch fast path: the compiled per-packet core and the plain modules under it.

``fastpath.Datapath``, ``fastpath.PacketLoop``, ``fastpath.Batch`` and the other names of
the compiled extension (``fastpath._core``) are loaded on first use, so that importing
the plain modules -- ``fastpath.errors``, ``fastpath.reasons``, ``fastpath.verdicts``,
``fastpath.addresses`` -- loads neither the extension nor numpy (``tapswitch ctl`` stays
lean).  There is no pure-Python fallback: the reference of the same semantics,
``fastpath.reference``, is only the test oracle, and a missing build is an ImportError
that says how to build.
"""
import importlib as _importlib
import os as _os

_PLAIN_MODULES = frozenset(name[:-3] for name in _os.listdir(_os.path.dirname(__file__))
                           if name.endswith(".py") and name != "__init__.py")


class CoreNotBuilt(ImportError):
    """The compiled fast path is missing from this tree, or another tree's was found."""


def _load_core():
    here = _os.path.dirname(_os.path.abspath(__file__))
    build = f"build it: `python setup.py build_ext --inplace` in {_os.path.dirname(here)} (or `pip install .`)"
    try:
        core = _importlib.import_module("fastpath._core")
    except ImportError as exc:
        raise CoreNotBuilt(f"tapswitch's compiled fast path (fastpath._core) is not built in "
                           f"{here}: {build}. ({exc})") from exc
    found = _os.path.dirname(_os.path.abspath(core.__file__))
    if found != here:       # an installed tapswitch's, found through its import hook: not this code's
        raise CoreNotBuilt(f"tapswitch's compiled fast path is not built in {here} (the one "
                           f"found, in {found}, belongs to another copy of tapswitch): {build}")
    return core


def __getattr__(name):
    """A name of the compiled extension, loading it on first use.  A plain submodule's
    name is left to the import system (``from fastpath import verdicts`` stays lean)."""
    if name in _PLAIN_MODULES or (name.startswith("__") and name != "__all__"):
        raise AttributeError(f"module 'fastpath' has no attribute {name!r}")
    core = _load_core()
    if name == "_core":
        return core
    public = getattr(core, "__all__", None)
    if name == "__all__":
        return list(public)
    if name in public:
        value = getattr(core, name)
        globals()[name] = value         # later lookups do not come here again
        return value
    raise AttributeError(f"module 'fastpath' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_load_core().__all__) | _PLAIN_MODULES)
