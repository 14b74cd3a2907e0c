"""How each CNI hands out pod addresses, as the sim models it.

An IPAM object answers ``allocate(node) -> ip`` and ``release(ip)``. The flannel
/ kindnet model is the real one: the kube-controller-manager gives every node a
/24 of the cluster's pod subnet (``node.spec.podCIDR``, ``--node-cidr-mask-size``
defaults to 24 for IPv4), and the CNI's ``host-local`` IPAM hands out addresses
of that range in order, starting at .2 because .1 is the gateway (the ``cni0``
bridge for Flannel). host-local does not immediately reuse a released address:
it continues after the last one it reserved (containernetworking/plugins,
plugins/ipam/host-local). Calico's IPAM (affine /26 blocks per node) is :class:`CalicoIpam`.
"""

from __future__ import annotations

import collections
import ipaddress
from collections.abc import Sequence
from typing import Any, Protocol


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


def fnv1_32(text: str) -> int:
    """FNV-1 32-bit, the hash Go's ``hash/fnv.New32`` computes (Calico's block seed)."""
    h = 0x811C9DC5
    for byte in text.encode():
        h = (h * 0x01000193) & 0xFFFFFFFF
        h ^= byte
    return h


class CalicoIpam:
    """Calico IPAM over one pool: per-node affine blocks, the tunnel address first."""

    name = "calico-ipam"

    def __init__(self, pool: str, block_size: int = 26) -> None:
        self.pool = ipaddress.ip_network(pool)
        self.block_size = block_size
        self.blocks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = list(
            self.pool.subnets(new_prefix=block_size))
        self.affinity: dict[str, list[ipaddress.IPv4Network | ipaddress.IPv6Network]] = {}
        self._owner: dict[Any, str] = {}
        self._free: dict[Any, collections.deque[int]] = {}
        self.tunnel: dict[str, str] = {}

    def _claim(self, node: str) -> Any:
        start = fnv1_32(node) % len(self.blocks)
        for step in range(len(self.blocks)):
            block = self.blocks[(start + step) % len(self.blocks)]
            if block not in self._owner:
                self._owner[block] = node
                self._free[block] = collections.deque(range(block.num_addresses))
                self.affinity.setdefault(node, []).append(block)
                return block
        raise AddressesExhausted(f"IP pool {self.pool} has no free /{self.block_size} block")

    def ensure_tunnel(self, node: str) -> str:
        """calico-node's ``vxlan.calico`` address: the node's first allocation."""
        if node not in self.tunnel:
            self.tunnel[node] = self._take(node)
        return self.tunnel[node]

    def allocate(self, node: str) -> str:
        self.ensure_tunnel(node)
        return self._take(node)

    def _take(self, node: str) -> str:
        for block in self.affinity.get(node, []):
            if self._free[block]:
                return str(block.network_address + self._free[block].popleft())
        block = self._claim(node)
        return str(block.network_address + self._free[block].popleft())

    def release(self, ip: str) -> None:
        addr = ipaddress.ip_address(ip)
        for block, free in self._free.items():
            if addr in block:
                free.append(int(addr) - int(block.network_address))
                return
        # not one of ours (a Flannel address of a pod deleted after the migration): nothing to do

    def block_of(self, ip: str) -> tuple[str, str] | None:
        """(block, node it is affine to) for an address, or None outside every claimed block."""
        addr = ipaddress.ip_address(ip)
        for block, node in self._owner.items():
            if addr in block:
                return str(block), node
        return None

    def describe(self) -> str:
        return (f"calico-ipam: /{self.block_size} blocks of {self.pool} claimed per node, "
                "the first address of a node's first block is its vxlan.calico tunnel")

    def as_dict(self) -> dict[str, Any]:
        return {"pool": str(self.pool), "block_size": self.block_size,
                "blocks": {n: [str(b) for b in bs] for n, bs in sorted(self.affinity.items())},
                "tunnel": dict(sorted(self.tunnel.items()))}
