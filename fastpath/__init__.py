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


def _load_core():
    try:
        return _importlib.import_module("fastpath._core")
    except ImportError as exc:  # pragma: no cover - exercised only on broken builds
        raise ImportError(
            "tapswitch's compiled fast path (fastpath._core) is not built: "
            "run `pip install -e .` (or `pip install .`) from the repository root. "
            f"Original error: {exc}"
        ) from exc


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
