"""The form every policy flavour compiles to, and the endpoint universe it is judged in.

Every flavour (Kubernetes, Calico, Cilium) parses its manifests into
:class:`Policy` objects made of :class:`Rule` objects. A rule's peers and a
policy's targets are :class:`Matcher` objects that turn into *bitsets* over a
:class:`Universe` of endpoints (pods, external addresses, nodes): bit ``i`` set
means endpoint ``i`` matches. Python integers are arbitrary-precision bitsets,
so "all sources this rule admits" is one integer, and a whole connectivity
matrix costs a few integer operations per (endpoint, rule) instead of a
Python loop per (source, destination) pair.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from labkit.model import (
    CILIUM_CLUSTER_LABEL,
    ClusterState,
    HttpRequest,
    Pod,
)


class Direction(StrEnum):
    INGRESS = "ingress"
    EGRESS = "egress"


class Action(StrEnum):
    ALLOW = "Allow"
    DENY = "Deny"
    PASS = "Pass"  # Calico: skip to the next tier
    LOG = "Log"  # Calico: log and keep evaluating


class EndpointKind(StrEnum):
    POD = "pod"
    EXTERNAL = "external"  # an address outside the cluster (Cilium: world)
    HOST = "host"  # a node's own address (Cilium: host / remote-node)


@dataclass(frozen=True)
class Endpoint:
    index: int
    kind: EndpointKind
    key: str  # "ns/pod", "ip:1.2.3.4" or "node:NAME"
    ip: str
    pod: Pod | None = None
    namespace: str = ""
    labels: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    ns_labels: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    cluster: str = ""


def bits_of(indexes: Iterator[int] | Sequence[int]) -> int:
    out = 0
    for i in indexes:
        out |= 1 << i
    return out


def iter_bits(bits: int) -> Iterator[int]:
    """Indexes of the set bits, lowest first."""
    while bits:
        low = bits & -bits
        yield low.bit_length() - 1
        bits ^= low


class Universe:
    """The endpoints of one evaluation, with indexes that make selectors cheap.

    Built once per (cluster state, set of extra addresses); matchers cache their
    bitsets here under a key of their own, so one selector used by a hundred
    rules is resolved once.
    """

    def __init__(self, state: ClusterState, extra_ips: Sequence[str] = ()) -> None:
        self.state = state
        self.endpoints: list[Endpoint] = []
        self.by_key: dict[str, int] = {}
        self._cache: dict[Any, int] = {}
        self._addresses: list[tuple[int, int]] = []
        self.label_index: dict[tuple[str, str], int] = defaultdict(int)
        self.key_index: dict[str, int] = defaultdict(int)
        self.ns_index: dict[str, int] = defaultdict(int)
        self.named_port_index: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)

        for pod in sorted(state.pods.values(), key=lambda p: p.key):
            ns = state.namespace(pod.namespace)
            ep = self._add(
                EndpointKind.HOST if pod.host_network else EndpointKind.POD,
                pod.key, pod.ip, pod=pod, namespace=pod.namespace, labels=dict(pod.labels),
                ns_labels=ns.all_labels(), cluster=pod.cluster,
            )
            bit = 1 << ep.index
            for k, v in pod.labels.items():
                self.label_index[(k, v)] |= bit
                self.key_index[k] |= bit
            self.ns_index[pod.namespace] |= bit
            for cp in pod.ports:
                if cp.name:
                    self.named_port_index[(cp.name, cp.protocol)].append((ep.index, cp.port))
        for node in sorted(state.nodes.values(), key=lambda n: n.name):
            if node.ip and f"ip:{node.ip}" not in self.by_key:
                self._add(EndpointKind.HOST, f"node:{node.name}", node.ip, cluster=state.name)
        for ip in extra_ips:
            self.add_external(ip)

        self.pod_bits = bits_of(e.index for e in self.endpoints if e.kind is EndpointKind.POD)

    # -- construction -------------------------------------------------------------
    def _add(self, kind: EndpointKind, key: str, ip: str, **kw: Any) -> Endpoint:
        ep = Endpoint(len(self.endpoints), kind, key, ip, **kw)
        self.endpoints.append(ep)
        self.by_key[key] = ep.index
        if ip and kind is not EndpointKind.POD:
            self.by_key.setdefault(f"ip:{ip}", ep.index)
        return ep

    def add_external(self, ip: str) -> int:
        """Index of ``ip:ADDR``: a node, a pod that owns the address, or a new world endpoint."""
        key = f"ip:{ip}"
        if key in self.by_key:
            return self.by_key[key]
        owner = self.state.pod_by_ip(ip)
        if owner is not None and owner.key in self.by_key:
            self.by_key[key] = self.by_key[owner.key]
            return self.by_key[key]
        self._cache.clear()  # the universe grew: cached bitsets are stale
        return self._add(EndpointKind.EXTERNAL, key, ip).index

    # -- queries ----------------------------------------------------------------------
    @property
    def all_bits(self) -> int:
        return (1 << len(self.endpoints)) - 1

    def index(self, key: str) -> int:
        """Index of a traffic endpoint (``ns/pod`` or ``ip:ADDR``); KeyError when unknown."""
        if key.startswith("ip:"):
            return self.add_external(key[3:])
        return self.by_key[key]

    def kind_bits(self, kind: EndpointKind) -> int:
        return self.cached(("kind", kind), lambda: bits_of(
            e.index for e in self.endpoints if e.kind is kind))

    def cached(self, key: Any, compute: Callable[[], int]) -> int:
        try:
            return self._cache[key]
        except KeyError:
            value = self._cache[key] = compute()
            return value

    def where(self, key: Any, predicate: Callable[[Endpoint], bool]) -> int:
        """Bitset of endpoints satisfying ``predicate``; cached under ``key``."""
        return self.cached(key, lambda: bits_of(e.index for e in self.endpoints if predicate(e)))

    def addresses(self) -> list[tuple[int, int]]:
        """Each endpoint's (IP version, address as an int); (0, 0) when it has none.
        Parsed once per endpoint: a CIDR test is then a mask and a compare."""
        while len(self._addresses) < len(self.endpoints):
            ip = self.endpoints[len(self._addresses)].ip
            addr = ipaddress.ip_address(ip) if ip else None
            self._addresses.append((addr.version, int(addr)) if addr else (0, 0))
        return self._addresses

    def cidr_bits(self, cidr: str, *, pods: bool = True) -> int:
        """Endpoints whose address is inside ``cidr`` (optionally leaving pods out)."""
        net = ipaddress.ip_network(cidr, strict=False)
        version, first, mask = net.version, int(net.network_address), int(net.netmask)

        def compute() -> int:
            out = 0
            for e, (v, addr) in zip(self.endpoints, self.addresses(), strict=True):
                if v == version and addr & mask == first and \
                        (pods or e.kind is not EndpointKind.POD):
                    out |= 1 << e.index
            return out

        return self.cached(("cidr", str(net), pods), compute)

    def named_port_bits(self, name: str, protocol: str, port: int) -> int:
        """Pods on which the port called ``name``/``protocol`` is number ``port``."""
        return self.cached(("named", name, protocol, port), lambda: bits_of(
            i for i, number in self.named_port_index.get((name, protocol), ()) if number == port))

    def cluster_bits(self, cluster: str) -> int:
        return self.where(("cluster", cluster), lambda e: e.cluster == cluster)


class Matcher(Protocol):
    """Something that selects endpoints: a label selector, a CIDR, an entity ..."""

    def bits(self, u: Universe) -> int: ...

    def describe(self) -> str: ...

    def __hash__(self) -> int: ...  # matchers are frozen values: caches key on them


@dataclass(frozen=True)
class AnyEndpoint:
    def bits(self, u: Universe) -> int:
        return u.all_bits

    def describe(self) -> str:
        return "any endpoint"


@dataclass(frozen=True)
class NoEndpoint:
    def bits(self, u: Universe) -> int:
        return 0

    def describe(self) -> str:
        return "nothing"


@dataclass(frozen=True)
class AnyOf:
    parts: tuple[Matcher, ...]

    def bits(self, u: Universe) -> int:
        out = 0
        for p in self.parts:
            out |= p.bits(u)
        return out

    def describe(self) -> str:
        return " or ".join(p.describe() for p in self.parts) or "nothing"


@dataclass(frozen=True)
class AllOf:
    parts: tuple[Matcher, ...]

    def bits(self, u: Universe) -> int:
        out = u.all_bits
        for p in self.parts:
            out &= p.bits(u)
        return out

    def describe(self) -> str:
        return " and ".join(p.describe() for p in self.parts) or "any endpoint"


@dataclass(frozen=True)
class Without:
    base: Matcher
    removed: Matcher

    def bits(self, u: Universe) -> int:
        return self.base.bits(u) & ~self.removed.bits(u)

    def describe(self) -> str:
        return f"{self.base.describe()} except {self.removed.describe()}"


@dataclass(frozen=True)
class InCluster:
    """ClusterMesh: endpoints of the named cluster (``io.cilium.k8s.policy.cluster``)."""

    cluster: str

    def bits(self, u: Universe) -> int:
        return u.cluster_bits(self.cluster)

    def describe(self) -> str:
        return f"{CILIUM_CLUSTER_LABEL}={self.cluster}"


@dataclass(frozen=True)
class PortSpec:
    """One port entry: protocol (None = any), a number range or a name, or no port at all."""

    protocol: str | None = "TCP"
    first: int | None = None
    last: int | None = None
    name: str | None = None

    def matches(self, dst: Endpoint | None, port: int, protocol: str) -> bool:
        """Whether traffic to ``port``/``protocol`` on ``dst`` falls under this entry."""
        if self.protocol is not None and self.protocol != protocol:
            return False
        if self.name is not None:
            pod = dst.pod if dst is not None else None
            return pod is not None and pod.resolve_port(self.name, protocol) == port
        if self.first is None:
            return True
        return self.first <= port <= (self.last if self.last is not None else self.first)

    def dst_bits(self, u: Universe, port: int, protocol: str) -> int:
        """Destinations for which the entry matches ``port``/``protocol`` (for egress rules)."""
        if self.protocol is not None and self.protocol != protocol:
            return 0
        if self.name is not None:
            return u.named_port_bits(self.name, protocol, port)
        return u.all_bits if self.matches(None, port, protocol) else 0

    def describe(self) -> str:
        proto = self.protocol or "any protocol"
        if self.name is not None:
            return f"{proto} port '{self.name}'"
        if self.first is None:
            return f"all {proto} ports" if self.protocol else "all ports"
        if self.last is not None and self.last != self.first:
            return f"{proto} {self.first}-{self.last}"
        return f"{proto} {self.first}"


class HttpMatcher(Protocol):
    """One L7 HTTP rule; several on a port are alternatives."""

    def matches(self, request: HttpRequest, state: ClusterState) -> bool: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class Rule:
    """One rule of a policy, for one direction.

    ``peer`` is the remote side (the source of ingress, the destination of egress);
    ``local`` optionally narrows the policy's own endpoint (Calico lets an
    ingress rule name its destination too); ``ports`` and ``not_ports`` are read
    against the destination; ``http`` is None for no L7 filtering, else the
    alternatives an HTTP request must match.
    """

    origin: str
    action: Action = Action.ALLOW
    peer: Matcher = AnyEndpoint()
    local: Matcher | None = None
    ports: tuple[PortSpec, ...] = ()
    not_ports: tuple[PortSpec, ...] = ()
    http: tuple[HttpMatcher, ...] | None = None
    #: Cilium ``rules.dns``: the names the DNS proxy lets the endpoint look up (None: no DNS
    #: rule on this port; labkit.policy.cilium.fqdn).
    dns: tuple[Any, ...] | None = None

    def port_ok(self, dst: Endpoint | None, port: int, protocol: str) -> bool:
        if self.ports and not any(s.matches(dst, port, protocol) for s in self.ports):
            return False
        return not any(s.matches(dst, port, protocol) for s in self.not_ports)

    def dst_port_bits(self, u: Universe, port: int, protocol: str) -> int:
        """Destinations this rule's port clauses accept (named ports differ per pod)."""
        ok = u.all_bits
        if self.ports:
            ok = 0
            for s in self.ports:
                ok |= s.dst_bits(u, port, protocol)
        for s in self.not_ports:
            ok &= ~s.dst_bits(u, port, protocol)
        return ok

    def describe_ports(self) -> str:
        text = ", ".join(s.describe() for s in self.ports) if self.ports else "all ports"
        if self.not_ports:
            text += " except " + ", ".join(s.describe() for s in self.not_ports)
        return text


@dataclass(frozen=True)
class Policy:
    """A policy of any flavour, compiled.

    ``ingress``/``egress`` are None when the policy does not apply to that
    direction (Kubernetes policyTypes), and an empty tuple when it applies but
    admits nothing.
    """

    kind: str  # NetworkPolicy, CiliumNetworkPolicy, GlobalNetworkPolicy ...
    name: str
    namespace: str  # "" for cluster-wide policies
    selects: Matcher
    ingress: tuple[Rule, ...] | None = None
    egress: tuple[Rule, ...] | None = None
    tier: str = "default"  # Calico
    order: float | None = None  # Calico
    #: Cilium ``enableDefaultDeny``; a selecting policy isolates the endpoint only when True.
    default_deny: tuple[bool, bool] = (True, True)
    #: Valid input that still deserves a word (a named port no pod has ...).
    warnings: tuple[str, ...] = ()
    source: str = ""

    @property
    def ref(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where}"

    @property
    def identity(self) -> tuple[str, str, str]:
        """What makes two applies the same object: applying again replaces it."""
        return (self.kind, self.namespace, self.name)

    def rules(self, direction: Direction) -> tuple[Rule, ...] | None:
        return self.ingress if direction is Direction.INGRESS else self.egress

    def isolates(self, direction: Direction) -> bool:
        return self.default_deny[0 if direction is Direction.INGRESS else 1]
