"""``labkit doctor summarize FILE...``: a room's preflight on one page, for the instructor.

Each learner runs ``labkit doctor --output json > NAME.json`` and hands the file in; this
reads them all and renders one grid (a row per laptop, a column per check, each cell the
check's status) and, under it, every failing or warning check with its detail and fix,
grouped by laptop. Laptops are named by the ``host`` field doctor writes (the machine's
name), else by the file name.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.display import escape
from labkit.display.render import Rendered, text_table
from labkit.display.tables import badge
from labkit.errors import LabkitError

PROBLEMS = ("fail", "warn")
CSS = """body{font-family:sans-serif;margin:1.5em}
table{border-collapse:collapse;margin-bottom:1.5em}
th,td{text-align:left;vertical-align:top;padding:3px 8px;border-bottom:1px solid #d0d7de}
td.fail{background:#ffebe9}td.warn{background:#fff8c5}td.ok{background:#dafbe1}"""


@dataclass(frozen=True)
class Laptop:
    name: str
    source: str
    ok: bool
    backend: str
    checks: dict[str, dict[str, str]]  # check name -> {status, detail, fix}


@dataclass(repr=False)
class RoomSummary(Rendered):
    laptops: list[Laptop] = field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        names: list[str] = []
        for laptop in self.laptops:
            names += [n for n in laptop.checks if n not in names]
        return names

    @property
    def failing(self) -> list[Laptop]:
        return [lap for lap in self.laptops if not lap.ok]

    def headline(self) -> str:
        bad = self.failing
        return (f"{len(self.laptops)} laptop(s): {len(self.laptops) - len(bad)} ready for kind, "
                f"{len(bad)} with a failing check" + (f" ({', '.join(b.name for b in bad)})"
                                                       if bad else ""))

    def problems(self) -> list[tuple[str, str, dict[str, str]]]:
        return [(lap.name, name, check) for lap in self.laptops
                for name, check in lap.checks.items() if check["status"] in PROBLEMS]

    def as_dict(self) -> dict[str, Any]:
        return {"laptops": [{"name": lap.name, "file": lap.source, "ok": lap.ok,
                             "backend": lap.backend, "checks": lap.checks}
                            for lap in self.laptops]}

    def to_text(self) -> str:
        cols = self.columns
        grid = text_table(["laptop", *cols],
                          [[lap.name, *(lap.checks.get(c, {}).get("status", "-") for c in cols)]
                           for lap in self.laptops])
        fixes = [f"{lap} / {name}: {c['status'].upper()} {c['detail']}"
                 + (f"\n    fix: {c['fix']}" if c.get("fix") else "")
                 for lap, name, c in self.problems()]
        return "\n".join([self.headline(), grid, *(["", "to fix:"] + fixes if fixes else [])])

    def _repr_html_(self) -> str:
        cols = self.columns
        head = "".join(f"<th>{escape(c)}</th>" for c in ["laptop", "backend", *cols])
        rows = []
        for lap in self.laptops:
            cells = []
            for c in cols:
                check = lap.checks.get(c)
                if check is None:
                    cells.append("<td>-</td>")
                    continue
                cells.append(f'<td class="{escape(check["status"])}" '
                             f'title="{escape(check["detail"])}">{badge(check["status"])}</td>')
            rows.append(f"<tr><th>{escape(lap.name)}</th><td>{escape(lap.backend)}</td>"
                        + "".join(cells) + "</tr>")
        grid = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        fix_rows = "".join(
            f"<tr><td>{escape(lap)}</td><td>{escape(name)}</td><td>{badge(c['status'])}</td>"
            f"<td>{escape(c['detail'])}</td><td>{_code(c.get('fix', ''))}</td></tr>"
            for lap, name, c in self.problems())
        fixes = ("<h2>To fix</h2><table><thead><tr><th>laptop</th><th>check</th><th>status</th>"
                 f"<th>result</th><th>fix</th></tr></thead><tbody>{fix_rows}</tbody></table>"
                 if fix_rows else "<p>Nothing to fix.</p>")
        return f"<h1>Room preflight</h1><p>{escape(self.headline())}</p>{grid}{fixes}"

    def to_html_page(self) -> str:
        return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>labkit doctor: room preflight</title><style>{CSS}</style></head>"
                f"<body>{self._repr_html_()}</body></html>\n")


def _code(text: str) -> str:
    """Doctor's fixes quote commands in backticks: show them as code, not raw backticks."""
    parts = escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def read_report(path: Path) -> Laptop:
    """One ``labkit doctor --output json`` file; LabkitError naming the file and field."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LabkitError(f"{path}: cannot read it ({exc.strerror or exc})",
                          hint="pass the JSON files the laptops wrote") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise LabkitError(f"{path}: not JSON ({exc})",
                          hint="each file must be the output of `labkit doctor --output json`"
                          ) from exc
    checks = data.get("checks") if isinstance(data, dict) else None
    if not isinstance(checks, list):
        raise LabkitError(f"{path}: no `checks` list: not a doctor report",
                          hint="each file must be the output of `labkit doctor --output json`")
    out: dict[str, dict[str, str]] = {}
    for i, check in enumerate(checks):
        if not (isinstance(check, dict) and isinstance(check.get("name"), str)
                and isinstance(check.get("status"), str)):
            raise LabkitError(f"{path}: checks[{i}] needs a name and a status",
                              hint="regenerate it with `labkit doctor --output json`")
        out[check["name"]] = {"status": check["status"], "detail": str(check.get("detail", "")),
                              "fix": str(check.get("fix", ""))}
    name = str(data.get("host") or path.stem)
    ok = bool(data.get("ok", not any(c["status"] == "fail" for c in out.values())))
    return Laptop(name, str(path), ok, str(data.get("backend", "?")), out)


def summarize(paths: Sequence[Path]) -> RoomSummary:
    if not paths:
        raise LabkitError("no reports given",
                          hint="labkit doctor summarize room/*.json (each laptop's "
                          "`labkit doctor --output json`)")
    laptops = [read_report(p) for p in paths]
    seen: dict[str, int] = {}
    named = []
    for lap in laptops:  # two laptops with the same host name stay apart
        seen[lap.name] = seen.get(lap.name, 0) + 1
        suffix = f" ({Path(lap.source).name})" if seen[lap.name] > 1 else ""
        named.append(Laptop(lap.name + suffix, lap.source, lap.ok, lap.backend, lap.checks))
    return RoomSummary(named)
