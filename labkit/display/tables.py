"""A small table that renders as aligned text (terminal) and as HTML (Jupyter).

Doctor results, lab status and the course report are all tables of short
strings, so one renderer serves them. Output is deterministic (no ids, no
timestamps) so that notebooks stay diff-friendly and nbval-comparable.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from labkit.display.render import Rendered, html_table, html_text

#: One-character-ish marks for statuses in text mode, and colours for HTML.
STATUS_MARKS: dict[str, tuple[str, str]] = {
    "ok": ("ok", "#1a7f37"),
    "passed": ("passed", "#1a7f37"),
    "warn": ("WARN", "#9a6700"),
    "skip": ("skip", "#57606a"),
    "info": ("info", "#0969da"),
    "fail": ("FAIL", "#cf222e"),
    "failed": ("FAILED", "#cf222e"),
}


def escape(value: object) -> str:
    return html.escape(str(value), quote=True)


def badge(status: str) -> str:
    """An HTML badge for a status word (ok, warn, fail, ...)."""
    text, colour = STATUS_MARKS.get(status, (status, "#57606a"))
    return (
        f'<span style="color:#fff;background:{colour};border-radius:3px;'
        f'padding:0 4px;font-size:85%">{escape(text)}</span>'
    )


_CALLOUT_COLOURS = {"simulated": ("#ddf4ff", "#54aeff"), "info": ("#f6f8fa", "#d0d7de"),
                    "failed": ("#ffebe9", "#cf222e")}


@dataclass(repr=False)
class Callout(Rendered):
    """A boxed note with a bold title: the one "simulated" explanation per notebook."""

    title: str
    body: str
    kind: str = "info"

    def to_text(self) -> str:
        return f"{self.title}: {self.body}"

    def _repr_html_(self) -> str:
        bg, border = _CALLOUT_COLOURS.get(self.kind, _CALLOUT_COLOURS["info"])
        return (f'<div style="background:{bg};border-left:4px solid {border};'
                f'padding:6px 10px;margin:4px 0"><b>{escape(self.title)}</b> '
                f"{html_text(self.body)}</div>")

    def as_dict(self) -> dict[str, Any]:
        return {"title": self.title, "body": self.body, "kind": self.kind}


def simulated_banner(simulated: bool, what: str = "These results") -> str:
    """The sentence every learner-facing output carries on the sim backend."""
    if not simulated:
        return ""
    return (
        f"{what} are SIMULATED: no real cluster ran; labkit's in-memory model "
        "(driven by the policy engine) produced them."
    )


@dataclass(repr=False)
class Table(Rendered):
    """Rows of cells under named columns, with an optional title and notes.

    A column named ``status`` is rendered as a badge in HTML and upper-cased
    marks (FAIL, WARN) in text so problems stand out in a terminal too.
    """

    columns: Sequence[str]
    rows: list[Sequence[Any]] = field(default_factory=list)
    title: str = ""
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: Any) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"expected {len(self.columns)} cells, got {len(cells)}")
        self.rows.append(cells)

    # -- text ---------------------------------------------------------------------------------
    def _text_cell(self, col: str, value: Any) -> str:
        if col == "status":
            return STATUS_MARKS.get(str(value), (str(value), ""))[0]
        return "" if value is None else str(value)

    def to_text(self) -> str:
        cells = [[self._text_cell(c, v) for c, v in zip(self.columns, row, strict=True)]
                 for row in self.rows]
        # Multi-line cells are shown on their first line in the grid; the rest is kept
        # readable by indenting continuation lines under the row.
        widths = [len(c) for c in self.columns]
        for row in cells:
            for i, cell in enumerate(row):
                widths[i] = max(widths[i], len(cell.split("\n", 1)[0]))
        # The last column is free-form text: do not pad it.
        def line(values: Sequence[str]) -> str:
            padded = [v.ljust(widths[i]) for i, v in enumerate(values[:-1])]
            return "  ".join([*padded, values[-1]]).rstrip()

        out = []
        if self.title:
            out += [self.title, "=" * len(self.title)]
        out.append(line(list(self.columns)))
        out.append(line(["-" * w for w in widths]))
        indent = " " * (sum(widths[:-1]) + 2 * (len(widths) - 1))
        for row in cells:
            first = [c.split("\n", 1)[0] for c in row]
            out.append(line(first))
            for cell in row:
                for extra in cell.split("\n")[1:]:
                    out.append(f"{indent}{extra}".rstrip())
        out += self.notes
        return "\n".join(out)

    # -- html ---------------------------------------------------------------------------------
    def _html_cell(self, col: str, value: Any) -> str:
        if col == "status":
            return badge(str(value))
        return html_text("" if value is None else value)

    def _repr_html_(self) -> str:
        table = html_table(
            self.columns, [[(c, v) for c, v in zip(self.columns, row, strict=True)]
                           for row in self.rows], cell=lambda cv: self._html_cell(*cv))
        title = f"<h4>{escape(self.title)}</h4>" if self.title else ""
        notes = "".join(f"<p>{html_text(n)}</p>" for n in self.notes)
        return f"{title}{table}{notes}"

    # -- data ---------------------------------------------------------------------------------
    def as_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "columns": list(self.columns),
            "rows": [dict(zip(self.columns, row, strict=True)) for row in self.rows],
            "notes": list(self.notes),
        }

    def to_json(self, **kwargs: Any) -> str:
        return super().to_json(default=str, **kwargs)  # cells may be any object
