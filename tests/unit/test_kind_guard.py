"""The guard: labkit never acts on a kube context that is not its own kind cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from labkit.backends.kind import KindBackend
from labkit.backends.kind.guard import LabContext, check_context, load_kubeconfig
from labkit.environments import Stage
from labkit.errors import ContextRefused
from tests.unit.kindfakes import FakeKube, FakeRunner


def kubeconfig(tmp_path: Path, *, lab_server: str | None = None) -> Path:
    contexts = [{"name": "prod-eu", "context": {"cluster": "prod-eu", "user": "admin"}}]
    clusters = [{"name": "prod-eu", "cluster": {"server": "https://k8s.prod.example.com:443"}}]
    if lab_server is not None:
        contexts.append({"name": "kind-cni-lab", "context": {"cluster": "kind-cni-lab",
                                                             "user": "kind-cni-lab"}})
        clusters.append({"name": "kind-cni-lab", "cluster": {"server": lab_server}})
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config",
                                    "current-context": "prod-eu", "contexts": contexts,
                                    "clusters": clusters, "users": []}))
    return path


def backend(path: Path, made: list[str]) -> KindBackend:
    kube = FakeKube()

    def factory(ctx: LabContext) -> FakeKube:
        made.append(ctx.name)
        return kube

    return KindBackend(Stage.load("flannel"), run=FakeRunner(["cni-lab"]),
                       kube_factory=factory,
                       kubeconfig_loader=lambda: load_kubeconfig([path]),
                       sleep=lambda s: None)


def test_production_current_context_is_never_used(tmp_path: Path) -> None:
    made: list[str] = []
    b = backend(kubeconfig(tmp_path), made)
    with pytest.raises(ContextRefused, match="no kube context 'kind-cni-lab'.*prod-eu"):
        b.node_rows()
    assert made == []  # no client was ever built, so nothing touched prod


def test_lab_context_pointing_at_a_remote_server_is_refused(tmp_path: Path) -> None:
    made: list[str] = []
    b = backend(kubeconfig(tmp_path, lab_server="https://k8s.prod.example.com:443"), made)
    with pytest.raises(ContextRefused, match="not a kind cluster on this machine"):
        b.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}], [])
    assert made == []


def test_the_lab_context_is_used_even_when_prod_is_current(tmp_path: Path) -> None:
    made: list[str] = []
    b = backend(kubeconfig(tmp_path, lab_server="https://127.0.0.1:40123"), made)
    b.node_rows()
    assert made == ["kind-cni-lab"]


def test_an_explicitly_requested_foreign_context_is_refused(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    cfg = load_kubeconfig([kubeconfig(tmp_path, lab_server="https://127.0.0.1:1")])
    with pytest.raises(ContextRefused, match="refusing to use kube context 'prod-eu'"):
        check_context(cfg, "cni-lab", requested="prod-eu")
    assert check_context(cfg, "cni-lab").name == "kind-cni-lab"


def test_context_pointing_at_another_cluster_entry_is_refused(tmp_path: Path) -> None:
    cfg = load_kubeconfig([kubeconfig(tmp_path, lab_server="https://127.0.0.1:1")])
    cfg["contexts"][1]["context"]["cluster"] = "prod-eu"
    with pytest.raises(ContextRefused, match="points at cluster 'prod-eu'"):
        check_context(cfg, "cni-lab")
