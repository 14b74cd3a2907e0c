"""``labkit tools install`` against a local HTTP server on 127.0.0.1 serving fake releases:
the right sum, a wrong sum, a truncated body, a 404 and a server that stalls."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from labkit import cli
from labkit.course.doctor import TOOLS, Host, check_tool
from labkit.course.tools_install import artifacts, host_platform, install
from labkit.environments import load_versions
from labkit.tools import process
from tests.unit.httpfakes import Server, serve

BINARY = b"#!/bin/sh\necho fake-tool 1.0\n"


def _tgz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def server() -> Iterator[Server]:
    yield from serve()


def versions(url: str, **sums: str | None) -> dict[str, Any]:
    """A versions.yaml with two tools: a bare binary (kind) and a .tar.gz (helm)."""
    tools: dict[str, Any] = {
        "kind": {"pin": "kind.version", "url": url + "/{version}/kind-{os}-{arch}",
                 "source": "https://example.invalid/kind.sha256sum"},
        "helm": {"pin": "helm.version", "url": url + "/{version}/helm-{os}-{arch}.tar.gz",
                 "member": "{os}-{arch}/helm", "source": "https://example.invalid/helm.sha256"},
    }
    for tool, value in sums.items():
        if value is not None:
            tools[tool]["sha256"] = {"linux-amd64": value}
    return {"kind": {"version": "v0.33.0"}, "helm": {"version": "v4.2.4"}, "tools": tools}


HELM_TGZ = _tgz({"linux-amd64/helm": BINARY + b"helm", "linux-amd64/LICENSE": b"text"})


def test_right_sums_install_executables_atomically(server: Server, tmp_path: Path) -> None:
    server.files["/v0.33.0/kind-linux-amd64"] = BINARY
    server.files["/v4.2.4/helm-linux-amd64.tar.gz"] = HELM_TGZ
    lines: list[str] = []
    report = install(tmp_path, plat="linux-amd64",
                     versions=versions(server.url, kind=sha(BINARY), helm=sha(HELM_TGZ)),
                     echo=lines.append)
    assert report.ok, report.to_text()
    assert (tmp_path / "kind").read_bytes() == BINARY
    assert (tmp_path / "helm").read_bytes() == BINARY + b"helm"  # the member, not the archive
    assert all(os.access(tmp_path / t, os.X_OK) for t in ("kind", "helm"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["helm", "kind"]  # no leftovers
    assert any("downloading" in line for line in lines)


def test_wrong_sum_deletes_the_download_and_names_both_sums(server: Server,
                                                             tmp_path: Path) -> None:
    server.files["/v0.33.0/kind-linux-amd64"] = BINARY
    (tmp_path / "kind").write_bytes(b"the old kind")
    pinned = "0" * 64
    report = install(tmp_path, ["kind"], plat="linux-amd64",
                     versions=versions(server.url, kind=pinned), echo=lambda _: None)
    [outcome] = report.outcomes
    assert outcome.status == "failed" and not report.ok
    assert pinned in outcome.detail and sha(BINARY) in outcome.detail
    assert "deleted" in outcome.detail
    assert (tmp_path / "kind").read_bytes() == b"the old kind"  # untouched
    assert [p.name for p in tmp_path.iterdir()] == ["kind"]  # the download is gone


def test_truncated_404_and_stalled_downloads_fail_cleanly(server: Server,
                                                          tmp_path: Path) -> None:
    server.files["/truncated/kind-linux-amd64"] = BINARY
    server.files["/slow/kind-linux-amd64"] = BINARY
    cases = {"truncated": "ended after", "missing": "HTTP 404", "slow": "timed out"}
    for folder, expected in cases.items():
        table = versions(server.url, kind=sha(BINARY))
        table["tools"]["kind"]["url"] = f"{server.url}/{folder}/kind-{{os}}-{{arch}}"
        report = install(tmp_path, ["kind"], plat="linux-amd64", versions=table, timeout=0.5,
                         echo=lambda _: None)
        [outcome] = report.outcomes
        assert outcome.status == "failed", folder
        assert expected in outcome.detail, (folder, outcome.detail)
        assert list(tmp_path.iterdir()) == [], folder  # nothing installed, nothing left over


def test_missing_sum_is_refused_without_downloading(server: Server, tmp_path: Path) -> None:
    server.files["/v0.33.0/kind-linux-amd64"] = BINARY
    report = install(tmp_path, ["kind"], plat="linux-amd64",
                     versions=versions(server.url, kind=None), echo=lambda _: None)
    [outcome] = report.outcomes
    assert outcome.status == "refused"
    assert "no upstream SHA-256" in outcome.detail and "kind.sha256sum" in outcome.detail
    assert list(tmp_path.iterdir()) == []


def test_mirror_and_cli_exit_status(server: Server, tmp_path: Path, monkeypatch,
                                    capsys) -> None:
    """The real pins through the CLI and a mirror: a fake file fails its real sum."""
    server.files["/kind-linux-amd64"] = BINARY
    monkeypatch.setenv("LABKIT_TOOLS_MIRROR", server.url)
    monkeypatch.setattr("labkit.course.tools_install.host_platform", lambda: "linux-amd64")
    code = cli.main(["tools", "install", "--dest", str(tmp_path), "kind"])
    out = capsys.readouterr().out
    assert code == 1
    real = next(a for a in artifacts("linux-amd64") if a.tool == "kind").sha256
    assert f"expected {real}" in out and f"got {sha(BINARY)}" in out
    assert "is neither $LABKIT_HOME/bin nor on PATH" in out
    assert list(tmp_path.iterdir()) == []


def test_installed_tools_are_found_first(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path))
    monkeypatch.delenv("LABKIT_KIND", raising=False)
    (tmp_path / "bin").mkdir()
    kind = tmp_path / "bin" / "kind"
    kind.write_bytes(b"#!/bin/sh\necho 'kind v0.33.0 go1.26 linux/amd64'\n")
    kind.chmod(0o755)
    assert process.which("kind") == str(kind)
    assert process.run(["kind", "version"]).stdout.startswith("kind v0.33.0")
    spec = next(s for s in TOOLS if s.name == "kind")
    assert check_tool(Host(), spec, load_versions()).status == "ok"


# -- the pins themselves ------------------------------------------------------------------------
def test_every_pinned_sum_matches_its_version_and_platforms() -> None:
    """A version bump without new sums fails here: each sum's source names the pinned version;
    every platform is either pinned or known missing (refused, and reported)."""
    table = yaml.safe_load((Path(__file__).parents[2] / "environments" / "versions.yaml")
                           .read_text())["tools"]
    assert set(table) == {"kind", "kubectl", "helm", "cilium", "hubble"}
    missing = []
    for plat in ("linux-amd64", "linux-arm64", "darwin-amd64", "darwin-arm64"):
        for a in artifacts(plat):
            assert a.version in a.source and a.version in a.url, a
            if a.sha256 is None:
                missing.append(f"{a.tool} {plat}")
    assert missing == ["hubble darwin-amd64", "hubble darwin-arm64"]


def test_platforms() -> None:
    assert host_platform("Linux", "x86_64") == "linux-amd64"
    assert host_platform("Darwin", "arm64") == "darwin-arm64"
    with pytest.raises(Exception, match="WSL2"):
        host_platform("Windows", "AMD64")


def test_an_archive_without_the_binary_installs_nothing(server: Server, tmp_path: Path) -> None:
    wrong = _tgz({"helm": BINARY})  # the right sum for these bytes, but no linux-amd64/helm
    server.files["/v4.2.4/helm-linux-amd64.tar.gz"] = wrong
    report = install(tmp_path, ["helm"], plat="linux-amd64",
                     versions=versions(server.url, helm=sha(wrong)), echo=lambda _: None)
    [outcome] = report.outcomes
    assert outcome.status == "failed" and "has no file 'linux-amd64/helm'" in outcome.detail
    assert list(tmp_path.iterdir()) == []
