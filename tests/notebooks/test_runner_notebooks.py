"""``labkit run`` end to end on tiny purpose-built notebooks (fixtures/nb-pass, nb-fail)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from labkit.cli import main
from labkit.course.runner import run_course

FIXTURES = Path(__file__).parent / "fixtures"
pytestmark = pytest.mark.notebooks


def test_run_writes_notebooks_and_reports_and_names_the_failing_cell(tmp_path: Path):
    stream = io.StringIO()
    report = run_course(
        [FIXTURES / "nb-pass.ipynb", FIXTURES / "nb-fail.ipynb"], backend="sim",
        parameters={"GREETING": "hi"}, output_dir=tmp_path, stream=stream,
    )
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["backend"] == "sim"
    assert [(n["name"], n["status"]) for n in data["notebooks"]] == [
        ("nb-pass", "passed"), ("nb-fail", "failed")]
    failed = data["notebooks"][1]
    # cell 5 of the executed notebook: papermill injected a parameters cell after cell 2
    assert failed["cell"] == 5
    assert "CheckFailed: the lab did not reach its goal" in failed["error"]
    assert all(isinstance(n["seconds"], float) for n in data["notebooks"])
    assert not report.ok

    import nbformat

    executed = nbformat.read(tmp_path / "nb-pass.ipynb", as_version=4)
    outputs = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert "hi from sim" in outputs  # parameters reached the notebook
    page = (tmp_path / "report.html").read_text()
    assert "nb-fail" in page
    # the report links to HTML renderings a browser can show (and still to the .ipynb files)
    assert '<a href="./nb-pass.html">nb-pass</a>' in page and 'href="./nb-fail.ipynb"' in page
    rendered = (tmp_path / "nb-fail.html").read_text()
    assert rendered.lstrip().lower().startswith("<!doctype html>")
    assert "the lab did not reach its goal" in rendered
    log = stream.getvalue()
    assert "[1/2] nb-pass PASSED" in log and "[2/2] nb-fail FAILED" in log
    assert "SIMULATED" in log


def test_cli_run_exit_status_and_fail_fast(tmp_path: Path, capsys):
    rc = main(["run", str(FIXTURES / "nb-fail.ipynb"), str(FIXTURES / "nb-pass.ipynb"),
               "--backend", "sim", "--output-dir", str(tmp_path), "--fail-fast"])
    assert rc == 1
    data = json.loads((tmp_path / "report.json").read_text())
    assert [n["name"] for n in data["notebooks"]] == ["nb-fail"]  # stopped at the failure
    assert "0/1 notebooks passed" in capsys.readouterr().out


def test_long_cells_get_progress_lines(tmp_path: Path):
    stream = io.StringIO()
    run_course([FIXTURES / "nb-pass.ipynb"], backend="sim", output_dir=tmp_path, stream=stream,
               progress_every=0)
    lines = [ln for ln in stream.getvalue().splitlines() if "... cell" in ln]
    assert lines and lines[-1].strip().startswith("... cell 4/4")
    assert "Kernel is running over TCP" not in stream.getvalue()


def test_sim_runs_start_from_an_empty_home(tmp_path: Path, monkeypatch):
    import os

    outer = tmp_path / "learner-home"
    monkeypatch.setenv("LABKIT_HOME", str(outer))
    nb = FIXTURES / "nb-pass.ipynb"
    stale = tmp_path / "out" / "sim-home" / "sim" / "cni-lab.json"
    stale.parent.mkdir(parents=True)
    stale.write_text("{}")
    run_course([nb], backend="sim", output_dir=tmp_path / "out", stream=io.StringIO())
    assert not stale.exists()  # an earlier run's simulated cluster is gone
    assert os.environ["LABKIT_HOME"] == str(outer)  # and the learner's own home is restored


def test_the_engine_saves_at_start_on_error_and_at_the_end_only(tmp_path: Path, monkeypatch):
    import papermill.engines

    writes: list[str] = []
    real = papermill.engines.write_ipynb

    def counting(nb, path):
        writes.append(str(path))
        return real(nb, path)

    monkeypatch.setattr(papermill.engines, "write_ipynb", counting)
    run_course([FIXTURES / "nb-pass.ipynb"], backend="sim", output_dir=tmp_path,
               stream=io.StringIO())
    assert len(writes) == 2  # start and end, whatever the number of cells (papermill: 10)
    writes.clear()
    run_course([FIXTURES / "nb-fail.ipynb"], backend="sim", output_dir=tmp_path,
               stream=io.StringIO())
    assert len(writes) == 3  # start, the failing cell, the end

    import nbformat

    executed = nbformat.read(tmp_path / "nb-fail.ipynb", as_version=4)
    failing = [c for c in executed.cells if c.metadata.get("papermill", {}).get("status")
               == "failed"]
    assert len(failing) == 1 and "raise CheckFailed" in failing[0].source
    assert [o.ename for o in failing[0].outputs if o.output_type == "error"] == ["CheckFailed"]


def test_run_uses_the_kernel_manager_that_does_not_interrupt_on_shutdown(tmp_path: Path,
                                                                          monkeypatch):
    import papermill

    from labkit.course.kernel import QuietShutdownKernelManager

    seen: dict = {}

    def fake_execute(src, dst, **kwargs):
        seen.update(kwargs)
        import shutil
        shutil.copy(src, dst)

    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)
    run_course([FIXTURES / "nb-pass.ipynb"], backend="sim", output_dir=tmp_path,
               stream=io.StringIO())
    assert seen["kernel_manager_class"] is QuietShutdownKernelManager
