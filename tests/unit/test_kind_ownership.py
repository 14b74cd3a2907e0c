"""labkit deletes only the kind clusters it created, names them by kind's rule, and
deletes a half-made cluster on Ctrl-C (commands checked with a fake runner)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from labkit import cli
from labkit.backends.kind import KindBackend
from labkit.environments import Stage, environments_dir
from labkit.errors import ManifestError
from labkit.lab import Lab
from tests.unit.kindfakes import FakeRunner

DELETE = ["kind", "delete", "cluster", "--name"]
#: The node-image lookup (docker inspect), replaced: these tests run no Docker.
KIND_IMAGE = "labkit.backends.kind.backend.node_image_for_kind"


class InterruptedCreate(FakeRunner):
    """kind create cluster interrupted by Ctrl-C after kind made the node containers."""

    def __call__(self, argv: list[str], **kwargs: Any) -> Any:
        if list(argv[:3]) == ["kind", "create", "cluster"]:
            self.calls.append(list(argv))
            self.clusters.append(argv[argv.index("--name") + 1])
            raise KeyboardInterrupt
        return super().__call__(argv, **kwargs)


def test_ctrl_c_during_kind_create_deletes_the_half_made_cluster(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(KIND_IMAGE, lambda image, run: (image, ""))
    run = InterruptedCreate()
    b = KindBackend(Stage.load("flannel"), run=run, workdir=tmp_path / "work")
    with pytest.raises(KeyboardInterrupt):
        b.up()
    assert [*DELETE, "cni-lab"] in run.calls
    assert run.clusters == []  # the next up() creates it afresh instead of reusing half of it
    assert not b.record_path().exists()


@pytest.fixture
def two_stage_environments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A LABKIT_ENVIRONMENTS with the course's two stages (clusters cni-lab, cni-lab-cilium)."""
    envs = tmp_path / "envs"
    shutil.copytree(environments_dir(), envs)
    monkeypatch.setenv("LABKIT_ENVIRONMENTS", str(envs))
    return envs


def test_down_all_deletes_only_the_clusters_labkit_recorded_creating(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        two_stage_environments: Path) -> None:
    monkeypatch.setattr(KIND_IMAGE, lambda image, run: (image, ""))
    cilium = Stage.load("cilium").cluster_name
    run = FakeRunner([cilium])  # someone else's cluster with the cilium stage's name
    backends = {s: KindBackend(Stage.load(s), run=run, workdir=tmp_path / "work" / s,
                               kube_factory=lambda ctx: None)  # type: ignore[arg-type,return-value]
                for s in ("flannel", "cilium")}
    with pytest.raises(Exception):  # noqa: B017,PT011 - up() stops at the guard: no kubeconfig
        backends["flannel"].up()
    assert backends["flannel"].created_by_labkit()
    monkeypatch.setattr(cli, "_lab", lambda stage, backend: Lab(backend_impl=backends[stage]))
    assert cli.main(["down", "--all", "--backend", "kind"]) == 0
    out = capsys.readouterr().out
    assert "cluster 'cni-lab' deleted (kind)" in out
    assert f"cluster '{cilium}' left alone (kind): labkit did not create it" in out
    assert [c for c in run.calls if c[:3] == DELETE[:3]] == [[*DELETE, "cni-lab"]]
    assert run.clusters == [cilium]


def test_down_all_reads_the_stages_of_labkit_environments(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, two_stage_environments: Path) -> None:
    shutil.rmtree(two_stage_environments / "stages" / "cilium")
    assert cli._all_stages() == ["flannel"]


@pytest.mark.parametrize("name", ["../../../tmp/x", "Lab", "lab_1", "a" * 51, "..", "lab one"])
def test_cluster_names_follow_kinds_rule(tmp_path: Path, name: str) -> None:
    stage = Stage("x", {"kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4", "name": name})
    with pytest.raises(ManifestError, match="cluster name"):
        stage.validate("kind-config.yaml")


@pytest.mark.parametrize("name", ["cni-lab", "a.b-1", "a" * 50])
def test_cluster_names_kind_accepts_are_accepted(name: str) -> None:
    Stage("x", {"kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4",
                "name": name}).validate("kind-config.yaml")
