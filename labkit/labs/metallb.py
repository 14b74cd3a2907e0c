"""Lab 03 (MetalLB L2): self-checks and the closing check, all about reachable addresses."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from labkit.addons import metallb
from labkit.labs.common import CheckResult, fail, not_attempted
from labkit.tools import docker

if TYPE_CHECKING:
    from labkit.lab import Lab

SERVICE = "shop-web/frontend-lb"
EXERCISE_SERVICE = "shop-api/api-lb"


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


def external_ip_assigned(lab: Lab, service: str = SERVICE) -> CheckResult:
    """After MetalLB: an address from the pool."""
    name = f"{service} EXTERNAL-IP from the pool"
    ip = metallb.external_ip(lab, service)
    first, last = metallb.pool_range(kind_subnet(lab))
    if not ip:
        raise fail(name, "still <pending>", "MetalLB needs its IPAddressPool and "
                    "L2Advertisement: run metallb.install(lab); `kubectl -n metallb-system logs "
                    "deploy/controller` tells why it did not assign one")
    low, got, high = (ipaddress.ip_address(a) for a in (first, ip, last))
    if not (low.version == got.version == high.version and int(low) <= int(got) <= int(high)):
        raise fail(name, f"{ip} is outside the pool {first}-{last}",
                    "another IPAddressPool may exist: `kubectl -n metallb-system get "
                    "ipaddresspools`")
    return CheckResult(name, True, f"{ip} (pool {first}-{last})", [], lab.simulated)


def reached_from_outside(lab: Lab, service: str = SERVICE, port: int = 80) -> CheckResult:
    """A request from outside the cluster to the Service's external IP gets an HTTP answer."""
    name = f"{service} reached from outside the cluster"
    ip = metallb.external_ip(lab, service)
    if not ip:
        raise fail(name, "the Service has no external IP", "install MetalLB first")
    result = metallb.reach(lab, ip, port)
    if not result.ok:
        raise fail(name, result.to_text(),
                    "is a policy blocking the frontend's ingress? On Docker Desktop the host "
                    "cannot reach the address: the request must come from the kind network")
    client = "a simulated client on the kind network" if result.via == "simulated" else result.via
    return CheckResult(name, True, f"HTTP {result.status} for http://{ip}:{port}/ from {client}",
                       result.to_text().splitlines()[1:], lab.simulated)


def exercise_api_lb(lab: Lab, manifest: Any) -> CheckResult:
    """Exercise: expose the API (port 8080) as a LoadBalancer Service, reached from outside."""
    name = "exercise: the API behind its own LoadBalancer IP"
    if manifest is None:
        return not_attempted(name, "write the Service in MY_SERVICE")
    lab.apply(manifest)
    try:
        assigned = external_ip_assigned(lab, EXERCISE_SERVICE)
        reached = reached_from_outside(lab, EXERCISE_SERVICE, 8080)
    except Exception as exc:
        raise fail(name, str(exc), f"name it {EXERCISE_SERVICE.split('/')[1]} in namespace "
                    "shop-api, type LoadBalancer, selector app: api, port 8080 -> "
                    "targetPort http") from exc
    return CheckResult(name, True, "a second address from the pool, and it answers",
                       [assigned.message, reached.message], lab.simulated)


def metallb_goal(lab: Lab) -> CheckResult:
    """Lab 03 reached its goal: the frontend has a pool address that answers from outside."""
    name = "lab 03 (MetalLB)"
    if lab.cni != "calico":
        raise fail(name, f"the CNI is {lab.cni or 'none'}", "run lab 02 first")
    if not installed(lab):
        raise fail(name, "MetalLB is not installed", "run metallb.install(lab)")
    assigned = external_ip_assigned(lab)
    reached = reached_from_outside(lab)
    return CheckResult(name, True, "MetalLB gave the frontend an address on the kind network, "
                       "and it answers from outside the cluster",
                       [assigned.message, reached.message], lab.simulated)
