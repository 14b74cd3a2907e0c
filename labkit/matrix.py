"""Connectivity matrices: what policies mean (expected) against what a cluster does (observed).

The difference between the two is the course's central teaching tool: on
Flannel every policy shows up as a difference, on Calico and Cilium none should.
A matrix renders as a compact text grid, as HTML in Jupyter, and as JSON.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from labkit.display.render import Rendered
from labkit.errors import CheckFailed
from labkit.model import Denial, HttpRequest, Traffic, Verdict
from labkit.policy.engine import Engine

Key = tuple[str, str, int, str]  # source, destination, port, protocol

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


class ConnectivityMatrix(Rendered):
    """Cells for every (source, destination, port); rows are sources, columns destinations."""

    def __init__(self, sources: Sequence[str], destinations: Sequence[str],
                 ports: Sequence[tuple[int, str]], cells: Mapping[Key, Cell],
                 *, title: str = "", simulated: bool = False) -> None:
        self.sources = tuple(sources)
        self.destinations = tuple(destinations)
        self.ports = tuple(ports)
        self.cells = dict(cells)
        self.title = title
        self.simulated = simulated

    @classmethod
    def expected(cls, engine: Engine, sources: Sequence[str], destinations: Sequence[str],
                 ports: Iterable[tuple[int, str]] = ((80, "TCP"),), *,
                 http: HttpRequest | None = None, title: str = "") -> ConnectivityMatrix:
        """The expected side: one explained verdict per cell."""
        ports = tuple(ports)
        traffic = [Traffic(s, d, p, proto, http if proto == "TCP" else None)
                   for p, proto in ports for s in sources for d in destinations]
        verdicts = engine.evaluate_all(traffic)
        cells = {(t.source, t.destination, t.port, t.protocol):
                 Cell(t.source, t.destination, t.port, t.protocol, v)
                 for t, v in zip(traffic, verdicts, strict=True)}
        return cls(sources, destinations, ports, cells, title=title)

    def with_observed(self, observed: Mapping[Key, Observation]) -> ConnectivityMatrix:
        unknown = set(observed) - set(self.cells)
        if unknown:
            raise KeyError(f"observations for cells not in the matrix: {sorted(unknown)[:3]}")
        cells = {k: replace(c, observed=observed.get(k, c.observed)) for k, c in self.cells.items()}
        simulated = self.simulated or any(o.simulated for o in observed.values())
        return ConnectivityMatrix(self.sources, self.destinations, self.ports, cells,
                                  title=self.title, simulated=simulated)

    # -- queries -----------------------------------------------------------------------
    def cell(self, source: str, destination: str, port: int | None = None,
             protocol: str = "TCP") -> Cell:
        port = self.ports[0][0] if port is None else port
        return self.cells[(source, destination, port, protocol)]

    def diff(self) -> list[Cell]:
        """Observed cells that differ from expected: findings to show and explain."""
        return [c for c in self.cells.values() if c.matches is False]

    @property
    def observed_count(self) -> int:
        return sum(1 for c in self.cells.values() if c.observed is not None)

    def summary(self) -> str:
        total = len(self.cells)
        if not self.observed_count:
            allowed = sum(1 for c in self.cells.values() if c.expected.allowed)
            return f"expected: {allowed} of {total} connections allowed"
        differ = len(self.diff())
        label = " (simulated)" if self.simulated else ""
        agree = "observed matches expected" if not differ else f"{differ} differ from expected"
        return f"observed{label}: {self.observed_count} of {total} cells, {agree}"

    # -- rendering ---------------------------------------------------------------------
    def to_text(self) -> str:
        lines = [self.title] if self.title else []
        width = max((len(s) for s in self.sources), default=0) + 5
        for port, proto in self.ports:
            lines.append(f"{proto}/{port}  (rows: from, columns: to)")
            numbers = "".join(f"{j + 1:>4}" for j in range(len(self.destinations)))
            lines.append(" " * width + numbers)
            for i, src in enumerate(self.sources):
                row = "".join(f"{self.cells[(src, d, port, proto)].glyph:>4}"
                              for d in self.destinations)
                lines.append(f"{i + 1:>3} {src:<{width - 4}}{row}")
            lines.append("columns: " + "  ".join(f"{j + 1}={d}"
                                                 for j, d in enumerate(self.destinations)))
        lines.append(LEGEND)
        lines.append(self.summary())
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        e = html.escape
        parts = ['<div class="labkit-matrix">']
        if self.title:
            parts.append(f"<strong>{e(self.title)}</strong>")
        if self.simulated:
            parts.append(' <span style="background:#eef;padding:1px 4px">simulated</span>')
        for port, proto in self.ports:
            parts.append('<table style="border-collapse:collapse;font-family:monospace">'
                         f"<caption>{proto}/{port} &mdash; rows: from, columns: to</caption>"
                         "<tr><th></th>")
            parts += [f'<th style="padding:2px 6px">{e(d)}</th>' for d in self.destinations]
            parts.append("</tr>")
            for src in self.sources:
                parts.append(f'<tr><th style="text-align:left;padding:2px 6px">{e(src)}</th>')
                for d in self.destinations:
                    parts.append(_html_cell(self.cells[(src, d, port, proto)]))
                parts.append("</tr>")
            parts.append("</table>")
        parts.append(f"<div>{_HTML_LEGEND}</div><div>{e(self.summary())}</div></div>")
        return "".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "simulated": self.simulated,
            "sources": list(self.sources),
            "destinations": list(self.destinations),
            "ports": [f"{p}/{proto}" for p, proto in self.ports],
            "cells": [c.as_dict() for c in self.cells.values()],
            "summary": {"cells": len(self.cells), "observed": self.observed_count,
                        "differ": len(self.diff())},
        }

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.as_dict(), **kwargs)  # compact by default, unlike Rendered


_COLOURS = {".": "#d9f2d9", "X": "#f7d4d4", "F": "#fde7c2"}
#: A cell's class names its verdict (and "differs" when observed is not expected), for styles
#: and for tests that read the rendered page.
_CLASSES = {".": "allowed", "X": "dropped", "F": "http-403"}
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


def _html_cell(cell: Cell) -> str:
    glyph = cell.glyph
    colour = _COLOURS.get(glyph[0], "#fff")
    border = "3px solid #c00" if cell.matches is False else "1px solid #ccc"
    tip = "expected: " + ("allowed" if cell.expected.allowed else
                          f"denied ({cell.expected.denial})") + "\n" + "\n".join(
        cell.expected.reasons)
    if cell.observed is not None:
        tip += f"\nobserved: {'allowed' if cell.observed.allowed else 'denied'}"
        if cell.observed.detail:
            tip += f" ({cell.observed.detail})"
    classes = _CLASSES.get(glyph[0], "unobserved") + (" differs" if cell.matches is False else "")
    return (f'<td class="{classes}" title="{html.escape(tip)}" style="background:{colour};'
            f'border:{border};text-align:center;padding:2px 6px">{html.escape(glyph)}</td>')
