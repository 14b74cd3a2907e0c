"""Cilium's policyEnforcementMode (security/policy/intro.rst, "Policy Enforcement Modes")."""

from __future__ import annotations

from labkit.model import Denial, Traffic
from labkit.policy import Engine, build_state, parse_text

CLUSTER = """
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
spec: {containers: [{name: c, image: x}]}
---
apiVersion: v1
kind: Pod
metadata: {name: api, namespace: shop, labels: {app: api}}
spec: {containers: [{name: c, image: x}]}
---
apiVersion: v1
kind: Pod
metadata: {name: coredns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec: {containers: [{name: c, image: x}]}
"""
WEB_TO_API = """
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: web-to-api, namespace: shop}
spec:
  endpointSelector: {matchLabels: {app: web}}
  egress:
    - toEndpoints: [{matchLabels: {app: api}}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: api-from-web, namespace: shop}
spec:
  endpointSelector: {matchLabels: {app: api}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: web}}]
"""


def engine(mode: str, policies: str = "") -> Engine:
    state = build_state(parse_text(CLUSTER + policies))
    state.policy_enforcement = mode
    return Engine(state, cni="cilium")


def test_default_isolates_only_selected_endpoints() -> None:
    e = engine("default")
    assert e.evaluate(Traffic("shop/web", "kube-system/coredns", 53, "UDP")).allowed
    assert e.evaluate(Traffic("shop/web", "shop/api", 8080)).allowed


def test_always_isolates_every_endpoint_without_any_policy() -> None:
    e = engine("always")
    dns = e.evaluate(Traffic("shop/web", "kube-system/coredns", 53, "UDP"))
    assert not dns.allowed and dns.denial is Denial.DROP
    assert any("policyEnforcementMode=always" in r for r in dns.reasons)
    assert not e.evaluate(Traffic("shop/web", "shop/api", 8080)).allowed


def test_always_still_lets_through_what_policies_allow() -> None:
    e = engine("always", WEB_TO_API)
    assert e.evaluate(Traffic("shop/web", "shop/api", 8080)).allowed
    assert not e.evaluate(Traffic("shop/api", "shop/web", 8080)).allowed
    assert not e.evaluate(Traffic("shop/web", "kube-system/coredns", 53, "UDP")).allowed


def test_never_enforces_nothing() -> None:
    e = engine("never", WEB_TO_API)
    assert e.evaluate(Traffic("shop/api", "shop/web", 8080)).allowed
    assert e.evaluate(Traffic("ip:203.0.113.9", "shop/api", 8080)).allowed
