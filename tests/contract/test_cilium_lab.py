"""Lab 04 on every backend (sim always, kind with --kind): a new cluster that runs Cilium.

Behaviour, not objects: nodes Ready after the install, where addresses come from, services
without kube-proxy, what probes see for NetworkPolicy, CNP, CCNP and L7 rules.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest

from labkit import CheckFailed, HttpRequest, Lab
from labkit.backends.sim.backend import CLUSTERS
from labkit.cni.cilium import recipe as cilium
from labkit.labs import cilium as lc
from labkit.model import Denial


@pytest.fixture(params=["sim", pytest.param("kind", marks=pytest.mark.kind)])
def lab(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    monkeypatch.setenv("LABKIT_PROGRESS", "off")
    CLUSTERS.clear()
    lab = Lab("cilium", backend=request.param)
    lab.down()
    yield lab
    lab.down()


def test_new_cluster_then_cilium(lab: Lab) -> None:
    lab.up()
    assert not lab.status().ready  # no default CNI
    assert not [p for p in lab.pods("kube-system") if p.name.startswith("kube-proxy")]
    verification = lab.install_cni("cilium")
    assert verification.ok and lab.cni == "cilium"
    status = cilium.RECIPE.status(lab)
    assert status.ok and status.simulated == lab.simulated
    lab.deploy_shop()
    nodes = {n.name: ipaddress.ip_network(n.pod_cidr) for n in lab.nodes()}
    shop = [p for p in lab.pods() if p.namespace in ("shop-web", "shop-api")]
    assert shop and all(ipaddress.ip_address(p.ip) in nodes[p.node] for p in shop)
    assert lc.kube_proxy_replaced(lab).passed


def test_policies_of_every_kind_with_l7(lab: Lab) -> None:
    lc.ensure_cilium(lab)
    lab.apply("""
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: api-l7, namespace: shop-api}
spec:
  endpointSelector: {matchLabels: {app: api}}
  ingress:
    - fromEndpoints:
        - matchLabels: {app: frontend, k8s:io.kubernetes.pod.namespace: shop-web}
      toPorts:
        - ports: [{port: "8080", protocol: TCP}]
          rules:
            http: [{method: GET, path: /healthz}]
---
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: db-no-egress}
spec:
  endpointSelector: {matchLabels: {app: db}}
  egressDeny:
    - toEntities: [all]
""")
    lab.apply(lc.NETWORK_POLICIES[0])
    front, api, db = (lab.resolve(a) for a in ("shop-web/frontend", "shop-api/api",
                                                 "shop-api/db"))
    ok = lab.probe(front, api, http=HttpRequest("GET", "/healthz"))
    assert ok.seen.allowed and ok.matches
    denied = lab.probe(front, api, http=HttpRequest("POST", "/orders"))
    assert not denied.seen.allowed and denied.seen.denial is Denial.HTTP_403 and denied.matches
    dropped = lab.probe(db, api)
    assert not dropped.seen.allowed and dropped.seen.denial is Denial.DROP and dropped.matches
    # the NetworkPolicy of lab 01: only the API reaches the database
    assert lab.probe(api, db).seen.allowed
    assert not lab.probe(front, db).seen.allowed


def test_exercise_is_judged_by_meaning(lab: Lab) -> None:
    lc.ensure_cilium(lab)
    wrong = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: api-from-frontend, namespace: shop-api}
spec:
  endpointSelector: {matchLabels: {app: api}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: frontend}}]
"""
    with pytest.raises(CheckFailed, match="policy's own namespace"):
        lc.exercise_cnp_frontend_to_api(lab, wrong)
    too_open = wrong.replace("[{matchLabels: {app: frontend}}]",
                             "[{matchLabels: {k8s:io.kubernetes.pod.namespace: shop-web}}]")
    with pytest.raises(CheckFailed, match="shop-web/debug"):  # the decoy gets in
        lc.exercise_cnp_frontend_to_api(lab, too_open)
    # the attempt stays applied until the next one replaces it
    assert [p.name for p in lab.impl.state().policies
            if p.kind == "CiliumNetworkPolicy"] == ["api-from-frontend"]
    no_ports = wrong.replace("[{matchLabels: {app: frontend}}]",
                             "[{matchLabels: {app: frontend, k8s:io.kubernetes.pod.namespace: "
                             "shop-web}}]")
    with pytest.raises(CheckFailed, match="no `toPorts`"):
        lc.exercise_cnp_frontend_to_api(lab, no_ports)
    right = wrong.replace("[{matchLabels: {app: frontend}}]",
                          "[{matchLabels: {app: frontend, k8s:io.kubernetes.pod.namespace: "
                          "shop-web}}]\n      toPorts: [{ports: [{port: \"8080\"}]}]")
    assert lc.exercise_cnp_frontend_to_api(lab, right).passed
    assert lc.cilium_goal(lab).passed


def test_l7_matrix_enforcement_modes_and_fqdn(lab: Lab) -> None:
    from labkit.labs import l7

    l7.ensure_cilium(lab)
    lab.apply(l7.L7_POLICIES)
    assert l7.l7_outcomes(lab, l7.http_matrix(lab)).passed
    if lab.simulated:  # both are shown on a simulated cluster only
        assert l7.enforcement_always(lab).passed
        assert l7.dns_aware_egress(lab).passed
    wrong = l7.reference("05-products-read-only").replace('"/products/[0-9]+"',
                                                           '"/products/.*"')
    with pytest.raises(CheckFailed, match="WHOLE value"):
        l7.exercise_products_read_only(lab, wrong)
    assert l7.exercise_products_read_only(lab, l7.reference("05-products-read-only")).passed
    assert l7.http_goal(lab).passed
