"""How each CNI hands out pod addresses, as the sim models it.

An IPAM object answers ``allocate(node) -> ip`` and ``release(ip)``. The flannel
/ kindnet model is the real one: the kube-controller-manager gives every node a
/24 of the cluster's pod subnet (``node.spec.podCIDR``, ``--node-cidr-mask-size``
defaults to 24 for IPv4), and the CNI's ``host-local`` IPAM hands out addresses
of that range in order, starting at .2 because .1 is the gateway (the ``cni0``
bridge for Flannel). host-local does not immediately reuse a released address:
it continues after the last one it reserved (containernetworking/plugins,
plugins/ipam/host-local). Other CNIs (Calico's /26 blocks) add their own class.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Protocol


class Ipam(Protocol):
    def allocate(self, node: str) -> str: ...

    def release(self, ip: str) -> None: ...

    def describe(self) -> str: ...


def node_cidrs(pod_subnet: str, nodes: Sequence[str], prefix: int = 24) -> dict[str, str]:
    """The podCIDR of each node, in registration order (control plane first)."""
    net = ipaddress.ip_network(pod_subnet)
    subnets = net.subnets(new_prefix=prefix)
    out: dict[str, str] = {}
    for node in nodes:
        try:
            out[node] = str(next(subnets))
        except StopIteration as exc:
            raise ValueError(f"pod subnet {pod_subnet} has no /{prefix} left for {node}") from exc
    return out


class AddressesExhausted(RuntimeError):
    """No address left for a pod on its node: the CNI fails to create the pod's sandbox."""


class NodeRangeIpam:
    """host-local over each node's podCIDR: .2, .3, ... (Flannel, kindnet)."""

    def __init__(self, ranges: dict[str, str], *, first_offset: int = 2,
                 name: str = "host-local") -> None:
        self.ranges = dict(ranges)
        self.first_offset = first_offset
        self.name = name
        self._next: dict[str, int] = {n: first_offset for n in ranges}
        self._used: set[str] = set()

    def allocate(self, node: str) -> str:
        if node not in self.ranges:
            raise KeyError(f"node {node} has no pod CIDR")
        net = ipaddress.ip_network(self.ranges[node])
        size = net.num_addresses - 1  # the broadcast address is not handed out
        for _ in range(size):
            offset = self._next[node]
            if offset >= size:
                offset = self.first_offset  # host-local wraps around to the start
            self._next[node] = offset + 1
            ip = str(net.network_address + offset)
            if ip not in self._used:
                self._used.add(ip)
                return ip
        # host-local's words: the range set is printed as its first-last usable address
        # (containernetworking/plugins, plugins/ipam/host-local/backend/allocator)
        raise AddressesExhausted(f"failed to allocate for range 0: no IP addresses available "
                                 f"in range set: {net.network_address + 1}-"
                                 f"{net.broadcast_address - 1}")

    def release(self, ip: str) -> None:
        self._used.discard(ip)

    def describe(self) -> str:
        return f"{self.name}: one /24 per node, addresses from .{self.first_offset}"
