"""Plain data the whole of labkit shares: cluster objects, traffic and verdicts.

Nothing here does I/O. Policies are not in this module: each policy flavour has
its own typed form under ``labkit.policy``; :class:`ClusterState` holds them as
opaque objects so that both backends and the engine can carry them around.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

#: Label every namespace gets from the API server (Kubernetes >= 1.21).
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
#: Label Cilium gives every endpoint with its cluster's name (ClusterMesh).
CILIUM_CLUSTER_LABEL = "io.cilium.k8s.policy.cluster"
#: Label Cilium gives every endpoint with its namespace.
CILIUM_NAMESPACE_LABEL = "io.kubernetes.pod.namespace"

PROTOCOLS = ("TCP", "UDP", "SCTP")
#: The name a cluster has for Cilium (Helm value ``cluster.name``, "default" unless set): pods
#: carry it as ``io.cilium.k8s.policy.cluster``. Lab clusters leave it at the default, so a
#: backend's state is named this, not after its kind cluster (a Cilium selector that names no
#: cluster matches only pods of this one).
LOCAL_CLUSTER = "default"


class Namespaced:
    """Objects that live in a namespace: ``key`` is how traffic and the API name them."""

    namespace: str
    name: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class ContainerPort:
    port: int
    protocol: str = "TCP"
    name: str = ""


@dataclass(frozen=True)
class Namespace:
    name: str
    labels: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    def all_labels(self) -> dict[str, str]:
        """Labels as the API server reports them, with the automatic name label."""
        return {**self.labels, NAMESPACE_NAME_LABEL: self.name}


@dataclass(frozen=True)
class Pod(Namespaced):
    namespace: str
    name: str
    labels: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    ip: str = ""
    node: str = ""
    ports: tuple[ContainerPort, ...] = ()
    service_account: str = "default"
    host_network: bool = False
    #: ClusterMesh: the name of the cluster the pod runs in.
    cluster: str = LOCAL_CLUSTER
    #: Its containers' names, in spec order (kubectl's READY counts them; exec picks one).
    containers: tuple[str, ...] = field(default=(), compare=False)

    def resolve_port(self, name: str, protocol: str) -> int | None:
        """The number a named port means on this pod, if the pod declares it."""
        for p in self.ports:
            if p.name == name and p.protocol == protocol:
                return p.port
        return None


@dataclass(frozen=True)
class Deployment(Namespaced):
    """A Deployment as far as networking cares: how many pods, with which labels and ports."""

    namespace: str
    name: str
    replicas: int = 1
    labels: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    ports: tuple[ContainerPort, ...] = ()
    image: str = ""
    containers: tuple[str, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class ServicePort:
    port: int
    target_port: int | str
    protocol: str = "TCP"
    name: str = ""
    node_port: int | None = None


@dataclass(frozen=True)
class Service(Namespaced):
    namespace: str
    name: str
    selector: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    ports: tuple[ServicePort, ...] = ()
    type: str = "ClusterIP"
    cluster_ip: str = ""
    external_ip: str = ""
    annotations: dict[str, str] = field(default_factory=dict, hash=False, compare=False)


def short_names(keys: Iterable[str], pods: dict[str, Pod]) -> dict[str, str]:
    """What a learner calls each endpoint: its ``app`` label (``frontend``, ``db``),
    numbered where several pods share it (``api-1``, ``api-2``), with the namespace in
    front where the same name lives in two namespaces. Addresses stay addresses."""
    keys = list(dict.fromkeys(keys))

    def base(key: str) -> str:
        pod = pods.get(key)
        if pod is None:
            return key[3:] if key.startswith("ip:") else key
        return pod.labels.get("app") or pod.labels.get("k8s-app") or pod.name

    groups: dict[tuple[str, str], list[str]] = {}
    for key in keys:
        groups.setdefault((key.split("/")[0] if key in pods else "", base(key)), []).append(key)
    clash = {b for _, b in groups if sum(1 for _, x in groups if x == b) > 1}
    out = {}
    for (ns, b), members in groups.items():
        name = f"{ns}/{b}" if b in clash and ns else b
        for i, key in enumerate(sorted(members)):
            out[key] = f"{name}-{i + 1}" if len(members) > 1 else name
    return out


def endpoints_of(service: Service, pods: Iterable[Pod]) -> list[tuple[Pod, int]]:
    """(pod, target port) behind each port of ``service``, like its EndpointSlice: pods in
    its namespace that match its selector, whose port the targetPort names (a name must be
    declared by the pod; a Service without a selector has no automatic endpoints)."""
    out = []
    for pod in pods:
        if pod.namespace != service.namespace or not service.selector or \
                any(pod.labels.get(k) != v for k, v in service.selector.items()):
            continue
        for sport in service.ports:
            target = sport.target_port
            number = pod.resolve_port(target, sport.protocol) if isinstance(target, str) \
                else target
            if number:
                out.append((pod, number))
    return out


@dataclass(frozen=True)
class Secret:
    namespace: str
    name: str
    data: dict[str, str] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Node:
    name: str
    ip: str = ""
    pod_cidr: str = ""
    ready: bool = False
    roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class HttpRequest:
    method: str = "GET"
    path: str = "/"
    host: str = ""
    # compared (two requests differing only in a header are two requests), not hashed (a dict)
    headers: dict[str, str] = field(default_factory=dict, hash=False)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "path": self.path}
        if self.host:
            out["host"] = self.host
        if self.headers:
            out["headers"] = dict(self.headers)
        return out


@dataclass(frozen=True)
class Traffic:
    """One connection attempt: ``source`` and ``destination`` are ``ns/pod`` or ``ip:ADDR``."""

    source: str
    destination: str
    port: int
    protocol: str = "TCP"
    http: HttpRequest | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "from": self.source,
            "to": self.destination,
            "port": self.port,
            "protocol": self.protocol,
        }
        if self.http is not None:
            out["http"] = self.http.as_dict()
        return out


class Denial(StrEnum):
    """How a denied connection fails, as the client sees it."""

    DROP = "drop"  # L3/L4: packets dropped, the client times out (curl exit 28)
    HTTP_403 = "http-403"  # L7: Envoy answers 403 "Access denied"


@dataclass(frozen=True)
class Verdict:
    traffic: Traffic
    allowed: bool
    denial: Denial | None = None
    reasons: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.traffic.as_dict(),
            "allowed": self.allowed,
            "denial": self.denial.value if self.denial else None,
            "reasons": list(self.reasons),
            **({"warnings": list(self.warnings)} if self.warnings else {}),
        }


@dataclass
class ClusterState:
    """Everything the policy engine needs to know about one cluster.

    ``policies`` holds typed policy objects from ``labkit.policy`` (any flavour),
    in the order they were applied; applying one under an existing name replaces it.
    """

    name: str = LOCAL_CLUSTER
    namespaces: dict[str, Namespace] = field(default_factory=dict)
    pods: dict[str, Pod] = field(default_factory=dict)  # key: ns/name
    services: dict[str, Service] = field(default_factory=dict)
    secrets: dict[str, Secret] = field(default_factory=dict)
    nodes: dict[str, Node] = field(default_factory=dict)
    policies: list[Any] = field(default_factory=list)
    pod_cidr: str = "10.244.0.0/16"
    service_cidr: str = "10.96.0.0/16"
    #: Cilium's ``policyEnforcementMode``: "default" (an endpoint is isolated once a policy
    #: selects it), "always" (every endpoint is isolated, with or without a policy) or
    #: "never" (no policy is enforced). Other CNIs ignore it.
    policy_enforcement: str = "default"
    #: Names the cluster's DNS resolves to addresses outside it (name -> IPs): the names a lab
    #: serves itself, for Cilium's toFQDNs (labkit.policy.cilium.fqdn).
    dns_names: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def namespace(self, name: str) -> Namespace:
        """The namespace object; a namespace that only pods mention gets no extra labels."""
        return self.namespaces.get(name) or Namespace(name)

    def pod_by_ip(self, ip: str) -> Pod | None:
        for pod in self.pods.values():
            if pod.ip == ip and not pod.host_network:
                return pod
        return None

    def node_by_ip(self, ip: str) -> Node | None:
        for node in self.nodes.values():
            if node.ip == ip:
                return node
        return None


#: A cluster name in an endpoint key: a DNS label, as kind cluster and ClusterMesh names are.
_CLUSTER_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def endpoint_key(namespace: str, name: str, cluster: str = "") -> str:
    """``namespace/name`` in the local cluster, ``cluster:namespace/name`` in a named one."""
    return f"{cluster}:{namespace}/{name}" if cluster else f"{namespace}/{name}"


def split_cluster(key: str) -> tuple[str, str]:
    """``("cluster-b", "shop-api/db")`` for ``cluster-b:shop-api/db``; ``("", key)`` for a
    local key. Namespaces and pod names never contain ``:``, so the first one separates."""
    cluster, sep, local = key.partition(":")
    return (cluster, local) if sep else ("", key)


def parse_endpoint(text: str) -> tuple[str, str]:
    """Split a traffic endpoint into ``("pod", key)`` or ``("ip", "1.2.3.4")``.

    A pod key is ``namespace/pod`` (the local cluster) or ``cluster:namespace/pod``
    (a named cluster, for ClusterMesh); it comes back as written. ``ip:`` always
    means an address, so no cluster may be named ``ip``. Raises ValueError for
    anything else; callers turn it into a ManifestError.
    """
    if text.startswith("ip:"):
        addr = text[3:]
        ipaddress.ip_address(addr)  # raises ValueError when it is not an address
        return "ip", addr
    cluster, local = split_cluster(text)
    ns, sep, name = local.partition("/")
    if not sep or not ns or not name or "/" in name or ":" in local:
        raise ValueError(f"{text!r} is neither 'namespace/pod' nor 'ip:ADDRESS' (a pod in a "
                         "named cluster: 'cluster:namespace/pod')")
    if text.startswith(":") or (cluster and not _CLUSTER_NAME.match(cluster)):
        raise ValueError(f"{text!r}: {cluster!r} is not a cluster name (lowercase letters, "
                         "digits and '-')")
    return "pod", text
