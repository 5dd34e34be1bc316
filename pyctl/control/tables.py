"""Plain-text tables for people: `tapswitch ctl` output and the daemon's counter report."""
from __future__ import annotations

from typing import Any, Iterable

__all__ = ["table"]


def table(rows: Iterable[Iterable[Any]], header: list[str], right: Iterable[int] = ()) -> str:
    """Columns padded to their widest cell; columns whose index is in ``right`` (numbers)
    are right-aligned.  An empty or None cell shows as ``-``."""
    right = frozenset(right)
    cells = [header] + [["-" if c is None or c == "" else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.rjust(w) if i in right else c.ljust(w)
                  for i, (c, w) in enumerate(zip(row, widths))).rstrip()
        for row in cells)
