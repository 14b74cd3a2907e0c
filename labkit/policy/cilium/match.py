"""What a Cilium peer or subject selects, as bitsets over a :class:`~labkit.policy.ir.Universe`.

Cilium matches *identities*, made of labels (Cilium 1.20 docs, "Layer 3
Examples" and "Using Kubernetes Constructs in Policy"):

- a pod carries its own labels plus ``io.kubernetes.pod.namespace``,
  ``io.cilium.k8s.namespace.labels.<key>`` for each namespace label,
  ``io.cilium.k8s.policy.cluster`` and ``io.cilium.k8s.policy.serviceaccount``;
  ``k8s:`` and ``any:`` key prefixes mean the same as no prefix;
- a selector in a CiliumNetworkPolicy without a namespace key (and without
  namespace-label keys) is scoped to the policy's namespace; in a clusterwide
  policy it gets ``io.kubernetes.pod.namespace`` Exists, so ``{}`` means every
  pod and never world (pkg/k8s/apis/cilium.io/utils ``getEndpointSelector``);
- without a cluster key a selector means the local cluster only: Cilium >= 1.19
  defaults ``policy-default-local-cluster`` to true (cilium/cilium#40609);
- CIDR selectors never match pods or nodes by default ("Selecting nodes with
  CIDR / ipBlock": ``policy-cidr-match-mode`` is empty), only addresses outside
  the cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from labkit.model import CILIUM_CLUSTER_LABEL, CILIUM_NAMESPACE_LABEL
from labkit.policy.cilium.fqdn import FqdnSelector
from labkit.policy.ir import Endpoint, EndpointKind, Universe
from labkit.policy.selectors import LabelSelector, Requirement

NS_LABELS_PREFIX = "io.cilium.k8s.namespace.labels."
SERVICE_ACCOUNT_LABEL = "io.cilium.k8s.policy.serviceaccount"
RESERVED_PREFIX = "reserved:"
#: Entities of the Cilium 1.20 policy language (pkg/policy/api/entity.go).
ENTITIES = ("all", "world", "world-ipv4", "world-ipv6", "cluster", "host", "remote-node",
            "kube-apiserver", "ingress", "health", "init", "unmanaged", "none")
#: Entities with no endpoint in a lab universe (Envoy ingress, health and init endpoints ...).
ABSENT_ENTITIES = ("ingress", "health", "init", "unmanaged", "none")


def normalise_key(key: str) -> str:
    """``k8s:app`` and ``any:app`` mean ``app``; ``reserved:`` keys stay as they are."""
    for prefix in ("k8s:", "any:"):
        if key.startswith(prefix):
            return key[len(prefix):]
    return key


def node_of(e: Endpoint) -> str:
    if e.pod is not None:
        return e.pod.node
    return e.key[5:] if e.key.startswith("node:") else ""


# -- label selectors ------------------------------------------------------------------------
@dataclass(frozen=True)
class CiliumSelector:
    """A Cilium endpoint selector, already scoped (namespace, cluster) the way Cilium scopes it.

    ``requirements`` use normalised keys. ``cluster`` is the ClusterMesh cluster
    the selector is limited to when it names none itself ("" = the universe's
    own cluster, None = no limit).
    """

    requirements: tuple[Requirement, ...]
    cluster: str | None = ""
    text: str = ""

    def bits(self, u: Universe) -> int:
        return u.cached(("cilium-sel", self), lambda: self._compute(u))

    def _compute(self, u: Universe) -> int:
        pod_reqs: list[Requirement] = []
        bits = -1
        reserved = [r for r in self.requirements if r.key.startswith(RESERVED_PREFIX)]
        if reserved:
            # Reserved identities (world, host ...) carry only their reserved label.
            for r in reserved:
                bits &= _reserved_bits(u, r)
            others = [r for r in self.requirements if not r.key.startswith(RESERVED_PREFIX)]
            for r in others:  # e.g. NotIn on a pod label: true for a label-less identity
                if not r.matches({}):
                    return 0
            return bits & u.all_bits
        bits = u.pod_bits
        has_cluster = False
        for r in self.requirements:
            if r.key == CILIUM_NAMESPACE_LABEL:
                bits &= _namespace_bits(u, lambda name, r=r: r.matches({r.key: name}))
            elif r.key.startswith(NS_LABELS_PREFIX):
                key = r.key[len(NS_LABELS_PREFIX):]
                bits &= _namespace_bits(u, lambda name, r=r, key=key: r.matches(
                    _with(r.key, u.state.namespace(name).all_labels().get(key))))
            elif r.key == CILIUM_CLUSTER_LABEL:
                has_cluster = True
                bits &= u.where(("cilium-cluster-req", r), _in_cluster(r))
            elif r.key == SERVICE_ACCOUNT_LABEL:
                bits &= u.where(("cilium-sa-req", r), _with_service_account(r))
            else:
                pod_reqs.append(r)
        if pod_reqs:
            bits &= LabelSelector((), tuple(pod_reqs)).pod_bits(u)
        if not has_cluster and self.cluster is not None:
            bits &= u.cluster_bits(self.cluster or u.state.name)
        return bits

    def describe(self) -> str:
        return self.text or "{}"


def _with(key: str, value: str | None) -> Mapping[str, str]:
    return {} if value is None else {key: value}


def _namespace_bits(u: Universe, keep: object) -> int:
    out = 0
    for name, bits in u.ns_index.items():
        if keep(name):  # type: ignore[operator]
            out |= bits
    return out


def _reserved_bits(u: Universe, r: Requirement) -> int:
    entity = r.key[len(RESERVED_PREFIX):]
    inside = entity_bits(u, entity, None) if entity in ENTITIES else 0
    if r.operator in ("Exists", "In"):
        return inside if (r.operator == "Exists" or "" in r.values) else 0
    return u.all_bits & ~inside


# -- entities -------------------------------------------------------------------------------
def entity_bits(u: Universe, entity: str, local: Endpoint | None) -> int:
    """Endpoints an entity covers, seen from ``local`` (host vs remote-node needs it)."""
    if entity == "all":
        return u.all_bits
    if entity in ("world", "world-ipv4", "world-ipv6"):
        version = {"world-ipv4": 4, "world-ipv6": 6}.get(entity)
        return u.where(("cilium-world", version), lambda e: e.kind is EndpointKind.EXTERNAL and (
            version is None or (":" in e.ip) == (version == 6)))
    if entity == "cluster":
        # Local pods, every node (remote ClusterMesh nodes included), never remote pods.
        return u.where(("cilium-cluster", u.state.name), lambda e: e.kind is EndpointKind.HOST
                       or (e.kind is EndpointKind.POD and e.cluster == u.state.name))
    if entity in ("host", "remote-node"):
        node = node_of(local) if local is not None else ""
        want_local = entity == "host"
        return u.where(("cilium-node-entity", entity, node), lambda e: e.kind is
                       EndpointKind.HOST and (not node or not node_of(e) or
                                              (node_of(e) == node) == want_local))
    if entity == "kube-apiserver":
        return u.where(("cilium-apiserver",), lambda e: e.kind is EndpointKind.HOST and
                       "control-plane" in _roles(u, e))
    return 0  # ingress, health, init, unmanaged, none: no such endpoint in the lab


def _roles(u: Universe, e: Endpoint) -> tuple[str, ...]:
    node = u.state.nodes.get(node_of(e))
    return node.roles if node is not None else ()


# -- CIDRs ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CidrSet:
    """``fromCIDR``/``toCIDR`` entries (no excepts) or one ``CIDRSet`` entry."""

    cidr: str
    excepts: tuple[str, ...] = ()

    def bits(self, u: Universe) -> int:
        bits = u.cidr_bits(self.cidr, pods=False) & u.kind_bits(EndpointKind.EXTERNAL)
        for e in self.excepts:
            bits &= ~u.cidr_bits(e)
        return bits

    def describe(self) -> str:
        return self.cidr + (f" except {', '.join(self.excepts)}" if self.excepts else "")


# -- a rule's peers -------------------------------------------------------------------------
@dataclass(frozen=True)
class CiliumPeers:
    """The L3 part of one Cilium rule: endpoints, entities, CIDRs (any of them).

    ``wildcard``: no L3 field at all, so every peer (world included) matches.
    """

    selectors: tuple[CiliumSelector, ...] = ()
    entities: tuple[str, ...] = ()
    cidrs: tuple[CidrSet, ...] = ()
    wildcard: bool = False
    fqdns: tuple[FqdnSelector, ...] = ()

    def bits(self, u: Universe) -> int:
        return self.bits_for(u, None)

    def bits_for(self, u: Universe, local: Endpoint | None) -> int:
        if self.wildcard:
            return u.all_bits
        out = 0
        for s in self.selectors:
            out |= s.bits(u)
        for entity in self.entities:
            out |= entity_bits(u, entity, local)
        for c in self.cidrs:
            out |= c.bits(u)
        return out  # toFQDNs: added per endpoint by decide (they depend on its DNS rules)

    def describe(self) -> str:
        if self.wildcard:
            return "any peer (no L3 selector)"
        parts = [f"endpoints [{s.describe()}]" for s in self.selectors]
        parts += [f"entity {e}" for e in self.entities]
        parts += [f"CIDR {c.describe()}" for c in self.cidrs]
        parts += [f"FQDN {f.describe()}" for f in self.fqdns]
        return " or ".join(parts) or "nothing"


def _in_cluster(r: Requirement) -> Callable[[Endpoint], bool]:
    """Pods whose ClusterMesh cluster satisfies ``r``."""
    return lambda e: e.kind is EndpointKind.POD and r.matches({r.key: e.cluster})


def _with_service_account(r: Requirement) -> Callable[[Endpoint], bool]:
    """Pods whose service account satisfies ``r``."""
    return lambda e: e.pod is not None and r.matches({r.key: e.pod.service_account})
