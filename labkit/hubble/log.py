"""A log of Hubble flows: read from ``hubble observe`` output, shown as Hubble's table, and
turned into a DataFrame or a service map."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit.display.render import Rendered, html_report, html_table, text_report, text_table
from labkit.errors import FlowError
from labkit.hubble.flow import Flow, parse_response
from labkit.hubble.frame import flows_dataframe
from labkit.hubble.servicemap import ServiceMap
from labkit.hubble.writers import TABLE_HEADER, table_row


@dataclass(frozen=True, repr=False)
class FlowLog(Rendered):
    """The flows of one file or cluster, and how many non-flow responses were skipped.

    Shown (text or HTML) as Hubble's table of the last ``SHOWN`` flows; ``.flows`` has all.
    """

    flows: tuple[Flow, ...]
    skipped: int = 0
    #: Made by the sim backend's model, not recorded by a real Hubble.
    simulated: bool = False

    SHOWN = 20

    def __iter__(self) -> Any:
        return iter(self.flows)

    def __len__(self) -> int:
        return len(self.flows)

    def as_dict(self) -> dict[str, Any]:
        """``labkit hubble parse --output json``: exactly ``flows`` and ``skipped``."""
        return {"flows": [f.as_dict() for f in self.flows], "skipped": self.skipped}

    def _report(self) -> tuple[str, list[str], list[list[str]], str]:
        label = " (simulated)" if self.simulated else ""
        headline = f"{len(self.flows)} Hubble flows{label}, {self.skipped} other events skipped"
        hidden = len(self.flows) - self.SHOWN
        notes = [f"{hidden} earlier flows not shown (all are in .flows, .to_dataframe())"] \
            if hidden > 0 else []
        rows = [table_row(f) for f in self.flows[-self.SHOWN:]]
        note = ("simulated: labkit's model of what Hubble would record, not a real Hubble"
                if self.simulated else "")
        return headline, notes, [list(TABLE_HEADER), *rows], note

    def to_text(self) -> str:
        headline, notes, table, note = self._report()
        body = [text_table(table[0], table[1:], gap="   ")] if len(table) > 1 else []
        return text_report(headline, body, notes, note)

    def _repr_html_(self) -> str:
        headline, notes, table, note = self._report()
        body = [html_table(table[0], table[1:])] if len(table) > 1 else []
        return html_report(headline, body, notes, note)

    def to_dataframe(self) -> Any:
        frame = flows_dataframe(self.flows)
        frame.attrs["simulated"] = self.simulated
        return frame

    def service_map(self) -> Any:
        return ServiceMap.from_flows(self.flows, simulated=self.simulated)


# -- reading ------------------------------------------------------------------------------------
def read_flows(path: str | Path) -> FlowLog:
    """Parse a file of ``hubble observe -o jsonpb`` (or legacy ``-o json``) output."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise FlowError(f"{p}: cannot read: {exc.strerror}",
                        hint="pass a file written by `hubble observe -o jsonpb`") from exc
    except UnicodeDecodeError as exc:
        raise FlowError(f"{p}: not UTF-8 text", hint="hubble writes UTF-8 JSON lines") from exc
    return parse_flows(text.splitlines(), source=str(p))


def parse_flows(lines: Iterable[str], *, source: str = "<flows>") -> FlowLog:
    """Flows from JSON lines; blank lines are ignored, non-flow responses skipped and counted."""
    flows: list[Flow] = []
    skipped = 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{source}:{number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise FlowError(f"{where}: not a JSON object: {exc.msg} at column {exc.colno}",
                            hint="expected one `hubble observe -o jsonpb` response a line") \
                from exc
        flow = parse_response(obj, where)
        if flow is None:
            skipped += 1
        else:
            flows.append(flow)
    return FlowLog(tuple(flows), skipped)


def time_key(flow: Flow) -> tuple[str, int]:
    """A sort key for flow times (RFC 3339 with 0 to 9 fractional digits; absent first)."""
    if not flow.time:
        return ("", 0)
    stamp, _, frac = flow.time.rstrip("Z").partition(".")
    return (stamp, int((frac + "000000000")[:9]))
