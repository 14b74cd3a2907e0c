"""The workshop instructor's offline image bundle: ``labkit images list | save | load``.

kind's maintainer recommends, for offline use, a local registry or ``docker save``
plus ``kind load image-archive`` (kind#2063); this is the second. Two stores matter
on a learner's laptop:

- the **host's Docker store**: ``kind create cluster`` takes the node image from it
  (it pulls only when ``docker inspect --type=image REF`` fails), and labkit's
  ``docker run`` helpers (captures, the outside-the-cluster client) use it too;
- **each node's containerd**: pods pull their images there, and ``docker load`` on
  the host does not reach it; ``kind load image-archive`` copies an archive in.

The list is every image the kind path needs: the pinned node image and ``images:``
of environments/versions.yaml, plus the images named inside the pinned upstream
manifests the recipes apply (read through the recipes' own cached ``fetch_url``).
What cannot be read from those files (the images the tigera operator deploys, the
Cilium chart's images) is named as such, never guessed. Saving and loading the
bundle live in :mod:`labkit.image_bundle`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import yaml

from labkit.environments import Stage, environments_dir, pinned
from labkit.errors import LabkitError
from labkit.tools import process
from labkit.tools.files import fetch_url, manifests_dir

Fetch = Callable[[str], str]
Runner = Callable[..., process.Result]
Echo = Callable[[str], None]

#: Labs 01-03 run on the flannel stage (their STAGE parameter): Flannel, then the migration
#: to Calico (operator path), then MetalLB. Lab 04 (planned) and later run on the cilium stage.
STAGE_COMPONENTS: dict[str, tuple[str, ...]] = {
    "flannel": ("flannel", "calico", "metallb"),
    "cilium": ("cilium",),
}
#: Where each course image is used: "cluster" = by pods (kind load), "host" = by `docker run`
#: on the host (labkit.capture.kind runs netshoot; labkit.cni.metallb.reach runs curl).
COURSE_IMAGE_USE = {"agnhost": "cluster", "curl": "cluster+host", "netshoot": "host"}
PULL_TIMEOUT = 1800  # one image, on a conference link
ARCHIVE_TIMEOUT = 3600  # save / load / kind load of the whole bundle


@dataclass(frozen=True)
class Image:
    ref: str
    component: str
    source: str  # versions.yaml key, or the manifest's URL
    use: str  # "host", "cluster" or "cluster+host"
    stages: tuple[str, ...] = ()


@dataclass(frozen=True)
class Unlisted:
    """A group of images that the pinned files do not name."""

    component: str
    why: str
    how: str


@dataclass
class ImageList:
    stages: list[str]
    images: list[Image] = field(default_factory=list)
    unlisted: list[Unlisted] = field(default_factory=list)

    def refs(self) -> list[str]:
        return [i.ref for i in self.images]

    def as_dict(self) -> dict[str, Any]:
        return {"stages": self.stages, "images": [asdict(i) for i in self.images],
                "unlisted": [asdict(u) for u in self.unlisted]}

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, allow_nan=False)

    def to_text(self) -> str:
        width = max((len(i.ref) for i in self.images), default=0)
        lines = [f"images for stage(s) {', '.join(self.stages)}: {len(self.images)} listed"]
        lines += [f"  {i.ref:<{width}}  {i.component} ({i.use})" for i in self.images]
        if self.unlisted:
            lines.append("not listed (the pinned files do not name them):")
            lines += [f"  - {u.component}: {u.why}; {u.how}" for u in self.unlisted]
        return "\n".join(lines)


# -- listing --------------------------------------------------------------------------------
def _default_fetch(url: str) -> str:
    return fetch_url(url)  # the recipes' fetch: cached under $LABKIT_HOME/manifests


def all_stages() -> list[str]:
    root = environments_dir() / "stages"
    return sorted(p.name for p in root.iterdir() if (p / "kind-config.yaml").exists())


def manifest_images(text: str) -> list[str]:
    """Every container and init-container image of a multi-document manifest, first seen first."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in ("initContainers", "containers", "ephemeralContainers"):
                for c in node.get(key) or []:
                    if isinstance(c, dict) and isinstance(c.get("image"), str) \
                            and c["image"] not in found:
                        found.append(c["image"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for doc in yaml.safe_load_all(text):
        walk(doc)
    return found


def _fetch(fetch: Fetch, url: str, component: str) -> str:
    try:
        return fetch(url)
    except LabkitError as exc:
        raise LabkitError(
            f"cannot read the {component} manifest to list its images: {exc.message}",
            hint="listing reads the pinned manifests once, from the network (then they are "
            f"kept in {manifests_dir()}): run this on a connected machine, or load the "
            f"course's bundle (`labkit images load FILE`) which carries them; {exc.hint}"
        ) from exc


def _manifest_component(component: str) -> list[tuple[str, str]]:
    """(URL, label) of each pinned manifest a recipe applies, in the order it applies them."""
    if component == "flannel":
        return [(str(pinned("flannel", "manifest")), "flannel")]
    if component == "calico":
        # labkit.cni.calico_resources.manifest_urls("reinstall"): the CRDs hold no image.
        return [(str(pinned("calico", "operator_manifest")), "calico operator")]
    if component == "metallb":
        return [(str(pinned("metallb", "manifest")), "metallb")]
    return []


def _unlisted(component: str) -> list[Unlisted]:
    if component == "calico":
        version = pinned("calico", "version")
        return [Unlisted(
            f"calico {version} (deployed by the tigera operator)",
            "the operator carries its image list compiled in, and the Installation decides "
            "which it deploys; no manifest names them",
            "`labkit images save` asks the pulled operator image (`docker run --rm OPERATOR "
            f"--print-images=list`) and bundles its Linux, non-FIPS Calico {version} images "
            "(a superset: Goldmane and Whisker, which lab 02 leaves out, come along)")]
    if component == "cilium":
        version = pinned("cilium", "version")
        return [Unlisted(
            f"cilium {version} (Helm chart {pinned('cilium', 'chart')})",
            "the chart names its images (agent, operator, Envoy, Hubble) in its values, and "
            "labkit does not render the chart here",
            f"`helm template cilium {pinned('cilium', 'chart')} --version {version} | "
            "grep image:` lists them; pull and `kind load docker-image` them by hand")]
    return []


def list_images(stages: Sequence[str] | None = None, *, fetch: Fetch | None = None
                ) -> ImageList:
    """Every image the kind path of ``stages`` (default: all) needs, each once, pinned."""
    chosen = list(stages) if stages else all_stages()
    for name in chosen:
        Stage.load(name)  # an unknown stage fails here, naming the known ones
    fetch = fetch or _default_fetch
    out = ImageList(chosen)
    where: dict[str, list[str]] = {}
    entries: list[Image] = []

    def add(ref: str, component: str, source: str, use: str, stage: str) -> None:
        if ref not in where:
            where[ref] = []
            entries.append(Image(ref, component, source, use))
        if stage not in where[ref]:
            where[ref].append(stage)

    for stage in chosen:
        add(str(pinned("kind", "node_image")), "kind node image", "versions.yaml kind.node_image",
            "host", stage)
        for key, ref in (pinned("images") or {}).items():
            add(str(ref), f"course ({key})", f"versions.yaml images.{key}",
                COURSE_IMAGE_USE.get(key, "cluster"), stage)
        for component in STAGE_COMPONENTS.get(stage, ()):
            for url, label in _manifest_component(component):
                for ref in manifest_images(_fetch(fetch, url, label)):
                    add(ref, label, url, "cluster", stage)
            out.unlisted += [u for u in _unlisted(component) if u not in out.unlisted]
    out.images = [Image(i.ref, i.component, i.source, i.use, tuple(where[i.ref]))
                  for i in entries]
    return out


# -- image references -----------------------------------------------------------------------
def split_ref(ref: str) -> tuple[str, str, str]:
    """(name, tag, digest) of ``name[:tag][@digest]``; missing parts are ''."""
    name, _, digest = ref.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = ""
    if ":" in last:
        name, tag = name.rsplit(":", 1)
    return name, tag, digest


def archive_name(ref: str) -> str:
    """The name an image carries in the bundle: ``name:tag`` for a ``name:tag@digest`` pin.

    An image pulled by digest gets no tag, and ``docker save`` of a digest reference
    writes no name, so the image would come back from ``docker load`` nameless.
    """
    name, tag, digest = split_ref(ref)
    return f"{name}:{tag}" if digest and tag else ref


def operator_calico_images(printed: str, version: str) -> list[str]:
    """The Linux, non-FIPS Calico images of ``version`` from ``operator --print-images=list``.

    One fully qualified reference a line (registry/calico/NAME:TAG); the list also holds
    FIPS and Windows variants, Calico Enterprise images and the operator itself.
    """
    pattern = re.compile(rf"^\S+/calico/([a-z0-9._-]+):{re.escape(version)}$")
    out = []
    for line in printed.splitlines():
        m = pattern.match(line.strip())
        if m and "windows" not in m.group(1) and line.strip() not in out:
            out.append(line.strip())
    return out


# -- command line ---------------------------------------------------------------------------
