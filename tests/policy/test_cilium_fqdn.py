"""DNS-aware egress (toFQDNs + rules.dns) as Cilium 1.20 documents it (policy.cilium.fqdn)."""

from __future__ import annotations

import pytest

from labkit.model import Traffic
from labkit.policy import Engine, build_state, parse_text
from labkit.policy.cilium.fqdn import FqdnSelector

CLUSTER = """
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
spec: {containers: [{name: c, image: x}]}
---
apiVersion: v1
kind: Pod
metadata: {name: coredns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec: {containers: [{name: c, image: x, ports: [{containerPort: 53, protocol: UDP}]}]}
"""
DNS_RULE = """
    - toEndpoints:
        - matchLabels: {k8s:io.kubernetes.pod.namespace: kube-system, k8s-app: kube-dns}
      toPorts:
        - ports: [{port: "53", protocol: ANY}]
          rules: {dns: [{matchPattern: "%s"}]}
"""
POLICY = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: web-egress, namespace: shop}
spec:
  endpointSelector: {matchLabels: {app: web}}
  egress:
%s
    - toFQDNs: [{matchPattern: "*.shop.test"}]
      toPorts: [{ports: [{port: "443", protocol: TCP}]}]
"""
NAMES = {"catalog.shop.test": ("198.51.100.10",), "a.b.shop.test": ("198.51.100.11",),
         "tracker.example": ("198.51.100.12",)}


def engine(dns_pattern: str | None) -> Engine:
    dns = DNS_RULE % dns_pattern if dns_pattern is not None else ""
    state = build_state(parse_text(CLUSTER + "---" + POLICY % dns))
    state.dns_names = dict(NAMES)
    return Engine(state, cni="cilium")


def verdict(e: Engine, ip: str, port: int = 443) -> bool:
    return e.evaluate(Traffic("shop/web", f"ip:{ip}", port)).allowed


@pytest.mark.parametrize(("pattern", "name", "match"), [
    ("*.shop.test", "catalog.shop.test", True),
    ("*.shop.test", "CATALOG.shop.test.", True),  # case and the trailing dot do not matter
    ("*.shop.test", "shop.test", False),  # the wildcard stands for characters, not nothing+dot
    ("*.shop.test", "a.b.shop.test", False),  # and never for a dot
    ("*", "anything.at.all", True),
    ("cat*.shop.test", "catalog.shop.test", True),
])
def test_patterns(pattern: str, name: str, match: bool) -> None:
    assert FqdnSelector(match_pattern=pattern).matches(name) is match


def test_match_name_is_exact() -> None:
    assert FqdnSelector(match_name="catalog.shop.test").matches("Catalog.Shop.Test.")
    assert not FqdnSelector(match_name="catalog.shop.test").matches("x.catalog.shop.test")


def test_learned_names_are_admitted_others_not() -> None:
    e = engine("*")
    assert verdict(e, "198.51.100.10")  # catalog.shop.test matches *.shop.test
    assert not verdict(e, "198.51.100.11")  # a.b.shop.test does not
    assert not verdict(e, "198.51.100.12")  # not named at all
    assert not verdict(e, "198.51.100.10", 80)  # the right name, another port


def test_without_a_dns_rule_no_name_is_learned() -> None:
    v = engine(None).evaluate(Traffic("shop/web", "ip:198.51.100.10", 443))
    assert not v.allowed
    assert any("never learns its address" in r for r in v.reasons)


def test_the_dns_rule_limits_what_is_learned() -> None:
    e = engine("tracker.*")  # lookups of *.shop.test are refused by the DNS proxy
    assert not verdict(e, "198.51.100.10")


def test_dns_itself_is_allowed_by_the_dns_rule() -> None:
    e = engine("*")
    assert e.evaluate(Traffic("shop/web", "kube-system/coredns", 53, "UDP")).allowed
