"""The Prometheus text exposition format (version 0.0.4), written by hand: a few lines,
and it keeps `tapswitch ctl` free of a client library.  The tests parse the output with
prometheus-client's parser.

``Family(name, kind, help)`` collects samples (``add(value, **labels)``); ``render(families)``
writes ``# HELP`` and ``# TYPE`` once per family, then one line per sample with label values
escaped (backslash, double quote, newline), families in the order given.
"""
from __future__ import annotations

import math
import re

__all__ = ["Family", "render", "CONTENT_TYPE"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
KINDS = ("counter", "gauge", "untyped")


def _escape_label(value) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value) -> str:
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


class Family:
    """One metric family: a name, a type, a help text and its samples."""

    def __init__(self, name: str, kind: str, help: str):
        if not _NAME.match(name):
            raise ValueError(f"bad metric name {name!r}")
        if kind not in KINDS:
            raise ValueError(f"metric type must be one of {KINDS}, not {kind!r}")
        if kind == "counter" and not name.endswith("_total"):
            raise ValueError(f"counter {name!r} must end in _total")
        self.name, self.kind, self.help = name, kind, help
        self.samples: list[tuple[tuple[tuple[str, str], ...], object]] = []

    def add(self, value, **labels) -> "Family":
        for label in labels:
            if not _LABEL.match(label) or label.startswith("__"):
                raise ValueError(f"bad label name {label!r}")
        self.samples.append((tuple(labels.items()), value))
        return self

    def lines(self):
        yield f"# HELP {self.name} {_escape_help(self.help)}"
        yield f"# TYPE {self.name} {self.kind}"
        for labels, value in self.samples:
            text = ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels)
            yield f"{self.name}{{{text}}} {_number(value)}" if text else f"{self.name} {_number(value)}"


def render(families) -> str:
    """The exposition text of ``families`` (each family once; empty ones keep HELP/TYPE)."""
    seen = set()
    out = []
    for family in families:
        if family.name in seen:
            raise ValueError(f"metric family {family.name!r} given twice")
        seen.add(family.name)
        out.extend(family.lines())
    return "\n".join(out) + "\n"
