"""The article is named, and its claims table is data that every lab reference resolves."""

from __future__ import annotations

from pathlib import Path

import pytest

from labkit.course.plan import CLAIMS_FILE, NOTEBOOKS_DIR, VERDICTS, claims_table, load_claims
from labkit.errors import ManifestError

ROOT = Path(__file__).parents[2]


def test_the_article_is_named_with_title_publication_year_and_link() -> None:
    article, claims = load_claims()
    assert article.title.startswith("Stop Using the Wrong CNI in 2025")
    assert article.year == 2025 and article.url.startswith("https://blog.devops.dev/")
    assert {c.verdict for c in claims} == set(VERDICTS)
    assert "DevOps.dev" in article.citation() and "2025" in article.citation()
    for where in (ROOT / "README.md", NOTEBOOKS_DIR / "00-preflight.ipynb"):
        text = where.read_text(encoding="utf-8")
        assert article.title.split(":")[0] in text and article.url in text, where


def test_claims_of_unwritten_labs_say_planned() -> None:
    table = claims_table()
    present = {p.stem for p in NOTEBOOKS_DIR.glob("[0-9][0-9]-*.ipynb")}
    for row in table.rows:
        lab = str(row[3])
        assert lab.endswith("(planned)") != (lab in present), lab
    assert any(r[3] == "02-calico" and r[1] == "wrong" for r in table.rows)


def test_a_bad_verdict_names_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "claims.yaml"
    bad.write_text(CLAIMS_FILE.read_text().replace("verdict: wrong", "verdict: nonsense", 1))
    with pytest.raises(ManifestError, match=r"claims\[\d+\]"):
        load_claims(bad)
