"""The files (not images) an offline room needs: the pinned manifests and CNI-plugins tarballs.

The kind path fetches two kinds of files at run time: the upstream manifests the recipes
apply (Flannel, the Calico operator and its CRDs, MetalLB; read through
:func:`labkit.tools.files.fetch_url`, which keeps each in ``$LABKIT_HOME/manifests``), and
the cni-plugins release tarball that the install-cni-plugins DaemonSet unpacks on every node
(Flannel delegates to ``bridge``, which kind's node image lacks; cni-ground-truth.md §0.2).

``labkit images save`` puts both into the bundle, as members under ``labkit-offline/``
appended to the ``docker save`` archive (``docker load`` reads only the files its own
manifest names). Each tarball is checked against the SHA-256 pinned in versions.yaml
``cni_plugins.sha256`` before it goes in. ``labkit images load`` writes the manifests into
``$LABKIT_HOME/manifests`` (so ``fetch_url`` never goes to the network for them) and the
tarballs into ``$LABKIT_HOME/offline``; the Flannel recipe then copies the node's
tarball into each kind node (``docker cp``) where the DaemonSet finds it instead of
downloading it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from labkit.cni.calico.resources import manifest_urls as calico_urls
from labkit.course.images.listing import STAGE_COMPONENTS
from labkit.course.tools_install import download
from labkit.environments import pinned
from labkit.errors import LabkitError
from labkit.tools.files import cached_manifest, home, manifests_dir, offline_dir

PREFIX = "labkit-offline"
ARCHES = ("amd64", "arm64")

Fetch = Callable[[str], str]
#: (url, file to stream into) -> the SHA-256 of what arrived
Download = Callable[[str, IO[bytes]], str]
Echo = Callable[[str], None]


# -- where things live -----------------------------------------------------------------------
def tarball_url(arch: str) -> str:
    return str(pinned("cni_plugins", "tarball")).format(arch=arch)


def components(stages: Sequence[str]) -> list[str]:
    return [c for s in stages for c in STAGE_COMPONENTS.get(s, ())]


def manifest_urls(stages: Sequence[str]) -> list[str]:
    """Every pinned manifest the kind path of ``stages`` applies, in the recipes' order.

    Calico's are those of the operator path (the lab's default); the live-migration variant
    (MIGRATION="live") is not bundled and needs the network.
    """
    urls = {"flannel": [str(pinned("flannel", "manifest"))],
            "calico": calico_urls("reinstall"),
            "metallb": [str(pinned("metallb", "manifest"))]}
    return [u for c in components(stages) for u in urls.get(c, [])]


# -- save ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Bundled:
    member: str  # name inside the archive
    source: str  # URL it came from
    size: int
    sha256: str


def _default_download(url: str, target: IO[bytes]) -> str:
    return download(url, target, name=url.rsplit("/", 1)[-1],
                    echo=lambda line: print(line, file=sys.stderr, flush=True))


def append(archive: Path, fetch: Fetch, stages: Sequence[str], *,
           download: Download | None = None, sums: Mapping[str, str] | None = None,
           echo: Echo | None = None) -> list[Bundled]:
    """Append the manifests of ``stages`` and, for Flannel's stage, both cni-plugins tarballs
    (amd64 and arm64 laptops) to ``archive``; returns what was added.

    A tarball whose SHA-256 is not the pinned one (``sums``, default versions.yaml
    ``cni_plugins.sha256``) is not added: the save fails, naming both sums.
    """
    say = echo or (lambda line: print(line, file=sys.stderr, flush=True))
    get = download or _default_download
    pins = dict(sums) if sums is not None else {k: str(v) for k, v in
                                                 (pinned("cni_plugins", "sha256") or {}).items()}
    added: list[Bundled] = []
    try:
        with tarfile.open(archive, "a") as tar:
            for url in manifest_urls(stages):
                data = fetch(url).encode()
                member = f"{PREFIX}/manifests/{cached_manifest(url).name}"
                _add(tar, member, io.BytesIO(data), len(data))
                added.append(Bundled(member, url, len(data), hashlib.sha256(data).hexdigest()))
            for arch in ARCHES if "flannel" in components(stages) else ():
                url = tarball_url(arch)
                with tempfile.TemporaryFile() as tmp:
                    say(f"downloading {url}")
                    got = get(url, tmp)
                    if got != pins.get(arch):
                        raise LabkitError(
                            f"cni-plugins {arch}: checksum mismatch for {url}: expected "
                            f"{pins.get(arch) or '(none pinned)'} (versions.yaml "
                            f"cni_plugins.sha256.{arch}), got {got}; not bundled",
                            hint=f"{archive} holds the images but not this file: do not hand "
                            "it out; run `labkit images save` again on a network you trust (the "
                            "sum comes from the release's own .sha256 file)")
                    size = tmp.tell()
                    tmp.seek(0)
                    member = f"{PREFIX}/files/{url.rsplit('/', 1)[-1]}"
                    _add(tar, member, tmp, size)
                    added.append(Bundled(member, url, size, got))
    except (tarfile.TarError, OSError) as exc:
        raise LabkitError(f"cannot add the offline files to {archive}: {exc}",
                          hint="is there free disk space? the images are in the archive; "
                          "without these files an offline room still needs the network for "
                          "the manifests and the CNI plugins") from exc
    return added


def _add(tar: tarfile.TarFile, name: str, data: IO[bytes], size: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, int(time.time())
    tar.addfile(info, data)


# -- load ------------------------------------------------------------------------------------
def install_from(archive: Path) -> list[Path]:
    """Copy a bundle's offline files into ``$LABKIT_HOME``; [] for a bundle without them.

    Only plain files directly under the two known folders are written, under their own
    base names: a member can never land outside ``$LABKIT_HOME``.
    """
    targets = {"manifests": manifests_dir(), "files": offline_dir()}
    written: list[Path] = []
    try:
        with tarfile.open(archive) as tar:
            for member in tar:
                parts = PurePosixPath(member.name).parts
                if len(parts) != 3 or parts[0] != PREFIX or parts[1] not in targets \
                        or not member.isfile() or parts[2] in ("", ".", ".."):
                    continue
                handle = tar.extractfile(member)
                if handle is None:
                    continue
                target = targets[parts[1]] / parts[2]
                target.parent.mkdir(parents=True, exist_ok=True)
                with _atomic(target) as out:
                    while chunk := handle.read(1 << 20):
                        out.write(chunk)
                written.append(target)
    except (tarfile.TarError, OSError) as exc:
        raise LabkitError(f"cannot copy the offline files of {archive} into {home()}: {exc}",
                          hint="set LABKIT_HOME to a writable folder with free space") from exc
    return written


@contextlib.contextmanager
def _atomic(target: Path) -> Iterator[IO[bytes]]:
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with open(fd, "wb") as out:
            yield out
        Path(name).replace(target)
    finally:
        Path(name).unlink(missing_ok=True)
