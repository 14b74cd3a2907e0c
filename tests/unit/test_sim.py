"""The sim backend: deterministic, CNI-aware, mirroring kind's documented behaviour."""

from __future__ import annotations

import pytest

from labkit import Lab, UnknownKindError
from labkit.backends.sim.backend import CLUSTERS
from labkit.backends.sim.ipam import NodeRangeIpam, node_cidrs
from labkit.backends.sim.names import SAFE_ALPHABET, pod_suffix, template_hash
from labkit.errors import BackendUnsupported, ClusterError


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABKIT_PROGRESS", "off")
    CLUSTERS.clear()


def shop_lab() -> Lab:
    lab = Lab("flannel", backend="sim")
    lab.up()
    lab.install_cni("flannel")
    lab.deploy_shop()
    return lab


def test_same_run_gives_same_names_and_ips() -> None:
    first = {(p.key, p.ip, p.node) for p in shop_lab().pods()}
    CLUSTERS.clear()
    second = {(p.key, p.ip, p.node) for p in shop_lab().pods()}
    assert first == second


def test_pod_names_look_like_replicaset_pods() -> None:
    lab = shop_lab()
    api = [p for p in lab.pods("shop-api") if p.labels["app"] == "api"]
    assert len(api) == 2
    for pod in api:
        _, thash, suffix = pod.name.rsplit("-", 2)
        assert len(thash) == 10 and len(suffix) == 5
        assert set(thash + suffix) <= set(SAFE_ALPHABET)
        assert pod.labels["pod-template-hash"] == thash
    assert template_hash("x") != template_hash("y") and pod_suffix("x") == pod_suffix("x")


def test_nodes_not_ready_and_coredns_pending_until_cni() -> None:
    lab = Lab("flannel", backend="sim")
    lab.up()
    rows = lab.status().nodes
    assert [n.ready for n in rows] == [False, False, False]
    # samples/kubectl-nodes-pods/node_ready_condition_message_kind_disableDefaultCNI_...
    assert rows[0].message.endswith("Network plugin returns error: cni plugin not initialized")
    # kind's controller manager assigns each node's podCIDR at registration, before any CNI
    # (lab 01 teaches it): NotReady nodes already have their /24.
    assert [n.pod_cidr for n in rows] == ["10.244.0.0/24", "10.244.1.0/24", "10.244.2.0/24"]
    pods = {p.name: p for p in lab.status().pods}
    assert all(p.phase == "Pending" and not p.ip for n, p in pods.items()
               if n.startswith(("coredns", "local-path")))
    assert all(p.phase == "Running" for n, p in pods.items() if n.startswith("kube-proxy"))
    with pytest.raises(ClusterError, match="no CNI"):
        lab.matrix()


def test_flannel_gives_each_node_a_24_and_pods_start_at_2() -> None:
    lab = shop_lab()
    cidrs = {n.name: n.pod_cidr for n in lab.nodes()}
    assert cidrs == {"cni-lab-control-plane": "10.244.0.0/24", "cni-lab-worker": "10.244.1.0/24",
                     "cni-lab-worker2": "10.244.2.0/24"}
    coredns = sorted(p.ip for p in lab.pods("kube-system") if p.name.startswith("coredns"))
    assert coredns == ["10.244.0.2", "10.244.0.3"]
    # Workloads avoid the tainted control plane and spread over the workers.
    api_nodes = sorted(p.node for p in lab.pods("shop-api") if p.labels["app"] == "api")
    assert api_nodes == ["cni-lab-worker", "cni-lab-worker2"]


def test_ipam_is_host_local_like() -> None:
    ipam = NodeRangeIpam(node_cidrs("10.244.0.0/16", ["a", "b"]))
    assert [ipam.allocate("a"), ipam.allocate("a"), ipam.allocate("b")] == \
        ["10.244.0.2", "10.244.0.3", "10.244.1.2"]
    ipam.release("10.244.0.2")
    assert ipam.allocate("a") == "10.244.0.4"  # no immediate reuse


def test_services_get_cluster_ips_and_endpoints() -> None:
    lab = shop_lab()
    cluster = CLUSTERS["cni-lab"]
    assert cluster.services["default/kubernetes"].cluster_ip == "10.96.0.1"
    assert cluster.services["kube-system/kube-dns"].cluster_ip == "10.96.0.10"
    api = cluster.services["shop-api/api"]
    assert api.cluster_ip.startswith("10.96.")
    ips = sorted(f"{p.ip}:8080" for p in lab.pods("shop-api") if p.labels["app"] == "api")
    assert cluster.endpoints("shop-api/api") == ips


def test_crd_kinds_the_cni_lacks_are_rejected() -> None:
    lab = shop_lab()
    cnp = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: x, namespace: shop-api}
spec: {endpointSelector: {}}
"""
    with pytest.raises(UnknownKindError, match='no matches for kind "CiliumNetworkPolicy"'):
        lab.apply(cnp)


def test_scaling_and_deleting_a_deployment() -> None:
    lab = shop_lab()
    doc = {"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "web", "namespace": "shop-web"},
           "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                                 "spec": {"containers": [{"name": "c", "image": "i"}]}}}}
    lab.apply(doc)
    assert len([p for p in lab.pods("shop-web") if p.labels["app"] == "web"]) == 3
    doc["spec"]["replicas"] = 1
    lab.apply(doc)
    assert len([p for p in lab.pods("shop-web") if p.labels["app"] == "web"]) == 1
    assert lab.delete(doc) == ["Deployment shop-web/web"]
    assert not [p for p in lab.pods("shop-web") if p.labels["app"] == "web"]


def test_closed_port_is_refused_whatever_the_policy() -> None:
    lab = shop_lab()
    cell = lab.probe("shop-web/frontend", "shop-api/api", 9999)
    assert cell.expected.allowed and cell.observed is not None
    assert not cell.observed.allowed and "connection refused" in cell.observed.detail


def test_kindnet_stage_enforces_network_policy(tmp_path, monkeypatch) -> None:
    import shutil

    from labkit.environments import environments_dir

    env = tmp_path / "environments"
    shutil.copytree(environments_dir(), env)
    cfg = env / "stages" / "flannel" / "kind-config.yaml"
    cfg.write_text(cfg.read_text().replace("disableDefaultCNI: true", "disableDefaultCNI: false"))
    monkeypatch.setenv("LABKIT_ENVIRONMENTS", str(env))
    lab = Lab("flannel", backend="sim")
    lab.up()
    assert lab.cni == "kindnet" and all(n.ready for n in lab.nodes())
    lab.deploy_shop()
    lab.apply(env / "policies" / "shop")
    m = lab.matrix()
    assert m.diff() == []  # kindnet enforces NetworkPolicy: observed == expected
    assert not m.cell(lab.resolve("shop-web/frontend"), lab.resolve("shop-api/db")).observed.allowed


def test_exec_is_limited_on_sim() -> None:
    lab = shop_lab()
    pod = lab.resolve("shop-web/frontend")
    assert lab.exec(pod, ["hostname"]).stdout.strip() == pod.split("/")[1]
    with pytest.raises(BackendUnsupported):
        lab.exec(pod, ["ip", "route"])
