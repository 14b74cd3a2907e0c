"""MetalLB in L2 mode on kind (and its model on sim): LoadBalancer Services get real IPs.

kind has no cloud provider, so a ``type: LoadBalancer`` Service keeps
``EXTERNAL-IP <pending>`` until something implements it. MetalLB (pinned
``metallb-native.yaml``: the "native" build suits L2-only) assigns an address
from an ``IPAddressPool`` and, through an ``L2Advertisement``, one elected node
answers ARP for it on the ``kind`` Docker network (ground truth §4.3). The pool
comes from that network's IPv4 subnet: ``x.y.255.200-x.y.255.250``.

Reaching the address from outside the cluster: on native Linux Docker the
``kind`` bridge is a host interface, so the host can curl it. Docker Desktop (on
every OS, Linux included) runs the engine in a VM the host cannot route into,
so the request goes from a throwaway container on the ``kind`` network instead
(labkit.tools.docker.host_reach says which applies, and why).
"""

from __future__ import annotations

import hashlib
import html
import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

from labkit.backends.sim.controllers import SimAllocator
from labkit.display.render import Rendered
from labkit.environments import environments_dir, pinned
from labkit.errors import ClusterError, LabkitError, ToolError, ToolNotFound
from labkit.model import Deployment, Traffic
from labkit.policy import Engine
from labkit.progress import wait_until
from labkit.tools import docker, process
from labkit.tools.files import fetch_url

if TYPE_CHECKING:
    from labkit.backends.base import Backend
    from labkit.backends.kind.backend import KindBackend
    from labkit.backends.sim.backend import SimBackend
    from labkit.progress import Progress

NAMESPACE = "metallb-system"
API = "metallb.io/v1beta1"
#: The CRDs metallb-native.yaml serves (v0.16: BGPPeer moved to v1beta2).
SERVED = frozenset({(API, "IPAddressPool"), (API, "L2Advertisement"), (API, "BGPAdvertisement"),
                    (API, "BFDProfile"), (API, "Community"), ("metallb.io/v1beta2", "BGPPeer")})
#: The simulated `kind` network (the sim's node addresses start at its .0.2, like kind's).
SIM_KIND_SUBNET = "172.18.0.0/16"
#: Set by kubeadm on control-plane nodes; MetalLB's speakers do not announce from them.
EXCLUDE_LB_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers"

Fetch = Callable[[str], str]


# -- pure: what is sent --------------------------------------------------------------------

def pool_range(subnet: ipaddress.IPv4Network | str) -> tuple[str, str]:
    """``x.y.255.200``-``x.y.255.250``: .200-.250 of the subnet's last /24."""
    net = ipaddress.ip_network(subnet)
    if not isinstance(net, ipaddress.IPv4Network):
        raise ClusterError(f"{net} is not an IPv4 subnet",
                           hint="MetalLB's pool here is taken from the IPv4 subnet of `kind`")
    if net.prefixlen > 24:
        raise ClusterError(f"the kind network {net} is smaller than a /24: no room for a pool "
                           "away from the node addresses",
                           hint="let kind recreate its network (delete every kind cluster, "
                           "`docker network rm kind`), or configure Docker's "
                           "default-address-pools with larger subnets")
    last24 = ipaddress.ip_network(f"{net.broadcast_address}/24", strict=False)
    base = last24.network_address
    return str(base + 200), str(base + 250)


def pool_documents(subnet: ipaddress.IPv4Network | str) -> list[dict[str, Any]]:
    """The IPAddressPool and L2Advertisement (environments/metallb/pool.yaml), range filled."""
    path = environments_dir() / "metallb" / "pool.yaml"
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    first, last = pool_range(subnet)
    for doc in docs:
        if doc.get("kind") == "IPAddressPool":
            doc["spec"]["addresses"] = [f"{first}-{last}"]
    return docs


def frontend_service() -> dict[str, Any]:
    path = environments_dir() / "metallb" / "frontend-lb.yaml"
    return dict(yaml.safe_load(path.read_text(encoding="utf-8")))


def external_ip_of(service: dict[str, Any] | None) -> str:
    """``status.loadBalancer.ingress[0].ip``, or "" while it is pending."""
    ingress = (((service or {}).get("status") or {}).get("loadBalancer") or {}).get("ingress")
    return str((ingress or [{}])[0].get("ip") or "")


def addresses_of(pool: dict[str, Any]) -> list[str]:
    """Every address of an IPAddressPool, in order (ranges ``a-b`` and CIDRs)."""
    out: list[str] = []
    for entry in (pool.get("spec") or {}).get("addresses") or []:
        if "-" in entry:
            a, b = (ipaddress.ip_address(x.strip()) for x in entry.split("-", 1))
            out += [str(ipaddress.ip_address(i)) for i in range(int(a), int(b) + 1)]
        else:
            out += [str(ip) for ip in ipaddress.ip_network(entry, strict=False)]
    return out


def curl_argv(ip: str, port: int = 80, path: str = "/", timeout: int = 5) -> list[str]:
    """curl arguments that print only the HTTP status (000 when nothing answered)."""
    return ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-m", str(timeout),
            f"http://{ip}:{port}{path}"]


# -- results ----------------------------------------------------------------------------------

@dataclass(frozen=True, repr=False)
class Reach(Rendered):
    """One request to a LoadBalancer IP from outside the cluster."""

    ip: str
    port: int
    ok: bool
    status: int
    via: str  # "host" | "container on the kind network" | "simulated"
    reason: str
    command: str = ""
    detail: str = ""
    simulated: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"ip": self.ip, "port": self.port, "ok": self.ok, "status": self.status,
                "via": self.via, "reason": self.reason, "command": self.command,
                "detail": self.detail, "simulated": self.simulated}

    def to_text(self) -> str:
        label = " [simulated]" if self.simulated else ""
        verdict = f"HTTP {self.status}" if self.ok else f"no answer ({self.detail})"
        lines = [f"http://{self.ip}:{self.port}/ from {self.via}: {verdict}{label}",
                 f"  why this way: {self.reason}"]
        if self.ok and self.detail:
            lines.append(f"  path: {self.detail}")
        if self.command:
            lines.append(f"  command: {self.command}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return "<pre>" + html.escape(self.to_text()) + "</pre>"


# -- install -----------------------------------------------------------------------------

def install(target: Any, progress: Progress | None = None, *, fetch: Fetch | None = None,
            subnet: str | None = None, sleep: Callable[[float], None] = time.sleep,
            timeout: float = 120) -> list[dict[str, Any]]:
    """Install MetalLB, then its pool and L2 advertisement; idempotent. Returns the pool docs."""
    backend: Backend = getattr(target, "impl", target)
    return backend.dispatch(
        sim=_install_sim,
        kind=lambda b: _install_kind(b, progress, fetch, subnet, sleep, timeout))


def _install_kind(backend: KindBackend, progress: Progress | None, fetch: Fetch | None,
                  subnet: str | None, sleep: Callable[[float], None], timeout: float
                  ) -> list[dict[str, Any]]:
    url = str(pinned("metallb", "manifest"))
    if fetch is None:
        fetch = fetch_url
    docs = [d for d in yaml.safe_load_all(fetch(url)) if d]
    # Server-side apply (MetalLB's docs use plain `kubectl apply`). Assumed, not checked for
    # v0.16: the manifest leaves caBundle fields unset (older ones carried a `Cg==`
    # placeholder), so a re-run does not take the CA the controller injected; if it did,
    # the controller's cert rotation would inject it again.
    backend.apply_raw(docs)
    backend.wait_daemonset(NAMESPACE, "speaker", timeout=300, progress=progress)
    backend.wait_ready(nodes=False, namespaces=(NAMESPACE,), timeout=300, progress=progress)
    pool = pool_documents(subnet or str(docker.network_ipv4_subnet()))
    # The controller's validating webhook can refuse for a few seconds after its pod is Ready
    # ("failed calling webhook ... connection refused"): retry, bounded.
    deadline = time.monotonic() + timeout
    while True:
        try:
            backend.apply_raw(pool)
            return pool
        except LabkitError as exc:
            if "webhook" not in str(exc) or time.monotonic() >= deadline:
                raise
            if progress is not None:
                progress.update("waiting for MetalLB's webhook", force=True)
            sleep(3.0)


def _install_sim(backend: SimBackend) -> list[dict[str, Any]]:
    c = backend.cluster
    pool = pool_documents(SIM_KIND_SUBNET)
    if any(getattr(h, "metallb", False) for h in c.hooks):
        return pool
    if c.cni is None:
        raise ClusterError("no CNI is installed: MetalLB's controller cannot start [simulated]",
                           hint="install a CNI first (labs 01-02)")
    c.extra_served |= SERVED
    c.apply_deployment(Deployment(NAMESPACE, "controller", 1,
                                  {"app": "metallb", "component": "controller"}))
    c.add_daemonset(NAMESPACE, "speaker", {"app": "metallb", "component": "speaker"})
    c.hooks.append(SimAllocator(addresses_of(pool[0])))
    c.reconcile()
    return pool


# -- observe -----------------------------------------------------------------------------

def external_ip(target: Any, service: str = "shop-web/frontend-lb") -> str:
    """The Service's EXTERNAL-IP, or "" while it is <pending>."""
    backend: Backend = getattr(target, "impl", target)
    return backend.dispatch(sim=lambda b: _external_ip_sim(b, service),
                            kind=lambda b: _external_ip_kind(b, service))


def _external_ip_sim(backend: SimBackend, service: str) -> str:
    svc = backend.cluster.services.get(service)
    if svc is None:
        raise ClusterError(f"no Service {service} [simulated]", hint="apply it first")
    return svc.external_ip


def _external_ip_kind(backend: KindBackend, service: str) -> str:
    ns, _, name = service.partition("/")
    found = backend.kube.get("v1", "Service", name, ns)
    if found is None:
        raise ClusterError(f"no Service {service}", hint="apply it first")
    return external_ip_of(found)


def wait_for_address(target: Any, service: str, *, timeout: float = 90,
                     progress: Progress | None = None,
                     sleep: Callable[[float], None] = time.sleep) -> str:
    """The Service's EXTERNAL-IP once MetalLB has written it, or "" after ``timeout``.

    MetalLB's controller writes ``status.loadBalancer`` asynchronously, after the Service
    exists (and, right after the install, once its webhook and pool are live): judging
    right after ``apply`` would see ``<pending>``. Bounded, with a progress line. The sim
    assigns synchronously (its allocator runs on every change).
    """
    backend: Backend = getattr(target, "impl", target)

    def wait_kind(kb: KindBackend) -> str:
        def check() -> tuple[bool, str]:
            ip = _external_ip_kind(kb, service)
            return bool(ip), f"{service} EXTERNAL-IP {ip or '<pending>'}"

        try:
            wait_until(check, title=f"waiting for MetalLB to give {service} an address",
                       timeout=timeout, progress=progress, sleep=sleep)
        except TimeoutError:
            return ""
        return _external_ip_kind(kb, service)

    return backend.dispatch(sim=lambda b: _external_ip_sim(b, service), kind=wait_kind)


def announcing_node(nodes: list[Any], ip: str) -> str:
    """The node that answers ARP for ``ip``: one per IP, chosen by hashing (like MetalLB's
    per-service election), never a node labelled to be excluded (kubeadm's control plane)."""
    candidates = [n.name for n in nodes if "control-plane" not in n.roles] or \
        [n.name for n in nodes]
    return min(candidates, key=lambda n: hashlib.sha256(f"{n}#{ip}".encode()).hexdigest())


def reach(target: Any, ip: str, port: int = 80, path: str = "/", *,
          info: dict[str, Any] | None = None, system: str | None = None,
          run: Callable[..., process.Result] = process.run) -> Reach:
    """Request ``http://ip:port/path`` from outside the cluster, the way that can work here."""
    backend: Backend = getattr(target, "impl", target)
    return backend.dispatch(sim=lambda b: _reach_sim(b, ip, port),
                            kind=lambda b: _reach_kind(ip, port, path, info, system, run))


def _reach_kind(ip: str, port: int, path: str, info: dict[str, Any] | None,
                system: str | None, run: Callable[..., process.Result]) -> Reach:
    host = docker.host_reach(info if info is not None else docker.engine_info(), system=system)
    argv = curl_argv(ip, port, path)
    if host.reachable and process.which("curl"):
        via, full = "host", argv
    else:
        image = str(pinned("images", "curl"))  # curlimages/curl: its entrypoint is curl
        via = "container on the kind network"
        full = docker.run_on_network_argv(image, argv[1:])
    try:
        result = run(full, timeout=60, check=False)
    except ToolNotFound:
        raise
    except ToolError as exc:
        return Reach(ip, port, False, 0, via, host.reason, " ".join(full), exc.message)
    code = result.stdout.strip()[-3:]
    status = int(code) if code.isdigit() else 0
    return Reach(ip, port, status > 0, status, via, host.reason, " ".join(full),
                 result.stderr.strip()[:200] or f"exit code {result.returncode}")


def _reach_sim(backend: SimBackend, ip: str, port: int) -> Reach:
    c = backend.cluster
    why = "simulated: the host reaches the simulated kind network directly"
    svc = next((s for s in c.services.values() if s.external_ip == ip), None)
    if svc is None:
        return Reach(ip, port, False, 0, "simulated", why, detail="no Service has this "
                     "external IP: nothing answers ARP for it", simulated=True)
    sport = next((p for p in svc.ports if p.port == port), None)
    endpoints = c.endpoints(svc.key) if sport else []
    if not endpoints:
        return Reach(ip, port, False, 0, "simulated", why,
                     detail=f"{svc.key} has no ready endpoint on port {port}", simulated=True)
    node = announcing_node(list(c.nodes.values()), ip)
    # kube-proxy (externalTrafficPolicy: Cluster) masquerades: the pod sees the node's address
    pod_ip, _, target_port = endpoints[0].rpartition(":")
    pod = next(p.pod for p in c.pods.values() if p.pod.ip == pod_ip and p.phase == "Running")
    traffic = Traffic(f"ip:{c.nodes[node].ip}", pod.key, int(target_port))
    verdict = Engine(backend.state(), cni=backend.installed_cni()).evaluate(traffic)
    broken = c.no_network.get(pod.key, "")
    ok = verdict.allowed and not broken
    detail = (f"{node} answers ARP for {ip}; kube-proxy forwards to {pod.key} "
              f"({endpoints[0]})" + ("" if ok else f"; dropped: {broken or verdict.reasons}"))
    return Reach(ip, port, ok, 200 if ok else 0, "simulated", why, detail=detail,
                 simulated=True)
