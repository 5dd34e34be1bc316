"""The verb list of docs/control.md, written from the verb table.

    python -m pyctl.control.verb_docs            # rewrite the marked section
    python -m pyctl.control.verb_docs --check    # exit 1 if it is not what the table says

The section sits between ``BEGIN`` and ``END`` (HTML comments, invisible when
rendered); tests/control/test_verb_table.py fails while it differs from
``markdown_table()``.
"""
from __future__ import annotations

import argparse
import pathlib
import sys

from pyctl.control.declare import Verb
from pyctl.control.verb_table import VERBS

__all__ = ["BEGIN", "END", "DOC", "markdown_table", "update"]

BEGIN = ("<!-- verbs: generated from pyctl/control/verb_table.py by "
         "`python -m pyctl.control.verb_docs`; edit the table, not this list -->")
END = "<!-- end of the generated verb list -->"
DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "control.md"


def _args(verb: Verb) -> str:
    names = [p.name if p.required else f"[{p.name}]" for p in verb.params]
    return f"`{', '.join(names)}`" if names else ""


def markdown_table(table: dict[str, Verb] | None = None) -> str:
    """One row per verb, in table order: name, arguments, access, result."""
    rows = ["| verb | args | access | result |", "|---|---|---|---|"]
    for verb in (VERBS if table is None else table).values():
        result = ("daemon's: " if verb.served_by == "daemon" else "") + verb.result
        rows.append(f"| `{verb.name}` | {_args(verb)} | {verb.access} | {result} |"
                    .replace("|  |", "| |"))
    return "\n".join(rows)


def update(text: str, table: dict[str, Verb] | None = None) -> str:
    """``text`` with the marked section replaced by the table's list."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError("the document has no generated verb list (its markers are missing)")
    return text[:start] + BEGIN + "\n" + markdown_table(table) + "\n" + text[end:]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pyctl.control.verb_docs",
                                 description="Write the verb list of docs/control.md.")
    ap.add_argument("--check", action="store_true", help="only check; exit 1 if it differs")
    ap.add_argument("path", nargs="?", default=str(DOC))
    ns = ap.parse_args(argv)
    path = pathlib.Path(ns.path)
    text = path.read_text()
    new = update(text)
    if ns.check:
        if new != text:
            print(f"{path}: the verb list differs from pyctl/control/verb_table.py; run "
                  f"python -m pyctl.control.verb_docs", file=sys.stderr)
            return 1
        return 0
    if new != text:
        path.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
