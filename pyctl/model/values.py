"""The immutable values the model hands out: namespaces, ports, routes and
tagged addresses (the change events are in ``pyctl.model.events``).

They are copies: holding one never pins or changes the model. Each has
``to_dict()`` giving plain JSON-able data (what the control socket sends).
"""
from dataclasses import asdict, dataclass, field
from typing import NamedTuple, Optional

__all__ = ["Namespace", "Port", "Route", "TaggedAddress", "L2", "L3"]

L2 = "l2"
L3 = "l3"


@dataclass(frozen=True)
class Namespace:
    """A namespace of the tree: ``parent`` is the parent's id (``None`` for the root)."""

    id: int
    name: str
    kind: str
    parent: Optional[int]

    @property
    def is_l2(self):
        return self.kind == L2

    @property
    def is_l3(self):
        return self.kind == L3

    @property
    def scope_id(self):
        """The id of the L2 whose routes and address space it uses (an L2: itself)."""
        return self.parent if self.kind == L3 else self.id

    def to_dict(self):
        return asdict(self)

    def __str__(self):
        return self.name


@dataclass(frozen=True)
class Route:
    """A route of an L2 namespace: destination network, optional gateway, optional egress
    port.  ``connected``: not one it was given, but the subnet of one of its own addresses
    (on-link; ``port`` is the L2's port that leads there, if one does)."""

    dst: str
    via: Optional[str] = None
    port: Optional[str] = None
    connected: bool = False

    def to_dict(self):
        return asdict(self)


@dataclass(frozen=True)
class Port:
    """A port (TAP) attached to namespace ``ns`` (an id); ``options`` is a copy."""

    name: str
    id: int
    ns: int
    mac: str
    options: dict = field(default_factory=dict, hash=False)

    def to_dict(self):
        return {"name": self.name, "id": self.id, "ns": self.ns, "mac": self.mac,
                "options": dict(self.options)}


class TaggedAddress(NamedTuple):
    """An address in a parent's tagged listing: ``owner`` is the holding namespace's name."""

    address: str
    owner: str
