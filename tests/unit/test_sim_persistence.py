"""Simulated clusters outlive the process, like kind clusters in Docker.

Each test has its own LABKIT_HOME (tests/conftest.py). ``CLUSTERS.clear()`` forgets
this process's copies: the next access loads the state file, as a new process would;
one test also checks that with a real second process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from labkit import Lab
from labkit.addons import metallb
from labkit.backends.sim import store
from labkit.backends.sim.backend import CLUSTERS
from labkit.cli import main as cli
from labkit.cni.calico import recipe as calico
from labkit.environments import environments_dir
from labkit.errors import ClusterError

POLICIES = environments_dir() / "policies"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABKIT_PROGRESS", "off")
    CLUSTERS.clear()


def shop(policy: bool = True) -> Lab:
    lab = Lab("flannel", backend="sim")
    lab.up()
    lab.install_cni("flannel")
    lab.deploy_shop()
    if policy:
        lab.apply(POLICIES / "shop")
    return lab


def snapshot_of(lab: Lab) -> dict[str, Any]:
    """Everything a learner sees: status, pods with IPs and labels, the matrix, the policies."""
    return {
        "status": lab.status().as_dict(),
        "pods": [(p.key, p.ip, p.node, p.labels) for p in lab.pods()],
        "matrix": json.loads(lab.matrix().to_json()) if lab.workload_pods() else None,
        "policies": sorted(str(p.identity) for p in lab.impl.state().policies),
        "cni": lab.cni,
    }


SNAPSHOT_SCRIPT = """
import json, sys
sys.path.insert(0, {tests!r})
from unit.test_sim_persistence import snapshot_of
from labkit import Lab
print(json.dumps(snapshot_of(Lab("flannel", backend="sim"))))
"""


def test_a_new_process_finds_the_same_cluster() -> None:
    lab = shop()
    mine = json.loads(json.dumps(snapshot_of(lab)))
    assert mine["policies"] and mine["cni"] == "flannel"
    env = {**os.environ, "LABKIT_PROGRESS": "off", "LABKIT_BACKEND": "sim"}
    proc = subprocess.run([sys.executable, "-c",
                           SNAPSHOT_SCRIPT.format(tests=str(ROOT / "tests"))],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == mine
    # and the CLI in another process: status, then down
    status = subprocess.run([sys.executable, "-m", "labkit.cli", "status", "--backend", "sim",
                             "--output", "json"], env=env, cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout) == mine["status"]
    down = subprocess.run([sys.executable, "-m", "labkit.cli", "down", "flannel", "--backend",
                           "sim"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stderr
    assert not lab.impl.state_file.exists()
    assert not lab.status().exists  # this process sees the other one's `down`


def test_reload_gives_the_same_view() -> None:
    before = snapshot_of(shop())
    CLUSTERS.clear()
    assert snapshot_of(Lab("flannel", backend="sim")) == before


def _steps() -> list[Callable[[Lab], Any]]:
    """A course's worth of changes, including IPAM history (deleted pods), Calico's
    block IPAM with stale Flannel pods, and MetalLB's allocator."""
    return [
        lambda lab: lab.up(),
        lambda lab: lab.install_cni("flannel"),
        lambda lab: lab.deploy_shop(),
        lambda lab: lab.apply(POLICIES / "shop"),
        lambda lab: lab.delete(POLICIES / "shop" / sorted(os.listdir(POLICIES / "shop"))[0]),
        lambda lab: lab.delete({"apiVersion": "v1", "kind": "Pod",
                                "metadata": {"namespace": "shop-api",
                                             "name": lab.resolve("shop-api/api").split("/")[1]}}),
        lambda lab: lab.deploy_shop(),  # the api Deployment makes a new pod: host-local's cursor
        lambda lab: calico.RECIPE.migrate(lab, restart=False),
        lambda lab: calico.RECIPE.restart_workloads(lab),
        lambda lab: lab.apply(environments_dir() / "metallb" / "frontend-lb.yaml"),
        lambda lab: metallb.install(lab),
    ]


def _run(steps: list[Callable[[Lab], Any]], *, restart_between: bool) -> list[tuple[str, Any]]:
    """The state file and the learner's view after each step."""
    seen = []
    for step in steps:
        if restart_between:
            CLUSTERS.clear()
        step(Lab("flannel", backend="sim"))
        lab = Lab("flannel", backend="sim")
        view = snapshot_of(lab) if lab.cni else lab.status().as_dict()  # no matrix without a CNI
        seen.append((lab.impl.state_file.read_text(), view))
    return seen


def test_save_and_load_between_every_step_changes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path / "one-process"))
    one = _run(_steps(), restart_between=False)
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path / "many-processes"))
    CLUSTERS.clear()
    many = _run(_steps(), restart_between=True)
    for i, ((text, view), (text_again, view_again)) in enumerate(zip(one, many, strict=True)):
        assert view_again == view, f"step {i}"
        assert text_again == text, f"step {i}"
    data = json.loads(one[-1][0])
    assert data["cni"]["ipam"]["type"] == "calico" and data["hooks"][0]["type"] == "metallb"


def test_file_is_versioned_json_with_policies_as_manifests() -> None:
    lab = shop()
    data = json.loads(lab.impl.state_file.read_text())
    assert lab.impl.state_file == Path(os.environ["LABKIT_HOME"]) / "sim" / "cni-lab.json"
    assert data["format"] == "labkit-sim-cluster/v1"
    assert {d["kind"] for d in data["policies"]} == {"NetworkPolicy"}
    assert all("apiVersion" in d and "spec" in d for d in data["policies"])
    assert store.cluster_names() == ["cni-lab"]


def test_down_removes_the_file() -> None:
    lab = shop(policy=False)
    path = lab.impl.state_file
    assert path.exists()
    lab.down()
    assert not path.exists() and store.cluster_names() == []
    assert not lab.status().exists
    assert not Lab("flannel", backend="sim").status().exists


@pytest.mark.parametrize("content", [
    "{not json",
    json.dumps({"format": "labkit-sim-cluster/v0"}),
    json.dumps({"format": "labkit-sim-cluster/v1", "stage": "flannel"}),
    json.dumps(["a", "list"]),
    json.dumps({"format": "labkit-sim-cluster/v1", "stage": "no-such-stage", "cluster": "x"}),
])
def test_a_corrupt_file_is_an_error_with_a_way_out(
        content: str, capsys: pytest.CaptureFixture[str]) -> None:
    lab = shop(policy=False)
    path = lab.impl.state_file
    path.write_text(content)
    CLUSTERS.clear()
    with pytest.raises(ClusterError) as err:
        Lab("flannel", backend="sim").status()
    assert str(path) in err.value.message
    assert "labkit down flannel --backend sim" in err.value.hint
    # the CLI says so in one line, no traceback; and `down` still works
    assert cli(["status", "flannel", "--backend", "sim"]) == 1
    assert "Traceback" not in capsys.readouterr().err
    Lab("flannel", backend="sim").down()
    assert not path.exists()
    assert not Lab("flannel", backend="sim").status().exists


def test_writes_are_atomic(monkeypatch: pytest.MonkeyPatch) -> None:
    lab = shop(policy=False)
    path = lab.impl.state_file
    before = path.read_text()

    def crash(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store.os, "replace", crash)
    with pytest.raises(ClusterError, match="No space left"):
        lab.apply(POLICIES / "shop")
    assert path.read_text() == before  # the old state, whole
    left = [p.name for p in path.parent.iterdir() if p.suffix != ".lock"]
    assert left == [path.name]  # no temporary file left (the lock file stays, empty)
    monkeypatch.undo()
    json.loads(path.read_text())


def test_an_unchanged_cluster_is_not_rewritten() -> None:
    lab = shop()
    path = lab.impl.state_file
    sig = store.signature(path)
    lab.up()
    lab.install_cni("flannel")
    lab.matrix()
    assert store.signature(path) == sig


def test_home_defaults_to_the_xdg_cache(monkeypatch: pytest.MonkeyPatch,
                                        tmp_path: Path) -> None:
    monkeypatch.delenv("LABKIT_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert store.path_for("cni-lab") == tmp_path / "labkit" / "sim" / "cni-lab.json"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    assert store.home() == tmp_path / "me" / ".cache" / "labkit"


def test_a_change_by_another_process_is_seen() -> None:
    lab = shop()
    path = lab.impl.state_file
    data = json.loads(path.read_text())
    data["policies"] = data["policies"][:1]  # as if another process deleted two policies
    store.write(path, store.dumps(data))
    assert len(lab.impl.state().policies) == 1
    assert lab.impl.cluster is CLUSTERS["cni-lab"]  # reloaded once, then kept
    assert lab.impl.cluster is lab.impl.cluster
