"""Lab 03 (MetalLB L2): self-checks and the closing check, all about reachable addresses."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from labkit.addons import metallb
from labkit.labs import exercise
from labkit.labs.common import CheckResult, fail, not_attempted, require_cni
from labkit.labs.exercise import exercise as exercise_check
from labkit.labs.exercise import summary as exercise_summary
from labkit.model import Service, endpoints_of
from labkit.tools import docker

if TYPE_CHECKING:
    from labkit.lab import Lab

SERVICE = "shop-web/frontend-lb"
EXERCISE_SERVICE = "shop-api/api-lb"
#: The "try it" cell, where the learner types the kubectl command (judged by check_typed).
LAB03_TRY_IT = "try it: the LoadBalancer's address"
LAB03_EXERCISES = ("lab03-ex1", LAB03_TRY_IT)


def installed(lab: Lab) -> bool:
    """Is MetalLB's controller there (so LoadBalancer Services get addresses)?"""
    impl: Any = lab.impl
    if lab.simulated:
        return any(getattr(h, "metallb", False) for h in impl.cluster.hooks)
    return impl.kube.get("apps/v1", "Deployment", "controller", metallb.NAMESPACE) is not None


def kind_subnet(lab: Lab) -> str:
    """The IPv4 subnet of the `kind` Docker network (the simulated one on sim)."""
    if lab.simulated:
        return metallb.SIM_KIND_SUBNET
    return str(docker.network_ipv4_subnet())


def external_ip_pending(lab: Lab, service: str = SERVICE) -> CheckResult:
    """Before MetalLB: the LoadBalancer Service has no external address."""
    name = f"{service} EXTERNAL-IP before MetalLB"
    ip = metallb.external_ip(lab, service)
    if installed(lab):
        return CheckResult(name, True, f"MetalLB is already installed (an earlier run), so "
                           f"the Service has {ip or 'no address yet'}; on a cluster without it "
                           "the address stays <pending>", [], lab.simulated)
    if ip:
        raise fail(name, f"the Service has {ip} although nothing implements LoadBalancer",
                    "is another load-balancer controller (cloud-provider-kind?) running?")
    return CheckResult(name, True, "<pending>: kind has no cloud provider to give it an "
                       "address", [], lab.simulated)


def address_of(lab: Lab, service: str, port: int, *, timeout: float = 90) -> str:
    """The Service's pool address, or CheckFailed naming the first cause, in this order:
    the Service's type, its endpoints (a selector that matches no pod, a targetPort no pod
    declares), MetalLB itself, then the wait for MetalLB's asynchronous assignment."""
    name = f"{service} EXTERNAL-IP from the pool"
    state = lab.impl.state()
    svc = state.services.get(service)
    if svc is None:
        raise fail(name, f"there is no Service {service}", "apply it first")
    if svc.type != "LoadBalancer":
        raise fail(name, f"{service} is type {svc.type}: only a Service of type LoadBalancer "
                    "gets an external address", "set spec.type: LoadBalancer (a NodePort "
                    "Service is reached on the nodes' addresses, and MetalLB ignores it)")
    if not any(p.port == port for p in svc.ports):
        raise fail(name, f"{service} has no port {port} (it has "
                    f"{', '.join(str(p.port) for p in svc.ports) or 'none'})",
                    f"add a port {port} to spec.ports")
    in_ns = [p for p in state.pods.values() if p.namespace == svc.namespace]
    if not any(all(p.labels.get(k) == v for k, v in svc.selector.items()) for p in in_ns) \
            or not svc.selector:
        seen = sorted({f"app={p.labels['app']}" for p in in_ns if "app" in p.labels})
        selector = ", ".join(f"{k}={v}" for k, v in svc.selector.items()) or "(none)"
        raise fail(name, f"{service}'s selector {selector} matches no running pod "
                    f"in {svc.namespace}, so it has no endpoints",
                    f"the pods there are labelled {', '.join(seen) or 'with nothing'}; "
                    "`kubectl get endpointslices -n " + svc.namespace + "` shows none")
    if not endpoints_of(svc, in_ns):
        raise fail(name, f"{service}'s targetPort names no port of the pods it selects, so it "
                    "has no endpoints", "the shop's pods name 8080 `http`: targetPort: http "
                    "(or 8080)")
    if not installed(lab):
        raise fail(name, "still <pending>: MetalLB is not installed",
                    "run metallb.install(lab) (section 4)")
    ip = metallb.wait_for_address(lab, service, timeout=timeout)
    if not ip:
        raise fail(name, f"still <pending> after {timeout:.0f}s", "MetalLB needs its "
                    "IPAddressPool and L2Advertisement (metallb.install(lab) applies them); "
                    "`kubectl -n metallb-system logs deploy/controller` says why it assigned "
                    "none (a full pool, for instance)")
    return ip


def external_ip_assigned(lab: Lab, service: str = SERVICE, port: int = 80) -> CheckResult:
    """After MetalLB: an address from the pool (waited for: MetalLB writes it asynchronously)."""
    name = f"{service} EXTERNAL-IP from the pool"
    ip = address_of(lab, service, port)
    first, last = metallb.pool_range(kind_subnet(lab))
    low, got, high = (ipaddress.ip_address(a) for a in (first, ip, last))
    if not (low.version == got.version == high.version and int(low) <= int(got) <= int(high)):
        raise fail(name, f"{ip} is outside the pool {first}-{last}",
                    "another IPAddressPool may exist: `kubectl -n metallb-system get "
                    "ipaddresspools`")
    return CheckResult(name, True, f"{ip} (pool {first}-{last})", [], lab.simulated)


def reached_from_outside(lab: Lab, service: str = SERVICE, port: int = 80) -> CheckResult:
    """A request from outside the cluster to the Service's external IP gets an HTTP answer."""
    name = f"{service} reached from outside the cluster"
    ip = address_of(lab, service, port)
    result = metallb.reach(lab, ip, port)
    if not result.ok:
        raise fail(name, result.to_text(),
                    "the Service has endpoints and an address, so the request is lost on the "
                    "way: is a policy blocking the pods' ingress? On Docker Desktop the host "
                    "cannot reach the address: the request must come from the kind network")
    client = "a simulated client on the kind network" if result.via == "simulated" else result.via
    return CheckResult(name, True, f"HTTP {result.status} for http://{ip}:{port}/ from {client}",
                       result.to_text().splitlines()[1:], lab.simulated)


@exercise_check("lab03-ex1")
def exercise_api_lb(lab: Lab, manifest: Any) -> CheckResult:
    """Exercise: expose the API (port 8080) as a LoadBalancer Service, reached from outside.

    Diagnosed in order: the Service's name and type, its endpoints (the selector and the
    targetPort), the address (waited for), then the request from outside.
    """
    name = "exercise: the API behind its own LoadBalancer IP"
    if manifest is None:
        return not_attempted(name, "write the Service in MY_SERVICE")
    applied = exercise.apply_answer(lab, "lab03-ex1", manifest, what="MY_SERVICE")
    services = [o for o in applied.objects if isinstance(o, Service)]
    ns, _, svc_name = EXERCISE_SERVICE.partition("/")
    if not any(s.key == EXERCISE_SERVICE for s in services):
        found = ", ".join(s.key for s in services) or "no Service"
        raise fail(name, f"MY_SERVICE defines {found}, not {EXERCISE_SERVICE}",
                    f"metadata: name: {svc_name}, namespace: {ns}")
    assigned = external_ip_assigned(lab, EXERCISE_SERVICE, 8080)
    state = lab.impl.state()
    svc = state.services[EXERCISE_SERVICE]
    api = sorted(p.key for p in state.pods.values()
                 if p.namespace == ns and p.labels.get("app") == "api")
    behind = sorted({p.key for p, _ in endpoints_of(svc, state.pods.values())})
    if behind != api:
        others = [exercise.endpoint_label(k, state) for k in behind if k not in api]
        raise fail(name, f"{EXERCISE_SERVICE} also sends traffic to {', '.join(others)}"
                    if others else f"{EXERCISE_SERVICE} reaches only part of the API",
                    "select the API pods only: selector app: api")
    reached = reached_from_outside(lab, EXERCISE_SERVICE, 8080)
    return CheckResult(name, True, "a second address from the pool, and it answers",
                       [*applied.removed_note(), assigned.message, reached.message],
                       lab.simulated)


def metallb_goal(lab: Lab) -> CheckResult:
    """Lab 03 reached its goal: the frontend has a pool address that answers from outside."""
    name = "lab 03 (MetalLB)"
    require_cni(lab, name, "calico", "run lab 02 first")
    if not installed(lab):
        raise fail(name, "MetalLB is not installed", "run metallb.install(lab)")
    assigned = external_ip_assigned(lab)
    reached = reached_from_outside(lab)
    return CheckResult(name, True, "MetalLB gave the frontend an address on the kind network, "
                       "and it answers from outside the cluster",
                       [assigned.message, reached.message,
                        exercise_summary(lab, LAB03_EXERCISES)], lab.simulated)
