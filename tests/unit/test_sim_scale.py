"""The sim at scale behaves like a cluster: 110 pods a node, the rest Pending."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from labkit import Lab
from labkit.backends.sim.backend import CLUSTERS, SimBackend
from labkit.backends.sim.cluster import MAX_PODS

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from sim_scale import stage, workload  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABKIT_PROGRESS", "off")
    CLUSTERS.clear()


def lab_with(workers: int) -> Lab:
    lab = Lab(backend_impl=SimBackend(stage(workers)))
    lab.up()
    lab.install_cni("flannel")
    return lab


def test_pods_beyond_every_nodes_capacity_stay_pending_with_the_schedulers_words() -> None:
    lab = lab_with(2)
    lab.apply(workload(300, 0))
    pods = lab.status().pods
    per_node: dict[str, int] = {}
    for p in pods:
        if p.phase == "Running":
            per_node[p.node] = per_node.get(p.node, 0) + 1
    assert per_node and max(per_node.values()) == MAX_PODS
    mine = [p for p in pods if p.namespace.startswith("ns")]
    running = [p for p in mine if p.phase == "Running"]
    pending = [p for p in mine if p.phase == "Pending"]
    # each worker also runs its DaemonSet pods (kube-proxy, kube-flannel ...)
    system = sum(1 for p in pods if not p.namespace.startswith("ns") and "worker" in p.node)
    room = 2 * MAX_PODS - system
    assert (len(running), len(pending)) == (room, 300 - room)
    assert all(p.ip and p.node.endswith(("worker", "worker2")) for p in running)
    assert not any(p.ip for p in pending)
    assert pending[0].reason == (
        "0/3 nodes are available: 1 node(s) had untolerated taint "
        "{node-role.kubernetes.io/control-plane: }, 2 Too many pods. preemption: 0/3 nodes "
        "are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims "
        "found for incoming pod.")
    # the matrix covers the running pods only, and deleting some frees room for the others
    assert len(lab.matrix().sources) == len(running)
    lab.delete([d for d in workload(300, 0) if d["metadata"]["name"] in ("app0", "app1")])
    after = [p for p in lab.status().pods if p.namespace.startswith("ns")]
    assert sum(1 for p in after if p.phase == "Running") == room
    assert sum(1 for p in after if p.phase == "Pending") == len(pending) - 20


def test_a_thousand_pod_cluster_deploys_and_gives_its_full_matrix() -> None:
    lab = lab_with(10)
    lab.apply(workload(1000, 40))
    m = lab.matrix()
    assert len(m.sources) == len(m.destinations) == 1000
    assert 0 < m.grid.allowed_count() < m.grid.cells
    # Flannel enforces nothing: exactly the cells the policies deny differ
    assert m.differ_count() == m.grid.cells - m.grid.allowed_count()


def test_a_node_out_of_addresses_leaves_its_pods_pending_with_the_ipam_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import labkit.backends.sim.cluster as cluster

    monkeypatch.setattr(cluster, "MAX_PODS", 1000)  # room for more pods than a /24 holds
    lab = lab_with(1)
    lab.apply(workload(300, 0))
    mine = [p for p in lab.status().pods if p.namespace.startswith("ns")]
    running = [p for p in mine if p.phase == "Running"]
    pending = [p for p in mine if p.phase == "Pending"]
    assert len({p.ip for p in running}) == len(running) > 200 and pending
    assert "no IP addresses available in range set: 10.244.1.1-10.244.1.254" in pending[0].reason
    assert pending[0].reason.startswith("FailedCreatePodSandBox on scale-worker:")
