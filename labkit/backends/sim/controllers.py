"""Controllers the sim runs after every change (``SimCluster.hooks``), as add-ons install them.

MetalLB's controller assigns LoadBalancer addresses from an IPAddressPool
(metallb.io/v1beta1; ``labkit.addons.metallb`` installs it). The sim saves each
hook with the cluster (``snapshot``), so its state lives here, beside the sim.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any


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
