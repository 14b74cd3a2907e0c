"""The HTTP matrix: sources x requests, each cell allowed, 403 or dropped (lab 05)."""

from __future__ import annotations

from labkit.matrix import HttpMatrix, Observation, request_label
from labkit.model import Denial, HttpRequest, Traffic
from labkit.policy import Engine, build_state, parse_text

STATE = """
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
spec: {containers: [{name: c, image: x}]}
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: shop, labels: {app: db}}
spec: {containers: [{name: c, image: x}]}
---
apiVersion: v1
kind: Pod
metadata: {name: api, namespace: shop, labels: {app: api}}
spec: {containers: [{name: c, image: x}]}
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: api, namespace: shop}
spec:
  endpointSelector: {matchLabels: {app: api}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: web}}]
      toPorts:
        - ports: [{port: "8080", protocol: TCP}]
          rules:
            http:
              - {method: GET, path: "/products/[0-9]+"}
              - {method: POST, path: /orders, headers: ["X-Client: web"]}
"""
REQUESTS = [HttpRequest("GET", "/products/42"), HttpRequest("GET", "/products/42/reviews"),
            HttpRequest("POST", "/orders"),
            HttpRequest("POST", "/orders", headers={"X-Client": "web"})]


def matrix() -> HttpMatrix:
    engine = Engine(build_state(parse_text(STATE)), cni="cilium")
    return HttpMatrix.build(engine, "shop/api", 8080, ["shop/web", "shop/db"], REQUESTS,
                            names={"shop/web": "web", "shop/db": "db", "shop/api": "api"})


def test_cells_are_allowed_403_or_dropped() -> None:
    m = matrix()
    assert [m.outcome("shop/web", r) for r in REQUESTS] == ["allowed", "403", "403", "allowed"]
    assert [m.outcome("shop/db", r) for r in REQUESTS] == ["dropped"] * 4
    # a header makes another request: both POST /orders are in the matrix
    assert request_label(REQUESTS[3]) == "POST /orders +X-Client"
    assert len(m.cells) == 8


def test_observed_differences_show_expected_then_observed() -> None:
    m = matrix()
    observed = {t: Observation(True, None, "HTTP 200") for t in m.traffic()}
    seen = m.with_observed(observed)
    assert len(seen.diff()) == 6
    text = seen.to_text()
    assert "403 → allowed" in text and "dropped → allowed" in text
    assert "6 requests differ from expected" in seen.summary()
    same = m.with_observed({t: Observation(m.cell(t.source, t.http).expected.allowed,
                                           m.cell(t.source, t.http).expected.denial)
                            for t in m.traffic() if t.http is not None})
    assert not same.diff() and "observed matches expected" in same.summary()


def test_renders_as_html_and_json() -> None:
    m = matrix()
    html = m._repr_html_()
    assert "<table" in html and "GET /products/42" in html and "403" in html
    data = m.as_dict()
    assert {c["outcome"] for c in data["cells"]} == {"allowed", "403", "dropped"}
    # two requests differing only in a header are two traffic keys
    assert Traffic("a/b", "c/d", 1, "TCP", REQUESTS[2]) != Traffic("a/b", "c/d", 1, "TCP",
                                                                   REQUESTS[3])
    cell = m.cell("shop/web", REQUESTS[1])
    assert cell.expected.denial is Denial.HTTP_403
