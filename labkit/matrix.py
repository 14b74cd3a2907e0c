"""Connectivity matrices: what policies mean (expected) against what a cluster does (observed).

The difference between the two is the course's central teaching tool: on
Flannel every policy shows up as a difference, on Calico and Cilium none should.
A matrix renders as a compact text grid, as HTML in Jupyter, and as JSON.
"""

from __future__ import annotations

import html
import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from labkit.display.render import Rendered
from labkit.errors import CheckFailed
from labkit.model import Denial, HttpRequest, Verdict
from labkit.policy.engine import Engine
from labkit.policy.grid import Grid, Key, Layers, Port, bitstring, differ
from labkit.policy.ir import iter_bits

GLYPHS = {"allowed": ".", Denial.DROP: "X", Denial.HTTP_403: "F"}
LEGEND = ". allowed   X dropped (times out)   F HTTP 403   ! observed differs from expected"


@dataclass(frozen=True)
class Observation:
    """What a probe saw: on kind a real connection attempt, on sim the installed CNI's engine."""

    allowed: bool
    denial: Denial | None = None
    detail: str = ""
    attempts: int = 1
    simulated: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"allowed": self.allowed, "denial": self.denial.value if self.denial else None,
                "detail": self.detail, "attempts": self.attempts, "simulated": self.simulated}

    @classmethod
    def from_verdict(cls, verdict: Verdict, *, simulated: bool) -> Observation:
        return cls(verdict.allowed, verdict.denial, "; ".join(verdict.reasons), 1, simulated)


def _glyph(allowed: bool, denial: Denial | None) -> str:
    return GLYPHS["allowed"] if allowed else GLYPHS.get(denial or Denial.DROP, "X")


@dataclass(frozen=True)
class Cell:
    source: str
    destination: str
    port: int
    protocol: str
    expected: Verdict
    observed: Observation | None = None

    @property
    def matches(self) -> bool | None:
        """None until observed; else whether observed and expected agree (denial kind too)."""
        if self.observed is None:
            return None
        if self.observed.allowed != self.expected.allowed:
            return False
        return self.observed.allowed or self.observed.denial == self.expected.denial

    @property
    def seen(self) -> Observation:
        """The observation, for code that has probed the cell (raises when there is none)."""
        if self.observed is None:
            raise CheckFailed(f"{self.source} -> {self.destination}: the probe returned nothing",
                              hint="lab.status() shows whether the pods are Running")
        return self.observed

    @property
    def glyph(self) -> str:
        if self.observed is None:
            return _glyph(self.expected.allowed, self.expected.denial)
        mark = "!" if self.matches is False else ""
        return _glyph(self.observed.allowed, self.observed.denial) + mark

    def as_dict(self) -> dict[str, Any]:
        exp = self.expected
        return {
            "from": self.source, "to": self.destination, "port": self.port,
            "protocol": self.protocol,
            "expected": {"allowed": exp.allowed, "denial": exp.denial.value if exp.denial
                         else None, "reasons": list(exp.reasons)},
            "observed": self.observed.as_dict() if self.observed else None,
            "matches": self.matches,
        }


#: Above this many cells, JSON holds one string of outcome codes per row (see ROW_CODES)
#: instead of one object per cell with its reasons; ``explain=True`` forces the cells.
COMPACT_ABOVE = 10_000
#: Above this many cells, HTML tooltips carry reasons only for the cells that differ.
HTML_REASONS_UP_TO = 2_500
#: The compact JSON form's codes, one character per cell.
ROW_CODES = {".": "allowed", "X": "dropped (times out)", "F": "HTTP 403",
             "R": "connection refused", "?": "not observed"}
_WIDE = str.maketrans({c: f"{c:>4}" for c in ".XF"})
_ALLOW_CODE = str.maketrans("10", ".X")


@dataclass
class Observed:
    """What the data plane did, as bitsets per port, and each cell's observation on demand."""

    layers: dict[Port, Layers]
    lookup: Callable[[Key], Observation]
    simulated: bool = False


class ConnectivityMatrix(Rendered):
    """Every (source, destination, port): rows are sources, columns destinations.

    Made of an expected :class:`~labkit.policy.grid.Grid` and, once probed, an
    :class:`Observed` one: both bitsets. Counting, comparing and rendering read the bits;
    a :class:`Cell` (with its explained verdict and observation) is built when asked for:
    ``cell()``, ``diff()``, ``cells[key]``, and the cells JSON form.
    """

    def __init__(self, grid: Grid, observed: Observed | None = None, *, title: str = "",
                 simulated: bool = False) -> None:
        self.grid = grid
        self.observed = observed
        self.title = title
        self.simulated = simulated or (observed is not None and observed.simulated)

    @property
    def sources(self) -> tuple[str, ...]:
        return self.grid.sources

    @property
    def destinations(self) -> tuple[str, ...]:
        return self.grid.destinations

    @property
    def ports(self) -> tuple[Port, ...]:
        return self.grid.ports

    @property
    def cells(self) -> Mapping[Key, Cell]:
        """Every cell by (source, destination, port, protocol), each built when read."""
        return _Cells(self)

    @classmethod
    def expected(cls, engine: Engine, sources: Sequence[str], destinations: Sequence[str],
                 ports: Iterable[tuple[int, str]] = ((80, "TCP"),), *,
                 http: HttpRequest | None = None, title: str = "") -> ConnectivityMatrix:
        """The expected side, from the engine's bitset grid."""
        return cls(engine.grid(sources, destinations, ports, http=http), title=title)

    def with_observed(self, observed: Mapping[Key, Observation] | Observed
                      ) -> ConnectivityMatrix:
        """This matrix with observations: a whole :class:`Observed` grid, or some cells'
        (added to those already observed)."""
        if isinstance(observed, Observed):
            return ConnectivityMatrix(self.grid, observed, title=self.title,
                                      simulated=self.simulated)
        unknown = [k for k in observed if k not in self.grid]
        if unknown:
            raise KeyError(f"observations for cells not in the matrix: {sorted(unknown)[:3]}")
        before = self.observed
        rows = len(self.sources)
        layers = {p: before.layers[p].copy() if before else Layers.empty(rows)
                  for p in self.ports}
        for (src, dst, port, proto), o in observed.items():
            i, j = self.grid.position(src, dst)
            layers[(port, proto)].set(i, j, o.allowed, o.denial)
        given = dict(observed)

        def lookup(key: Key) -> Observation:
            found = given.get(key)
            if found is None and before is not None:
                return before.lookup(key)
            assert found is not None
            return found

        simulated = (before is not None and before.simulated) or \
            any(o.simulated for o in given.values())
        return ConnectivityMatrix(self.grid, Observed(layers, lookup, simulated),
                                  title=self.title, simulated=self.simulated)

    # -- queries -----------------------------------------------------------------------
    def cell(self, source: str, destination: str, port: int | None = None,
             protocol: str = "TCP") -> Cell:
        number, proto = self.grid.port(port, protocol)
        return self._cell((source, destination, number, proto))

    def _cell(self, key: Key) -> Cell:
        src, dst, port, proto = key
        i, j = self.grid.position(src, dst)
        observation = None
        if self.observed is not None and (self.observed.layers[(port, proto)].known[i] >> j) & 1:
            observation = self.observed.lookup(key)
        return Cell(src, dst, port, proto, self.grid.explain(src, dst, port, proto), observation)

    def _differ(self, port: Port, i: int) -> int:
        if self.observed is None:
            return 0
        return differ(self.grid.layers[port], self.observed.layers[port], i)

    def differing(self) -> Iterator[Key]:
        """The keys of the cells observed otherwise than expected, without building them."""
        for port in self.ports:
            for i, src in enumerate(self.sources):
                for j in iter_bits(self._differ(port, i)):
                    yield src, self.destinations[j], port[0], port[1]

    def diff(self) -> list[Cell]:
        """Observed cells that differ from expected: findings to show and explain."""
        return [self._cell(k) for k in self.differing()]

    @property
    def observed_count(self) -> int:
        if self.observed is None:
            return 0
        return sum(row.bit_count() for layers in self.observed.layers.values()
                   for row in layers.known)

    def differ_count(self) -> int:
        return sum(self._differ(p, i).bit_count() for p in self.ports
                   for i in range(len(self.sources)))

    def summary(self) -> str:
        total = self.grid.cells
        observed = self.observed_count
        if not observed:
            return f"expected: {self.grid.allowed_count()} of {total} connections allowed"
        differ = self.differ_count()
        label = " (simulated)" if self.simulated else ""
        agree = "observed matches expected" if not differ else f"{differ} differ from expected"
        return f"observed{label}: {observed} of {total} cells, {agree}"

    # -- rendering ---------------------------------------------------------------------
    def _shown(self, port: Port, i: int) -> tuple[int, int]:
        """Row ``i``'s (allowed, HTTP 403) bits as shown: observed where probed, else expected."""
        exp = self.grid.layers[port]
        if self.observed is None:
            return exp.allowed[i], exp.forbidden[i]
        obs = self.observed.layers[port]
        known = obs.known[i]
        return ((obs.allowed[i] & known) | (exp.allowed[i] & ~known),
                (obs.forbidden[i] & known) | (exp.forbidden[i] & ~known))

    def _glyphs(self, port: Port, i: int) -> str:
        """Row ``i`` of the text grid: each cell's glyph right-aligned in four characters."""
        n = len(self.destinations)
        allowed, forbidden = self._shown(port, i)
        codes = bitstring(allowed, n).translate(_ALLOW_CODE)
        if forbidden:
            chars = list(codes)
            for j in iter_bits(forbidden):
                chars[j] = "F"
            codes = "".join(chars)
        marks = self._differ(port, i)
        if not marks:
            return codes.translate(_WIDE)
        wide = [f"{c:>4}" for c in codes]
        for j in iter_bits(marks):
            wide[j] = f"{codes[j] + '!':>4}"
        return "".join(wide)

    def to_text(self) -> str:
        return "\n".join(self.text_lines())

    def text_lines(self) -> Iterator[str]:
        """The text grid line by line (for writing a large one without holding it)."""
        if self.title:
            yield self.title
        width = max((len(s) for s in self.sources), default=0) + 5
        numbers = "".join(f"{j + 1:>4}" for j in range(len(self.destinations)))
        for port in self.ports:
            yield f"{port[1]}/{port[0]}  (rows: from, columns: to)"
            yield " " * width + numbers
            for i, src in enumerate(self.sources):
                yield f"{i + 1:>3} {src:<{width - 4}}{self._glyphs(port, i)}"
            yield "columns: " + "  ".join(f"{j + 1}={d}" for j, d in enumerate(self.destinations))
        yield LEGEND
        yield self.summary()

    def _repr_html_(self) -> str:
        e = html.escape
        reasons = self.grid.cells <= HTML_REASONS_UP_TO
        parts = ['<div class="labkit-matrix">']
        if self.title:
            parts.append(f"<strong>{e(self.title)}</strong>")
        if self.simulated:
            parts.append(' <span style="background:#eef;padding:1px 4px">simulated</span>')
        for port in self.ports:
            parts.append('<table style="border-collapse:collapse;font-family:monospace">'
                         f"<caption>{port[1]}/{port[0]} &mdash; rows: from, columns: to</caption>"
                         "<tr><th></th>")
            parts += [f'<th style="padding:2px 6px">{e(d)}</th>' for d in self.destinations]
            parts.append("</tr>")
            for i, src in enumerate(self.sources):
                parts.append(f'<tr><th style="text-align:left;padding:2px 6px">{e(src)}</th>')
                glyphs = self._glyphs(port, i)
                marks = self._differ(port, i)
                for j, dst in enumerate(self.destinations):
                    glyph = glyphs[4 * j:4 * j + 4].strip()
                    differs = bool((marks >> j) & 1)
                    tip = self._tip((src, dst, *port)) if reasons or differs else \
                        _short_tip(glyph)
                    parts.append(_html_cell(glyph, differs, tip))
                parts.append("</tr>")
            parts.append("</table>")
        parts.append(f"<div>{_HTML_LEGEND}</div><div>{e(self.summary())}</div></div>")
        return "".join(parts)

    def _tip(self, key: Key) -> str:
        cell = self._cell(key)
        tip = "expected: " + ("allowed" if cell.expected.allowed else
                              f"denied ({cell.expected.denial})") + "\n" + "\n".join(
            cell.expected.reasons)
        if cell.observed is not None:
            tip += f"\nobserved: {'allowed' if cell.observed.allowed else 'denied'}"
            if cell.observed.detail:
                tip += f" ({cell.observed.detail})"
        return tip

    # -- JSON --------------------------------------------------------------------------
    def compact(self, explain: bool | None = None) -> bool:
        """Whether JSON takes the compact rows form (see COMPACT_ABOVE)."""
        return not explain and self.grid.cells > COMPACT_ABOVE

    def as_dict(self, explain: bool | None = None) -> dict[str, Any]:
        return json.loads(self.to_json(explain=explain))

    def to_json(self, *, explain: bool | None = None, **kwargs: Any) -> str:
        """Compact JSON by default, unlike Rendered; ``json.dumps`` options reformat it."""
        out = io.StringIO()
        self.write_json(out, explain=explain)
        return json.dumps(json.loads(out.getvalue()), **kwargs) if kwargs else out.getvalue()

    def write_json(self, out: TextIO, *, explain: bool | None = None,
                   first: Mapping[str, Any] | None = None) -> None:
        """Stream the matrix as JSON, piece by piece (constant memory beyond the grid).

        Small matrices (and ``explain=True``) list every cell with its reasons; large ones
        give, per port, one string per source with a code per destination (ROW_CODES).
        ``first``: fields to put before the matrix's own.
        """
        dumps = json.dumps
        compact = self.compact(explain)
        head = {**(first or {}), "title": self.title, "simulated": self.simulated,
                "sources": list(self.sources), "destinations": list(self.destinations),
                "ports": [f"{p}/{proto}" for p, proto in self.ports],
                "format": "rows" if compact else "cells"}
        out.write(dumps(head)[:-1])
        if compact:
            out.write(', "codes": ' + dumps(ROW_CODES))
            for name, rows in (("expected", self._expected_codes),
                               ("observed", self._observed_codes)):
                if name == "observed" and self.observed is None:
                    out.write(', "observed": null')
                    continue
                out.write(f', "{name}": {{')
                for n, port in enumerate(self.ports):
                    out.write(f'{", " if n else ""}"{port[0]}/{port[1]}": [')
                    for i in range(len(self.sources)):
                        out.write(("," if i else "") + '"' + rows(port, i) + '"')
                    out.write("]")
                out.write("}")
            out.write(', "differ": [')
            for n, (src, dst, number, proto) in enumerate(self.differing()):
                out.write((", " if n else "") + dumps({"from": src, "to": dst,
                                                       "port": f"{number}/{proto}"}))
            out.write("]")
        else:
            out.write(', "cells": [')
            for n, key in enumerate(self.grid.cell_keys()):
                out.write((", " if n else "") + dumps(self._cell(key).as_dict()))
            out.write("]")
        summary = {"cells": self.grid.cells, "allowed": self.grid.allowed_count(),
                   "observed": self.observed_count, "differ": self.differ_count()}
        out.write(', "summary": ' + dumps(summary) + "}")

    def _expected_codes(self, port: Port, i: int) -> str:
        return _codes(self.grid.layers[port], i, len(self.destinations))

    def _observed_codes(self, port: Port, i: int) -> str:
        assert self.observed is not None
        return _codes(self.observed.layers[port], i, len(self.destinations))


def _codes(layers: Layers, i: int, width: int) -> str:
    """One row in ROW_CODES."""
    codes = bitstring(layers.allowed[i], width).translate(_ALLOW_CODE)
    full = (1 << width) - 1
    patches = ((layers.forbidden[i], "F"), (layers.refused[i], "R"),
               (full & ~layers.known[i], "?"))
    if not any(bits for bits, _ in patches):
        return codes
    chars = list(codes)
    for bits, code in patches:
        for j in iter_bits(bits):
            chars[j] = code
    return "".join(chars)


class _Cells(Mapping[Key, Cell]):
    """A matrix's cells as a mapping; each cell is built (and explained) when read."""

    def __init__(self, matrix: ConnectivityMatrix) -> None:
        self._m = matrix

    def __getitem__(self, key: Key) -> Cell:
        if key not in self._m.grid:
            raise KeyError(key)
        return self._m._cell(key)

    def __contains__(self, key: object) -> bool:
        return key in self._m.grid

    def __iter__(self) -> Iterator[Key]:
        return self._m.grid.cell_keys()

    def __len__(self) -> int:
        return self._m.grid.cells


_COLOURS = {".": "#d9f2d9", "X": "#f7d4d4", "F": "#fde7c2"}
_SWATCH = ('<span style="display:inline-block;min-width:1.4em;text-align:center;'
           'font-family:monospace;background:{bg};border:{border};margin:0 4px">{glyph}</span>')
_HTML_LEGEND = "".join(
    _SWATCH.format(bg=bg, border=border, glyph=glyph) + html.escape(text) + " &nbsp; "
    for glyph, bg, border, text in (
        (".", _COLOURS["."], "1px solid #ccc", "allowed"),
        ("X", _COLOURS["X"], "1px solid #ccc", "dropped (times out)"),
        ("F", _COLOURS["F"], "1px solid #ccc", "HTTP 403"),
        ("!", "#fff", "3px solid #c00", "observed differs from expected"),
    ))


def _short_tip(glyph: str) -> str:
    return {".": "allowed", "X": "denied", "F": "HTTP 403"}.get(glyph[:1], "")


def _html_cell(glyph: str, differs: bool, tip: str) -> str:
    colour = _COLOURS.get(glyph[0], "#fff")
    border = "3px solid #c00" if differs else "1px solid #ccc"
    return (f'<td title="{html.escape(tip)}" style="background:{colour};border:{border};'
            f'text-align:center;padding:2px 6px">{html.escape(glyph)}</td>')
