"""Frozen records for what `tapswitch ctl` loads: the verb table's declarations
(``pyctl.control.declare``) and the wire's requests and replies (``pyctl.control.protocol``).

What a frozen dataclass gives them (keyword or positional fields with defaults, equality
and hash over the compared fields, a repr, no assignment, ``replace``) without importing
``dataclasses``, which imports ``inspect`` and with it ``ast``, ``dis`` and ``tokenize``:
about 8 ms of a `tapswitch ctl` call that needs none of them (bench/ctl_latency.py).

    class Point(Record):
        FIELDS = (("x", REQUIRED), ("y", 0), ("label", "", False))   # False: not compared
        def check(self): ...             # after the fields are set: raise to refuse
"""
from __future__ import annotations

__all__ = ["Record", "REQUIRED"]

REQUIRED = object()         # a field's default: the caller must give it


class Record:
    """A frozen record; a subclass names its ``FIELDS`` as (name, default[, compared])."""
    __slots__ = ()
    FIELDS: tuple = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._names = tuple(f[0] for f in cls.FIELDS)
        cls._defaults = {f[0]: f[1] for f in cls.FIELDS}
        cls._compared = tuple(f[0] for f in cls.FIELDS if len(f) < 3 or f[2])

    def __init__(self, *args, **kwargs):
        names = self._names
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__} takes at most {len(names)} fields")
        given = dict(zip(names, args))
        twice = given.keys() & kwargs.keys()
        unknown = kwargs.keys() - set(names)
        if twice or unknown:
            raise TypeError(f"{type(self).__name__}: field(s) {', '.join(sorted(twice | unknown))} "
                            f"{'given twice' if twice else 'unknown'}")
        given.update(kwargs)
        for name in names:
            value = given.get(name, self._defaults[name])
            if value is REQUIRED:
                raise TypeError(f"{type(self).__name__}: missing field {name!r}")
            object.__setattr__(self, name, value)
        self.check()

    def check(self) -> None:
        """Refuse a record whose fields do not go together (raise); set derived fields with
        ``object.__setattr__``."""

    def replace(self, **changes):
        """A copy with ``changes`` (checked again)."""
        return type(self)(**{**{name: getattr(self, name) for name in self._names}, **changes})

    def _key(self) -> tuple:
        return tuple(getattr(self, name) for name in self._compared)

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is frozen: use replace()")

    def __delattr__(self, name):
        raise AttributeError(f"{type(self).__name__} is frozen")

    def __repr__(self):
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._compared)
        return f"{type(self).__name__}({fields})"
