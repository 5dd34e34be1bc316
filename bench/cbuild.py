"""Compiles the bench's C helpers (bench/csrc/*.c) with gcc, once per version of the
source and of the headers beside it (bench/csrc/*.h), into a cache directory;
``tool("udpblast")`` returns the binary."""

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

CSRC = Path(__file__).with_name("csrc")


class ToolUnavailable(RuntimeError):
    """A helper cannot be built here (no gcc, compile error)."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "tapswitch-bench"


def tool(name: str) -> str:
    """Path of the compiled helper ``name`` (bench/csrc/NAME.c), built if needed."""
    source = CSRC / f"{name}.c"
    digest = hashlib.sha256()
    for path in [source] + sorted(CSRC.glob("*.h")):
        digest.update(path.read_bytes())
    digest = digest.hexdigest()[:16]
    binary = cache_dir() / f"{name}-{digest}"
    if binary.exists():
        return str(binary)
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        raise ToolUnavailable(f"no C compiler to build {source.name} (apt-get install gcc)")
    binary.parent.mkdir(parents=True, exist_ok=True)
    tmp = binary.with_suffix(f".tmp{os.getpid()}")
    proc = subprocess.run([gcc, "-O2", "-Wall", "-o", str(tmp), str(source)],
                          capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise ToolUnavailable(f"building {source.name} failed:\n{proc.stderr}")
    os.replace(tmp, binary)
    return str(binary)
