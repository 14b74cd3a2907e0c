"""Controllers the sim runs after every change (``SimCluster.hooks``), as add-ons install them.

MetalLB's controller assigns LoadBalancer addresses from an IPAddressPool
(metallb.io/v1beta1; ``labkit.addons.metallb`` installs it). The sim saves each
hook with the cluster (``snapshot``), so its state lives here, beside the sim.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from labkit.model import Service, ServicePort


class SimAllocator:
    """MetalLB's controller in the sim: the lowest free pool address for each LB Service.

    An address stays with its Service (re-applying the Service keeps it), and is
    freed when the Service is deleted or stops being a LoadBalancer.
    """

    metallb = True

    def __init__(self, addresses: list[str]) -> None:
        self.addresses = addresses
        self.assigned: dict[str, str] = {}

    def __call__(self, cluster: Any) -> None:
        lbs = {k: s for k, s in cluster.services.items() if s.type == "LoadBalancer"}
        for key in [k for k in self.assigned if k not in lbs]:
            del self.assigned[key]
        for key in sorted(lbs):
            if key not in self.assigned:
                used = set(self.assigned.values())
                free = [a for a in self.addresses if a not in used]
                if not free:
                    continue  # real MetalLB: the Service stays <pending>, event "no available IPs"
                self.assigned[key] = free[0]
            if lbs[key].external_ip != self.assigned[key]:
                cluster.services[key] = replace(lbs[key], external_ip=self.assigned[key])


class SimGatewayController:
    """Cilium's Gateway API controller in the sim (``gatewayAPI.enabled=true``).

    It keeps the Gateway API objects applied to the cluster once the CRDs are installed (the
    sim has no API server to store them) and, while the controller runs, for each Gateway
    creates the Service Cilium creates: type LoadBalancer, named ``cilium-gateway-<gateway>``
    in the Gateway's namespace, with a port per listener (docs.cilium.io,
    network/servicemesh/gateway-api/gateway-api). A load-balancer controller (MetalLB's
    :class:`SimAllocator`) then gives it its address, which becomes the Gateway's address.
    """

    gateway_api = True
    OWNER = "io.cilium.gateway/owning-gateway"

    def __init__(self, docs: dict[str, dict[str, Any]] | None = None) -> None:
        #: "Kind namespace/name" -> the applied manifest.
        self.docs: dict[str, dict[str, Any]] = dict(docs or {})

    def __call__(self, cluster: Any) -> None:
        wanted: dict[str, Service] = {}
        settings = cluster.cni.settings if cluster.cni else {}
        # Objects are stored once the CRDs exist; only a running controller programs them.
        running = settings.get("gatewayController") == "running"
        for doc in self.docs.values() if running else ():
            if doc.get("kind") != "Gateway":
                continue
            meta, spec = doc["metadata"], doc.get("spec") or {}
            ns, name = meta.get("namespace") or "default", meta["name"]
            ports = {int(lst["port"]): str(lst.get("name", "")) for lst in
                     spec.get("listeners") or []}
            svc = Service(ns, f"cilium-gateway-{name}", {},
                          tuple(ServicePort(p, p, "TCP", n) for p, n in sorted(ports.items())),
                          type="LoadBalancer", annotations={self.OWNER: name})
            wanted[svc.key] = svc
        for key, svc in list(cluster.services.items()):
            if self.OWNER in svc.annotations and key not in wanted:
                del cluster.services[key]
        for key, svc in wanted.items():
            old = cluster.services.get(key)
            if old is None or old.ports != svc.ports:
                cluster.apply_service(replace(svc, external_ip=old.external_ip if old else ""))
