"""Turn parsed objects into a :class:`ClusterState` the engine can judge.

Used by the ``labkit policy`` commands and tests, where no backend assigns
addresses: Deployments become pods ``<deployment>-<n>``, and pods without
``status.podIP`` get the next free address of the pod CIDR, in input order, so
the same input always gives the same addresses.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from labkit.model import ClusterState, Deployment, Namespace, Node, Pod, Secret, Service
from labkit.policy.ir import Policy


def identity(obj: Any) -> tuple[str, str, str]:
    """What names an object: applying another with the same identity replaces it."""
    if isinstance(obj, Policy):
        return obj.identity
    return (type(obj).__name__, getattr(obj, "namespace", ""), getattr(obj, "name", ""))


def add_policy(state: ClusterState, obj: Any) -> None:
    """Apply a policy (or a Calico Tier), replacing one of the same name."""
    add_policies(state, [obj])


def add_policies(state: ClusterState, objects: Iterable[Any]) -> None:
    """Apply policies in order, each replacing one of the same name where it stood.

    Indexed by identity: applying k policies over n costs O(n + k), not O(n * k).
    """
    index = {identity(p): i for i, p in enumerate(state.policies)}
    for obj in objects:
        key = identity(obj)
        at = index.get(key)
        if at is None:
            index[key] = len(state.policies)
            state.policies.append(obj)
        else:
            state.policies[at] = obj


def build_state(objects: Iterable[Any], *, name: str = "default",
                pod_cidr: str = "10.244.0.0/16") -> ClusterState:
    """A ClusterState from parsed objects (parse with ``served=`` to refuse missing CRDs)."""
    state = ClusterState(name=name, pod_cidr=pod_cidr)
    pods: list[Pod] = []
    policies: list[Any] = []
    for obj in objects:
        if isinstance(obj, Namespace):
            state.namespaces[obj.name] = obj
        elif isinstance(obj, Pod):
            pods.append(obj)
        elif isinstance(obj, Deployment):
            pods.extend(Pod(obj.namespace, f"{obj.name}-{i}", dict(obj.labels), ports=obj.ports)
                        for i in range(obj.replicas))
        elif isinstance(obj, Service):
            state.services[obj.key] = obj
        elif isinstance(obj, Secret):
            state.secrets[f"{obj.namespace}/{obj.name}"] = obj
        elif isinstance(obj, Node):
            state.nodes[obj.name] = obj
        else:
            policies.append(obj)
    add_policies(state, policies)
    taken = {p.ip for p in pods if p.ip}
    free = _addresses(pod_cidr, taken)
    for pod in pods:
        if not pod.ip:
            pod = replace(pod, ip=next(free))
        state.pods[pod.key] = pod
        state.namespaces.setdefault(pod.namespace, Namespace(pod.namespace))
    return state


def _addresses(cidr: str, taken: set[str]) -> Any:
    net = ipaddress.ip_network(cidr, strict=False)
    for offset, addr in enumerate(net.hosts()):
        if offset < 9:  # leave the low addresses to gateways, as CNIs do
            continue
        text = str(addr)
        if text not in taken:
            yield text
