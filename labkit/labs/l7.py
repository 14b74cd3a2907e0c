"""Lab 05 (HTTP-aware policies): the HTTP matrix, the policyEnforcementMode erratum, and the
L7 exercise judged by meaning.

Facts (cni-ground-truth.md §5.3, §6 (a)): an HTTP request no rule admits is answered by
Cilium's Envoy with ``403 Forbidden`` and the body ``Access denied``; a connection no rule
admits at L3/L4 is dropped and the client times out (curl exit 28). ``policyEnforcementMode
=always`` does not "enable L7": it puts every endpoint in default-deny.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import yaml

from labkit.cni.cilium import recipe as cilium
from labkit.labs.cilium import clean_slate, ensure_cilium
from labkit.labs.common import (
    POLICIES,
    SHOP_PORT,
    CheckResult,
    describe,
    exercise_check,
    fail,
    judge_policy,
    not_attempted,
    reference,
    require_cni,
)
from labkit.labs.exercise import summary
from labkit.matrix import Cell, HttpMatrix, request_label
from labkit.model import HttpRequest

if TYPE_CHECKING:
    from labkit.lab import Lab

__all__ = ["ARTICLE_POLICY", "DNS_POLICY", "L7_POLICIES", "REQUESTS", "SERVED_NAMES",
           "api_pods", "clean_slate", "dns_aware_egress", "enforcement_always",
           "ensure_cilium", "exercise_products_read_only", "http_goal", "http_matrix",
           "l7_outcomes", "reference"]

L7_POLICIES = POLICIES / "cilium-l7"
DNS_POLICY = POLICIES / "cilium-dns" / "frontend-egress.yaml"
#: Names the lab serves itself, outside the cluster (labkit.cni.cilium.served); the policy
#: allows the first by name.
SERVED_NAMES = ("catalog.shop.test", "ads.tracker.test")
#: The article's policy, as printed (with its `kubectl apply` lost in a heading).
ARTICLE_POLICY = """apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: backend-allow-healthz
spec:
  endpointSelector:
    matchLabels:
      app: backend
  ingress:
    - fromEndpoints:
        - matchLabels:
            app: frontend
      toPorts:
        - ports:
            - port: "80"
              protocol: TCP
          rules:
            http:
              - method: "GET"
                path: "/healthz"
"""
#: The requests of the lab's HTTP matrix.
REQUESTS = (
    HttpRequest("GET", "/healthz"),
    HttpRequest("GET", "/products/42"),
    HttpRequest("GET", "/products/42/reviews"),
    HttpRequest("POST", "/orders"),
    HttpRequest("POST", "/orders", headers={"X-Shop-Client": "web"}),
    HttpRequest("GET", "/admin"),
)


def api_pods(lab: Lab) -> list[str]:
    """The API's replicas, sorted: the first is the matrix's destination, the second a source."""
    return sorted(p.key for p in lab.pods("shop-api") if p.labels.get("app") == "api")


def http_matrix(lab: Lab, title: str = "") -> HttpMatrix:
    """Frontend, the other API replica and the database, each sending REQUESTS to the API."""
    api = api_pods(lab)
    sources = ["shop-web/frontend", api[-1], "shop-api/db"]
    return lab.http_matrix(sources, api[0], REQUESTS, SHOP_PORT, title=title)


#: What lab 05's policy must do, request by request: (source, request label) -> outcome.
def _want(lab: Lab) -> dict[tuple[str, str], str]:
    api = api_pods(lab)
    front, other, db = lab.resolve("shop-web/frontend"), api[-1], lab.resolve("shop-api/db")
    out = {}
    for r in REQUESTS:
        label = request_label(r)
        out[(front, label)] = "allowed" if label in (
            "GET /healthz", "GET /products/42", "POST /orders +X-Shop-Client") else "403"
        out[(other, label)] = "allowed"  # the L3/L4 rule: every request
        out[(db, label)] = "dropped"  # no rule admits the database at all
    return out


def l7_outcomes(lab: Lab, matrix: HttpMatrix) -> CheckResult:
    """Every cell of the HTTP matrix is what the policy says: allowed, 403 or dropped."""
    name = "HTTP matrix: allowed, 403 and dropped"
    want = _want(lab)
    wrong = [f"{src} {label}: {matrix.outcome(src, label)}, wanted {w}"
             for (src, label), w in want.items() if matrix.outcome(src, label) != w]
    if wrong:
        raise fail(name, "; ".join(wrong[:4]),
                   f"apply {L7_POLICIES.name}/ (lab.apply(checks_l7.L7_POLICIES)) and check "
                   "that Cilium's Envoy runs (cilium status: Envoy DaemonSet OK)")
    if matrix.diff():
        raise fail(name, f"observed differs from expected: {describe(matrix.diff()[0])}",
                   "on Cilium expected and observed agree")
    counts = {w: sum(1 for v in want.values() if v == w) for w in ("allowed", "403", "dropped")}
    return CheckResult(name, True, f"{counts['allowed']} allowed, {counts['403']} answered 403 "
                       f"by the proxy, {counts['dropped']} dropped; observed equals expected",
                       [matrix.summary()], lab.simulated)


def enforcement_always(lab: Lab) -> CheckResult:
    """Erratum (a) on a simulated cluster: ``policyEnforcementMode=always`` isolates every
    endpoint, DNS included; reverted afterwards. ``lab`` must be a sim lab."""
    name = "policyEnforcementMode=always is default-deny everywhere"
    ensure_cilium(lab)
    dns = sorted(p.key for p in lab.pods("kube-system") if p.labels.get("k8s-app") == "kube-dns")
    pairs = [("shop-web/frontend", dns[0], 53, "UDP"),
             ("shop-web/frontend", "shop-api/api", SHOP_PORT, "TCP")]
    before = cilium.RECIPE.set_policy_enforcement(lab, "always")
    try:
        during = [lab.probe(s, d, p, proto) for s, d, p, proto in pairs]
    finally:
        cilium.RECIPE.set_policy_enforcement(lab, before)
    after = [lab.probe(s, d, p, proto) for s, d, p, proto in pairs]
    if any(c.seen.allowed for c in during):
        raise fail(name, "with always, a connection no policy allows still went through: "
                   + "; ".join(describe(c) for c in during if c.seen.allowed),
                   "always isolates every endpoint in both directions")
    if not all(c.seen.allowed for c in after):
        raise fail(name, "after reverting to default, connections are still blocked",
                   "clean_slate(lab) removes the lab's policies")
    return CheckResult(name, True, "with always, DNS and the shop were dropped with no policy "
                       f"applied; back on '{before}', both work again",
                       [f"always: {describe(c)}; {c.seen.detail.split('; ')[-1]}"
                        for c in during] + [f"{before}: {describe(c)}" for c in after],
                       lab.simulated)


def dns_aware_egress(lab: Lab) -> CheckResult:
    """toFQDNs: the frontend reaches catalog.shop.test (allowed by name), not
    ads.tracker.test; without the DNS rule it reaches neither, because Cilium never sees the
    lookup and so never learns the address. Both names are served by the lab itself."""
    name = "DNS-aware egress (toFQDNs)"
    ensure_cilium(lab)
    addresses = {host: cilium.RECIPE.serve_name(lab, host) for host in SERVED_NAMES}

    def probe(host: str) -> Cell:  # by name: the pod looks it up, as toFQDNs needs
        return lab.probe("shop-web/frontend", f"ip:{addresses[host]}", 80,
                         http=HttpRequest("GET", "/", host=host))

    lab.apply(DNS_POLICY)
    ok, other = probe("catalog.shop.test"), probe("ads.tracker.test")
    doc = yaml.safe_load(DNS_POLICY.read_text(encoding="utf-8"))
    doc["spec"]["egress"] = [r for r in doc["spec"]["egress"] if "toFQDNs" in r
                             or "shop-api" in str(r)]
    lab.apply(doc)  # the same policy without its DNS rule
    unlearned = probe("catalog.shop.test")
    clean_slate(lab)
    if not ok.seen.allowed or other.seen.allowed:
        raise fail(name, f"{describe(ok)}; {describe(other)}",
                   "toFQDNs admits the addresses of matching names the pod looked up")
    if unlearned.seen.allowed:
        raise fail(name, f"without the DNS rule: {describe(unlearned)}",
                   "without rules.dns Cilium learns no address, so toFQDNs admits nothing")
    why = next((r for r in unlearned.expected.reasons if "never learns" in r), "")
    seen = unlearned.seen.detail.split("; ")[-1]  # on kind: curl's own words
    why = why if seen in why else f"{why}; observed: {seen}"
    return CheckResult(name, True, "catalog.shop.test allowed by name, ads.tracker.test "
                       "dropped; without the DNS rule nothing is learned",
                       [f"catalog.shop.test ({addresses['catalog.shop.test']}): {describe(ok)}",
                        f"ads.tracker.test ({addresses['ads.tracker.test']}): {describe(other)}",
                        f"no DNS rule: {describe(unlearned)} ({why})"], lab.simulated)


# -- exercise -------------------------------------------------------------------------------
EXERCISE_ID = "lab05-ex1"
EXERCISE_REFERENCE = "05-products-read-only"
#: The requests the exercise is judged on (with every pod, the decoys and an outside address
#: as sources): the ones it keeps open, and the ones that tell the usual mistakes apart.
EXERCISE_REQUESTS = (
    HttpRequest("GET", "/healthz"), HttpRequest("GET", "/products/7"),
    HttpRequest("GET", "/products/1234"), HttpRequest("GET", "/products/7/reviews"),
    HttpRequest("GET", "/products/abc"), HttpRequest("POST", "/products/7"),
    HttpRequest("GET", "/admin"),
)


@exercise_check(EXERCISE_ID)
def exercise_products_read_only(lab: Lab, manifest: Any) -> CheckResult:
    """Exercise: the frontend may only GET /healthz and GET /products/<number>; every other
    request from it gets 403; nobody else reaches the API. Judged by meaning over the whole
    cluster, the decoys and a request set (labkit.labs.exercise), then probed."""
    name = "exercise: a read-only product API"
    if manifest is None:
        return not_attempted(name, "write your CiliumNetworkPolicy in MY_L7_POLICY")
    clean_slate(lab)
    applied = judge_policy(lab, name, manifest, EXERCISE_ID, EXERCISE_REFERENCE,
                           what="MY_L7_POLICY", requests=EXERCISE_REQUESTS)
    matrix = lab.http_matrix(["shop-web/frontend", "shop-api/db"], "shop-api/api",
                             [HttpRequest("GET", "/products/7"),
                              HttpRequest("GET", "/products/7/reviews")],
                             SHOP_PORT, title="your policy, probed")
    if matrix.diff():
        raise fail(name, f"the cluster disagrees: {describe(matrix.diff()[0])}",
                   "the engine accepted your policy; is Cilium's Envoy running?")
    return CheckResult(name, True, "your policy means what the exercise asks, and the cluster "
                       "does it", [*applied.removed_note(),
                                   f"same outcome as the reference for {len(EXERCISE_REQUESTS)} "
                                   "requests from every pod, the decoys and an outside address",
                                   matrix.summary()], lab.simulated)


def http_goal(lab: Lab) -> CheckResult:
    """Lab 05 reached its goal: the L7 policy's matrix is allowed / 403 / dropped as designed."""
    name = "lab 05 (L7 policies)"
    require_cni(lab, name, "cilium", "run lab 04 first (stage cilium)")
    clean_slate(lab)
    lab.apply(L7_POLICIES)
    result = l7_outcomes(lab, http_matrix(lab, "lab 05 closing check"))
    return CheckResult(name, True, result.message,
                       [*result.details, summary(lab, [EXERCISE_ID])], lab.simulated)
