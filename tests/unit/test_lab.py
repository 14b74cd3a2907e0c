"""The Lab facade: backend choice, public surface, input forms, stages, progress, k8s errors."""

from __future__ import annotations

import io

import pytest

import labkit
from labkit import Lab, ManifestError
from labkit.backends.sim.backend import CLUSTERS
from labkit.environments import Stage, environments_dir, pinned, render
from labkit.errors import BackendUnsupported, ClusterError, UnknownKindError
from labkit.lab import choose_backend, documents
from labkit.progress import Progress, wait_until


@pytest.fixture(autouse=True)
def _quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABKIT_PROGRESS", "off")
    CLUSTERS.clear()


def test_all_is_sorted_and_importable() -> None:
    assert labkit.__all__ == sorted(labkit.__all__)
    for name in labkit.__all__:
        assert getattr(labkit, name) is not None


def test_backend_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABKIT_BACKEND", "sim")
    assert choose_backend("auto") == "sim"
    assert choose_backend("kind") == "kind"  # an explicit choice wins over the variable
    monkeypatch.setenv("LABKIT_BACKEND", "docker")
    with pytest.raises(BackendUnsupported):
        choose_backend("auto")
    with pytest.raises(BackendUnsupported):
        choose_backend("minikube")


def test_auto_falls_back_to_sim_without_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LABKIT_BACKEND", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv("LABKIT_DOCKER", "/nonexistent/docker")
    lab = Lab("flannel")
    assert lab.backend == "sim" and lab.simulated
    assert "simulated" in repr(lab)


def test_unknown_stage_names_the_known_ones() -> None:
    with pytest.raises(ManifestError, match="known stages: .*flannel"):
        Stage.load("weave")


def test_stage_shape() -> None:
    stage = Stage.load("flannel")
    assert stage.cluster_name == "cni-lab" and stage.context == "kind-cni-lab"
    assert stage.node_names() == ["cni-lab-control-plane", "cni-lab-worker", "cni-lab-worker2"]
    assert stage.default_cni_disabled and stage.pod_subnet == "10.244.0.0/16"


def test_manifests_pin_images_only_through_versions_yaml() -> None:
    for path in (environments_dir() / "workloads" / "shop").glob("*.yaml"):
        text = path.read_text()
        assert "agnhost:" not in text and "curl:" not in text, path
        rendered = render(text, str(path))
        assert "{{" not in rendered
    assert pinned("images", "agnhost") in render("{{images.agnhost}}")
    with pytest.raises(ManifestError, match="unknown placeholder"):
        render("{{images.nope}}")


def test_input_forms_give_the_same_documents(tmp_path) -> None:
    text = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n"
    (tmp_path / "ns.yaml").write_text(text)
    as_text = [d for _, d in documents(text)]
    assert as_text == [d for _, d in documents(tmp_path / "ns.yaml")]
    assert as_text == [d for _, d in documents(str(tmp_path / "ns.yaml"))]
    assert as_text == [d for _, d in documents(as_text)]
    with pytest.raises(ManifestError):
        documents(42)  # type: ignore[arg-type]


def test_same_bad_input_same_error_before_any_cluster_work() -> None:
    lab = Lab("flannel", backend="sim")
    lab.up()
    with pytest.raises(ManifestError, match="metadata.name"):
        lab.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {}})
    with pytest.raises(UnknownKindError, match="no matches for kind"):
        lab.apply({"apiVersion": "v1", "kind": "NetworkPolcy", "metadata": {"name": "x"}})


def test_status_renders_and_serialises() -> None:
    lab = Lab("flannel", backend="sim")
    assert lab.status().as_dict()["exists"] is False
    lab.up()
    status = lab.status()
    assert "NotReady" in status.to_text() and "simulated" in status.to_text()
    assert "<table>" in status._repr_html_()
    assert '"simulated": true' in status.to_json()


def test_install_twice_is_idempotent_and_another_cni_is_refused() -> None:
    lab = Lab("flannel", backend="sim")
    lab.up()
    assert lab.install_cni("flannel").ok
    assert lab.install_cni("flannel").ok
    with pytest.raises(ClusterError, match="flannel is already installed"):
        lab.install_cni("kindnet")


def test_progress_is_throttled_and_plain_for_logs() -> None:
    now = [0.0]
    out = io.StringIO()
    p = Progress("nodes", stream=out, mode="plain", interval=5, clock=lambda: now[0])
    for i in range(10):
        now[0] = i * 1.0
        p.update(f"{i} Ready")
    p.finish()
    lines = out.getvalue().splitlines()
    assert len(lines) == 3  # t=0, t=5, and the final line
    assert lines[-1].startswith("nodes: done")


def test_wait_until_times_out() -> None:
    now = [0.0]

    def sleep(s: float) -> None:
        now[0] += s

    with pytest.raises(TimeoutError, match="1/3"):
        wait_until(lambda: (False, "1/3"), title="t", timeout=10, poll=2,
                   progress=Progress("t", mode="off", clock=lambda: now[0]), sleep=sleep,
                   clock=lambda: now[0])


def test_api_errors_are_translated_in_one_place() -> None:
    from kubernetes.client.exceptions import ApiException

    from labkit.tools.k8s import translate

    exc = ApiException(status=422, reason="Unprocessable Entity")
    exc.body = '{"message": "spec.podSelector: Required value"}'
    err = translate(exc, "applying NetworkPolicy a/b")
    assert isinstance(err, ManifestError) and "Required value" in str(err)
    assert isinstance(translate(ApiException(status=403), "x"), ClusterError)
    assert "cannot reach" in str(translate(ConnectionRefusedError(111, "refused"), "x"))
