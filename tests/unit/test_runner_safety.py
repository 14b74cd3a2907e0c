"""``labkit run``: no report lies, nothing is lost (papermill replaced by a fake: no kernel)."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from labkit.cli import main
from labkit.course.runner import CourseReport, NotebookResult, parse_parameter, run_course
from labkit.errors import LabkitError

FIXTURES = Path(__file__).resolve().parents[1] / "notebooks" / "fixtures"


@pytest.fixture
def notebooks(tmp_path: Path) -> list[Path]:
    src = tmp_path / "course"
    src.mkdir()
    return [Path(shutil.copy(FIXTURES / "nb-pass.ipynb", src / f"{i:02d}-nb.ipynb"))
            for i in range(3)]


class FakePapermill:
    """Copies the notebook like papermill would; Ctrl-C at the ``interrupt_at``-th one."""

    def __init__(self, interrupt_at: int | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.interrupt_at = interrupt_at

    def __call__(self, src: str, dst: str, **kwargs: Any) -> None:
        self.calls.append({"src": src, "dst": dst, **kwargs})
        if len(self.calls) == self.interrupt_at:
            raise KeyboardInterrupt
        shutil.copy(src, dst)


@pytest.fixture
def papermill(monkeypatch: pytest.MonkeyPatch) -> FakePapermill:
    fake = FakePapermill()
    monkeypatch.setattr("papermill.execute_notebook", fake)
    return fake


def report(out: Path) -> dict[str, Any]:
    return json.loads((out / "report.json").read_text())


def test_p_backend_is_refused_so_the_report_names_the_backend_that_ran(
        tmp_path: Path, notebooks: list[Path], papermill: FakePapermill,
        capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["run", str(notebooks[0]), "--backend", "kind", "-p", "BACKEND=sim",
               "--output-dir", str(tmp_path / "out")])
    assert rc == 1
    assert "-p BACKEND is not a parameter: the backend comes from --backend" in \
        capsys.readouterr().err
    assert papermill.calls == []
    with pytest.raises(LabkitError, match="BACKEND is not a parameter"):
        run_course(notebooks[:1], backend="sim", parameters={"BACKEND": "kind"},
                   output_dir=tmp_path / "out")


def test_an_interrupted_run_says_so_and_replaces_the_previous_report(
        tmp_path: Path, notebooks: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    monkeypatch.setattr("papermill.execute_notebook", FakePapermill())
    run_course(notebooks, backend="sim", output_dir=out)
    assert report(out)["state"] == "finished"
    assert [n["status"] for n in report(out)["notebooks"]] == ["passed"] * 3
    monkeypatch.setattr("papermill.execute_notebook", FakePapermill(interrupt_at=2))
    with pytest.raises(KeyboardInterrupt):
        run_course(notebooks, backend="sim", output_dir=out)
    data = report(out)
    assert data["state"] == "interrupted"
    assert [n["status"] for n in data["notebooks"]] == ["passed", "interrupted"]
    assert "INTERRUPTED" in (out / "report.html").read_text()


def test_a_running_report_is_written_before_the_first_notebook(
        tmp_path: Path, notebooks: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    seen: list[dict[str, Any]] = []

    def execute(src: str, dst: str, **kwargs: Any) -> None:
        seen.append(report(out))
        shutil.copy(src, dst)

    monkeypatch.setattr("papermill.execute_notebook", execute)
    run_course(notebooks[:1], backend="sim", output_dir=out)
    assert seen[0]["state"] == "running" and seen[0]["notebooks"] == []


@pytest.mark.parametrize("where", ["equal", "parent"])
def test_an_output_dir_holding_a_source_notebook_is_refused(
        tmp_path: Path, notebooks: list[Path], papermill: FakePapermill, where: str) -> None:
    before = notebooks[0].read_bytes()
    out = notebooks[0].parent if where == "equal" else tmp_path
    with pytest.raises(LabkitError, match="contains the source notebook .*would overwrite"):
        run_course(notebooks, backend="sim", output_dir=out,
                   parameters={"SOLVE_EXERCISES": True})
    assert papermill.calls == [] and notebooks[0].read_bytes() == before


def test_two_runs_on_one_output_folder_do_not_mix(
        tmp_path: Path, notebooks: list[Path], papermill: FakePapermill) -> None:
    out = tmp_path / "out"
    out.mkdir()
    fd = os.open(out / ".labkit-run.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another run holds the folder
        with pytest.raises(LabkitError, match="another labkit run is writing to"):
            run_course(notebooks, backend="sim", output_dir=out)
    finally:
        os.close(fd)
    assert papermill.calls == [] and not (out / "report.json").exists()


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: p.write_text("x") and p, "is a file, not a folder"),
    (lambda p: Path("/proc/labkit-out"), "cannot create --output-dir /proc/labkit-out"),
])
def test_output_dirs_that_cannot_hold_results(tmp_path: Path, notebooks: list[Path],
                                              papermill: FakePapermill, make: Any,
                                              message: str) -> None:
    out = make(tmp_path / "out")
    with pytest.raises(LabkitError, match=message):
        run_course(notebooks, backend="sim", output_dir=out)


def test_a_folder_nobody_can_write_to(tmp_path: Path, notebooks: list[Path],
                                     papermill: FakePapermill) -> None:
    # /proc/1 exists and refuses new files even to root; a chmod 555 folder would not.
    with pytest.raises(LabkitError, match="cannot write to --output-dir /proc/1"):
        run_course(notebooks, backend="sim", output_dir="/proc/1")


@pytest.mark.parametrize(("content", "message"), [
    (b"\x89PNG\r\n\x1a\n\x00", "not UTF-8 text"),
    (b'["a"]', "not a Jupyter notebook"),
    (b'{"cells": 3}', "not a Jupyter notebook"),
    (b"[" * 100_000, "nests too deeply"),
])
def test_a_file_that_is_not_a_notebook_is_refused_before_anything_runs(
        tmp_path: Path, papermill: FakePapermill, content: bytes, message: str) -> None:
    bad = tmp_path / "bad.ipynb"
    bad.write_bytes(content)
    with pytest.raises(LabkitError, match=message):
        run_course([bad], backend="sim", output_dir=tmp_path / "out")
    assert papermill.calls == []


def test_parameters_are_strict_json() -> None:
    assert parse_parameter("X=2020-01-01") == ("X", "2020-01-01")  # a date: the text typed
    with pytest.raises(LabkitError, match="Out of range float values are not JSON"):
        parse_parameter("X=.nan")
    with pytest.raises(LabkitError, match="not JSON"):
        parse_parameter("X=[1, .inf]")
    with pytest.raises(ValueError, match="not JSON compliant"):
        CourseReport("sim", {"X": float("nan")}).to_json()


def test_report_html_links_are_relative_and_quoted() -> None:
    r = CourseReport("sim", {}, [NotebookResult("javascript:alert(1)", "passed", 1.0,
                                                output="out/javascript:alert(1).ipynb",
                                                html="out/javascript:alert(1).html"),
                                 NotebookResult("a b\"c", "passed", 1.0,
                                                output="out/a b\"c.ipynb")])
    html = r.to_html()
    assert '<a href="./javascript%3Aalert%281%29.ipynb">' in html
    assert '<a href="./javascript%3Aalert%281%29.html">' in html
    assert '<a href="./a%20b%22c.ipynb">' in html
    assert "href=javascript" not in html and 'href="javascript' not in html
