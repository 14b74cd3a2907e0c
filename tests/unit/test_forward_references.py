"""A reference to a lab that is not written yet says so ("planned")."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).parents[2]
NOTEBOOKS = ROOT / "notebooks"
LAB_REF = re.compile(r"\b[Ll]ab (\d\d)\b")


def _texts() -> list[tuple[str, str]]:
    out = [("README.md", (ROOT / "README.md").read_text(encoding="utf-8"))]
    for nb in sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb")):
        for i, cell in enumerate(json.loads(nb.read_text(encoding="utf-8"))["cells"]):
            out.append((f"{nb.name} cell {i}", "".join(cell["source"])))
    for py in sorted((ROOT / "labkit").rglob("*.py")):
        out.append((str(py.relative_to(ROOT)), py.read_text(encoding="utf-8")))
    return out


def test_every_reference_to_an_unwritten_lab_says_planned() -> None:
    written = {p.name[:2] for p in NOTEBOOKS.glob("[0-9][0-9]-*.ipynb")}
    missing = []
    for where, text in _texts():
        for m in LAB_REF.finditer(text):
            if m.group(1) in written:
                continue
            if "planned" not in text[m.end():m.end() + 40]:
                missing.append(f"{where}: ...{text[max(0, m.start() - 30):m.end() + 30]!r}")
    assert not missing, "\n".join(missing)
