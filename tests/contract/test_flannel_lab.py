"""The lab-01 scenario, the same assertions on every backend: sim always, kind with --kind.

The sim is the oracle; on kind the same steps run against a real cluster, and the
assertions are about behaviour (Ready nodes, addresses, probe results), not objects.
"""

from __future__ import annotations

import ipaddress

from labkit import Lab
from labkit.environments import environments_dir

POLICIES = environments_dir() / "policies" / "shop"


def test_flannel_lab_end_to_end(lab: Lab) -> None:
    status = lab.up()
    assert status.exists and not status.ready
    assert all(not n.ready for n in status.nodes)
    assert all("cni plugin not initialized" in n.message for n in status.nodes)
    coredns = [p for p in status.pods if p.name.startswith("coredns")]
    assert coredns and all(p.phase == "Pending" for p in coredns)

    verification = lab.install_cni("flannel")
    assert verification.ok, verification.to_text()
    assert lab.cni == "flannel"
    nodes = lab.nodes()
    assert all(n.ready for n in nodes)
    for pod in lab.pods("kube-system"):
        if pod.name.startswith("coredns"):
            node = next(n for n in nodes if n.name == pod.node)
            assert ipaddress.ip_address(pod.ip) in ipaddress.ip_network(node.pod_cidr)

    lab.deploy_shop()
    shop = lab.workload_pods()
    assert {p.split("/")[0] for p in shop} == {"shop-web", "shop-api"}
    assert len(shop) == 4

    open_matrix = lab.matrix()
    assert all(c.observed and c.observed.allowed for c in open_matrix.cells.values())
    assert open_matrix.diff() == []

    lab.apply(POLICIES)
    m = lab.matrix()
    db = lab.resolve("shop-api/db")
    frontend = lab.resolve("shop-web/frontend")
    api = lab.resolve("shop-api/api")
    blocked = m.cell(frontend, db)
    assert blocked.expected.allowed is False           # what the policy means
    assert blocked.observed is not None and blocked.observed.allowed  # Flannel ignores it
    assert m.cell(frontend, api).expected.allowed and m.cell(frontend, api).observed.allowed
    assert {(c.source, c.destination) for c in m.diff()} >= {(frontend, db), (db, api)}
    assert m.simulated == lab.simulated


def test_apply_is_idempotent_and_deterministic(lab: Lab) -> None:
    lab.up()
    lab.install_cni("flannel")
    lab.deploy_shop()
    first = {p.key: (p.ip, p.node) for p in lab.pods()}
    lab.deploy_shop()
    assert {p.key: (p.ip, p.node) for p in lab.pods()} == first
