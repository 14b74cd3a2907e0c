"""The bundle itself: ``save`` pulls every image and writes one ``docker save`` archive;
``load`` runs ``docker load`` and ``kind load image-archive`` into the lab's own clusters.

What goes in is :func:`labkit.images.list_images`, plus the Calico images that the pulled
tigera-operator image names (``--print-images=list``), which no manifest does.
"""

from __future__ import annotations

import json
import os
import sys
import tarfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from labkit import inputs
from labkit.backends.kind.guard import check_context, load_kubeconfig
from labkit.course.images import listing as listing_mod
from labkit.course.images import offline
from labkit.course.images import pins as image_pins
from labkit.course.images.listing import (
    ARCHIVE_TIMEOUT,
    PULL_TIMEOUT,
    Echo,
    Fetch,
    Image,
    Runner,
    Unlisted,
    all_stages,
    archive_name,
    operator_calico_images,
    split_ref,
)
from labkit.environments import Stage, pinned
from labkit.errors import LabkitError, ToolError, ToolNotFound
from labkit.progress import Progress
from labkit.tools import kind as kind_tool
from labkit.tools import process
from labkit.tools.files import fetch_url


# -- save -----------------------------------------------------------------------------------
@dataclass
class SaveReport:
    file: str
    images: list[Image]
    unlisted: list[Unlisted]
    size: int = 0
    pins: dict[str, str] = field(default_factory=dict)  # digest pin -> image ID, in the archive
    files: list[offline.Bundled] = field(default_factory=list)  # manifests, tarballs

    def to_json(self) -> str:
        return json.dumps({"file": self.file, "size_bytes": self.size,
                           "images": [asdict(i) for i in self.images],
                           "names_in_archive": [archive_name(i.ref) for i in self.images],
                           "pins": self.pins, "files": [asdict(f) for f in self.files],
                           "unlisted": [asdict(u) for u in self.unlisted]}, indent=2)

    def to_text(self) -> str:
        lines = [f"saved {len(self.images)} images to {self.file} ({self.size / 1e6:.0f} MB)",
                 f"on each laptop: labkit images load {self.file}"]
        lines += [f"recorded {ref} as image ID {i} ({image_pins.MEMBER} in the archive)"
                  for ref, i in self.pins.items()]
        lines += [f"bundled {f.source} ({f.size / 1e6:.1f} MB, sha256 {f.sha256[:12]}...)"
                  for f in self.files]
        lines += [f"not in the bundle: {u.component}: {u.how}" for u in self.unlisted]
        return "\n".join(lines)


def _pull_hint(ref: str, stderr: str) -> str:
    low = stderr.lower()
    if "toomanyrequests" in low or "rate limit" in low:
        return "the registry's pull rate limit: `docker login` to it, or wait and retry"
    if "manifest unknown" in low or "not found" in low:
        return (f"the registry has no {ref}: the pin in environments/versions.yaml (or the "
                "pinned manifest naming it) is wrong")
    return (f"check the network and that Docker can reach the registry (`docker pull {ref}` "
            "shows the full error; behind a proxy, set Docker's proxy settings)")


def _pull(run: Runner, image: Image) -> float:
    """``docker pull`` one image, showing Docker's latest line (throttled) while it runs;
    returns the seconds it took."""
    start = time.monotonic()
    report = Progress(f"pulling {image.ref}", interval=5)
    try:
        run(["docker", "pull", image.ref], timeout=PULL_TIMEOUT, on_output=report.update)
        if report.emitted:
            report.finish("pulled")
    except ToolError as exc:
        if isinstance(exc, ToolNotFound):
            raise
        raise ToolError(f"could not pull {image.ref} ({image.component}): {exc.message}",
                        command=exc.command, stderr=exc.stderr, returncode=exc.returncode,
                        hint=_pull_hint(image.ref, exc.stderr or exc.message)) from exc
    name, tag, digest = split_ref(image.ref)
    if digest and tag:
        run(["docker", "tag", f"{name}@{digest}", archive_name(image.ref)], timeout=60)
    return time.monotonic() - start


def _operator_images(run: Runner, operator: Image) -> list[Image]:
    """The Calico images the (pulled) operator image says it deploys."""
    version = str(pinned("calico", "version"))
    printed = run(["docker", "run", "--rm", operator.ref, "--print-images=list"], timeout=120,
                  hint="the operator image should print its image list and exit")
    found = operator_calico_images(printed.stdout, version)
    if not found:
        raise LabkitError(f"{operator.ref} --print-images=list named no Calico {version} image",
                          hint="the operator's output may have changed: run the command by "
                          "hand; until then the bundle would miss Calico's images")
    return [Image(r, "calico (operator-deployed)", operator.ref, "cluster", operator.stages)
            for r in found]


def save(output: Path, stages: Sequence[str] | None = None, *, run: Runner = process.run,
         fetch: Fetch | None = None, echo: Echo | None = None,
         download: offline.Download | None = None) -> SaveReport:
    """Pull every image (one line each), then one ``docker save -o OUTPUT``, then append the
    image IDs of the ``name:tag@digest`` pins to it (:mod:`labkit.image_pins`), and the
    pinned manifests and cni-plugins tarballs (:mod:`labkit.offline`).

    The Calico operator is pulled first: its image is what names the images it deploys.
    """
    say = echo or (lambda line: print(line, file=sys.stderr, flush=True))
    listing = listing_mod.list_images(stages, fetch=fetch)
    images, unlisted = list(listing.images), list(listing.unlisted)
    done: dict[str, float] = {}
    operator = next((i for i in images if i.component == "calico operator"), None)
    if operator is not None:
        done[operator.ref] = _pull(run, operator)
        images += [i for i in _operator_images(run, operator) if i.ref not in listing.refs()]
        unlisted = [u for u in unlisted if "tigera operator" not in u.component]
    order = [i for i in images if i.ref in done] + [i for i in images if i.ref not in done]
    for n, image in enumerate(order, 1):
        seconds = done[image.ref] if image.ref in done else _pull(run, image)
        say(f"[{n}/{len(order)}] pulled {image.ref} ({seconds:.0f}s)")
    pins = image_pins.record((i.ref for i in images), run=run)  # by digest, as just pulled
    output.parent.mkdir(parents=True, exist_ok=True)
    names = list(dict.fromkeys(archive_name(i.ref) for i in images))
    say(f"writing {output} (docker save of {len(names)} images)")
    run(["docker", "save", "-o", str(output), *names], timeout=ARCHIVE_TIMEOUT,
        hint="is there enough free disk space for the archive (several GB)?")
    if pins:
        image_pins.append_to_archive(output, pins)
    files = offline.append(output, fetch or fetch_url, listing.stages,
                           download=download, echo=say)
    size = output.stat().st_size if output.exists() else 0
    return SaveReport(str(output), images, unlisted, size, pins, files)


# -- load -----------------------------------------------------------------------------------
#: The largest manifest.json read from an image archive (a few hundred bytes per image).
MAX_MANIFEST_BYTES = 4 * 1024 * 1024


def archive_refs(path: Path) -> list[str]:
    """The names in a ``docker save`` archive (its manifest.json's RepoTags)."""
    hint = "make the bundle with `labkit images save --output FILE`"
    try:
        data = inputs.json_value(
            inputs.read_tar_member(path, "manifest.json", limit=MAX_MANIFEST_BYTES),
            f"{path}: manifest.json", what="manifest.json")
    except (tarfile.TarError, KeyError, OSError, LabkitError) as exc:
        why = exc.message if isinstance(exc, LabkitError) else str(exc)
        raise LabkitError(f"{path} is not an image archive written by `docker save` ({why})",
                          hint=hint) from exc
    if not isinstance(data, list) or not all(
            isinstance(e, dict) and isinstance(e.get("RepoTags") or [], list)
            and all(isinstance(t, str) for t in e.get("RepoTags") or []) for e in data):
        raise LabkitError(f"{path}: its manifest.json is not the list of images `docker save` "
                          "writes (entries with RepoTags)", hint=hint)
    return [t for entry in data for t in entry.get("RepoTags") or []]


@dataclass
class KindStep:
    stage: str
    cluster: str
    status: str  # loaded | no-cluster | skipped
    message: str


@dataclass
class LoadReport:
    file: str
    loaded: list[str]
    node_image: str
    node_image_local: bool | None  # None: the bundle does not carry it
    kind: list[KindStep] = field(default_factory=list)
    pins: dict[str, str] = field(default_factory=dict)  # as read from the bundle
    pins_file: str = ""  # where they were recorded on this machine
    node_by_tag: str = ""  # name:tag that `labkit up` gives kind instead of the lost digest
    pin_note: str = ""  # why not, when a recorded pin did not match
    files: list[str] = field(default_factory=list)  # offline files copied into LABKIT_HOME

    def to_json(self) -> str:
        return json.dumps({"file": self.file, "loaded": self.loaded,
                           "node_image": self.node_image,
                           "node_image_local": self.node_image_local,
                           "node_image_by_tag": self.node_by_tag or None,
                           "pins": self.pins, "pins_file": self.pins_file or None,
                           "files": self.files,
                           "kind": [asdict(k) for k in self.kind]}, indent=2)

    def node_note(self) -> str:
        if self.node_image_local is None:
            return f"the bundle does not carry the node image {self.node_image}"
        if self.node_image_local:
            return "kind finds the node image in the local Docker store: `labkit up` pulls nothing"
        lost = (f"docker has {archive_name(self.node_image)} but not by its pinned digest "
                "(`docker load` does not restore digests on this engine, moby#22011)")
        if self.node_by_tag:
            return (f"{lost}; its image ID is the one the bundle recorded for that digest, so "
                    f"`labkit up` gives kind {self.node_by_tag}: it pulls nothing")
        why = f" ({self.pin_note})" if self.pin_note else " (no image ID is recorded for "\
            "that digest)"
        return (f"{lost}{why}: kind looks it up by digest and would try to pull it; pull it "
                "once while online")

    def to_text(self) -> str:
        lines = [f"docker load: {len(self.loaded)} images from {self.file}", self.node_note()]
        if self.files:
            lines.append(f"copied {len(self.files)} offline file(s) (the pinned manifests and "
                         "cni-plugins tarballs) into LABKIT_HOME: labs 01-03 on kind fetch "
                         "nothing from the network")
        else:
            lines.append("this bundle carries no manifests or cni-plugins tarballs (made by an "
                         "older labkit): the kind path will download them")
        if self.pins_file:
            lines.append(f"recorded the bundle's {len(self.pins)} image pin(s) in "
                         f"{self.pins_file}")
        lines += [f"stage {k.stage} (cluster {k.cluster}): {k.message}" for k in self.kind]
        return "\n".join(lines)


def _loaded(stdout: str) -> list[str]:
    return [line.split(":", 1)[1].strip() for line in stdout.splitlines()
            if line.startswith("Loaded image")]


def _kind_steps(path: Path, stages: Sequence[str], run: Runner,
                kubeconfig_loader: Callable[[], dict[str, Any]],
                which: Callable[[str], str | None]) -> Iterator[KindStep]:
    seen: set[str] = set()
    clusters: list[str] | None = None
    for name in stages:
        cluster = Stage.load(name).cluster_name  # only a stage's own cluster, never a free name
        if cluster in seen:
            continue
        seen.add(cluster)
        if which("kind") is None:
            yield KindStep(name, cluster, "skipped",
                           "kind is not installed, so nothing was loaded into a cluster; "
                           f"`labkit up {name}` will take the node image from the local Docker "
                           "store, and the pods' images need `labkit images load FILE "
                           f"--stage {name}` once the cluster exists (kind load)")
            continue
        if clusters is None:
            clusters = kind_tool.get_clusters(run=run)
        if cluster not in clusters:
            yield KindStep(name, cluster, "no-cluster",
                           f"no cluster yet: `labkit up {name}` will take the node image from "
                           "the local Docker store; the pods' images are not in the nodes "
                           f"until `labkit images load FILE --stage {name}` after it (kind load)")
            continue
        check_context(kubeconfig_loader(), cluster, requested=os.environ.get("LABKIT_CONTEXT"))
        run(["kind", "load", "image-archive", str(path), "--name", cluster],
            timeout=ARCHIVE_TIMEOUT,
            hint="`content digest ... not found` is kind#3795 (Docker's containerd image store "
            "and multi-platform images; see the workaround there); otherwise check disk space "
            "in the nodes (`docker system df`)")
        yield KindStep(name, cluster, "loaded",
                       "loaded into every node (kind load image-archive): pods start without "
                       "pulling")


def load(path: Path, stages: Sequence[str] | None = None, *, run: Runner = process.run,
         kubeconfig_loader: Callable[[], dict[str, Any]] | None = None,
         which: Callable[[str], str | None] = process.which) -> LoadReport:
    """``docker load -i PATH`` and record the bundle's pins under ``$LABKIT_HOME/images``;
    then ``kind load image-archive`` into each stage's cluster that exists and that the
    context guard accepts."""
    if not path.is_file():
        raise LabkitError(f"no image bundle at {path}",
                          hint="make one with `labkit images save --output FILE` on a "
                          "connected machine, then copy it here")
    in_archive = archive_refs(path)
    pins = image_pins.read_archive(path)
    result = run(["docker", "load", "-i", str(path)], timeout=ARCHIVE_TIMEOUT,
                 hint="is Docker running (`docker info`), with enough free disk space?")
    pins_file = str(image_pins.store(pins)) if pins else ""
    files = [str(p) for p in offline.install_from(path)]
    node = str(pinned("kind", "node_image"))
    local: bool | None = None
    by_tag, why = "", ""
    if archive_name(node) in in_archive:
        # kind's own check before it pulls a node image (pullIfNotPresent), by the full pin
        found = run(["docker", "inspect", "--type=image", node], timeout=30, check=False)
        local = found.returncode == 0
        if not local:
            tag, why = image_pins.tag_for_lost_digest(node, run=run)
            by_tag = tag or ""
    report = LoadReport(str(path), _loaded(result.stdout) or in_archive, node, local,
                        pins=pins, pins_file=pins_file, node_by_tag=by_tag,
                        pin_note="" if by_tag else why, files=files)
    chosen = list(stages) if stages else all_stages()
    report.kind = list(_kind_steps(path, chosen, run, kubeconfig_loader or load_kubeconfig,
                                   which))
    return report
