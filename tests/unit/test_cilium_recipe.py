"""The Cilium recipe on fakes: exactly what the kind half runs and sends, and the sim half's
model. No kind cluster runs here; these tests never claim one did."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest
import yaml

from labkit.backends.kind.backend import KindBackend
from labkit.backends.kind.guard import load_kubeconfig
from labkit.backends.sim.backend import SimBackend
from labkit.cni.cilium import recipe as cilium
from labkit.cni.cilium.status import AgentStatus, CliStatus
from labkit.environments import Stage, pinned
from labkit.errors import ClusterError
from labkit.lab import Lab
from labkit.tools.process import Result
from tests.unit.kindfakes import FakeKube, FakeRunner, node, pod

FIXTURES = Path(__file__).parents[1] / "fixtures" / "cilium-status"
CLI_STATUS = (FIXTURES / "cilium_cli_status_kind_hubble_relay_ok_v1.14.5_cilium_quickstart.txt"
              ).read_text()
AGENT_STATUS = (FIXTURES / "cilium_agent_status_kpr_pr10059.txt").read_text()
VERSION = pinned("cilium", "version")
RENDERED = f"""apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: cilium, namespace: kube-system}}
spec:
  template:
    spec:
      initContainers:
        - {{name: config, image: "quay.io/cilium/cilium:v{VERSION}@sha256:aaaa"}}
      containers:
        - {{name: cilium-agent, image: "quay.io/cilium/cilium:v{VERSION}@sha256:aaaa"}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: cilium-config, namespace: kube-system}}
data: {{}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: cilium-operator, namespace: kube-system}}
spec:
  template:
    spec:
      containers:
        - {{name: cilium-operator,
            image: "quay.io/cilium/operator-generic:v{VERSION}@sha256:bbbb"}}
"""


class CiliumRunner(FakeRunner):
    """FakeRunner that renders the chart, knows which images Docker has, and runs `cilium`."""

    def __init__(self, local_images: set[str], **kw: Any) -> None:
        super().__init__(["cni-lab-cilium"], **kw)
        self.local_images = local_images

    def __call__(self, argv: list[str], **kwargs: Any) -> Result:
        result = super().__call__(argv, **kwargs)
        if argv[:2] == ["helm", "template"]:
            return Result(tuple(argv), 0, RENDERED, "")
        if argv[:3] == ["docker", "image", "inspect"]:
            found = argv[-1] in self.local_images
            return Result(tuple(argv), 0 if found else 1, "sha256:1\n" if found else "",
                          "" if found else f"Error: No such image: {argv[-1]}\n")
        if argv[:2] == ["cilium", "status"]:
            return Result(tuple(argv), 0, CLI_STATUS, "")
        return result


def ready_daemonset(name: str, n: int = 3) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "kube-system", "generation": 1},
            "status": {"observedGeneration": 1, "desiredNumberScheduled": n,
                       "updatedNumberScheduled": n, "numberReady": n}}


def cilium_kube() -> FakeKube:
    kube = FakeKube()
    for i, name in enumerate(("cni-lab-cilium-control-plane", "cni-lab-cilium-worker",
                              "cni-lab-cilium-worker2")):
        kube.add("Node", node(name, True, f"10.244.{i}.0/24", f"172.18.0.{i + 2}",
                              "control-plane" if i == 0 else ""))
    return kube


@pytest.fixture
def kubeconfig(tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump({
        "current-context": "kind-cni-lab-cilium",
        "contexts": [{"name": "kind-cni-lab-cilium",
                      "context": {"cluster": "kind-cni-lab-cilium"}}],
        "clusters": [{"name": "kind-cni-lab-cilium",
                      "cluster": {"server": "https://127.0.0.1:3"}}]}))
    return load_kubeconfig([path])


def make(tmp_path: Path, kubeconfig: dict[str, Any], run: FakeRunner, kube: FakeKube,
         stage: str = "cilium") -> KindBackend:
    return KindBackend(Stage.load(stage), run=run, kube_factory=lambda ctx: kube,
                       kubeconfig_loader=lambda: kubeconfig, sleep=lambda s: None,
                       workdir=tmp_path / "work")


def test_values_file_holds_the_documented_keys() -> None:
    values = cilium.helm_values(Stage.load("cilium"))
    assert values["ipam"] == {"mode": "kubernetes"}
    assert values["kubeProxyReplacement"] is True
    assert values["k8sServiceHost"] == "cni-lab-cilium-control-plane"
    assert values["k8sServicePort"] == 6443
    assert values["hubble"] == {"relay": {"enabled": True}, "ui": {"enabled": True}}


def test_install_kind_runs_exactly_the_documented_commands(tmp_path, kubeconfig) -> None:
    tagged = f"quay.io/cilium/cilium:v{VERSION}"
    run, kube = CiliumRunner({tagged}), cilium_kube()
    backend = make(tmp_path, kubeconfig, run, kube)
    kube.add("DaemonSet", ready_daemonset("cilium"))
    kube.add("DaemonSet", ready_daemonset("cilium-envoy"))
    cilium.Cilium().install_kind(backend)

    values = str(cilium.values_file())
    helm_calls = [c for c in run.calls if c[0] in ("helm", "kind", "docker", "cilium")]
    assert helm_calls[0] == ["helm", "repo", "add", "cilium", "https://helm.cilium.io/",
                             "--force-update"]
    assert helm_calls[1] == ["helm", "template", "cilium", "cilium/cilium", "--namespace",
                             "kube-system", "--version", VERSION, "--values", values, "--set",
                             "k8sServiceHost=cni-lab-cilium-control-plane"]
    # each distinct image once, looked up by name:tag (the digest is not kept by docker load)
    assert [c[-1] for c in helm_calls if c[:3] == ["docker", "image", "inspect"]] == \
        [tagged, f"quay.io/cilium/operator-generic:v{VERSION}"]
    assert ["kind", "load", "docker-image", tagged, "--name", "cni-lab-cilium"] in helm_calls
    assert not any(c[:3] == ["kind", "load", "docker-image"] and "operator" in c[3]
                   for c in helm_calls)
    install = next(c for c in helm_calls if c[:3] == ["helm", "upgrade", "--install"])
    assert install == ["helm", "upgrade", "--install", "cilium", "cilium/cilium",
                       "--kube-context", "kind-cni-lab-cilium", "--namespace", "kube-system",
                       "--version", VERSION, "--values", values,
                       "--set", "image.useDigest=false",
                       "--set", "k8sServiceHost=cni-lab-cilium-control-plane"]
    assert "--wait" not in install  # labkit waits itself, with progress
    assert helm_calls[-1] == ["cilium", "status", "--wait", "--wait-duration", "10m",
                              "--context", "kind-cni-lab-cilium"]


def test_status_is_parsed_from_the_cli(tmp_path, kubeconfig) -> None:
    backend = make(tmp_path, kubeconfig, CiliumRunner(set()), cilium_kube())
    status = cilium.RECIPE.status(backend)
    assert isinstance(status, CliStatus) and status.ok and not status.simulated
    assert status.component("Hubble Relay") == "OK"
    checks = cilium.RECIPE.verify_kind(backend)
    assert [c.ok for c in checks] == [True]


def test_without_the_cli_the_agent_is_asked(tmp_path, kubeconfig) -> None:
    kube = cilium_kube()
    kube.add("Pod", pod("kube-system", "cilium-envoy-abcde", "172.18.0.3", "w", {}))
    kube.add("Pod", pod("kube-system", "cilium-x7k2p", "172.18.0.3", "w",
                        {"k8s-app": "cilium"}))
    kube.exec_answer = lambda ns, name, argv: AGENT_STATUS
    backend = make(tmp_path, kubeconfig, CiliumRunner(set(), missing={"cilium"}), kube)
    status = cilium.RECIPE.status(backend)
    assert isinstance(status, AgentStatus)
    assert kube.execs == [("kube-system", "cilium-x7k2p", ["cilium-dbg", "status"],
                           "cilium-agent")]
    checks = {c.name: c for c in cilium.RECIPE.verify_kind(backend)}
    assert checks["cilium-dbg status OK"].ok
    assert checks["KubeProxyReplacement True"].ok  # "Strict" on this pre-1.16 agent


def test_a_cluster_with_kube_proxy_is_refused(tmp_path, kubeconfig) -> None:
    run = CiliumRunner(set())
    backend = make(tmp_path, kubeconfig, run, cilium_kube(), stage="flannel")
    with pytest.raises(ClusterError, match="kubeProxyMode iptables"):
        cilium.Cilium().install_kind(backend)
    assert not any(c[0] == "helm" for c in run.calls)


def test_another_cni_is_refused(tmp_path, kubeconfig) -> None:
    kube = cilium_kube()
    kube.add("DaemonSet", {"metadata": {"name": "kube-flannel-ds", "namespace": "kube-flannel"}})
    run = CiliumRunner(set())
    with pytest.raises(ClusterError, match="flannel is installed"):
        cilium.Cilium().install_kind(make(tmp_path, kubeconfig, run, kube))
    assert not any(c[0] == "helm" for c in run.calls)


def _shop(kube: FakeKube) -> None:
    kube.add("Service", {"metadata": {"name": "api", "namespace": "shop-api"},
                         "spec": {"clusterIP": "10.96.120.7", "ports": [{"port": 8080}]}})
    kube.add("Pod", pod("shop-web", "frontend-1", "10.244.1.4", "cni-lab-cilium-worker",
                        {"app": "frontend"}))


def _answers(codes: dict[int, tuple[int, int]]) -> Any:
    def answer(ns: str, name: str, argv: list[str]) -> str:
        return "".join(f"LABKIT\t{i}\t{rc}\t{http}\tok\t\n" for i, (rc, http) in codes.items())
    return answer


def test_kube_proxy_replacement_is_judged_by_probes(tmp_path, kubeconfig) -> None:
    kube = cilium_kube()
    _shop(kube)
    kube.exec_answer = _answers({0: (0, 200), 1: (0, 200), 2: (0, 200), 3: (0, 200)})
    backend = make(tmp_path, kubeconfig, CiliumRunner(set()), kube)
    result = cilium.RECIPE.service_probes(backend, "shop-web/frontend-1")
    assert result.ok and not result.kube_proxy_daemonset
    assert kube.applied[0]["spec"]["type"] == "NodePort"
    assert kube.applied[0]["spec"]["ports"][0]["nodePort"] == cilium.NODEPORT
    ns, name, argv, container = kube.execs[0]
    assert (ns, name, container) == ("shop-web", "frontend-1", "probe")
    assert "http://10.96.120.7:8080/healthz" in argv[-1]
    assert f"http://172.18.0.4:{cilium.NODEPORT}/healthz" in argv[-1]
    assert [r[0] for r in result.results] == [
        "ClusterIP shop-api/api", "NodePort on cni-lab-cilium-control-plane",
        "NodePort on cni-lab-cilium-worker", "NodePort on cni-lab-cilium-worker2"]


def test_a_service_that_times_out_or_a_kube_proxy_fails_the_check(tmp_path, kubeconfig) -> None:
    kube = cilium_kube()
    _shop(kube)
    kube.exec_answer = _answers({0: (0, 200), 1: (28, 0), 2: (0, 200), 3: (0, 200)})
    backend = make(tmp_path, kubeconfig, CiliumRunner(set()), kube)
    result = cilium.RECIPE.service_probes(backend, "shop-web/frontend-1")
    assert not result.ok
    assert "exit 28" in result.results[1][3]
    kube.add("DaemonSet", ready_daemonset("kube-proxy"))
    kube.exec_answer = _answers({i: (0, 200) for i in range(4)})
    again = cilium.RECIPE.service_probes(backend, "shop-web/frontend-1")
    assert again.kube_proxy_daemonset and not again.ok


def test_identities_come_from_cilium_endpoints(tmp_path, kubeconfig) -> None:
    kube = cilium_kube()
    kube.served_kinds.add("CiliumEndpoint")
    for name, ident in (("api-1", 48861), ("api-2", 48861), ("db-1", 18965)):
        kube.add("CiliumEndpoint", {
            "metadata": {"name": name, "namespace": "shop-api"},
            "status": {"identity": {"id": ident, "labels": [
                f"k8s:app={name.split('-')[0]}",
                "k8s:io.kubernetes.pod.namespace=shop-api"]}}}, "cilium.io/v2")
    table = cilium.RECIPE.identities(make(tmp_path, kubeconfig, CiliumRunner(set()), kube))
    assert [(r.identity, r.pods) for r in table.rows] == [
        (18965, ("shop-api/db-1",)), (48861, ("shop-api/api-1", "shop-api/api-2"))]
    assert not table.simulated


# -- sim --------------------------------------------------------------------------------------
def test_sim_install_status_and_services(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path))
    lab = Lab("cilium", backend="sim")
    lab.up()
    assert not any(p.name.startswith("kube-proxy") for p in lab.pods("kube-system"))
    assert not lab.status().ready
    verification = lab.install_cni("cilium")
    assert verification.ok and verification.simulated
    lab.deploy_shop()
    status = cilium.RECIPE.status(lab)
    assert isinstance(status, CliStatus) and status.simulated and status.ok
    assert status.workload("cilium").desired == 3  # one agent per node
    assert status.helm_chart_version == VERSION
    assert "simulated" in status.to_text()
    nodes = {n.name: n.pod_cidr for n in lab.nodes()}
    for p in lab.pods("shop-api"):
        assert ipaddress.ip_address(p.ip) in ipaddress.ip_network(nodes[p.node])
    probes = cilium.RECIPE.service_probes(lab, lab.resolve("shop-web/frontend"))
    assert probes.ok and probes.simulated and len(probes.results) == 4


@pytest.fixture
def sim_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Lab:
    """A simulated stage-cilium cluster with Cilium and the shop."""
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path))
    lab = Lab("cilium", backend="sim")
    lab.up()
    lab.install_cni("cilium")
    lab.deploy_shop()
    return lab


def test_sim_services_need_a_translator(sim_lab: Lab) -> None:
    """Without kube-proxy and without the replacement nothing answers a ClusterIP."""
    lab = sim_lab
    impl = lab.impl
    assert isinstance(impl, SimBackend)
    impl.cluster.cni.settings["kubeProxyReplacement"] = False  # type: ignore[union-attr]
    probes = cilium.RECIPE.service_probes(lab, lab.resolve("shop-web/frontend"))
    assert not probes.ok
    assert all("no kube-proxy" in r[3] for r in probes.results)


def test_sim_identities_shared_by_replicas(sim_lab: Lab) -> None:
    lab = sim_lab
    table = cilium.RECIPE.identities(lab)
    api = [r for r in table.rows if any("/api-" in p for p in r.pods)]
    assert len(api) == 1 and len(api[0].pods) == 2
    assert all(r.identity >= 256 for r in table.rows)
    assert len({r.identity for r in table.rows}) == 3
    assert table.simulated and "simulated" in table.to_text()
