"""What a Flannel -> Calico migration did, step by step (kind and sim alike)."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from labkit.display.render import SIMULATED_BADGE, Rendered, html_table, html_text


@dataclass
class Step:
    name: str
    status: str  # "done" (this run did it) | "skipped" (already so) | "failed"
    detail: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "detail": self.detail}


@dataclass(repr=False)
class MigrationReport(Rendered):
    mode: str
    simulated: bool
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, name: str, status: str, detail: str = "") -> None:
        self.steps.append(Step(name, status, detail))

    @property
    def ok(self) -> bool:
        return all(s.status != "failed" for s in self.steps)

    def as_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "simulated": self.simulated, "ok": self.ok,
                "steps": [s.as_dict() for s in self.steps], "notes": list(self.notes)}

    def to_text(self) -> str:
        label = " [simulated]" if self.simulated else ""
        lines = [f"Flannel -> Calico ({self.mode}){label}"]
        lines += [f"  {s.status:<8} {s.name}: {s.detail}" for s in self.steps]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        table = html_table(("status", "step", "detail"),
                           [(s.status, s.name, s.detail) for s in self.steps])
        notes = "".join(f"<li>{html_text(n)}</li>" for n in self.notes)
        label = f" {SIMULATED_BADGE}" if self.simulated else ""
        return (f"<p><b>Flannel → Calico ({html.escape(self.mode)})</b>{label}</p>{table}"
                + (f"<ul>{notes}</ul>" if notes else ""))
