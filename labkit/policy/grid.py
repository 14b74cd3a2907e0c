"""Outcome grids: every (source, destination) on every port as bitsets, reasons on demand.

A :class:`Grid` is what a matrix is made of. It is computed by :meth:`Engine.grid
<labkit.policy.engine.Engine.grid>` in bitset time (one Python int per source and
port), and explains any one cell when asked (:meth:`Grid.explain`), at the cost of
one explained verdict. Anything that renders, counts or compares cells reads the
bits; only cells shown with their reasons, mismatched, probed, or asked about pay
for an explanation.

Row ``i`` of a :class:`Layers` is a bitset over destination positions for
``sources[i]``: bit ``j`` of ``allowed[i]`` says ``sources[i] -> destinations[j]``
connects; ``forbidden`` marks the HTTP 403 answers of an L7 proxy, ``refused``
connections refused because nothing listens (observed only), and ``known`` the
cells that have an outcome at all (every cell of an expected grid; the probed ones
of an observed grid).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from labkit.model import Denial, HttpRequest, Traffic, Verdict

__all__ = ["Grid", "Key", "Layers", "Port", "bitstring", "differ"]

Port = tuple[int, str]  # number, protocol
Key = tuple[str, str, int, str]  # source, destination, port, protocol


def bitstring(bits: int, width: int) -> str:
    """``width`` characters, '1' or '0', position 0 first."""
    return format(bits & ((1 << width) - 1), f"0{width}b")[::-1] if width else ""


@dataclass
class Layers:
    """One port's outcomes: per source row, bitsets over destination positions."""

    allowed: list[int]
    forbidden: list[int]
    refused: list[int]
    known: list[int]

    @classmethod
    def empty(cls, rows: int) -> Layers:
        return cls([0] * rows, [0] * rows, [0] * rows, [0] * rows)

    def copy(self) -> Layers:
        return Layers(list(self.allowed), list(self.forbidden), list(self.refused),
                      list(self.known))

    def outcome(self, i: int, j: int) -> tuple[bool, Denial | None] | None:
        """(allowed, denial) of one cell; None when it has no outcome."""
        if not (self.known[i] >> j) & 1:
            return None
        if (self.allowed[i] >> j) & 1:
            return True, None
        if (self.forbidden[i] >> j) & 1:
            return False, Denial.HTTP_403
        if (self.refused[i] >> j) & 1:
            return False, None
        return False, Denial.DROP

    def set(self, i: int, j: int, allowed: bool, denial: Denial | None) -> None:
        bit = 1 << j
        self.known[i] |= bit
        self.allowed[i] = self.allowed[i] | bit if allowed else self.allowed[i] & ~bit
        forbidden = not allowed and denial is Denial.HTTP_403
        refused = not allowed and denial is None
        self.forbidden[i] = self.forbidden[i] | bit if forbidden else self.forbidden[i] & ~bit
        self.refused[i] = self.refused[i] | bit if refused else self.refused[i] & ~bit


def differ(expected: Layers, observed: Layers, i: int) -> int:
    """Row ``i``'s cells observed otherwise than expected (the denial kind counts too)."""
    ea, oa = expected.allowed[i], observed.allowed[i]
    both_denied = ~ea & ~oa
    kind = (expected.forbidden[i] ^ observed.forbidden[i]) | observed.refused[i] \
        | expected.refused[i]
    return observed.known[i] & expected.known[i] & ((ea ^ oa) | (both_denied & kind))


@dataclass
class Grid:
    """Expected outcomes of every (source, destination, port), with reasons on demand."""

    sources: tuple[str, ...]
    destinations: tuple[str, ...]
    ports: tuple[Port, ...]
    layers: dict[Port, Layers]
    explainer: Callable[[Key], Verdict] = field(repr=False)
    #: The HTTP request every TCP cell sends (None: only whether the connection opens).
    http: HttpRequest | None = None
    _src: dict[str, int] = field(init=False, repr=False)
    _dst: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._src = {s: i for i, s in enumerate(self.sources)}
        self._dst = {d: j for j, d in enumerate(self.destinations)}

    def position(self, source: str, destination: str) -> tuple[int, int]:
        """(row, column) of a pair; KeyError naming the endpoint that is not in the grid."""
        try:
            i = self._src[source]
        except KeyError:
            raise KeyError(f"{source} is not a source of this grid") from None
        try:
            return i, self._dst[destination]
        except KeyError:
            raise KeyError(f"{destination} is not a destination of this grid") from None

    def __contains__(self, key: object) -> bool:
        """Whether a (source, destination, port, protocol) key is a cell of this grid."""
        if not isinstance(key, tuple) or len(key) != 4:
            return False
        src, dst, port, proto = key
        return (port, proto) in self.layers and src in self._src and dst in self._dst

    def port(self, port: int | None = None, protocol: str = "TCP") -> Port:
        return self.ports[0] if port is None else (port, protocol)

    def allowed(self, source: str, destination: str, port: int | None = None,
                protocol: str = "TCP") -> bool:
        i, j = self.position(source, destination)
        return bool((self.layers[self.port(port, protocol)].allowed[i] >> j) & 1)

    def explain(self, source: str, destination: str, port: int | None = None,
                protocol: str = "TCP") -> Verdict:
        """The explained verdict of one cell (computed now: about 10 µs)."""
        number, proto = self.port(port, protocol)
        self.position(source, destination)
        return self.explainer((source, destination, number, proto))

    @property
    def cells(self) -> int:
        return len(self.sources) * len(self.destinations) * len(self.ports)

    def allowed_count(self) -> int:
        return sum(row.bit_count() for layers in self.layers.values() for row in layers.allowed)

    def traffic(self, key: Key) -> Traffic:
        """The connection a cell stands for."""
        src, dst, port, protocol = key
        return Traffic(src, dst, port, protocol, self.http if protocol == "TCP" else None)

    def cell_keys(self) -> Iterator[Key]:
        """Every cell's key: port by port, row by row."""
        for number, proto in self.ports:
            for s in self.sources:
                for d in self.destinations:
                    yield s, d, number, proto


