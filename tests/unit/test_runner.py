"""The course runner's pure parts: parameters, failure lines, the report's shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labkit.course.runner import (
    CourseReport,
    NotebookResult,
    _failure,
    course_notebooks,
    parse_parameter,
    resolve_backend,
)
from labkit.errors import LabkitError


@pytest.mark.parametrize(
    ("text", "expected"),
    [("TARGET=kind", ("TARGET", "kind")), ("SOLVE_EXERCISES=true", ("SOLVE_EXERCISES", True)),
     ("N=3", ("N", 3)), ("PORTS=[80, 443]", ("PORTS", [80, 443])), ("X=", ("X", "")),
     ("MSG=a: b: c", ("MSG", "a: b: c"))],
)
def test_parse_parameter(text, expected):
    assert parse_parameter(text) == expected


@pytest.mark.parametrize("bad", ["BACKEND", "=1", "not-a-name=1"])
def test_parse_parameter_rejects(bad):
    with pytest.raises(LabkitError) as err:
        parse_parameter(bad)
    assert "NAME=VALUE" in err.value.hint


def test_failure_names_the_cell():
    from papermill.exceptions import PapermillExecutionError

    exc = PapermillExecutionError(
        6, 5, "# closing check\nlab_check(lab)\n", "CheckFailed", "observed != expected",
        ["Traceback ..."],
    )
    line, cell = _failure(exc)
    assert cell == 7
    assert line == "cell 7 (In [5]: 'lab_check(lab)'): CheckFailed: observed != expected"
    other, none = _failure(RuntimeError("kernel died"))
    assert none is None and other == "RuntimeError: kernel died"


def test_report_shape_is_the_documented_one(tmp_path: Path):
    report = CourseReport("sim", {"BACKEND": "sim"}, [
        NotebookResult("00-preflight", "passed", 1.5),
        NotebookResult("01-flannel", "failed", 2.0, "cell 3 (...): CheckFailed: x", 3),
    ])
    data = json.loads(report.to_json())
    assert data["backend"] == "sim"
    assert [set(n) >= {"name", "status", "seconds", "error"} for n in data["notebooks"]] == [
        True, True]
    assert [n["status"] for n in data["notebooks"]] == ["passed", "failed"]
    assert not report.ok
    text = report.to_text()
    assert "1/2 notebooks passed" in text and "SIMULATED" in text
    assert "<table>" in report.to_html() and "01-flannel" in report.to_html()


def test_course_notebooks_are_ordered(tmp_path: Path):
    for name in ("01-b.ipynb", "00-a.ipynb", "scratch.ipynb", "10-c.ipynb"):
        (tmp_path / name).write_text("{}")
    assert [p.name for p in course_notebooks(tmp_path)] == ["00-a.ipynb", "01-b.ipynb",
                                                            "10-c.ipynb"]
    with pytest.raises(LabkitError):
        course_notebooks(tmp_path / "missing")


def test_resolve_backend(monkeypatch):
    monkeypatch.setenv("LABKIT_BACKEND", "sim")
    assert resolve_backend("auto") == "sim"
    assert resolve_backend("kind") == "kind"


def test_only_declared_parameters_reach_a_notebook():
    from labkit.course.runner import _declared

    fixture = Path(__file__).resolve().parents[1] / "notebooks" / "fixtures" / "nb-pass.ipynb"
    params = {"BACKEND": "sim", "GREETING": "hi", "SOLVE_EXERCISES": True}
    assert _declared(fixture, params) == {"BACKEND": "sim", "GREETING": "hi"}


def test_find_notebook_by_path_or_course_name(tmp_path: Path):
    from labkit.course.runner import find_notebook

    (tmp_path / "01-flannel.ipynb").write_text("{}")
    assert find_notebook("01-flannel", tmp_path) == tmp_path / "01-flannel.ipynb"
    assert find_notebook("01-flannel.ipynb", tmp_path) == tmp_path / "01-flannel.ipynb"
    assert find_notebook(tmp_path / "01-flannel.ipynb") == tmp_path / "01-flannel.ipynb"
    with pytest.raises(LabkitError) as err:
        find_notebook("99-nope", tmp_path)
    assert "01-flannel" in err.value.hint
