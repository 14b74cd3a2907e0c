"""Lab 08's Gateway API add-on: what the kind half runs and sends (on fakes; no kind cluster
runs here), the sim model (CRDs first, the controller, addresses, persistence), how answers
are counted, and the split checks judging meaning then measurement."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from labkit.addons import gateway_api, metallb
from labkit.backends.kind.backend import KindBackend
from labkit.backends.kind.guard import load_kubeconfig
from labkit.backends.sim import backend as sim_backend
from labkit.environments import Stage, pinned
from labkit.errors import CheckFailed, ClusterError, UnknownKindError
from labkit.gateway import Request, Result, router_from_text
from labkit.lab import Lab
from labkit.labs import mesh
from labkit.model import Pod
from tests.unit.kindfakes import FakeKube, FakeRunner, node

CONTEXT = "kind-cni-lab-cilium"
CRDS = """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gateways.gateway.networking.k8s.io}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: httproutes.gateway.networking.k8s.io}
"""


# -- kind: the commands and objects ------------------------------------------------------------

@pytest.fixture
def kind(tmp_path: Path) -> tuple[KindBackend, FakeRunner, FakeKube]:
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump({
        "current-context": CONTEXT,
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT}}],
        "clusters": [{"name": CONTEXT, "cluster": {"server": "https://127.0.0.1:3"}}]}))
    config = load_kubeconfig([path])
    run, kube = FakeRunner(["cni-lab-cilium"]), FakeKube()
    kube.served_kinds |= {"CustomResourceDefinition", "GatewayClass", "Gateway", "HTTPRoute"}
    for i, name in enumerate(("cni-lab-cilium-control-plane", "cni-lab-cilium-worker")):
        kube.add("Node", node(name, True, f"10.244.{i}.0/24", f"172.18.0.{i + 2}"))
    kube.add("DaemonSet", {"metadata": {"name": "cilium", "namespace": "kube-system",
                                        "generation": 1},
                           "status": {"observedGeneration": 1, "desiredNumberScheduled": 3,
                                      "updatedNumberScheduled": 3, "numberReady": 3}})
    b = KindBackend(Stage.load("cilium"), run=run, kube_factory=lambda ctx: kube,
                    kubeconfig_loader=lambda: config, sleep=lambda s: None,
                    workdir=tmp_path / "work")
    return b, run, kube


def test_crds_are_the_pinned_standard_install_applied_server_side(kind) -> None:
    b, _, kube = kind
    fetched = []
    gateway_api.install_crds(b, fetch=lambda url: fetched.append(url) or CRDS)
    assert fetched == [pinned("gateway_api", "standard_install")]
    assert "v1.6.1" in fetched[0]
    assert [d["metadata"]["name"] for d in kube.applied] == [
        "gateways.gateway.networking.k8s.io", "httproutes.gateway.networking.k8s.io"]
    assert gateway_api.crd_command(CONTEXT) == [
        "kubectl", "apply", "--server-side", "-f", fetched[0], "--context", CONTEXT]


def test_enable_upgrades_the_release_with_reused_values_then_restarts(kind) -> None:
    b, run, kube = kind
    gateway_api.enable(b, now=lambda: "2026-12-02T17:00:00Z")
    helm = [c for c in run.calls if c[0] == "helm"]
    assert helm == [["helm", "upgrade", "cilium", "cilium/cilium", "--kube-context", CONTEXT,
                     "--namespace", "kube-system", "--version", pinned("cilium", "version"),
                     "--reuse-values", "--set", "gatewayAPI.enabled=true"]]
    restarted = [(d["kind"], d["metadata"]["name"],
                  d["spec"]["template"]["metadata"]["annotations"]) for d in kube.applied]
    assert restarted == [
        ("Deployment", "cilium-operator", {"kubectl.kubernetes.io/restartedAt":
                                           "2026-12-02T17:00:00Z"}),
        ("DaemonSet", "cilium", {"kubectl.kubernetes.io/restartedAt": "2026-12-02T17:00:00Z"})]


def test_enable_is_idempotent_once_the_gateway_class_is_accepted(kind) -> None:
    b, run, kube = kind
    kube.add("CustomResourceDefinition", {"metadata": {
        "name": "gateways.gateway.networking.k8s.io"}})
    kube.add("ConfigMap", {"metadata": {"name": "cilium-config", "namespace": "kube-system"},
                           "data": {"enable-gateway-api": "true"}})
    kube.served_kinds.add("ConfigMap")
    kube.add("GatewayClass", {"metadata": {"name": "cilium"}, "status": {"conditions": [
        {"type": "Accepted", "status": "True"}]}})
    assert gateway_api.status(b).ok
    assert gateway_api.enable(b) == []
    assert not [c for c in run.calls if c[0] == "helm"] and not kube.applied


def test_status_without_crds_says_so(kind) -> None:
    b, _, _ = kind
    st = gateway_api.status(b)
    assert (st.crds, st.enabled, st.ok) == (False, False, False)
    assert "MISSING" in st.to_text()


def test_kind_address_is_the_gateways_status_address(kind) -> None:
    b, _, kube = kind
    kube.add("Gateway", {"metadata": {"name": "shop", "namespace": "shop-web"},
                         "status": {"addresses": [{"type": "IPAddress",
                                                   "value": "172.18.255.200"}]}})
    assert gateway_api.address(b, "shop-web/shop", timeout=1) == "172.18.255.200"


def test_curl_loop_sends_host_and_headers_quoted() -> None:
    loop = gateway_api._curl_loop("http://172.18.255.200/checkout", mesh.CANARY, 5)
    assert loop.startswith("for i in $(seq 5); do curl -sS -m 6 -X GET ")
    assert "-H 'Host: shop.example.com' -H 'X-Canary: true' " in loop
    assert loop.endswith("http://172.18.255.200/checkout || printf 'error'; echo; done")


# -- counting answers ----------------------------------------------------------------------------

SHOP = gateway_api.environments_dir() / "workloads" / "shop"
ROUTES = ((SHOP / "00-namespaces.yaml").read_text() + "\n---\n" +
          Path(gateway_api.ROUTES).read_text() + "\n---\n" +
          (gateway_api.environments_dir() / "workloads" / "shop-checkout" /
           "10-checkout.yaml").read_text().replace("{{images.agnhost}}", "agnhost"))


def test_answers_are_counted_per_backend_service_and_errors_kept() -> None:
    r = router_from_text(ROUTES)
    route = r.route(mesh.NORTH_SOUTH)
    pods = [Pod("shop-api", "checkout-v1-5d9c-abcde", {"app": "checkout", "version": "v1"}),
            Pod("shop-api", "checkout-v2-7f44-fghij", {"app": "checkout", "version": "v2"})]
    lines = ["checkout-v1-5d9c-abcde"] * 3 + ["checkout-v2-7f44-fghij", "error",
                                                "curl: (28) timed out"]
    counts = gateway_api.count_answers(lines, pods, route, r)
    assert counts == {"shop-api/checkout-v1": 3, "shop-api/checkout-v2": 1,
                      "error: error": 1, "error: curl: (28) timed out": 1}


# -- the split checks: meaning, then measurement ------------------------------------------------

def _run(counts: dict[str, int], backends: dict[str, float]) -> gateway_api.SplitRun:
    from labkit.gateway import split_check
    route = Result(200, backends)
    return gateway_api.SplitRun(mesh.NORTH_SOUTH, sum(counts.values()), counts, route,
                                split_check(counts, backends), "curl ...")


class _Lab:
    simulated = False


def test_a_measured_split_consistent_with_80_20_passes() -> None:
    res = mesh.split_consistent(_Lab(), _run({mesh.V1: 168, mesh.V2: 32}, mesh.WEIGHTS))
    assert res.passed and "84.0%" in res.message


def test_a_50_50_measurement_fails_although_the_route_means_80_20() -> None:
    with pytest.raises(CheckFailed, match="NOT consistent") as exc:
        mesh.split_consistent(_Lab(), _run({mesh.V1: 100, mesh.V2: 100}, mesh.WEIGHTS))
    assert "data path differs" in exc.value.hint


def test_a_route_that_means_another_split_fails_before_any_measurement() -> None:
    with pytest.raises(CheckFailed, match="routes send this request"):
        mesh.split_consistent(_Lab(), _run({mesh.V1: 100, mesh.V2: 100},
                                           {mesh.V1: 0.5, mesh.V2: 0.5}))


def test_the_chart_is_a_png_and_the_html_embeds_it() -> None:
    run = _run({mesh.V1: 161, mesh.V2: 39}, mesh.WEIGHTS)
    assert run.chart_png().startswith(b"\x89PNG")
    assert 'src="data:image/png;base64,' in run._repr_html_()


# -- sim: CRDs first, the controller, addresses, persistence -------------------------------------

@pytest.fixture
def sim_lab() -> Lab:
    lab = Lab("cilium", backend="sim")
    mesh.ensure_mesh(lab)
    return lab


def test_sim_refuses_gateway_objects_before_the_crds(sim_lab: Lab) -> None:
    with pytest.raises(UnknownKindError, match='no matches for kind "Gateway"'):
        gateway_api.apply(sim_lab)


def test_sim_enabled_before_the_crds_leaves_the_controller_off(sim_lab: Lab) -> None:
    gateway_api.enable(sim_lab)
    gateway_api.install_crds(sim_lab)
    gateway_api.apply(sim_lab)  # the API server stores them: the CRDs exist now
    st = gateway_api.status(sim_lab)
    assert st.crds and st.enabled and not st.ok
    assert "missing when the operator started" in st.controller
    assert gateway_api.address(sim_lab) == ""  # nothing programs the Gateway
    with pytest.raises(CheckFailed, match="Gateway controller"):
        mesh.gateway_ready(sim_lab)
    gateway_api.enable(sim_lab)  # the restart: now the operator finds the CRDs
    assert mesh.gateway_ready(sim_lab).passed


def test_sim_gateway_gets_its_service_and_a_metallb_address(sim_lab: Lab) -> None:
    gateway_api.install_crds(sim_lab)
    gateway_api.enable(sim_lab)
    gateway_api.apply(sim_lab)
    svc = sim_lab.impl.state().services["shop-web/cilium-gateway-shop"]
    assert svc.type == "LoadBalancer" and [p.port for p in svc.ports] == [80]
    first, last = metallb.pool_range(metallb.SIM_KIND_SUBNET)
    assert gateway_api.address(sim_lab) == first


def test_sim_gateway_objects_survive_a_new_process(sim_lab: Lab) -> None:
    gateway_api.install_crds(sim_lab)
    gateway_api.enable(sim_lab)
    gateway_api.apply(sim_lab)
    ip = gateway_api.address(sim_lab)
    sim_backend._flush()
    sim_backend.CLUSTERS.clear()  # as if another process opened the saved cluster
    again = Lab("cilium", backend="sim")
    assert gateway_api.address(again) == ip
    assert gateway_api.router(again).route(mesh.NORTH_SOUTH).backends == mesh.WEIGHTS


def test_sim_split_is_drawn_by_weight_and_labelled(sim_lab: Lab) -> None:
    gateway_api.install_crds(sim_lab)
    gateway_api.enable(sim_lab)
    gateway_api.apply(sim_lab)
    run = gateway_api.send(sim_lab, mesh.NORTH_SOUTH, 400)
    assert run.simulated and sum(run.counts.values()) == 400 and run.ok
    assert run == gateway_api.send(sim_lab, mesh.NORTH_SOUTH, 400)  # seeded
    assert "simulated" in run.to_text()
    other = gateway_api.send(sim_lab, Request("shop-web/shop", host="other.example.com",
                                              path="/checkout"), 10)
    assert other.counts == {"error: HTTP 404": 10} and other.check is None


def test_send_needs_requests(sim_lab: Lab) -> None:
    with pytest.raises(ClusterError, match="at least one"):
        gateway_api.send(sim_lab, mesh.NORTH_SOUTH, 0)


def test_mesh_goal_passes_on_sim(sim_lab: Lab) -> None:
    gateway_api.install_crds(sim_lab)
    gateway_api.enable(sim_lab)
    gateway_api.apply(sim_lab)
    res = mesh.mesh_goal(sim_lab)
    assert res.passed and res.simulated and len(res.details) == 4


def _tables() -> list[Any]:
    return [mesh.mtls_options(), mesh.ingress_erratum()]


def test_mtls_and_erratum_tables_say_what_is_deprecated_and_what_ingress_is() -> None:
    mtls, ingress = (t.to_text() for t in _tables())
    assert "deprecated in 1.20" in mtls and "encrypts nothing" in mtls
    assert "no WireGuard at the same time" in mtls and "no ClusterMesh" in mtls
    assert "IngressClass cilium" in ingress and "no weights" in ingress
