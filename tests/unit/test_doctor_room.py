"""``labkit doctor summarize``: a room's doctor reports as one HTML page for the instructor."""

from __future__ import annotations

import html.parser
import json
import re
from pathlib import Path

import pytest

from labkit import cli
from labkit.course.doctor import run_doctor
from labkit.course.room import summarize
from labkit.errors import LabkitError
from tests.unit.test_doctor import VERSIONS, fake_host, good_outputs


def report(tmp_path: Path, name: str, node: str, **host_args) -> Path:
    host = fake_host(good_outputs(), paths=("/sys/module/wireguard",), **host_args)
    host.node = node
    path = tmp_path / f"{name}.json"
    path.write_text(run_doctor(host, VERSIONS).to_json())
    return path


@pytest.fixture
def room(tmp_path: Path) -> list[Path]:
    return [report(tmp_path, "ana", "ana-laptop"),
            report(tmp_path, "bo", "bo-mac", installed=("docker",)),  # no kind, no CLIs
            report(tmp_path, "cy", "cy-box", files={})]  # /proc unreadable: skips


class Cells(html.parser.HTMLParser):
    """(tag, class, text) of every td/th, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[tuple[str, str, str]] = []
        self._open: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag in ("td", "th"):
            self._open = [tag, dict(attrs).get("class") or "", ""]

    def handle_data(self, data):
        if self._open is not None:
            self._open[2] += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._open is not None:
            self.cells.append(tuple(self._open))  # type: ignore[arg-type]
            self._open = None


def test_one_grid_row_per_laptop_and_the_fixes_of_the_failing_ones(room) -> None:
    summary = summarize(room)
    assert [lap.name for lap in summary.laptops] == ["ana-laptop", "bo-mac", "cy-box"]
    assert summary.headline() == ("3 laptop(s): 2 ready for kind, 1 with a failing check "
                                  "(bo-mac)")
    page = summary.to_html_page()
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    parser = Cells()
    parser.feed(page)
    rows = [c for c in parser.cells]
    kind_col = summary.columns.index("kind")
    # the grid: laptop name, backend, then one status cell per check, classed by status
    grid_row = rows[len(summary.columns) + 2:][:len(summary.columns) + 2]
    assert grid_row[0] == ("th", "", "ana-laptop") and grid_row[1][2] == "kind"
    bo = rows[2 * (len(summary.columns) + 2):][:len(summary.columns) + 2]
    assert bo[0][2] == "bo-mac" and bo[2 + kind_col] == ("td", "fail", "FAIL")
    # the fixes: bo-mac's kind fails with the verified install as its fix, as code
    assert "<td>bo-mac</td><td>kind</td>" in page
    assert "<code>labkit tools install kind</code>" in page and "`" not in page
    assert "cy-box" in page and "ana-laptop</td><td>kind" not in page


def test_text_and_json_forms(room) -> None:
    summary = summarize(room)
    text = summary.to_text()
    assert text.splitlines()[1].split()[:3] == ["laptop", "docker", "docker-desktop"]
    assert "bo-mac / kind: FAIL not installed" in text
    data = json.loads(summary.to_json())
    assert [lap["ok"] for lap in data["laptops"]] == [True, False, True]


def test_same_host_twice_stays_two_rows(tmp_path) -> None:
    a, b = report(tmp_path, "a", "lab-pc"), report(tmp_path, "b", "lab-pc")
    assert [lap.name for lap in summarize([a, b]).laptops] == ["lab-pc", "lab-pc (b.json)"]


@pytest.mark.parametrize("content, field", [
    ("not json", "not JSON"),
    ('{"ok": true}', "no `checks` list"),
    ('{"checks": [{"name": "docker"}]}', "checks[0] needs a name and a status"),
])
def test_a_bad_file_is_one_error_naming_it(tmp_path, capsys, content, field) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text(content)
    with pytest.raises(LabkitError, match=re.escape(field)):
        summarize([bad])
    assert cli.main(["doctor", "summarize", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"labkit doctor: error: {bad}: ") and field in err
    assert len(err.strip().splitlines()) == 1


def test_cli_writes_the_page(room, capsys) -> None:
    assert cli.main(["doctor", "summarize", *map(str, room)]) == 0
    out = capsys.readouterr().out
    problems = summarize(room).problems()
    assert problems and out.startswith("<!doctype html>")
    assert out.count("<tr>") == 1 + 3 + 1 + len(problems)  # grid head, laptops, fixes
