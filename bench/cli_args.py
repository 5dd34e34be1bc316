"""Command-line pieces several benchmarks share: a ``--sizes`` list checked against its
bounds, a list of known names, and the optional ``--json`` file the rows are also written to."""
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


def names(value: str, known, what: str) -> list[str]:
    """``value`` ("a,b") as a list of names, each one of ``known``, else an argparse
    type error naming the unknown ones (``what``: what they are)."""
    items = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in items if v not in known]
    if bad or not items:
        raise argparse.ArgumentTypeError(f"unknown {what} {', '.join(bad) or '(none)'}; "
                                         f"known: {', '.join(known)}")
    return items


def write_json(path: str | None, data) -> None:
    """Also write ``data`` to ``path`` as JSON (one-space indent); nothing when path is None."""
    if path:
        with open(path, "w") as out:
            json.dump(data, out, indent=1)
