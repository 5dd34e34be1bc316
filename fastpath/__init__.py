"""tapswitch fast path: the compiled per-packet core.

Importing this package loads the compiled extension. There is no pure-Python
fallback: the Python reference of the same semantics lives in
``fastpath.reference`` and is only used as the test oracle.
"""
try:
    from fastpath import _core
except ImportError as exc:  # pragma: no cover - exercised only on broken builds
    raise ImportError(
        "tapswitch's compiled fast path (fastpath._core) is not built: "
        "run `pip install -e .` (or `pip install .`) from the repository root. "
        f"Original error: {exc}"
    ) from exc

from fastpath._core import *  # noqa: E402,F401,F403
