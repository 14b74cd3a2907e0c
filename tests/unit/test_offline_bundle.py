"""The offline bundle is offline: ``labkit images save`` carries the pinned manifests and the
cni-plugins tarballs, and after ``labkit images load`` on another machine the kind path of
labs 01-03 reads them instead of the network (which is cut here)."""

from __future__ import annotations

import hashlib
import io
import tarfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labkit.cni.flannel import Flannel, cni_plugins_daemonset, copy_offline_tarball
from labkit.course.images import bundle as image_bundle
from labkit.course.images import offline
from labkit.environments import pinned
from labkit.errors import LabkitError
from labkit.tools.files import fetch_url, offline_file
from labkit.tools.process import Result
from tests.unit.httpfakes import Server, serve
from tests.unit.test_images import CRDS, FLANNEL, METALLB, OPERATOR, Runner, fetch

TGZ = {"amd64": b"cni plugins for amd64", "arm64": b"cni plugins for arm64"}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def server() -> Iterator[Server]:
    yield from serve()


@pytest.fixture
def local_release(server: Server, monkeypatch: pytest.MonkeyPatch) -> Server:
    """The cni-plugins release served from 127.0.0.1 under its real file names."""
    for arch, data in TGZ.items():
        name = pinned("cni_plugins", "tarball").format(arch=arch).rsplit("/", 1)[-1]
        server.files[f"/release/{name}"] = data
    monkeypatch.setattr(offline, "tarball_url", lambda arch: f"{server.url}/release/" + pinned(
        "cni_plugins", "tarball").format(arch=arch).rsplit("/", 1)[-1])
    return server


def _empty_archive(path: Path) -> Path:
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"[]"))
    return path


def test_tarballs_are_downloaded_over_http_and_verified(local_release: Server,
                                                         tmp_path: Path) -> None:
    archive = _empty_archive(tmp_path / "b.tar")
    added = offline.append(archive, fetch, ["flannel"], echo=lambda _: None,
                           sums={a: sha(d) for a, d in TGZ.items()})
    names = [b.member for b in added]
    assert names[:4] == [f"labkit-offline/manifests/{Path(u).name}" for u in [
        "https_github.com_flannel-io_flannel_releases_download_v0.28.9_kube-flannel.yml",
        "https_raw.githubusercontent.com_projectcalico_calico_v3.33.1_manifests_operator-crds"
        ".yaml",
        "https_raw.githubusercontent.com_projectcalico_calico_v3.33.1_manifests_tigera-operator"
        ".yaml",
        "https_raw.githubusercontent.com_metallb_metallb_v0.16.1_config_manifests_metallb-native"
        ".yaml"]]
    assert [b.sha256 for b in added[4:]] == [sha(TGZ["amd64"]), sha(TGZ["arm64"])]
    with tarfile.open(archive) as tar:
        assert tar.getnames()[0] == "manifest.json"  # what docker load reads is untouched
        member = tar.extractfile(added[-1].member)
        assert member is not None and member.read() == TGZ["arm64"]


def test_a_tarball_without_the_pinned_sum_fails_the_save(local_release: Server,
                                                          tmp_path: Path) -> None:
    archive = _empty_archive(tmp_path / "b.tar")
    with pytest.raises(LabkitError) as err:
        offline.append(archive, fetch, ["flannel"], echo=lambda _: None)  # the real pins
    assert f"expected {pinned('cni_plugins', 'sha256')['amd64']}" in err.value.message
    assert f"got {sha(TGZ['amd64'])}" in err.value.message


def test_a_missing_tarball_fails_the_save_with_the_http_error(server: Server, tmp_path: Path,
                                                               monkeypatch) -> None:
    monkeypatch.setattr(offline, "tarball_url", lambda arch: f"{server.url}/nothing/{arch}.tgz")
    with pytest.raises(LabkitError, match="HTTP 404"):
        offline.append(_empty_archive(tmp_path / "b.tar"), fetch, ["flannel"],
                       echo=lambda _: None)


def test_cilium_stage_alone_bundles_no_lab_01_03_files(tmp_path: Path) -> None:
    assert offline.append(_empty_archive(tmp_path / "b.tar"), fetch, ["cilium"]) == []


def test_after_load_the_kind_path_reads_nothing_from_the_network(local_release: Server,
                                                                tmp_path: Path,
                                                                monkeypatch) -> None:
    # the connected machine: save (fake docker), the tarballs really downloaded over HTTP
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path / "connected"))
    monkeypatch.setattr(offline, "append", _with_sums(offline.append))
    out = tmp_path / "usb" / "cni-lab-images.tar"
    saved = image_bundle.save(out, ["flannel"], run=Runner(), fetch=fetch, echo=lambda _: None)
    assert len(saved.files) == 6 and "bundled" in saved.to_text()

    # the laptop in the room: a fresh LABKIT_HOME, no network at all
    laptop = tmp_path / "laptop"
    monkeypatch.setenv("LABKIT_HOME", str(laptop))

    def no_network(*args: Any, **kwargs: Any) -> Any:
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    loaded = image_bundle.load(out, ["flannel"], run=Runner(), which=lambda tool: None)
    assert len(loaded.files) == 6 and "fetch nothing from the network" in loaded.to_text()

    # every manifest the recipes fetch comes from the bundle
    for url, text in ((pinned("flannel", "manifest"), FLANNEL),
                      (pinned("calico", "operator_crds"), CRDS),
                      (pinned("calico", "operator_manifest"), OPERATOR),
                      (pinned("metallb", "manifest"), METALLB)):
        assert fetch_url(url) == text
    assert Flannel().fetch(pinned("flannel", "manifest")) == FLANNEL  # the recipe's own fetch

    # and the tarball goes into each node, where the DaemonSet looks before downloading
    tarball = offline_file(pinned("cni_plugins", "tarball").format(arch="amd64"))
    assert tarball is not None and tarball.read_bytes() == TGZ["amd64"]
    calls: list[list[str]] = []

    def run(argv: list[str], **kw: Any) -> Result:
        calls.append(list(argv))
        return Result(tuple(argv), 0, "x86_64\n" if argv[-1] == "-m" else "", "")

    assert copy_offline_tarball(["cni-lab-control-plane"], run=run) == ["cni-lab-control-plane"]
    assert calls[-1] == ["docker", "cp", str(tarball),
                         f"cni-lab-control-plane:/opt/labkit/offline/{tarball.name}"]
    plugins = cni_plugins_daemonset(pinned("cni_plugins", "tarball"), "curl", "pause")
    mount = plugins["spec"]["template"]["spec"]["volumes"][1]
    assert mount["hostPath"]["path"] == "/opt/labkit/offline"


def _with_sums(real: Any) -> Any:
    def append(*args: Any, **kwargs: Any) -> Any:
        return real(*args, **kwargs, sums={a: sha(d) for a, d in TGZ.items()})
    return append


def test_load_writes_only_plain_files_under_labkit_home(tmp_path: Path, monkeypatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("LABKIT_HOME", str(home))
    archive = _empty_archive(tmp_path / "evil.tar")
    with tarfile.open(archive, "a") as tar:
        for name in ("labkit-offline/manifests/../../../escaped", "/etc/labkit-escaped",
                     "labkit-offline/files/sub/deep", "labkit-offline/other/x",
                     "labkit-offline/files/ok.tgz"):
            info = tarfile.TarInfo(name)
            info.size = 2
            tar.addfile(info, io.BytesIO(b"hi"))
    written = offline.install_from(archive)
    assert written == [home / "offline" / "ok.tgz"]
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()) \
        == ["evil.tar", "home/offline/ok.tgz"]
