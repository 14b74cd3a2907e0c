"""Lab 08 (service mesh without sidecars, as Cilium 1.20 really offers it): set-up, checks,
the mTLS options and the ``ingressController`` erratum.

Every split is judged twice: first what the routes *mean* (``labkit.gateway``: which backends,
with which weights, for this request), then what the data path *does* (N requests, counted
per backend, with a binomial tolerance from :func:`labkit.gateway.split_check`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from labkit.addons import gateway_api, metallb
from labkit.display import Table
from labkit.environments import pinned
from labkit.gateway import Request
from labkit.labs.cilium import ensure_cilium
from labkit.labs.common import CheckResult, fail, require_cni
from labkit.labs.metallb import installed as metallb_installed

if TYPE_CHECKING:
    from labkit.addons.gateway_api import SplitRun
    from labkit.lab import Lab

__all__ = ["ARTICLE_ENABLE", "CANARY", "EAST_WEST", "NORTH_SOUTH", "WEIGHTS", "canary_pinned",
           "ensure_mesh", "gateway_ready", "ingress_erratum", "mesh_goal", "mtls_options",
           "split_consistent"]

#: The article's "enable it" (erratum (b), cni-ground-truth.md §6).
ARTICLE_ENABLE = ("helm upgrade cilium cilium/cilium --namespace kube-system --reuse-values "
                  "--set ingressController.enabled=true")
GATEWAY = "shop-web/shop"
HOST = "shop.example.com"
V1, V2 = "shop-api/checkout-v1", "shop-api/checkout-v2"
#: What the checkout-split route means: 80 % to v1, 20 % to v2.
WEIGHTS = {V1: 0.8, V2: 0.2}
#: The requests of the lab: north-south through the Gateway, the tester's canary header, and
#: east-west (GAMMA) to Service shop-api/checkout.
NORTH_SOUTH = Request(GATEWAY, host=HOST, path="/checkout",
                      fields={"gateway": GATEWAY, "host": HOST, "path": "/checkout"})
CANARY = Request(GATEWAY, host=HOST, path="/checkout", headers=(("X-Canary", "true"),),
                 fields={"gateway": GATEWAY, "host": HOST, "path": "/checkout",
                         "headers": {"X-Canary": "true"}})
EAST_WEST = Request("shop-api/checkout", mesh=True, path="/checkout", port=8080,
                    fields={"service": "shop-api/checkout", "path": "/checkout", "port": 8080})


def ensure_mesh(lab: Lab) -> list[str]:
    """Lab 04's cluster (Cilium, the shop), the checkout versions, the probe client and
    MetalLB (lab 03's load balancer, here on the Cilium cluster). Idempotent."""
    done = [ensure_cilium(lab)]
    lab.deploy_workload(gateway_api.CHECKOUT_WORKLOAD)
    done.append("checkout-v1 and checkout-v2 deployed in shop-api")
    lab.probe_pod()
    done.append("labkit's probe client runs in labkit-probe")
    metallb.install(lab)
    done.append("MetalLB (L2) gives LoadBalancer Services addresses on the kind network")
    return done


def gateway_ready(lab: Lab, gateway: str = GATEWAY) -> CheckResult:
    """The Gateway controller runs and the Gateway has an address from MetalLB's pool."""
    name = f"Gateway {gateway} has an address"
    st = gateway_api.status(lab)
    if not st.crds:
        raise fail(name, "the Gateway API CRDs are not installed",
                   "gateway_api.install_crds(lab) (kubectl apply --server-side -f "
                   "standard-install.yaml), then gateway_api.enable(lab)")
    if not st.ok:
        raise fail(name, f"Cilium's Gateway controller: {st.controller}",
                   "gateway_api.enable(lab): the Helm upgrade and the restart of the operator")
    if not metallb_installed(lab):
        raise fail(name, "nothing gives LoadBalancer Services an address",
                   "metallb.install(lab), as in lab 03")
    ip = gateway_api.address(lab, gateway)
    if not ip:
        raise fail(name, "no address yet", "`kubectl get gateway -A` and `kubectl get svc -A | "
                   "grep cilium-gateway`: the Gateway's LoadBalancer Service waits for MetalLB")
    ns, _, gw = gateway.partition("/")
    return CheckResult(name, True, f"{ip} (Service {ns}/cilium-gateway-{gw}, from MetalLB's "
                       "pool)", [st.to_text().replace("\n", "; ")], lab.simulated)


def split_consistent(lab: Lab, run: SplitRun, weights: dict[str, float] | None = None
                     ) -> CheckResult:
    """First the meaning (the route sends this request to these backends by these
    weights), then the measurement (every observed share inside its interval)."""
    weights = WEIGHTS if weights is None else weights
    name = f"split of {run.title()}"
    meant = {k: round(v, 6) for k, v in run.route.backends.items()}
    if run.route.status != 200 or meant != {k: round(v, 6) for k, v in weights.items()}:
        raise fail(name, f"the routes send this request to {meant or 'no backend'} "
                   f"(status {run.route.status}), not {weights}",
                   "; ".join(run.route.reasons[-3:]) or "check the HTTPRoute")
    if run.check is None or not run.check.ok:
        errors = {k: v for k, v in run.counts.items() if k.startswith("error")}
        raise fail(name, (run.check.to_text() if run.check else "no answers counted") +
                   (f"; errors: {errors}" if errors else ""),
                   "the route means the right split, so the data path differs: are both "
                   "checkout pods Running? `kubectl -n shop-api get pods -l app=checkout`")
    shares = ", ".join(f"{s.backend} {s.observed:.1%} (weight {s.expected:.0%})"
                       for s in run.check.shares)
    return CheckResult(name, True, f"{run.requests} requests: {shares}, inside the "
                       f"{run.check.confidence:.0%} intervals", run.check.to_text().splitlines(),
                       lab.simulated)


def canary_pinned(lab: Lab, n: int = 20) -> CheckResult:
    """Requests with ``X-Canary: true`` all go to v2 (a rule with more header matches wins)."""
    run = gateway_api.send(lab, CANARY, n)
    return split_consistent(lab, run, {V2: 1.0})


def mtls_options() -> Table:
    """What "mTLS" means in the pinned Cilium, and what each option does not do."""
    version = pinned("cilium", "version")
    t = Table(("option", "status in Cilium " + str(version), "what it does", "what it does not"),
              title="Mutual TLS in Cilium, as of the pinned version")
    t.add("mutual authentication with SPIRE (authentication.mutual.spire.enabled=true, "
          "authentication.mode: required in a CiliumNetworkPolicy)",
          "beta, deprecated in 1.20, due for removal (cilium#47132, #47162, #48647)",
          "the agents authenticate each pair of identities out of band with SPIRE-issued "
          "certificates before policy lets traffic through",
          "encrypts nothing (pair it with WireGuard or IPsec); not per connection; not with "
          "ClusterMesh")
    t.add("ztunnel (encryption.type=ztunnel; namespaces labelled io.cilium/mtls-enabled=true)",
          "beta",
          "mTLS per connection through a node-local ztunnel, HBONE on TCP 15008",
          "TCP only; it takes encryption.type, so no WireGuard at the same time; no ClusterMesh; "
          "L4 policies break")
    t.add("WireGuard (encryption.type=wireguard; lab 06, planned)", "stable",
          "encrypts pod traffic between nodes (UDP 51871)",
          "no workload identity in the handshake: node-to-node, not mutual TLS")
    t.notes.append("So WireGuard, ztunnel and ClusterMesh cannot share one cluster: the course "
                   "shows them in separate labs (06, 09) and clusters. Sources: "
                   "cni-ground-truth.md §0.3 and §5.6, Cilium docs (mutual-authentication, "
                   "encryption-ztunnel).")
    return t


def ingress_erratum() -> Table:
    """Erratum (b): what ``ingressController.enabled=true`` gives, and what it does not."""
    t = Table(("the article says it gives", "what it really is in Cilium 1.20", "where that "
               "is in this course"), title="Erratum (b): ingressController.enabled")
    t.add("a service mesh", "the Kubernetes Ingress controller: IngressClass cilium, served by "
          "Envoy behind a LoadBalancer or NodePort Service (or host network); needs kube-proxy "
          "replacement or NodePort, and the L7 proxy", "not used: this lab routes with Gateway "
          "API, Ingress's successor")
    t.add("traffic splitting (20 % of /checkout to v2)", "not in Ingress (it has no weights): "
          "Gateway API HTTPRoute weights, GAMMA, or a CiliumEnvoyConfig",
          "sections 4-6: HTTPRoute weights, measured")
    t.add("built-in mTLS", "not from Ingress: SPIRE mutual authentication (deprecated) or "
          "ztunnel (beta)", "section 7: the trade-off")
    t.notes.append("Source: cni-ground-truth.md §6 (b); Cilium docs, network/servicemesh/"
                   "ingress and gateway-api.")
    return t


def mesh_goal(lab: Lab, n: int = 200) -> CheckResult:
    """Lab 08 reached its goal: the Gateway has an address, /checkout splits 80/20 north-south
    and east-west within the binomial tolerance, and the canary header pins v2."""
    name = "lab 08 (service mesh)"
    require_cni(lab, name, "cilium", "run lab 04 first (stage cilium)")
    ready = gateway_ready(lab)
    ns = split_consistent(lab, gateway_api.send(lab, NORTH_SOUTH, n))
    ew = split_consistent(lab, gateway_api.send(lab, EAST_WEST, n, seed=9))
    canary = canary_pinned(lab)
    return CheckResult(name, True, "the Gateway answers, /checkout splits 80/20 both ways "
                       "within the binomial tolerance, and the canary header pins v2",
                       [ready.message, ns.message, ew.message, canary.message], lab.simulated)
