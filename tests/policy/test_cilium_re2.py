"""Cilium HTTP rules match as Envoy does, with RE2: what it accepts, refuses and matches, in
time linear in the request (a pattern that hangs a backtracking engine returns at once)."""

from __future__ import annotations

import time

import pytest

from labkit.errors import ManifestError
from labkit.model import ClusterState, HttpRequest
from labkit.policy.cilium.l7 import HttpRule
from labkit.policy.kinds import parse_text

POLICY = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {{name: l7, namespace: shop}}
spec:
  endpointSelector: {{}}
  ingress:
  - toPorts:
    - ports: [{{port: "80", protocol: TCP}}]
      rules:
        http: [{{method: {method}, path: {path}}}]
"""


def matches(path_rule: str, path: str, method: str = "GET", method_rule: str = "GET") -> bool:
    parse_text(POLICY.format(path=f"'{path_rule}'", method=f"'{method_rule}'"))  # accepted
    return HttpRule(method=method_rule, path=path_rule).matches(
        HttpRequest(method, path), ClusterState())


def test_a_catastrophic_backtracking_pattern_answers_at_once() -> None:
    started = time.monotonic()
    assert not matches("/(a+)+$", "/" + "a" * 4096 + "b")
    assert matches("/(a+)+$", "/" + "a" * 4096)
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("pattern", ["/a++", "/(?>a)", "/(?=a).*", "/(a)\\1", "/a{1001}"])
def test_what_re2_refuses_is_refused(pattern: str) -> None:
    with pytest.raises(ManifestError, match="invalid regular expression"):
        parse_text(POLICY.format(path=f"'{pattern}'", method="GET"))


def test_re2_syntax_means_what_re2_says() -> None:
    assert matches("/v1/.*", "/v1/orders")
    assert not matches("/v1", "/v1/orders")  # the whole value must match
    assert matches(".*", "/", method="get", method_rule="(?i)GET")  # (?i) is RE2 syntax
    assert matches("/[[:alpha:]]+", "/abc")  # a POSIX class inside brackets
    assert not matches("/[[:alpha:]]+", "/a1")
    assert not matches("/[[:alpha:]]+", "/:")  # not the characters ':', 'a', 'l', ...
