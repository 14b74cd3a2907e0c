"""The GitHub Actions workflows: valid (actionlint), and versions taken from versions.yaml."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def _actionlint() -> str:
    # Installed into the venv by `make setup` (test extra); look beside this Python first.
    beside = Path(sys.executable).parent / "actionlint"
    found = str(beside) if beside.exists() else shutil.which("actionlint")
    assert found, "actionlint is missing: run `make setup` (it comes with the test extra)"
    return found


def test_there_are_workflows_for_tests_and_kind():
    names = {p.name for p in WORKFLOWS}
    assert {"tests.yml", "notebooks-kind.yml"} <= names


def test_actionlint_passes():
    proc = subprocess.run([_actionlint(), "-no-color", *map(str, WORKFLOWS)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path):
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n"
                   "      - run: echo ${{ github.event.nope.nope }}\n        uses: a/b@v1\n")
    proc = subprocess.run([_actionlint(), "-no-color", str(bad)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode != 0


def test_kind_workflow_installs_tools_verified_and_pinned():
    """Through `labkit tools install` (versions and SHA-256s of versions.yaml), never curl."""
    wf = yaml.safe_load((ROOT / ".github" / "workflows" / "notebooks-kind.yml").read_text())
    runs = "\n".join(step.get("run", "") for step in wf["jobs"]["nbval-kind"]["steps"])
    assert ".venv/bin/labkit tools install" in runs
    assert "curl" not in runs


def test_tests_workflow_runs_ci_run_where_browser_and_docker_tests_can_run():
    wf = yaml.safe_load((ROOT / ".github" / "workflows" / "tests.yml").read_text())
    job = wf["jobs"]["make-test"]
    assert job["container"]["image"].endswith("bookworm")  # Debian's chromium, via apt
    assert "--privileged" in job["container"]["options"]  # dockerd inside
    assert job["env"]["CI"] == "true"
    runs = [step.get("run", "") for step in job["steps"]]
    assert ".ci/run" in runs
    uploads = [step["with"]["path"] for step in job["steps"]
               if step.get("uses", "").startswith("actions/upload-artifact")]
    assert "runs/browser" in uploads


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_no_hard_coded_tool_versions(workflow: Path):
    text = workflow.read_text()
    # Tools come from `labkit tools install` (versions.yaml); no download pins a version here.
    for line in text.splitlines():
        if "curl" in line and ("kind" in line or "kubectl" in line or "helm" in line):
            assert not re.search(r"/v?\d+\.\d+\.\d+/", line), line


def test_kind_workflow_runs_nbval_with_kind_backend():
    wf = yaml.safe_load((ROOT / ".github" / "workflows" / "notebooks-kind.yml").read_text())
    job = wf["jobs"]["nbval-kind"]
    runs = "\n".join(step.get("run", "") for step in job["steps"])
    assert "-p BACKEND kind" in runs and "--nbval-lax" in runs
    assert job["env"]["LABKIT_BACKEND"] == "kind"


def test_the_kind_workflow_runs_every_notebook_once():
    """Each course notebook falls in exactly one nbval step of the kind workflow."""
    import fnmatch

    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "notebooks-kind.yml").read_text())
    steps = workflow["jobs"]["nbval-kind"]["steps"]
    globs = [step["run"].split()[-1].removeprefix("ci-notebooks/") for step in steps
             if "--nbval-lax" in step.get("run", "")]
    assert globs, "no nbval step"
    for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb")):
        hits = [g for g in globs if fnmatch.fnmatch(nb.name, g)]
        assert len(hits) == 1, f"{nb.name} is run by {len(hits)} nbval steps ({globs})"
