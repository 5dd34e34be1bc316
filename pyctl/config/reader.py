"""Reading a parsed TOML document with every refusal naming its file, line and key:
the line index of the keys and ``_Reader``'s typed accessors.

The reader collects refusals instead of stopping at the first: an entry of the file (a
``[[port]]`` table, a key of ``[daemon]``) is read inside ``with r.collect() as entry:``;
a refusal raised there is recorded and ends that entry only (``entry.ok`` is then False),
and ``entry.soft(path, check, value)`` records a refusal of one independent key and lets
the entry go on.  ``r.errors`` holds them all, each a ``ConfigError``."""
from __future__ import annotations

import contextlib
import re
from typing import Any, Callable

from pyctl import errors
from pyctl.config.spec import ConfigError

_HEADER = re.compile(r"\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"\s*((?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')"
                  r"(?:\s*\.\s*(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'))*)\s*=")


def _split_key(text: str) -> list[str]:
    parts = re.findall(r"\"[^\"]*\"|'[^']*'|[A-Za-z0-9_-]+", text)
    return [p[1:-1] if p[:1] in "\"'" else p for p in parts]


def _dotted(path: tuple) -> str:
    out = ""
    for seg in path:
        out += f"[{seg}]" if isinstance(seg, int) else (f".{seg}" if out else seg)
    return out


def _index_lines(text: str) -> dict[str, int]:
    """Map dotted key paths (``port[1].mac``) to the line that defines them.

    tomllib reports lines only for syntax errors; for the semantic ones we
    scan the text for table headers and ``key =`` lines.  Good enough: a key
    inside a multi-line string or an inline table falls back to the line of
    the nearest enclosing key.
    """
    lines: dict[str, int] = {}
    arrays: dict[tuple, int] = {}
    table: tuple = ()
    in_array_value = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if in_array_value:  # inside a multi-line array value: no keys here
            in_array_value += raw.count("[") - raw.count("]")
            continue
        header = _HEADER.match(raw)
        if header and not _KEY.match(raw):
            names = _split_key(header.group(2))
            path: tuple = ()
            for name in names[:-1]:
                path += (name,)
                if path in arrays:
                    path += (arrays[path],)
            path += (names[-1],)
            if header.group(1) == "[[":
                arrays[path] = arrays.get(path, -1) + 1
                path += (arrays[path],)
            table = path
            lines.setdefault(_dotted(table), number)
            continue
        key = _KEY.match(raw)
        if key:
            full = table + tuple(_split_key(key.group(1)))
            lines.setdefault(_dotted(full), number)
            value = raw[key.end():].split("#", 1)[0]
            if value.strip().startswith("["):
                in_array_value = value.count("[") - value.count("]")
    return lines


# ----------------------------------------------------------- the reader

class _Recorded(ConfigError):
    """Ends an entry whose refusals are recorded already."""

    def __init__(self):
        super().__init__("", "", None, "recorded")


class _Entry:
    """One entry being read: ``ok`` until a refusal of it is recorded."""

    def __init__(self, reader: "_Reader"):
        self.reader, self.ok = reader, True

    def soft(self, path: tuple, check: Callable[[Any], Any], value: Any) -> Any:
        """``check(value)``; a refusal is recorded (the entry is then not ok) and None
        returned, so the entry's other keys are still checked."""
        try:
            return self.reader.checked(path, check, value)
        except ConfigError as exc:
            self.fail(exc)
            return None

    def fail(self, exc: ConfigError) -> None:
        self.ok = False
        if not isinstance(exc, _Recorded):
            self.reader.errors.append(exc)


class _Reader:
    """Type-checks values against the key path they came from; collects the refusals."""

    def __init__(self, source: str, lines: dict[str, int]):
        self.source, self.lines = source, lines
        self.errors: list[ConfigError] = []

    @contextlib.contextmanager
    def collect(self):
        """Read one entry: a ConfigError raised inside is recorded and ends the entry."""
        entry = _Entry(self)
        try:
            yield entry
        except ConfigError as exc:
            entry.fail(exc)

    def line_of(self, path: tuple) -> int | None:
        while path:
            line = self.lines.get(_dotted(path))
            if line is not None:
                return line
            path = path[:-1]
        return None

    def error(self, path: tuple, reason: str, code: str | None = None) -> ConfigError:
        return ConfigError(self.source, _dotted(path), self.line_of(path), reason, code)

    def table(self, value: Any, path: tuple, allowed: tuple[str, ...],
              required: tuple[str, ...] = ()) -> dict[str, Any]:
        """``value`` as a table: each unknown key is recorded (and left out); a missing
        required key is recorded and ends the entry."""
        if not isinstance(value, dict):
            raise self.error(path, f"expected a table, got {_type_name(value)}")
        for key in value:
            if key not in allowed:
                self.errors.append(self.error(path + (key,), f"unknown key (allowed here: "
                                                             f"{', '.join(allowed)})"))
        missing = [key for key in required if key not in value]
        for key in missing:
            self.errors.append(self.error(path, f"missing required key {key!r}"))
        if missing:
            raise _Recorded()
        return {k: v for k, v in value.items() if k in allowed}

    def array_of_tables(self, doc: dict, key: str) -> list[tuple[tuple, dict]]:
        value = doc.get(key, [])
        if not isinstance(value, list):
            self.errors.append(self.error((key,), f"expected an array of tables ([[{key}]]), "
                                                  f"got {_type_name(value)}"))
            return []
        return [((key, i), item) for i, item in enumerate(value)]

    def typed(self, table: dict, path: tuple, key: str, kind: type | tuple, default: Any = None):
        if key not in table:
            return default
        value = table[key]
        if kind is int and isinstance(value, bool) or not isinstance(value, kind):
            want = {str: "a string", int: "an integer", bool: "a boolean", list: "an array"}
            raise self.error(path + (key,), f"expected {want.get(kind, kind)}, got {_type_name(value)}")
        return value

    def integer(self, table: dict, path: tuple, key: str, default: int, lo: int, hi: int) -> int:
        value = self.typed(table, path, key, int, default)
        if not lo <= value <= hi:
            raise self.error(path + (key,), f"{value} is out of range ({lo} .. {hi})")
        return value

    def strings(self, table: dict, path: tuple, key: str) -> tuple[tuple, list[str]] | None:
        value = self.typed(table, path, key, list)
        if value is None:
            return None
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise self.error(path + (key, i), f"expected a string, got {_type_name(item)}")
        return path + (key,), value

    def checked(self, path: tuple, check: Callable[[Any], Any], value: Any) -> Any:
        """``check(value)`` with its InvalidArgument turned into a located ConfigError."""
        try:
            return check(value)
        except errors.TapswitchError as exc:
            raise self.error(path, exc.message) from None


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a float", str: "a string",
            list: "an array", dict: "a table"}.get(type(value), type(value).__name__)


# ----------------------------------------------------------------- loading
