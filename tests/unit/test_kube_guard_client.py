"""The guard and the API client see one kubeconfig: real files, the real kubernetes client.

No network is needed: the client's Configuration says which server (and proxy) it
would use, and that must be what the guard approved.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from labkit.backends.kind import KindBackend
from labkit.backends.kind.guard import check_context, kubeconfig_paths, load_kubeconfig
from labkit.environments import Stage
from labkit.errors import ContextRefused
from labkit.tools.k8s import KubeClient
from tests.unit.kindfakes import FakeRunner

LAB = "kind-cni-lab"


def write(path: Path, server: str, **cluster: Any) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": LAB,
        "contexts": [{"name": LAB, "context": {"cluster": LAB, "user": LAB}}],
        "clusters": [{"name": LAB, "cluster": {"server": server, **cluster}}],
        "users": [{"name": LAB, "user": {"token": f"token-for-{path.stem}"}}]}))
    return path


def client_for(monkeypatch: pytest.MonkeyPatch, kubeconfig: str) -> tuple[str, KubeClient]:
    """What the kind backend would build with KUBECONFIG=kubeconfig: (approved server, client)."""
    monkeypatch.setenv("KUBECONFIG", kubeconfig)
    monkeypatch.delenv("LABKIT_CONTEXT", raising=False)
    built: list[KubeClient] = []
    approved: list[str] = []

    def factory(ctx: Any) -> Any:
        approved.append(ctx.server)
        built.append(KubeClient(ctx.name, ctx.client_config))
        return built[-1]

    b = KindBackend(Stage.load("flannel"), run=FakeRunner(["cni-lab"]), kube_factory=factory)
    _ = b.kube
    return approved[0], built[0]


def test_a_literal_tilde_in_kubeconfig_names_the_same_file_for_guard_and_client(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The attack: '~/evil.yaml' first, then the legitimate file. The guard used to skip the
    # '~' path and approve the legit entry while the client expanded '~' and read evil.yaml.
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    write(home / "evil.yaml", "https://127.0.0.1:6443", **{"proxy-url": "http://bastion:3128"})
    legit = write(tmp_path / "legit.yaml", "https://127.0.0.1:40123")
    monkeypatch.setenv("KUBECONFIG", f"~/evil.yaml:{legit}")
    assert kubeconfig_paths() == [home / "evil.yaml", legit]
    with pytest.raises(ContextRefused, match="sets proxy-url: http://bastion:3128"):
        client_for(monkeypatch, f"~/evil.yaml:{legit}")


def test_the_client_uses_the_first_files_entry_which_is_the_one_the_guard_approved(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    write(home / "first.yaml", "https://127.0.0.1:6443")
    second = write(tmp_path / "second.yaml", "https://127.0.0.1:40123")
    server, client = client_for(monkeypatch, f"~/first.yaml:{second}")
    config = client.api_client.configuration
    assert server == "https://127.0.0.1:6443" == config.host
    assert config.proxy is None
    assert "Bearer token-for-first" in config.api_key.values()


def test_the_client_ignores_kubeconfig_changes_after_the_guard_ran(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "config", "https://127.0.0.1:40123")
    ctx = check_context(load_kubeconfig([path]), "cni-lab")
    write(path, "https://k8s.prod.example.com:443")  # swapped after the guard read it
    client = KubeClient(ctx.name, ctx.client_config)
    assert client.api_client.configuration.host == "https://127.0.0.1:40123"


@pytest.mark.parametrize("field", ["proxy-url", "tls-server-name"])
def test_a_lab_context_that_may_lead_elsewhere_is_refused(tmp_path: Path, field: str) -> None:
    path = write(tmp_path / "config", "https://127.0.0.1:40123", **{field: "bastion.example"})
    with pytest.raises(ContextRefused, match=f"sets {field}: bastion.example"):
        check_context(load_kubeconfig([path]), "cni-lab")


def test_the_client_config_holds_only_the_approved_entries(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump({
        "contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "admin"}},
                     {"name": LAB, "context": {"cluster": LAB, "user": LAB}}],
        "clusters": [{"name": "prod", "cluster": {"server": "https://10.0.0.1"}},
                     {"name": LAB, "cluster": {"server": "https://127.0.0.1:1",
                                               "certificate-authority": "ca.crt"}}],
        "users": [{"name": "admin", "user": {"token": "prod-secret"}},
                  {"name": LAB, "user": {"client-key": "keys/lab.key"}}]}))
    ctx = check_context(load_kubeconfig([path]), "cni-lab")
    cfg = ctx.client_config
    assert [c["name"] for c in cfg["contexts"]] == [LAB]
    assert [c["name"] for c in cfg["clusters"]] == [LAB]
    assert cfg["users"] == [{"name": LAB, "user": {"client-key": str(tmp_path / "keys/lab.key")}}]
    # relative file names are the kubeconfig's own folder's, as kubectl reads them
    assert cfg["clusters"][0]["cluster"]["certificate-authority"] == str(tmp_path / "ca.crt")
    assert "prod-secret" not in str(cfg)


@pytest.mark.parametrize("field", ["exec", "auth-provider"])
def test_a_lab_user_that_runs_a_program_is_refused_before_any_client_exists(
        tmp_path: Path, field: str) -> None:
    marker = tmp_path / "ran"
    path = write(tmp_path / "config", "https://127.0.0.1:40123")
    data = yaml.safe_load(path.read_text())
    data["users"][0]["user"] = {field: {"apiVersion": "client.authentication.k8s.io/v1",
                                        "command": "touch", "args": [str(marker)],
                                        "name": "oidc"}}
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ContextRefused, match=f"user entry with {field}"):
        check_context(load_kubeconfig([path]), "cni-lab")
    assert not marker.exists()
