"""The kind backend with fakes: the exact commands, configs, objects and probe scripts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from labkit import Lab, ManifestError, UnknownKindError
from labkit.backends.kind import KindBackend
from labkit.backends.kind.guard import load_kubeconfig
from labkit.cni.flannel import RECIPE as FLANNEL
from labkit.cni.flannel import Flannel, flannel_documents
from labkit.environments import Stage, pinned
from labkit.errors import BackendUnsupported, ClusterError, ToolNotFound
from tests.unit.kindfakes import FakeKube, FakeRunner, node, pod

FLANNEL_MANIFEST = """
apiVersion: v1
kind: Namespace
metadata: {name: kube-flannel}
---
kind: ConfigMap
apiVersion: v1
metadata: {name: kube-flannel-cfg, namespace: kube-flannel}
data:
  net-conf.json: |
    {"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan"}}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: kube-flannel-ds, namespace: kube-flannel}
spec: {}
"""


@pytest.fixture
def kubeconfig(tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump({
        "current-context": "prod", "contexts": [
            {"name": "prod", "context": {"cluster": "prod"}},
            {"name": "kind-cni-lab", "context": {"cluster": "kind-cni-lab"}}],
        "clusters": [{"name": "prod", "cluster": {"server": "https://10.0.0.1"}},
                     {"name": "kind-cni-lab", "cluster": {"server": "https://127.0.0.1:3"}}]}))
    return load_kubeconfig([path])


def make(tmp_path: Path, kubeconfig: dict[str, Any], clusters: list[str] | None = None,
         **runner: Any) -> tuple[KindBackend, FakeRunner, FakeKube]:
    run, kube = FakeRunner(clusters, **runner), FakeKube()
    b = KindBackend(Stage.load("flannel"), run=run, kube_factory=lambda ctx: kube,
                    kubeconfig_loader=lambda: kubeconfig, sleep=lambda s: None,
                    workdir=tmp_path / "work")
    return b, run, kube


def test_up_writes_the_pinned_config_and_creates_the_cluster(tmp_path, kubeconfig) -> None:
    b, run, _ = make(tmp_path, kubeconfig)
    b.up()
    config_path = tmp_path / "work" / "kind-config.yaml"
    assert ["kind", "create", "cluster", "--name", "cni-lab", "--config",
            str(config_path)] in run.calls
    config = yaml.safe_load(run.configs[0])
    assert config["networking"] == {"disableDefaultCNI": True, "podSubnet": "10.244.0.0/16",
                                    "serviceSubnet": "10.96.0.0/16", "kubeProxyMode": "iptables"}
    image = pinned("kind", "node_image")
    assert "@sha256:" in image
    assert config["nodes"] == [{"role": "control-plane", "image": image},
                               {"role": "worker", "image": image},
                               {"role": "worker", "image": image}]


def test_up_reports_kinds_own_lines_while_it_creates(tmp_path, kubeconfig) -> None:
    import io

    from labkit.progress import Progress

    b, runner, _ = make(tmp_path, kubeconfig)
    real = runner.__call__

    def run(argv: list[str], **kwargs: Any) -> Any:
        if argv[:3] == ["kind", "create", "cluster"]:
            kwargs["on_output"](" ✓ Ensuring node image (kindest/node:v1.36.4) 🖼")
        return real(argv, **kwargs)

    b.run = run
    out = io.StringIO()
    b.up(Progress("cluster cni-lab", stream=out, mode="plain", interval=0))
    assert "cluster cni-lab: ✓ Ensuring node image (kindest/node:v1.36.4) 🖼" in out.getvalue()


def test_up_reuses_an_existing_cluster_but_down_leaves_one_labkit_did_not_create(
        tmp_path, kubeconfig) -> None:
    b, run, _ = make(tmp_path, kubeconfig, clusters=["cni-lab"])
    b.up()
    assert not [c for c in run.calls if c[:3] == ["kind", "create", "cluster"]]
    assert not b.created_by_labkit()
    with pytest.raises(ClusterError, match="'cni-lab' was not created by labkit"):
        b.down()
    assert ["kind", "delete", "cluster", "--name", "cni-lab"] not in run.calls


def test_down_deletes_the_cluster_labkit_created_and_its_record(tmp_path, kubeconfig) -> None:
    b, run, _ = make(tmp_path, kubeconfig)
    b.up()
    record = json.loads((tmp_path / "work" / "created-by-labkit.json").read_text())
    assert record["cluster"] == "cni-lab" and record["stage"] == "flannel"
    assert record["kind_config"] == str(tmp_path / "work" / "kind-config.yaml")
    assert b.created_by_labkit()
    b.down()
    assert run.calls[-1] == ["kind", "delete", "cluster", "--name", "cni-lab"]
    assert not (tmp_path / "work" / "created-by-labkit.json").exists()
    b.down()  # absent now: nothing more to delete
    assert run.calls[-1] == ["kind", "get", "clusters"]


def test_missing_kind_is_a_clear_error(tmp_path, kubeconfig) -> None:
    b, _, _ = make(tmp_path, kubeconfig, missing={"kind"})
    with pytest.raises(ToolNotFound, match="'kind' is not installed"):
        b.up()


def test_lab_status_of_an_absent_cluster(tmp_path, kubeconfig) -> None:
    b, _, kube = make(tmp_path, kubeconfig)
    lab = Lab(backend_impl=b)
    assert lab.status().exists is False and lab.cni is None
    with pytest.raises(ClusterError, match="no CNI"):
        lab.matrix()


def test_bad_manifest_fails_before_reaching_the_api(tmp_path, kubeconfig) -> None:
    b, _, kube = make(tmp_path, kubeconfig, clusters=["cni-lab"])
    lab = Lab(backend_impl=b)
    bad = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: x}\n" \
          "spec: {podSelektor: {}}\n"
    with pytest.raises(ManifestError, match="spec.podSelektor"):
        lab.apply(bad)
    with pytest.raises(UnknownKindError, match='"CiliumNetworkPolicy"'):
        lab.apply("apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n"
                  "metadata: {name: x}\nspec: {}\n")
    assert kube.applied == []


def test_apply_sends_the_documents_through_the_client(tmp_path, kubeconfig) -> None:
    b, _, kube = make(tmp_path, kubeconfig, clusters=["cni-lab"])
    doc = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop-web"}}
    assert Lab(backend_impl=b).apply(doc) == ["Namespace shop-web"]
    assert kube.applied == [doc]


def test_flannel_recipe_applies_plugins_then_flannel(tmp_path, kubeconfig) -> None:
    b, runner, kube = make(tmp_path, kubeconfig, clusters=["cni-lab"])
    ready = {"desiredNumberScheduled": 3, "updatedNumberScheduled": 3, "numberReady": 3}
    for ns, name in (("kube-system", "install-cni-plugins"), ("kube-flannel", "kube-flannel-ds")):
        kube.add("DaemonSet", {"metadata": {"name": name, "namespace": ns}, "status": ready})
    kube.add("Node", node("cni-lab-control-plane", True, "10.244.0.0/24", "172.18.0.2"))
    recipe = Flannel(fetch=lambda url: FLANNEL_MANIFEST)
    recipe.install(b)
    kinds = [(d["kind"], d["metadata"]["name"]) for d in kube.applied]
    assert kinds == [("DaemonSet", "install-cni-plugins"), ("Namespace", "kube-flannel"),
                     ("ConfigMap", "kube-flannel-cfg"), ("DaemonSet", "kube-flannel-ds")]
    plugins = kube.applied[0]["spec"]["template"]["spec"]
    assert plugins["hostNetwork"] is True and plugins["tolerations"] == [{"operator": "Exists"}]
    init = plugins["initContainers"][0]
    assert init["image"] == pinned("images", "curl")
    assert init["env"][0]["value"] == pinned("cni_plugins", "tarball")
    assert 'if [ ! -e "$dest" ]' in init["command"][2]  # adds, never replaces
    assert {"name": "CNI_BIN_DIR", "value": "/host/opt/cni/bin"} in init["env"]
    assert init["volumeMounts"] == [
        {"name": "cni-bin", "mountPath": "/host/opt/cni/bin"},
        {"name": "offline", "mountPath": "/host/offline", "readOnly": True}]
    assert {"name": "SHA256_amd64", "value": pinned("cni_plugins", "sha256")["amd64"]} \
        in init["env"]
    assert FLANNEL.name == "flannel"
    assert not [c for c in runner.calls if c[:2] in (["docker", "cp"], ["docker", "exec"])]


def test_flannel_recipe_copies_a_loaded_bundles_tarball_into_each_node(tmp_path, kubeconfig,
                                                                       monkeypatch) -> None:
    """After `labkit images load`: the node's tarball goes into the node before the DaemonSet."""
    import os

    from labkit.tools.process import Result

    b, runner, kube = make(tmp_path, kubeconfig, clusters=["cni-lab"])
    offline = Path(os.environ["LABKIT_HOME"]) / "offline"
    offline.mkdir(parents=True)
    url = pinned("cni_plugins", "tarball").format(arch="arm64")
    (offline / url.rsplit("/", 1)[-1]).write_bytes(b"tgz")
    real_call = runner.__call__

    def call(argv: list[str], **kw: Any) -> Any:
        if argv[:2] == ["docker", "exec"] and argv[3:] == ["uname", "-m"]:
            runner.calls.append(list(argv))
            return Result(tuple(argv), 0, "aarch64\n", "")
        return real_call(argv, **kw)

    monkeypatch.setattr(b, "run", call)
    ready = {"desiredNumberScheduled": 2, "updatedNumberScheduled": 2, "numberReady": 2}
    for ns, name in (("kube-system", "install-cni-plugins"), ("kube-flannel", "kube-flannel-ds")):
        kube.add("DaemonSet", {"metadata": {"name": name, "namespace": ns}, "status": ready})
    for n, ip in (("cni-lab-control-plane", "172.18.0.2"), ("cni-lab-worker", "172.18.0.3")):
        kube.add("Node", node(n, True, "10.244.0.0/24", ip))
    Flannel(fetch=lambda url: FLANNEL_MANIFEST).install(b)
    cps = [c for c in runner.calls if c[:2] == ["docker", "cp"]]
    name = url.rsplit("/", 1)[-1]
    assert cps == [["docker", "cp", str(offline / name),
                    f"{n}:/opt/labkit/offline/{name}"]
                   for n in ("cni-lab-control-plane", "cni-lab-worker")]


def test_flannel_net_conf_follows_the_stage_pod_subnet() -> None:
    docs = flannel_documents(FLANNEL_MANIFEST, "10.250.0.0/16")
    conf = next(d for d in docs if d["kind"] == "ConfigMap")["data"]["net-conf.json"]
    assert yaml.safe_load(conf) == {"Network": "10.250.0.0/16", "Backend": {"Type": "vxlan"}}
    with pytest.raises(ManifestError, match="net-conf.json"):
        flannel_documents("apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n", "10/8")


def shop(kube: FakeKube) -> None:
    kube.add("DaemonSet", {"metadata": {"name": "kube-flannel-ds", "namespace": "kube-flannel"}})
    for ns in ("shop-web", "shop-api"):
        kube.add("Namespace", {"metadata": {"name": ns, "labels": {}}})
    kube.add("Node", node("cni-lab-worker", True, "10.244.1.0/24", "172.18.0.3"))
    kube.add("Pod", pod("shop-web", "frontend-abc-1", "10.244.1.2", "cni-lab-worker",
                        {"app": "frontend"}))
    kube.add("Pod", pod("shop-api", "api-abc-1", "10.244.1.3", "cni-lab-worker", {"app": "api"}))
    kube.add("Pod", pod("shop-api", "db-abc-1", "10.244.1.4", "cni-lab-worker", {"app": "db"}))


def answer_all(code: int = 200, rc: int = 0) -> Any:
    def run(ns: str, name: str, argv: list[str]) -> str:
        ids = [line.split()[1] for line in argv[2].splitlines() if line.startswith("p ")]
        return "".join(f"LABKIT\t{i}\t{rc}\t{code}\tok\t\n" for i in ids)
    return run


def test_matrix_runs_one_exec_per_source_in_the_probe_container(tmp_path, kubeconfig) -> None:
    b, _, kube = make(tmp_path, kubeconfig, clusters=["cni-lab"])
    shop(kube)
    kube.exec_answer = answer_all()
    m = Lab(backend_impl=b).matrix()
    assert len(m.cells) == 9 and m.diff() == [] and not m.simulated
    assert len(kube.execs) == 3  # one per source pod, not one per pair
    ns, name, argv, container = kube.execs[0]
    assert argv[:2] == ["sh", "-c"] and container == "probe"
    script = argv[2]
    assert script.count("\np ") == 3 and "http://10.244.1.3:8080/" in script
    assert "--connect-timeout 3" in script and script.rstrip().endswith("wait")


def test_only_mismatches_are_retried_and_attempts_are_kept(tmp_path, kubeconfig) -> None:
    b, _, kube = make(tmp_path, kubeconfig, clusters=["cni-lab"])
    shop(kube)
    kube.exec_answer = answer_all(code=0, rc=28)  # everything times out: differs from expected
    m = Lab(backend_impl=b).matrix(["shop-web/frontend"], ["shop-api/api"])
    cell = next(iter(m.cells.values()))
    assert cell.observed.attempts == 3 and not cell.observed.allowed
    assert cell.observed.denial is not None and "exit 28" in cell.observed.detail
    assert len(kube.execs) == 3  # 1 + 2 retries, then it stops
    kube.execs.clear()
    kube.exec_answer = answer_all()
    m = Lab(backend_impl=b).matrix(["shop-web/frontend"], ["shop-api/api"])
    assert next(iter(m.cells.values())).observed.attempts == 1 and len(kube.execs) == 1


def test_node_rows_read_the_ready_condition(tmp_path, kubeconfig) -> None:
    b, _, kube = make(tmp_path, kubeconfig, clusters=["cni-lab"])
    kube.add("Node", node("cni-lab-control-plane", False, "", "172.18.0.2", "control-plane"))
    row = b.node_rows()[0]
    assert row.roles == ("control-plane",) and not row.ready
    assert "cni plugin not initialized" in row.message


def _plugins_script_env(tmp_path: Path) -> tuple[Path, str, dict[str, str], Path, str]:
    """A fake release tarball, kind's plugin folder, and the DaemonSet's script and env with
    its paths moved under tmp_path (the script as the pod runs it, under a POSIX sh)."""
    import hashlib
    import os
    import tarfile

    src = tmp_path / "src"
    src.mkdir()
    for name, mode in (("bridge", 0o755), ("host-local", 0o755), ("LICENSE", 0o644)):
        (src / name).write_text(f"upstream {name}")
        (src / name).chmod(mode)
    tgz = tmp_path / "plugins.tgz"
    with tarfile.open(tgz, "w:gz") as tar:  # entries as ./bridge, like the release tarballs
        tar.add(src, arcname=".")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "host-local").write_text("kind's host-local")
    fake = tmp_path / "fakebin"
    fake.mkdir()
    (fake / "curl").write_text(
        '#!/bin/sh\nwhile [ $# -gt 1 ]; do [ "$1" = -o ] && out=$2; shift; done\n'
        f'echo "$1" > {tmp_path}/url\ncp {tgz} "$out"\n')
    (fake / "curl").chmod(0o755)
    ds = Flannel(fetch=lambda url: FLANNEL_MANIFEST).kind_documents("10.244.0.0/16")[0]
    init = ds["spec"]["template"]["spec"]["initContainers"][0]
    script = init["command"][2].replace("/tmp/", f"{tmp_path}/tmp-")
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}",
           **{e["name"]: e["value"] for e in init["env"]},
           "CNI_BIN_DIR": str(bindir), "OFFLINE_DIR": str(tmp_path / "offline")}
    return tgz, script, env, bindir, hashlib.sha256(tgz.read_bytes()).hexdigest()


def _sh(script: str, env: dict[str, str]) -> Any:
    import shutil
    import subprocess

    return subprocess.run([shutil.which("sh") or "/bin/sh", "-c", script], env=env,
                          capture_output=True, text=True, timeout=30)


def _arch() -> str:
    import platform

    if platform.machine() not in ("x86_64", "aarch64", "arm64"):
        pytest.skip("the script supports amd64 and arm64 nodes only")
    return "amd64" if platform.machine() == "x86_64" else "arm64"


def test_cni_plugins_script_adds_only_missing_executables(tmp_path) -> None:
    """The installer's script, run by a POSIX sh with a fake curl (busybox in the real pod)."""
    arch = _arch()
    tgz, script, env, bindir, digest = _plugins_script_env(tmp_path)
    env[f"SHA256_{arch}"] = digest  # the fake release's own sum
    out = _sh(script, env)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "url").read_text().strip() == pinned(
        "cni_plugins", "tarball").format(arch=arch)
    assert sorted(p.name for p in bindir.iterdir()) == ["bridge", "host-local"]
    assert (bindir / "host-local").read_text() == "kind's host-local"  # never replaced
    assert (bindir / "bridge").read_text() == "upstream bridge"
    assert out.stdout.strip() == "installed bridge"


def test_cni_plugins_script_refuses_a_tarball_without_the_pinned_sum(tmp_path) -> None:
    arch = _arch()
    _, script, env, bindir, digest = _plugins_script_env(tmp_path)
    assert env[f"SHA256_{arch}"] == pinned("cni_plugins", "sha256")[arch]  # the real pin
    out = _sh(script, env)
    assert out.returncode == 1
    assert f"expected {env[f'SHA256_{arch}']} (pinned), got {digest}" in out.stdout
    assert [p.name for p in bindir.iterdir()] == ["host-local"]  # nothing unpacked


def test_cni_plugins_script_uses_the_offline_copy_without_the_network(tmp_path) -> None:
    """After `labkit images load`, the node's copy is used: curl is never called."""
    arch = _arch()
    tgz, script, env, bindir, digest = _plugins_script_env(tmp_path)
    env[f"SHA256_{arch}"] = digest
    offline = Path(env["OFFLINE_DIR"])
    offline.mkdir()
    name = pinned("cni_plugins", "tarball").format(arch=arch).rsplit("/", 1)[-1]
    (offline / name).write_bytes(tgz.read_bytes())
    (Path(env["PATH"].split(":")[0]) / "curl").write_text("#!/bin/sh\nexit 6\n")  # no network
    out = _sh(script, env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"using the offline bundle's {name}" in out.stdout
    assert (bindir / "bridge").read_text() == "upstream bridge"


def test_a_timed_out_create_deletes_the_half_created_cluster(tmp_path, kubeconfig) -> None:
    from labkit.errors import ToolError
    from labkit.tools import kind as kind_tool

    class SlowRunner(FakeRunner):
        def __call__(self, argv: list[str], **kwargs: Any) -> Any:
            if list(argv[:3]) == ["kind", "create", "cluster"]:
                self.calls.append(list(argv))
                self.clusters.append("cni-lab")  # the nodes exist when kind is killed
                self.create_timeout = kwargs["timeout"]
                raise ToolError("'kind create cluster' did not finish within 1800s")
            return super().__call__(argv, **kwargs)

    run = SlowRunner()
    with pytest.raises(ToolError) as err:
        kind_tool.create_cluster("cni-lab", tmp_path / "c.yaml", run=run)
    assert run.calls[-1] == ["kind", "delete", "cluster", "--name", "cni-lab"]
    assert run.clusters == [] and "half-created cluster was deleted" in err.value.hint
    assert run.create_timeout >= 1200  # the first create pulls the node image
    # kind's own failures (an exit code) are left to kind, which cleans up itself
    failing = FakeRunner()

    def fail(argv: list[str], **kwargs: Any) -> Any:
        failing.calls.append(list(argv))
        raise ToolError("failed", returncode=1, stderr="node(s) already exist for a cluster "
                        "with the name \"cni-lab\"")
    with pytest.raises(ToolError) as err:
        kind_tool.create_cluster("cni-lab", tmp_path / "c.yaml", run=fail)
    assert len(failing.calls) == 1 and "half-exists" in err.value.hint


def test_kind_get_clusters_points_at_docker_when_it_fails() -> None:
    from labkit.tools import kind as kind_tool

    seen: dict[str, Any] = {}

    def run(argv: list[str], **kwargs: Any) -> Any:
        seen.update(kwargs)
        return FakeRunner()(argv)
    assert kind_tool.get_clusters(run=run) == []
    assert "Docker running" in seen["hint"]


def test_rollout_progress_follows_kubectl_rollout_status() -> None:
    from labkit.backends.kind.backend import daemonset_progress, deployment_progress

    ds = {"metadata": {"generation": 2}, "status": {
        "observedGeneration": 1, "desiredNumberScheduled": 3, "updatedNumberScheduled": 3,
        "numberReady": 3}}
    assert daemonset_progress(ds) == (False, "spec update not observed yet")  # stale status
    ds["status"].update(observedGeneration=2, updatedNumberScheduled=1)
    assert daemonset_progress(ds) == (False, "1/3 pods updated")
    ds["status"]["updatedNumberScheduled"] = 3
    assert daemonset_progress(ds) == (True, "3/3 ready")
    assert daemonset_progress({"status": {}})[0] is False  # nothing scheduled yet

    dep = {"metadata": {"generation": 3}, "spec": {"replicas": 2}, "status": {
        "observedGeneration": 3, "replicas": 3, "updatedReplicas": 2, "readyReplicas": 3,
        "availableReplicas": 3}}
    assert deployment_progress(dep) == (False, "1 old replicas terminating")
    dep["status"].update(replicas=2, availableReplicas=1)
    assert deployment_progress(dep) == (False, "1/2 available")
    dep["status"]["availableReplicas"] = 2
    assert deployment_progress(dep) == (True, "2/2 available")
    dep["metadata"]["generation"] = 4
    assert deployment_progress(dep)[0] is False


def test_wait_ready_waits_for_a_rollout_not_for_old_ready_pods(tmp_path, kubeconfig) -> None:
    b, _, kube = make(tmp_path, kubeconfig, clusters=["cni-lab"])
    dep = {"metadata": {"name": "api", "namespace": "shop-api", "generation": 2},
           "spec": {"replicas": 1},
           "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1,
                      "readyReplicas": 1, "availableReplicas": 1}}
    kube.add("Deployment", dep)
    polls = []

    def sleep(seconds: float) -> None:
        polls.append(seconds)
        dep["status"]["observedGeneration"] = 2

    b.sleep = sleep
    b.wait_ready(nodes=False, namespaces=("shop-api",), timeout=60)
    assert len(polls) == 1


def test_dns_on_udp_53_is_probed_with_nslookup_against_the_dns_pod(tmp_path, kubeconfig) -> None:
    b, _, kube = make(tmp_path, kubeconfig, clusters=["cni-lab"])
    shop(kube)
    kube.add("Pod", pod("kube-system", "coredns-abc-1", "10.244.0.3", "cni-lab-worker",
                        {"k8s-app": "kube-dns"}, containers=("coredns",)))

    def run(ns: str, name: str, argv: list[str]) -> str:
        ids = [line.split()[1] for line in argv[2].splitlines() if line.startswith("d ")]
        return "".join(f"LABKIT\t{i}\t1\tDNS\t;; connection timed out; no servers could be "
                       "reached\t\n" for i in ids)
    kube.exec_answer = run
    cell = Lab(backend_impl=b).probe("shop-web/frontend", "kube-system/coredns-abc-1", 53, "UDP")
    ns, name, argv, container = kube.execs[0]
    assert (ns, container) == ("shop-web", "probe") and "\nd 0 10.244.0.3 &" in argv[2]
    assert not cell.seen.allowed and "DNS timed out" in cell.seen.detail
    with pytest.raises(BackendUnsupported, match="UDP/8081"):
        Lab(backend_impl=b).probe("shop-web/frontend", "shop-api/api", 8081, "UDP")


def test_an_earlier_exercise_attempt_is_found_by_its_annotation_and_deleted(tmp_path,
                                                                             kubeconfig) -> None:
    from labkit.labs.exercise import ANNOTATION, remove_attempts

    b, _, kube = make(tmp_path, kubeconfig, clusters=["cni-lab"])
    shop(kube)
    spec = {"podSelector": {"matchLabels": {"app": "api"}}, "policyTypes": ["Ingress"]}
    kube.add("NetworkPolicy", {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                               "metadata": {"name": "first-try", "namespace": "shop-api",
                                            "annotations": {ANNOTATION: "lab01-ex1"}},
                               "spec": spec})
    kube.add("NetworkPolicy", {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                               "metadata": {"name": "lab-policy", "namespace": "shop-api"},
                               "spec": spec})
    lab = Lab(backend_impl=b)
    assert remove_attempts(lab, "lab02-ex1") == []  # another exercise's: left alone
    assert remove_attempts(lab, "lab01-ex1") == ["NetworkPolicy shop-api/first-try"]
    assert [d["metadata"]["name"] for d in kube.deleted] == ["first-try"]
