"""Against a real Docker engine: an image bundle written by ``docker save`` comes back with
``labkit images load``.

Nothing is pulled (no registry is reachable here): two tiny images are made with
``docker import``. ``docker pull`` is the only command replaced, by a check that the image
is present, so ``labkit images save`` runs its real ``docker save``. No kind runs here:
the kind part of ``load`` is asserted to be skipped, with its message.

The pins (labkit.image_pins): ``docker load`` is run on an archive with ``labkit-pins.json``
appended, and the node-image decision runs with real ``docker inspect`` calls. Nothing here
was pulled by a digest, so a pin's digest is made up (Docker really does not know it, as
after a ``docker load`` that lost it), and the one answer Docker cannot give here, the ID of
the image pulled by that digest, is the ID of its ``name:tag``.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import uuid
from pathlib import Path
from typing import Any

import pytest

from labkit import cli
from labkit.course.images import bundle as image_bundle
from labkit.course.images import listing as images
from labkit.course.images import pins as image_pins
from labkit.environments import pinned
from labkit.tools import process

pytestmark = pytest.mark.docker


def _docker(*args: str, check: bool = True, **kw: Any) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, check=check, timeout=120, **kw)


def _present(ref: str) -> bool:
    return _docker("image", "inspect", ref, check=False).returncode == 0


@pytest.fixture
def two_images(docker_engine):
    """Two one-file images, tagged uniquely for this test, removed afterwards."""
    refs = []
    for name in ("a", "b"):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            data = f"labkit bundle test {name}\n".encode()
            info = tarfile.TarInfo(f"etc/labkit-{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        ref = f"labkit-test-bundle-{name}:{uuid.uuid4().hex[:8]}"
        made = _docker("import", "-", ref, input=buf.getvalue(), check=False)
        if made.returncode != 0:
            pytest.skip(f"docker import failed: {made.stderr.decode()[:200]}")
        refs.append(ref)
    yield refs
    _docker("rmi", "-f", *refs, check=False)


@pytest.fixture
def no_kind(monkeypatch):
    # A path that does not exist: process.which("kind") is None even where kind is installed.
    monkeypatch.setenv("LABKIT_KIND", "/nonexistent/kind")


def test_docker_save_rmi_then_load_brings_the_images_back(two_images, tmp_path, no_kind,
                                                          capsys):
    bundle = tmp_path / "bundle.tar"
    _docker("save", "-o", str(bundle), *two_images)
    assert sorted(image_bundle.archive_refs(bundle)) == sorted(two_images)
    _docker("rmi", *two_images)
    assert not any(_present(r) for r in two_images)

    assert cli.main(["images", "load", str(bundle), "--stage", "flannel"]) == 0
    out = capsys.readouterr().out
    assert all(_present(r) for r in two_images)
    assert f"docker load: 2 images from {bundle}" in out
    assert "stage flannel (cluster cni-lab): kind is not installed, so nothing was loaded " \
           "into a cluster" in out
    assert "`labkit up flannel` will take the node image from the local Docker store" in out


def test_save_writes_one_archive_that_load_restores(two_images, tmp_path, no_kind,
                                                    monkeypatch):
    listing = images.ImageList(["flannel"], [images.Image(r, "test", "here", "cluster",
                                                          ("flannel",)) for r in two_images])
    monkeypatch.setattr(images, "list_images", lambda stages, fetch=None: listing)
    calls: list[list[str]] = []

    def run(argv: list[str], **kw: Any) -> process.Result:
        calls.append(list(argv))
        if argv[:2] == ["docker", "pull"]:  # nothing can be pulled here: it is already present
            assert _present(argv[2])
            return process.Result(tuple(argv), 0, "", "")
        return process.run(argv, **kw)

    def download(url: str, target: Any) -> str:  # the release tarball, as upstream sums it
        target.write(b"tarball")
        return pinned("cni_plugins", "sha256")["arm64" if "arm64" in url else "amd64"]

    lines: list[str] = []
    bundle = tmp_path / "usb" / "bundle.tar"
    report = image_bundle.save(bundle, ["flannel"], run=run, echo=lines.append,
                               fetch=lambda url: f"# {url}\n", download=download)
    assert [c[:2] for c in calls] == [["docker", "pull"]] * 2 + [["docker", "save"]]
    assert report.size == bundle.stat().st_size > 0
    assert lines[:2] == [f"[1/2] pulled {two_images[0]} (0s)", f"[2/2] pulled {two_images[1]} (0s)"]
    assert len(report.files) == 6  # manifests and tarballs appended after `docker save`

    _docker("rmi", *two_images)
    report_in = image_bundle.load(Path(bundle), ["cilium"])  # the real `docker load`
    assert len(report_in.files) == 6  # ... which ignored them, and labkit copied them
    assert sorted(report_in.loaded) == sorted(two_images)
    assert all(_present(r) for r in two_images)
    assert report_in.node_image_local is None  # this bundle does not carry the node image
    assert [k.status for k in report_in.kind] == ["skipped"]


def _id(ref: str) -> str:
    return _docker("image", "inspect", "--format", "{{.Id}}", ref).stdout.decode().strip()


def test_docker_load_ignores_the_appended_pins_member(two_images, tmp_path, no_kind, capsys):
    ids = [_id(r) for r in two_images]
    bundle = tmp_path / "bundle.tar"
    _docker("save", "-o", str(bundle), *two_images)
    pin = f"{two_images[0]}@sha256:{uuid.uuid4().hex * 2}"
    image_pins.append_to_archive(bundle, {pin: ids[0]})
    with tarfile.open(bundle) as tar:
        assert tar.getnames()[-1] == image_pins.MEMBER
    _docker("rmi", *two_images)

    loaded = _docker("load", "-i", str(bundle), check=False)  # Docker itself, not labkit
    assert loaded.returncode == 0, loaded.stderr.decode()
    assert [_id(r) for r in two_images] == ids  # same images, by their IDs

    _docker("rmi", *two_images)
    assert cli.main(["images", "load", str(bundle), "--stage", "cilium"]) == 0
    out = capsys.readouterr().out
    assert f"docker load: 2 images from {bundle}" in out
    assert image_pins.stored() == {pin: ids[0]}
    assert f"recorded the bundle's 1 image pin(s) in {image_pins.pins_path()}" in out


def test_save_records_the_pin_and_after_load_only_the_proven_tag_replaces_it(
        two_images, tmp_path, no_kind, monkeypatch):
    tag, other = two_images
    pin = f"{tag}@sha256:{uuid.uuid4().hex * 2}"  # a digest Docker does not know
    listing = images.ImageList(["cilium"], [images.Image(pin, "test", "here", "host",
                                                         ("cilium",))])
    monkeypatch.setattr(images, "list_images", lambda stages, fetch=None: listing)

    def run(argv: list[str], **kw: Any) -> process.Result:
        if argv[:2] == ["docker", "pull"] or argv[:2] == ["docker", "tag"]:
            return process.Result(tuple(argv), 0, "", "")  # pulled by digest, then named
        if argv[-1] == pin and argv[:3] == ["docker", "image", "inspect"]:
            argv = [*argv[:-1], tag]  # what Docker says of the image it pulled by that digest
        return process.run(argv, **kw)

    bundle = tmp_path / "bundle.tar"
    report = image_bundle.save(bundle, ["cilium"], run=run, echo=lambda s: None)
    saved_id = _id(tag)
    assert report.pins == {pin: saved_id}
    assert image_bundle.archive_refs(bundle) == [tag]
    _docker("rmi", tag)

    image_bundle.load(bundle, ["cilium"])  # the real docker load
    assert _present(tag) and image_pins.stored() == {pin: saved_id}
    # real docker: kind's own check fails for the pin, the tag has the recorded ID
    assert not _present(pin)
    image, note = image_pins.node_image_for_kind(pin)
    assert image == tag and note.startswith(f"node image {tag} used for {pin}")

    _docker("tag", other, tag)  # name:tag now names another image: no proof, pin kept
    image, note = image_pins.node_image_for_kind(pin)
    assert image == pin and f"has image ID {_id(other)}, not the {saved_id}" in note
