"""The plumbing every result object shares: text, JSON and the text/plain repr.

A result object writes what is particular to it (``to_text``, ``as_dict``, its own HTML);
this module supplies the rest, so that ``print(x)``, ``x`` as the last line of a notebook
cell (text/plain), papermill's logs and ``--json`` on the command line agree.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any


class Rendered:
    """``str``/``repr`` are the text form; ``to_json`` is ``as_dict`` as indented JSON.

    A dataclass using this must say ``repr=False`` for the text to be its repr too:
    otherwise the generated ``__repr__`` wins (fields, as Jupyter's text/plain shows them).
    """

    def to_text(self) -> str:
        raise NotImplementedError

    def as_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def to_json(self, **kwargs: Any) -> str:
        kwargs.setdefault("indent", 2)
        return json.dumps(self.as_dict(), allow_nan=False, **kwargs)

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        return self.to_text()


def text_table(header: Sequence[str], rows: Iterable[Sequence[Any]], gap: str = "  ") -> str:
    """Columns padded to their widest cell, kubectl-style; no trailing blanks."""
    rows = list(rows)
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
    return "\n".join(gap.join(str(c).ljust(w) for c, w in zip(r, widths, strict=False)).rstrip()
                     for r in [header, *rows])


#: The small tag every simulated result carries in HTML (the notebook's callout explains it).
SIMULATED_BADGE = ('<span style="background:#ddf4ff;border:1px solid #54aeff;border-radius:3px;'
                   'padding:0 4px;font-size:85%">simulated</span>')
#: Cell styles of every labkit table: left-aligned (JupyterLab right-aligns table cells by
#: default), top-aligned, a little padding.
TH_STYLE = "text-align:left;padding:2px 8px"
TD_STYLE = "text-align:left;vertical-align:top;padding:2px 8px"
_CODE = re.compile(r"`([^`]+)`")


def html_text(text: object) -> str:
    """Escaped text for HTML, with Markdown-style `code` spans as <code> and line breaks kept
    (messages written for a terminal use backticks; a browser must not show them raw)."""
    escaped = html.escape(str(text), quote=True)
    return _CODE.sub(r"<code>\1</code>", escaped).replace("\n", "<br>")


def html_table(header: Sequence[str], rows: Iterable[Sequence[Any]], *,
               cell: Any = html_text) -> str:
    """A left-aligned table; ``cell`` turns each value into HTML (default: :func:`html_text`)."""
    head = "".join(f'<th style="{TH_STYLE}">{html.escape(h)}</th>' for h in header)
    body = "".join("<tr>" + "".join(f'<td style="{TD_STYLE}">{cell(c)}</td>' for c in r)
                   + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def text_report(headline: str, body: Iterable[str], notes: Iterable[str],
                simulated_note: str = "") -> str:
    """Headline, body lines, notes, and the simulated note last when there is one."""
    lines = [headline, *body, *notes]
    if simulated_note:
        lines.append(simulated_note)
    return "\n".join(lines)


def html_report(headline: str, body: Iterable[str], notes: Iterable[str],
                simulated_note: str = "") -> str:
    """The HTML twin of :func:`text_report`; ``body`` is HTML already, the rest is escaped."""
    esc = html.escape
    parts = [f"<p><b>{esc(headline)}</b></p>", *body, *(f"<p>{esc(n)}</p>" for n in notes)]
    if simulated_note:
        parts.append(f"<p>{SIMULATED_BADGE} <small>{html_text(simulated_note)}</small></p>")
    return "\n".join(parts)
