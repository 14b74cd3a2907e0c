"""The course notebooks: stored clean, nbval-green on sim, and idempotent.

- nbval (``--nbval-lax``) executes every notebook in notebooks/ exactly as stored
  (BACKEND = "sim", exercises not attempted), in a subprocess like CI would.
- Idempotency: each notebook, parameterised as ``make run`` does (solutions on),
  runs twice in a row in ONE kernel; the second pass must pass as well.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
IDS = [p.stem for p in NOTEBOOKS]
pytestmark = pytest.mark.notebooks


def _sim_env() -> dict[str, str]:
    # read at call time: conftest gives every test its own LABKIT_HOME (saved sim clusters)
    return {**os.environ, "LABKIT_BACKEND": "sim", "LABKIT_PROGRESS": "plain"}


def test_the_course_has_notebooks():
    assert [p.stem for p in NOTEBOOKS][:2] == ["00-preflight", "01-flannel"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_stored_without_outputs_and_parameterised(path: Path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "strip the outputs"
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, "exactly one cell tagged `parameters`"
    assert 'BACKEND = "sim"' in params[0].source
    assert nb.cells[0].cell_type == "markdown" and "Objectives" in nb.cells[0].source
    # the learner is told when results are simulated: once, in a callout at the top
    source = "".join(c.source for c in nb.cells)
    assert "lab.banner()" in source or "simulated" in source.lower()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_nbval_on_sim(path: Path):
    proc = subprocess.run(
        # hypothesis's plugin costs ~0.7 s a process and nbval has no use for it
        [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:xdist", "-p",
         "no:cacheprovider", "-p", "no:hypothesispytest", "-q", str(path)],
        cwd=ROOT, env=_sim_env(), capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:]


def _doubled(path: Path) -> nbformat.NotebookNode:
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    nb = load_notebook_node(str(path))  # papermill's loader adds the metadata it relies on
    nb = parameterize_notebook(nb, {"BACKEND": "sim", "SOLVE_EXERCISES": True})
    second = [copy.deepcopy(c) for c in nb.cells]
    for c in second:
        c["id"] = f"{c.get('id', 'x')}-again"
    nb.cells = nb.cells + second
    return nb


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_idempotent_twice_in_one_kernel(path: Path):
    from nbclient import NotebookClient

    nb = _doubled(path)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
    # the closing check (last code cell) ran twice and passed both times
    closing = [c for c in nb.cells if c.cell_type == "code"][-1]
    assert closing.outputs, "the closing check printed nothing on the second pass"
