"""Command-line pieces several benchmarks share: a ``--sizes`` list checked against its
bounds, and the optional ``--json`` file the rows are also written to."""
from __future__ import annotations

import argparse
import json


def sizes(parser: argparse.ArgumentParser, text: str, maximum: int) -> list[int]:
    """``text`` ("10,1000,10000") as ints, each in 1..maximum, else ``parser.error``."""
    try:
        out = [int(s) for s in text.split(",")]
    except ValueError:
        parser.error(f"--sizes must be comma-separated integers, not {text!r}")
    if any(not 1 <= n <= maximum for n in out):
        parser.error(f"sizes must be in 1..{maximum}")
    return out


def write_json(path: str | None, data) -> None:
    """Also write ``data`` to ``path`` as JSON (one-space indent); nothing when path is None."""
    if path:
        with open(path, "w") as out:
            json.dump(data, out, indent=1)
