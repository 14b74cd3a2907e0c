"""Connectivity matrices: what policies mean (expected) against what a cluster does (observed).

The difference between the two is the course's central teaching tool: on
Flannel every policy shows up as a difference, on Calico and Cilium none should.
A matrix renders as a compact text grid, as HTML in Jupyter, and as JSON.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from labkit.display.render import SIMULATED_BADGE, Rendered, text_table
from labkit.errors import CheckFailed
from labkit.model import Denial, HttpRequest, Traffic, Verdict
from labkit.policy.engine import Engine

Key = tuple[str, str, int, str]  # source, destination, port, protocol

#: What a learner reads in a cell: opened, dropped (the client times out), or refused by an
#: HTTP rule (Envoy's 403).
GLYPHS = {"allowed": "✓", Denial.DROP: "✗", Denial.HTTP_403: "403"}
LEGEND = ("✓ allowed   ✗ dropped (times out)   403 denied by an HTTP rule   "
          "expected → observed where they differ")


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
    return GLYPHS["allowed"] if allowed else GLYPHS.get(denial or Denial.DROP, "✗")


def deciding_reason(verdict: Verdict) -> str:
    """The reason that decided a verdict: for a denial, the side that is isolated and not
    admitted (the engine also lists the side that let it through)."""
    if verdict.allowed or not verdict.reasons:
        return verdict.reasons[0] if verdict.reasons else ""
    passive = ("is not isolated", " allows ")
    return next((r for r in verdict.reasons if not any(p in r for p in passive)),
                verdict.reasons[-1])


def plural(n: int, one: str, many: str = "") -> str:
    """``1 cell``, ``2 cells``: a count with its noun."""
    return f"{n} {one if n == 1 else (many or one + 's')}"


@dataclass(frozen=True)
class Cell:
    source: str
    destination: str
    port: int
    protocol: str
    expected: Verdict
    observed: Observation | None = None
    #: (source, destination) as the learner calls them (``frontend``, ``api-1``), if known.
    names: tuple[str, str] = field(default=("", ""), compare=False)

    @property
    def title(self) -> str:
        """``frontend -> api-1 TCP/8080`` (pod keys where no learner name is known)."""
        src, dst = (n or k for n, k in zip(self.names, (self.source, self.destination),
                                           strict=True))
        return f"{src} -> {dst} {self.protocol}/{self.port}"

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
        """``✓``, ``✗`` or ``403``; where observed differs: ``expected → observed``."""
        expected = _glyph(self.expected.allowed, self.expected.denial)
        if self.observed is None:
            return expected
        seen = _glyph(self.observed.allowed, self.observed.denial)
        return f"{expected} → {seen}" if self.matches is False else seen

    def why(self, *, every_reason: bool = False) -> str:
        """Both sides of a cell in words: the expected verdict's deciding reason (or all of
        them), and what the probe saw."""
        exp = "allowed" if self.expected.allowed else "denied"
        reasons = list(self.expected.reasons) if every_reason else \
            [r for r in [deciding_reason(self.expected)] if r]
        text = f"expected {exp}" + (f" ({'; '.join(reasons)})" if reasons else "")
        if self.observed is not None:
            seen = "allowed" if self.observed.allowed else "denied"
            text += f"; observed {seen}" + (f" ({self.observed.detail})" if self.observed.detail
                                            else "")
        return text

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
                 *, title: str = "", simulated: bool = False,
                 labels: Mapping[str, str] | None = None) -> None:
        self.sources = tuple(sources)
        self.destinations = tuple(destinations)
        self.ports = tuple(ports)
        self.cells = dict(cells)
        self.title = title
        self.simulated = simulated
        #: What the learner calls each endpoint (``frontend``, ``api-1``); keys elsewhere.
        self.labels = dict(labels or {})

    def label(self, key: str) -> str:
        return self.labels.get(key, key)

    @classmethod
    def expected(cls, engine: Engine, sources: Sequence[str], destinations: Sequence[str],
                 ports: Iterable[tuple[int, str]] = ((80, "TCP"),), *,
                 http: HttpRequest | None = None, title: str = "",
                 labels: Mapping[str, str] | None = None) -> ConnectivityMatrix:
        """The expected side: one explained verdict per cell."""
        ports = tuple(ports)
        traffic = [Traffic(s, d, p, proto, http if proto == "TCP" else None)
                   for p, proto in ports for s in sources for d in destinations]
        verdicts = engine.evaluate_all(traffic)
        cells = {(t.source, t.destination, t.port, t.protocol):
                 Cell(t.source, t.destination, t.port, t.protocol, v,
                      names=((labels or {}).get(t.source, ""),
                             (labels or {}).get(t.destination, "")))
                 for t, v in zip(traffic, verdicts, strict=True)}
        return cls(sources, destinations, ports, cells, title=title, labels=labels)

    def with_observed(self, observed: Mapping[Key, Observation]) -> ConnectivityMatrix:
        unknown = set(observed) - set(self.cells)
        if unknown:
            raise KeyError(f"observations for cells not in the matrix: {sorted(unknown)[:3]}")
        cells = {k: replace(c, observed=observed.get(k, c.observed)) for k, c in self.cells.items()}
        simulated = self.simulated or any(o.simulated for o in observed.values())
        return ConnectivityMatrix(self.sources, self.destinations, self.ports, cells,
                                  title=self.title, simulated=simulated, labels=self.labels)

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
            return f"expected: {allowed} of {plural(total, 'connection')} allowed"
        differ = len(self.diff())
        label = " (simulated)" if self.simulated else ""
        agree = "observed matches expected" if not differ else \
            f"{differ} {'differs' if differ == 1 else 'differ'} from expected"
        return f"observed{label}: {self.observed_count} of {plural(total, 'cell')}, {agree}"

    def mismatch_lines(self) -> list[str]:
        """One line per differing cell, in the learner's names: why each side says what."""
        return [f"{self.label(c.source)} → {self.label(c.destination)} {c.protocol}/{c.port}: "
                f"{c.why()}" for c in self.diff()]

    # -- rendering ---------------------------------------------------------------------
    def to_text(self) -> str:
        lines = [self.title] if self.title else []
        rows = [self.label(src) for src in self.sources]
        cols = [self.label(d) for d in self.destinations]
        for port, proto in self.ports:
            lines.append(f"{proto}/{port}  (rows: from, columns: to)")
            grid = [["", *cols]] + [
                [row, *(self.cells[(src, d, port, proto)].glyph for d in self.destinations)]
                for row, src in zip(rows, self.sources, strict=True)]
            widths = [max(len(r[i]) for r in grid) for i in range(len(grid[0]))]
            lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                      for r in grid]
        lines.append(LEGEND)
        lines.append(self.summary())
        lines += [f"  {line}" for line in self.mismatch_lines()]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        e = html.escape
        parts = ['<div class="labkit-matrix">']
        if self.title:
            parts.append(f"<strong>{e(self.title)}</strong>")
        if self.simulated:
            parts.append(f" {SIMULATED_BADGE}")
        for port, proto in self.ports:
            parts.append('<table style="border-collapse:collapse">'
                         f'<caption style="text-align:left">{proto}/{port} &mdash; rows: from, '
                         "columns: to</caption><tr><th></th>")
            parts += [f'<th title="{e(d)}" style="text-align:left;padding:2px 6px">'
                      f"{e(self.label(d))}</th>" for d in self.destinations]
            parts.append("</tr>")
            for src in self.sources:
                parts.append(f'<tr><th title="{e(src)}" style="text-align:left;padding:2px 6px">'
                             f"{e(self.label(src))}</th>")
                for d in self.destinations:
                    parts.append(_html_cell(self.cells[(src, d, port, proto)]))
                parts.append("</tr>")
            parts.append("</table>")
        parts.append(f"<div>{_HTML_LEGEND}</div><div>{e(self.summary())}</div>")
        mismatches = self.mismatch_lines()
        if mismatches:
            parts.append("<ul>" + "".join(f"<li>{e(m)}</li>" for m in mismatches) + "</ul>")
        parts.append("</div>")
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


_COLOURS = {"✓": "#d9f2d9", "✗": "#f7d4d4", "403": "#fde7c2"}
_SWATCH = ('<span style="display:inline-block;min-width:1.6em;text-align:center;'
           'background:{bg};border:{border};margin:0 4px">{glyph}</span>')
_HTML_LEGEND = "".join(
    _SWATCH.format(bg=bg, border=border, glyph=html.escape(glyph)) + html.escape(text)
    + " &nbsp; "
    for glyph, bg, border, text in (
        ("✓", _COLOURS["✓"], "1px solid #ccc", "allowed"),
        ("✗", _COLOURS["✗"], "1px solid #ccc", "dropped (times out)"),
        ("403", _COLOURS["403"], "1px solid #ccc", "denied by an HTTP rule"),
        ("✗ → ✓", "#fff", "3px solid #c00", "expected → observed, where they differ"),
    ))


def _html_cell(cell: Cell) -> str:
    seen = cell.observed
    glyph = _glyph(seen.allowed, seen.denial) if seen else \
        _glyph(cell.expected.allowed, cell.expected.denial)
    colour = _COLOURS.get(glyph, "#fff")
    border = "3px solid #c00" if cell.matches is False else "1px solid #ccc"
    tip = f"{cell.source} → {cell.destination}\n{cell.why(every_reason=True)}"
    return (f'<td title="{html.escape(tip)}" style="background:{colour};border:{border};'
            f'text-align:left;padding:2px 6px">{html.escape(cell.glyph)}</td>')


def request_label(request: HttpRequest) -> str:
    """``GET /healthz`` (with ``+header`` names when the request carries headers)."""
    extra = "".join(f" +{k}" for k in sorted(request.headers))
    return f"{request.method} {request.path}{extra}"


_WORDS = {"✓": "allowed", "✗": "dropped", "403": "403"}


def _word(cell: Cell) -> str:
    """``allowed``, ``403`` or ``dropped``; where observed differs: ``expected → observed``."""
    expected = _WORDS[_glyph(cell.expected.allowed, cell.expected.denial)]
    if cell.observed is None:
        return expected
    seen = _WORDS[_glyph(cell.observed.allowed, cell.observed.denial)]
    return f"{expected} → {seen}" if cell.matches is False else seen


class HttpMatrix(Rendered):
    """Sources x HTTP requests to one destination: each cell allowed, 403 or dropped.

    The L7 view of a connectivity matrix (lab 05): an L3/L4 denial drops the packets (the
    client times out), an L7 denial is answered by the proxy (``403 Access denied``).
    """

    def __init__(self, destination: str, port: int, sources: Sequence[str],
                 requests: Sequence[HttpRequest], cells: Mapping[tuple[str, str], Cell], *,
                 title: str = "", simulated: bool = False,
                 names: Mapping[str, str] | None = None) -> None:
        self.destination, self.port = destination, port
        self.sources, self.requests = tuple(sources), tuple(requests)
        self.cells = dict(cells)
        self.title, self.simulated = title, simulated
        self.names = dict(names or {})

    @classmethod
    def build(cls, engine: Engine, destination: str, port: int, sources: Sequence[str],
              requests: Sequence[HttpRequest], *, title: str = "",
              names: Mapping[str, str] | None = None) -> HttpMatrix:
        """The expected side: one explained verdict per (source, request)."""
        names = dict(names or {})
        traffic = [Traffic(s, destination, port, "TCP", r) for s in sources for r in requests]
        verdicts = engine.evaluate_all(traffic)
        cells = {(t.source, request_label(t.http)):
                 Cell(t.source, destination, port, "TCP", v,
                      names=(names.get(t.source, ""), names.get(destination, "")))
                 for t, v in zip(traffic, verdicts, strict=True) if t.http is not None}
        return cls(destination, port, sources, requests, cells, title=title, names=names)

    def traffic(self) -> list[Traffic]:
        return [Traffic(s, self.destination, self.port, "TCP", r)
                for s in self.sources for r in self.requests]

    def with_observed(self, observed: Mapping[Traffic, Observation]) -> HttpMatrix:
        cells = dict(self.cells)
        for t, o in observed.items():
            if t.http is not None:
                key = (t.source, request_label(t.http))
                cells[key] = replace(cells[key], observed=o)
        simulated = self.simulated or any(o.simulated for o in observed.values())
        return HttpMatrix(self.destination, self.port, self.sources, self.requests, cells,
                          title=self.title, simulated=simulated, names=self.names)

    def cell(self, source: str, request: HttpRequest | str) -> Cell:
        label = request if isinstance(request, str) else request_label(request)
        return self.cells[(source, label)]

    def outcome(self, source: str, request: HttpRequest | str) -> str:
        """``allowed``, ``403`` or ``dropped`` as observed (expected when not probed)."""
        cell = self.cell(source, request)
        seen = cell.observed
        return _WORDS[_glyph(seen.allowed, seen.denial) if seen else
                      _glyph(cell.expected.allowed, cell.expected.denial)]

    def diff(self) -> list[Cell]:
        return [c for c in self.cells.values() if c.matches is False]

    def summary(self) -> str:
        observed = sum(1 for c in self.cells.values() if c.observed is not None)
        if not observed:
            return f"expected only: {plural(len(self.cells), 'request')}"
        label = " (simulated)" if self.simulated else ""
        differ = len(self.diff())
        agree = "observed matches expected" if not differ else \
            f"{plural(differ, 'request')} differ from expected"
        return f"observed{label}: {observed} of {plural(len(self.cells), 'request')}, {agree}"

    def _name(self, key: str) -> str:
        return self.names.get(key) or key

    def to_text(self) -> str:
        head = [self.title] if self.title else []
        head.append(f"requests to {self._name(self.destination)} on TCP/{self.port} (rows: from)")
        rows = [[self._name(s), *(_word(self.cell(s, r)) for r in self.requests)]
                for s in self.sources]
        table = text_table(["FROM", *(request_label(r) for r in self.requests)], rows)
        return "\n".join([*head, table, "expected → observed where they differ",
                          self.summary()])

    def _repr_html_(self) -> str:
        e = html.escape
        parts = ['<div class="labkit-matrix">']
        if self.title:
            parts.append(f"<strong>{e(self.title)}</strong>")
        if self.simulated:
            parts.append(f" {SIMULATED_BADGE}")
        parts.append('<table style="border-collapse:collapse">'
                     f"<caption>requests to {e(self._name(self.destination))} on "
                     f"TCP/{self.port}</caption><tr><th></th>")
        parts += [f'<th style="padding:2px 6px">{e(request_label(r))}</th>'
                  for r in self.requests]
        parts.append("</tr>")
        for s in self.sources:
            parts.append(f'<tr><th style="text-align:left;padding:2px 6px">{e(self._name(s))}'
                         "</th>")
            for r in self.requests:
                cell = self.cell(s, r)
                seen = cell.observed
                glyph = _glyph(seen.allowed, seen.denial) if seen else \
                    _glyph(cell.expected.allowed, cell.expected.denial)
                border = "3px solid #c00" if cell.matches is False else "1px solid #ccc"
                tip = f"{cell.source} → {cell.destination}\n{cell.why(every_reason=True)}"
                parts.append(f'<td title="{e(tip)}" style="background:'
                             f'{_COLOURS.get(glyph, "#fff")};border:{border};padding:2px 6px">'
                             f"{e(_word(cell))}</td>")
            parts.append("</tr>")
        parts.append(f"</table><div>{e(self.summary())}</div></div>")
        return "".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {"title": self.title, "simulated": self.simulated,
                "destination": self.destination, "port": self.port,
                "sources": list(self.sources),
                "requests": [r.as_dict() for r in self.requests],
                "cells": [{**c.as_dict(), "request": label, "outcome": _word(c)}
                          for (_, label), c in self.cells.items()],
                "summary": self.summary()}
