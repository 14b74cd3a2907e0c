"""labkit images list / save / load with a fake runner and a fake fetch: the exact commands.

The manifests below are shaped like the real ones (Flannel's DaemonSet runs its images as
two init containers and one container; the operator and MetalLB as Deployments/DaemonSets);
their image names are illustrative, not a claim about the pinned releases' contents.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from labkit import cli
from labkit.course.images import bundle as image_bundle
from labkit.course.images import listing as images
from labkit.course.images import pins as image_pins
from labkit.environments import pinned
from labkit.errors import ContextRefused, LabkitError, ToolError
from labkit.tools.process import Result

FLANNEL = """
apiVersion: v1
kind: Namespace
metadata: {name: kube-flannel}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: kube-flannel-ds, namespace: kube-flannel}
spec:
  template:
    spec:
      initContainers:
      - {name: install-cni-plugin, image: ghcr.io/flannel-io/flannel-cni-plugin:v1.9.1-flannel1}
      - {name: install-cni, image: ghcr.io/flannel-io/flannel:v0.28.9}
      containers:
      - {name: kube-flannel, image: ghcr.io/flannel-io/flannel:v0.28.9}
"""
OPERATOR = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: tigera-operator, namespace: tigera-operator}
spec:
  template:
    spec:
      containers:
      - name: tigera-operator
        image: quay.io/tigera/operator:v1.41.1
        env:
        - {name: TIGERA_OPERATOR_INIT_IMAGE_VERSION, value: v1.41.1}
"""
METALLB = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: controller, namespace: metallb-system}
spec:
  template:
    spec:
      containers: [{name: controller, image: quay.io/metallb/controller:v0.16.1}]
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: speaker, namespace: metallb-system}
spec:
  template:
    spec:
      containers: [{name: speaker, image: quay.io/metallb/speaker:v0.16.1}]
"""
# What `operator --print-images=list` prints: one reference a line, every variant it knows.
PRINTED = """quay.io/calico/cni:v3.33.1
quay.io/calico/cni:v3.33.1-fips
quay.io/calico/cni-windows:v3.33.1
quay.io/calico/node:v3.33.1
quay.io/calico/kube-controllers:v3.33.1
quay.io/calico/typha:v3.33.1
quay.io/calico/apiserver:v3.33.1
quay.io/tigera/operator:v1.41.1
quay.io/tigera/cnx-node:v3.22.0
"""


CRDS = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"


def fetch(url: str) -> str:
    for key, text in (("flannel", FLANNEL), ("tigera-operator", OPERATOR),
                      ("metallb", METALLB), ("operator-crds", CRDS)):
        if key in url:
            return text
    raise AssertionError(f"unexpected fetch {url}")


TARBALL = b"the cni-plugins release tarball"


@pytest.fixture(autouse=True)
def _no_network_tarballs(monkeypatch):
    """`save` downloads the cni-plugins tarballs: here a fake that answers as upstream
    would (the pinned sum). tests/unit/test_offline_bundle.py downloads over real HTTP."""
    def download(url: str, target: Any) -> str:
        target.write(TARBALL)
        arch = "arm64" if "arm64" in url else "amd64"
        return pinned("cni_plugins", "sha256")[arch]

    monkeypatch.setattr("labkit.course.images.offline._default_download", download)


NODE = pinned("kind", "node_image")
NODE_TAG = NODE.split("@")[0]
NODE_ID = "sha256:" + "1" * 64


class Runner:
    """Records argv; `fail` maps an argv prefix to (returncode, stderr); `ids` answers
    `docker image inspect --format {{.Id}} REF` (a missing REF fails, as Docker does)."""

    def __init__(self, clusters: tuple[str, ...] = (), fail: dict[tuple[str, ...], str] | None
                 = None, node_by_digest: bool = True, ids: dict[str, str] | None = None
                 ) -> None:
        self.calls: list[list[str]] = []
        self.clusters = clusters
        self.fail = fail or {}
        self.node_by_digest = node_by_digest
        self.ids = {NODE: NODE_ID, NODE_TAG: NODE_ID} if ids is None else ids

    def __call__(self, argv: list[str], **kw: Any) -> Result:
        argv = list(argv)
        self.calls.append(argv)
        assert kw.get("timeout"), f"no timeout for {argv}"
        for prefix, stderr in self.fail.items():
            if tuple(argv[:len(prefix)]) == prefix:
                raise ToolError(f"'{' '.join(argv)}' failed with exit code 1: {stderr}",
                                command=" ".join(argv), stderr=stderr, returncode=1)
        if argv[:3] == ["kind", "get", "clusters"]:
            return Result(tuple(argv), 0, "".join(c + "\n" for c in self.clusters), "")
        if argv[:2] == ["docker", "run"]:
            return Result(tuple(argv), 0, PRINTED, "")
        if argv[:2] == ["docker", "save"]:
            bundle(Path(argv[3]), argv[4:])
        if argv[:5] == ["docker", "image", "inspect", "--format", "{{.Id}}"]:
            found = self.ids.get(argv[5])
            return Result(tuple(argv), 0 if found else 1, f"{found}\n" if found else "",
                          "" if found else f"Error: No such image: {argv[5]}\n")
        if argv[:3] == ["docker", "inspect", "--type=image"]:
            return Result(tuple(argv), 0 if self.node_by_digest else 1, "sha256:abc\n", "")
        if argv[:2] == ["docker", "load"]:
            return Result(tuple(argv), 0, "Loaded image: quay.io/metallb/speaker:v0.16.1\n", "")
        return Result(tuple(argv), 0, "", "")


# -- list ------------------------------------------------------------------------------------
def test_list_flannel_stage_names_every_pinned_and_manifest_image_once():
    listing = images.list_images(["flannel"], fetch=fetch)
    assert listing.refs() == [
        NODE, *pinned("images").values(),
        "ghcr.io/flannel-io/flannel-cni-plugin:v1.9.1-flannel1",
        "ghcr.io/flannel-io/flannel:v0.28.9",
        "quay.io/tigera/operator:v1.41.1",
        "quay.io/metallb/controller:v0.16.1", "quay.io/metallb/speaker:v0.16.1",
    ]
    by_ref = {i.ref: i for i in listing.images}
    assert "@sha256:" in NODE and by_ref[NODE].use == "host"
    assert by_ref[pinned("images", "netshoot")].use == "host"
    assert by_ref["quay.io/metallb/speaker:v0.16.1"].source == pinned("metallb", "manifest")
    # what cannot be known from the files is said, not guessed
    [calico] = listing.unlisted
    assert "tigera operator" in calico.component and "--print-images=list" in calico.how


def test_list_all_stages_marks_shared_images_and_the_cilium_chart_as_unlisted():
    listing = images.list_images(None, fetch=fetch)
    assert listing.stages == ["cilium", "flannel"]
    assert {i.ref: i.stages for i in listing.images}[NODE] == ("cilium", "flannel")
    assert len(listing.refs()) == len(set(listing.refs()))
    assert any("cilium" in u.component and "helm template" in u.how for u in listing.unlisted)
    data = json.loads(listing.to_json())
    assert data["images"][0] == {"ref": NODE, "component": "kind node image",
                                 "source": "versions.yaml kind.node_image", "use": "host",
                                 "stages": ["cilium", "flannel"]}
    assert "not listed" in listing.to_text()


def test_list_unknown_stage_names_the_known_ones():
    with pytest.raises(LabkitError, match="known stages: cilium, flannel"):
        images.list_images(["calico"], fetch=fetch)


def test_list_offline_fails_with_a_hint(monkeypatch, tmp_path, capsys):
    """The real fetch (the recipes' fetch_url), no network, no cache: one line, a hint."""
    import urllib.request

    def offline(*a: Any, **k: Any) -> Any:
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setenv("LABKIT_HOME", str(tmp_path))
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    assert cli.main(["images", "list", "--stage", "flannel"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("labkit images: error: cannot read the flannel manifest")
    assert "connected machine" in err and str(tmp_path / "manifests") in err
    assert "labkit images load FILE" in err


def test_list_uses_the_cache_when_offline(monkeypatch, tmp_path, capsys):
    from labkit.tools.files import fetch_url

    monkeypatch.setenv("LABKIT_HOME", str(tmp_path))
    cache = tmp_path / "manifests"
    for url in (pinned("flannel", "manifest"), pinned("calico", "operator_manifest"),
                pinned("metallb", "manifest")):
        cache.mkdir(parents=True, exist_ok=True)
        (cache / url.replace("://", "_").replace("/", "_")).write_text(fetch(url))
        assert fetch_url(url) == fetch(url)
    assert cli.main(["images", "list", "--stage", "flannel", "--output", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["stages"] == ["flannel"]
    assert "quay.io/metallb/speaker:v0.16.1" in [i["ref"] for i in data["images"]]


# -- references ------------------------------------------------------------------------------
@pytest.mark.parametrize("ref, parts, name", [
    ("kindest/node:v1.36.4@sha256:09", ("kindest/node", "v1.36.4", "sha256:09"),
     "kindest/node:v1.36.4"),
    ("localhost:5000/a/b:1", ("localhost:5000/a/b", "1", ""), "localhost:5000/a/b:1"),
    ("localhost:5000/a/b", ("localhost:5000/a/b", "", ""), "localhost:5000/a/b"),
    ("busybox@sha256:52", ("busybox", "", "sha256:52"), "busybox@sha256:52"),
])
def test_split_ref_and_archive_name(ref, parts, name):
    assert images.split_ref(ref) == parts
    assert images.archive_name(ref) == name


def test_operator_list_keeps_linux_non_fips_calico_images_of_the_release():
    assert images.operator_calico_images(PRINTED, "v3.33.1") == [
        "quay.io/calico/cni:v3.33.1", "quay.io/calico/node:v3.33.1",
        "quay.io/calico/kube-controllers:v3.33.1", "quay.io/calico/typha:v3.33.1",
        "quay.io/calico/apiserver:v3.33.1"]
    assert images.operator_calico_images(PRINTED, "v3.32.0") == []


# -- save ------------------------------------------------------------------------------------
def test_save_pulls_each_image_then_one_docker_save(tmp_path):
    run, lines = Runner(), []
    out = tmp_path / "usb" / "cni-lab-images.tar"
    report = image_bundle.save(out, ["flannel"], run=run, fetch=fetch, echo=lines.append)
    static = images.list_images(["flannel"], fetch=fetch).refs()
    resolved = images.operator_calico_images(PRINTED, "v3.33.1")
    operator = "quay.io/tigera/operator:v1.41.1"
    pulls = [c[2] for c in run.calls if c[:2] == ["docker", "pull"]]
    # the operator first: its image names the images it deploys
    assert pulls == [operator, *(r for r in static if r != operator), *resolved]
    # the digest pin is pulled by digest, then named so the archive carries a name
    name, _, digest = NODE.partition("@")
    assert ["docker", "tag", f"kindest/node@{digest}", NODE_TAG] in run.calls
    assert run.calls[1] == ["docker", "run", "--rm", operator, "--print-images=list"]
    save = [c for c in run.calls if c[:2] == ["docker", "save"]]
    assert save == [["docker", "save", "-o", str(out), NODE_TAG, *static[1:], *resolved]]
    assert run.calls[-1] == save[0]
    # one progress line per image, numbered over the whole bundle
    total = len(static) + len(resolved)
    assert [ln.split(" pulled ")[0] for ln in lines if " pulled " in ln] == \
        [f"[{n}/{total}]" for n in range(1, total + 1)]
    assert report.size == out.stat().st_size and not report.unlisted
    assert json.loads(report.to_json())["names_in_archive"][0] == NODE_TAG
    assert f"labkit images load {out}" in report.to_text()
    # the node pin's image ID, asked by digest before the save, travels inside the archive
    inspect = ["docker", "image", "inspect", "--format", "{{.Id}}", NODE]
    assert run.calls.index(inspect) < run.calls.index(save[0])
    assert report.pins == {NODE: NODE_ID} and NODE_ID in report.to_text()
    assert image_pins.read_archive(out) == {NODE: NODE_ID}
    assert image_bundle.archive_refs(out)[0] == NODE_TAG  # manifest.json still read


def test_save_without_a_digest_pin_appends_nothing(tmp_path, monkeypatch):
    listing = images.ImageList(["flannel"], [images.Image("x:1", "t", "here", "cluster")])
    monkeypatch.setattr(images, "list_images", lambda stages, fetch=None: listing)
    out = tmp_path / "b.tar"
    report = image_bundle.save(out, ["flannel"], run=Runner(), fetch=fetch, echo=lambda s: None)
    assert report.pins == {} and image_pins.read_archive(out) == {}
    with tarfile.open(out) as tar:
        assert [n for n in tar.getnames() if not n.startswith("labkit-offline/")] == \
            ["manifest.json"]


def test_save_fails_when_the_pulled_digest_is_not_there(tmp_path):
    run = Runner(ids={})
    with pytest.raises(LabkitError, match="docker has no image kindest/node"):
        image_bundle.save(tmp_path / "b.tar", ["flannel"], run=run, fetch=fetch,
                          echo=lambda s: None)
    assert not any(c[:2] == ["docker", "save"] for c in run.calls)


def test_save_failed_pull_names_the_image_and_the_fix(tmp_path):
    run = Runner(fail={("docker", "pull", "quay.io/metallb/speaker:v0.16.1"):
                       "Error response from daemon: toomanyrequests: rate limit"})
    with pytest.raises(ToolError) as err:
        image_bundle.save(tmp_path / "b.tar", ["flannel"], run=run, fetch=fetch, echo=print)
    assert "could not pull quay.io/metallb/speaker:v0.16.1 (metallb)" in err.value.message
    assert "docker login" in err.value.hint
    assert not any(c[:2] == ["docker", "save"] for c in run.calls)
    run = Runner(fail={("docker", "pull", NODE): "manifest unknown"})
    with pytest.raises(ToolError) as err:
        image_bundle.save(tmp_path / "b.tar", ["flannel"], run=run, fetch=fetch, echo=print)
    assert NODE in err.value.message and "versions.yaml" in err.value.hint


def test_save_refuses_a_bundle_without_the_operators_images(tmp_path):
    run = Runner()
    with pytest.raises(LabkitError, match="named no Calico v3.33.1"):
        image_bundle.save(tmp_path / "b.tar", ["flannel"], run=_printing(run, "nothing\n"),
                    fetch=fetch, echo=lambda s: None)
    assert not any(c[:2] == ["docker", "save"] for c in run.calls)


def _printing(run: Runner, text: str) -> Any:
    def wrapped(argv: list[str], **kw: Any) -> Result:
        res = run(argv, **kw)
        return Result(res.args, 0, text, "") if argv[:2] == ["docker", "run"] else res
    return wrapped


def test_save_cilium_stage_keeps_the_chart_images_as_not_bundled(tmp_path):
    run = Runner()
    report = image_bundle.save(tmp_path / "b.tar", ["cilium"], run=run, fetch=fetch,
                         echo=lambda s: None)
    assert not any(c[:2] == ["docker", "run"] for c in run.calls)
    assert "not in the bundle: cilium" in report.to_text()


# -- load ------------------------------------------------------------------------------------
def bundle(path: Path, tags: list[str]) -> Path:
    data = json.dumps([{"Config": "c.json", "RepoTags": tags, "Layers": []}]).encode()
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


def kubeconfig(cluster: str, server: str = "https://127.0.0.1:40000") -> dict[str, Any]:
    ctx = f"kind-{cluster}"
    return {"current-context": ctx,
            "contexts": [{"name": ctx, "context": {"cluster": ctx, "user": ctx}}],
            "clusters": [{"name": ctx, "cluster": {"server": server}}]}


def test_load_docker_then_kind_into_the_existing_lab_cluster(tmp_path):
    path = bundle(tmp_path / "b.tar", [NODE_TAG, "quay.io/metallb/speaker:v0.16.1"])
    run = Runner(clusters=("cni-lab",))
    report = image_bundle.load(path, ["flannel"], run=run, which=lambda t: f"/usr/bin/{t}",
                         kubeconfig_loader=lambda: kubeconfig("cni-lab"))
    assert run.calls == [
        ["docker", "load", "-i", str(path)],
        ["docker", "inspect", "--type=image", NODE],
        ["kind", "get", "clusters"],
        ["kind", "load", "image-archive", str(path), "--name", "cni-lab"],
    ]
    assert report.node_image_local is True and "pulls nothing" in report.to_text()
    assert [k.status for k in report.kind] == ["loaded"]
    assert json.loads(report.to_json())["kind"][0]["cluster"] == "cni-lab"


def test_load_refuses_a_context_that_is_not_a_local_lab_cluster(tmp_path, monkeypatch):
    path = bundle(tmp_path / "b.tar", ["quay.io/metallb/speaker:v0.16.1"])
    run = Runner(clusters=("cni-lab",))
    with pytest.raises(ContextRefused, match="not a kind cluster on this machine"):
        image_bundle.load(path, ["flannel"], run=run, which=lambda t: t,
                    kubeconfig_loader=lambda: kubeconfig("cni-lab", "https://prod.example:6443"))
    assert not any(c[:2] == ["kind", "load"] for c in run.calls)
    monkeypatch.setenv("LABKIT_CONTEXT", "kind-someone-else")
    run = Runner(clusters=("cni-lab",))
    with pytest.raises(ContextRefused, match="kind-someone-else"):
        image_bundle.load(path, ["flannel"], run=run, which=lambda t: t,
                    kubeconfig_loader=lambda: kubeconfig("cni-lab"))
    assert not any(c[:2] == ["kind", "load"] for c in run.calls)


def test_load_without_a_cluster_says_up_uses_local_images(tmp_path):
    path = bundle(tmp_path / "b.tar", [NODE_TAG])
    run = Runner(clusters=("someone-elses",), node_by_digest=False)
    report = image_bundle.load(path, None, run=run, which=lambda t: t,
                         kubeconfig_loader=lambda: {})
    assert [k.status for k in report.kind] == ["no-cluster", "no-cluster"]
    assert [c for c in run.calls if c[0] == "kind"] == [["kind", "get", "clusters"]]
    text = report.to_text()
    assert "`labkit up flannel` will take the node image from the local Docker store" in text
    assert "moby#22011" in text  # the digest was not restored: said, with the fix
    assert "no image ID is recorded for that digest" in text
    assert image_pins.stored() == {}  # the bundle carries no pins: nothing recorded


def test_load_records_the_bundles_pins_and_says_up_uses_the_proven_tag(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path / "home"))
    path = bundle(tmp_path / "b.tar", [NODE_TAG])
    image_pins.append_to_archive(path, {NODE: NODE_ID})
    run = Runner(node_by_digest=False, ids={NODE_TAG: NODE_ID})  # the digest did not survive
    report = image_bundle.load(path, ["cilium"], run=run, which=lambda t: None,
                               kubeconfig_loader=lambda: {})
    pins_file = tmp_path / "home" / "images" / "pins.json"
    assert image_pins.from_json(pins_file.read_text()) == {NODE: NODE_ID}
    assert report.node_image_local is False and report.node_by_tag == NODE_TAG
    text = report.to_text()
    assert f"`labkit up` gives kind {NODE_TAG}: it pulls nothing" in text
    assert f"recorded the bundle's 1 image pin(s) in {pins_file}" in text
    assert json.loads(report.to_json())["node_image_by_tag"] == NODE_TAG
    # the same bundle where Docker's name:tag is another image: the digest stays, and it says so
    run = Runner(node_by_digest=False, ids={NODE_TAG: "sha256:" + "2" * 64})
    report = image_bundle.load(path, ["cilium"], run=run, which=lambda t: None,
                               kubeconfig_loader=lambda: {})
    assert report.node_by_tag == "" and f"kept the digest pin {NODE}" in report.to_text()
    assert "would try to pull it" in report.to_text()


def test_load_without_kind_skips_the_cluster_part(tmp_path):
    path = bundle(tmp_path / "b.tar", ["x:1"])
    run = Runner()
    report = image_bundle.load(path, ["cilium"], run=run, which=lambda t: None,
                         kubeconfig_loader=lambda: {})
    assert [c[0] for c in run.calls] == ["docker"]
    assert report.kind[0].status == "skipped" and "kind is not installed" in report.kind[0].message
    assert report.node_image_local is None


def test_load_rejects_a_file_that_is_not_a_bundle(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    assert cli.main(["images", "load", str(tmp_path / "notes.txt")]) == 1
    assert "not an image archive written by `docker save`" in capsys.readouterr().err
    assert cli.main(["images", "load", str(tmp_path / "missing.tar")]) == 1
    assert "labkit images save --output FILE" in capsys.readouterr().err


def test_save_shows_dockers_own_pull_lines_while_a_pull_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LABKIT_PROGRESS", "plain")
    listing = images.ImageList(["cilium"], [images.Image("x:1", "t", "here", "cluster")])
    monkeypatch.setattr(images, "list_images", lambda stages, fetch=None: listing)

    class Pulling(Runner):
        def __call__(self, argv: list[str], **kw: Any) -> Result:
            if argv[:2] == ["docker", "pull"]:
                kw["on_output"]("8a1e25ce7c4f: Downloading  12.5MB/40.2MB")
            return super().__call__(argv, **kw)

    image_bundle.save(tmp_path / "b.tar", ["cilium"], run=Pulling(), echo=lambda s: None)
    err = capsys.readouterr().err
    assert "pulling x:1: 8a1e25ce7c4f: Downloading 12.5MB/40.2MB" in err
    assert "pulling x:1: pulled" in err
