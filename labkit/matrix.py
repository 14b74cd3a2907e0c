"""Connectivity matrices: what policies mean (expected) against what a cluster does (observed).

The difference between the two is the course's central teaching tool: on
Flannel every policy shows up as a difference, on Calico and Cilium none should.
A matrix renders as a compact text grid, as HTML in Jupyter, and as JSON.
"""

from __future__ import annotations

import html
import io
import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TextIO

from labkit.display.render import SIMULATED_BADGE, Rendered, text_table
from labkit.errors import CheckFailed, ManifestError
from labkit.model import Denial, HttpRequest, Traffic, Verdict
from labkit.policy.engine import Engine
from labkit.policy.grid import Grid, Key, Layers, Port, bitstring, differ
from labkit.policy.ir import iter_bits

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


#: Above this many cells, JSON holds one string of outcome codes per row (see ROW_CODES)
#: instead of one object per cell with its reasons; ``explain=True`` forces the cells.
COMPACT_ABOVE = 10_000
#: Above this many cells, HTML tooltips carry reasons only for the cells that differ.
HTML_REASONS_UP_TO = 2_500
#: The compact JSON form's codes, one character per cell.
ROW_CODES = {".": "allowed", "X": "dropped (times out)", "F": "HTTP 403",
             "R": "connection refused", "?": "not observed"}
#: At most this many differing cells are listed, explained, under a text or HTML matrix.
MISMATCH_LINES = 50
_ALLOW_CODE = str.maketrans("10", ".X")
#: Row codes (ROW_CODES) as the glyphs a learner reads.
_SHOWN = {".": GLYPHS["allowed"], "X": GLYPHS[Denial.DROP], "F": GLYPHS[Denial.HTTP_403]}

#: The most cells one matrix may have (sources x destinations x ports): the largest size the
#: benchmarks measure (10,000 pods, all pairs: 124 MB with its JSON). Past it a size is refused
#: before anything is computed, not left to exhaust memory. Documented in the README
#: ("Limits"); probe a namespace or a few pods instead.
MAX_CELLS = 100_000_000


def check_matrix_size(sources: int, destinations: int, ports: int) -> None:
    """ManifestError when a matrix would exceed :data:`MAX_CELLS`, before any is computed."""
    cells = sources * destinations * ports
    if cells > MAX_CELLS:
        raise ManifestError(
            f"a matrix of {sources} sources x {destinations} destinations x {ports} port(s) "
            f"has {cells:,} cells; labkit computes at most {MAX_CELLS:,}",
            hint="narrow it: fewer pods (sources=/destinations=, or fewer manifests) or ports")


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
                 simulated: bool = False, labels: Mapping[str, str] | None = None) -> None:
        self.grid = grid
        self.observed = observed
        self.title = title
        self.simulated = simulated or (observed is not None and observed.simulated)
        #: What the learner calls each endpoint (``frontend``, ``api-1``); keys elsewhere.
        self.labels = dict(labels or {})

    def label(self, key: str) -> str:
        return self.labels.get(key, key)

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
                 http: HttpRequest | None = None, title: str = "",
                 labels: Mapping[str, str] | None = None) -> ConnectivityMatrix:
        """The expected side, from the engine's bitset grid."""
        ports = tuple(ports)
        check_matrix_size(len(sources), len(destinations), len(ports))
        return cls(engine.grid(sources, destinations, ports, http=http), title=title,
                   labels=labels)

    def with_observed(self, observed: Mapping[Key, Observation] | Observed
                      ) -> ConnectivityMatrix:
        """This matrix with observations: a whole :class:`Observed` grid, or some cells'
        (added to those already observed)."""
        if isinstance(observed, Observed):
            return ConnectivityMatrix(self.grid, observed, title=self.title,
                                      simulated=self.simulated, labels=self.labels)
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
                                  title=self.title, simulated=self.simulated, labels=self.labels)

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
        return Cell(src, dst, port, proto, self.grid.explain(src, dst, port, proto), observation,
                    names=(self.labels.get(src, ""), self.labels.get(dst, "")))

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
            return (f"expected: {self.grid.allowed_count()} of {plural(total, 'connection')} "
                    "allowed")
        differ = self.differ_count()
        label = " (simulated)" if self.simulated else ""
        agree = "observed matches expected" if not differ else \
            f"{differ} {'differs' if differ == 1 else 'differ'} from expected"
        return f"observed{label}: {observed} of {plural(total, 'cell')}, {agree}"

    def mismatch_lines(self, limit: int | None = MISMATCH_LINES) -> list[str]:
        """One line per differing cell, in the learner's names: why each side says what
        (the first ``limit`` of them, then how many more)."""
        keys = list(itertools.islice(self.differing(), limit)) if limit is not None else \
            list(self.differing())
        lines = [f"{self.label(src)} → {self.label(dst)} {proto}/{port}: "
                 f"{self._cell((src, dst, port, proto)).why()}"
                 for src, dst, port, proto in keys]
        more = self.differ_count() - len(keys)
        if more > 0:
            lines.append(f"... and {plural(more, 'more cell')} (matrix.diff() lists them all)")
        return lines

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

    def _row_glyphs(self, port: Port, i: int) -> tuple[str, dict[int, str]]:
        """Row ``i`` as one code per cell (ROW_CODES) and, for the cells observed otherwise
        than expected, their ``expected → observed`` glyph."""
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
            return codes, {}
        exp = _codes(self.grid.layers[port], i, n)
        return codes, {j: f"{_SHOWN[exp[j]]} → {_SHOWN[codes[j]]}" for j in iter_bits(marks)}

    def to_text(self) -> str:
        return "\n".join(self.text_lines())

    def text_lines(self) -> Iterator[str]:
        """The text grid line by line (for writing a large one without holding it)."""
        if self.title:
            yield self.title
        rows = [self.label(src) for src in self.sources]
        cols = [self.label(d) for d in self.destinations]
        left = max((len(r) for r in rows), default=0)
        for port in self.ports:
            yield f"{port[1]}/{port[0]}  (rows: from, columns: to)"
            glyphs = [self._row_glyphs(port, i) for i in range(len(self.sources))]
            # one width for every column: rows of any size render in one pass
            width = max([1, *map(len, cols), *(len(g) for _, m in glyphs for g in m.values()),
                         *(3 for c, _ in glyphs if "F" in c)])
            wide = str.maketrans({c: g.ljust(width) + "  " for c, g in _SHOWN.items()})
            yield ("  ".join([" " * left, *(c.ljust(width) for c in cols)])).rstrip()
            for row, (codes, marks) in zip(rows, glyphs, strict=True):
                if marks:
                    cells = [_SHOWN[c].ljust(width) + "  " for c in codes]
                    for j, text in marks.items():
                        cells[j] = text.ljust(width) + "  "
                    line = "".join(cells)
                else:
                    line = codes.translate(wide)
                yield f"{row.ljust(left)}  {line}".rstrip()
        yield LEGEND
        yield self.summary()
        yield from (f"  {line}" for line in self.mismatch_lines())

    def _repr_html_(self) -> str:
        e = html.escape
        reasons = self.grid.cells <= HTML_REASONS_UP_TO
        parts = _html_head(self.title, self.simulated)
        for port in self.ports:
            parts.append('<table style="border-collapse:collapse">'
                         f'<caption style="text-align:left">{port[1]}/{port[0]} &mdash; rows: '
                         "from, columns: to</caption><tr><th></th>")
            parts += [f'<th title="{e(d)}" style="text-align:left;padding:2px 6px">'
                      f"{e(self.label(d))}</th>" for d in self.destinations]
            parts.append("</tr>")
            for i, src in enumerate(self.sources):
                parts.append(f'<tr><th title="{e(src)}" style="text-align:left;padding:2px 6px">'
                             f"{e(self.label(src))}</th>")
                codes, marks = self._row_glyphs(port, i)
                for j, dst in enumerate(self.destinations):
                    shown = _SHOWN[codes[j]]
                    key = (src, dst, *port)
                    tip = (f"{src} → {dst}\n{self._cell(key).why(every_reason=True)}"
                           if reasons or j in marks else f"{src} → {dst}\n{shown}")
                    parts.append(_html_cell(marks.get(j, shown), shown, j in marks, tip))
                parts.append("</tr>")
            parts.append("</table>")
        parts.append(f"<div>{_HTML_LEGEND}</div><div>{e(self.summary())}</div>")
        mismatches = self.mismatch_lines()
        if mismatches:
            parts.append("<ul>" + "".join(f"<li>{e(m)}</li>" for m in mismatches) + "</ul>")
        parts.append("</div>")
        return "".join(parts)

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


_COLOURS = {"✓": "#d9f2d9", "✗": "#f7d4d4", "403": "#fde7c2"}
#: A cell's class names the verdict it shows ("differs" when observed is not expected), for
#: styles and for tests that read the rendered page.
_CLASSES = {"✓": "allowed", "✗": "dropped", "403": "http-403"}
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


def _html_cell(glyph: str, shown: str, differs: bool, tip: str) -> str:
    """One cell: ``glyph`` as text (``expected → observed`` where they differ), coloured by
    what was ``shown`` (observed where probed), classed by it too (and ``differs``)."""
    colour = _COLOURS.get(shown, "#fff")
    border = "3px solid #c00" if differs else "1px solid #ccc"
    classes = _CLASSES.get(shown, "unknown") + (" differs" if differs else "")
    return (f'<td class="{classes}" title="{html.escape(tip)}" style="background:{colour};'
            f'border:{border};text-align:left;padding:2px 6px">{html.escape(glyph)}</td>')



def _html_head(title: str, simulated: bool) -> list[str]:
    """The opening of a matrix's HTML: its title and the simulated badge."""
    parts = ['<div class="labkit-matrix">']
    if title:
        parts.append(f"<strong>{html.escape(title)}</strong>")
    if simulated:
        parts.append(f" {SIMULATED_BADGE}")
    return parts


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
        parts = _html_head(self.title, self.simulated)
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
                tip = f"{cell.source} → {cell.destination}\n{cell.why(every_reason=True)}"
                parts.append(_html_cell(_word(cell), glyph, cell.matches is False, tip))
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
