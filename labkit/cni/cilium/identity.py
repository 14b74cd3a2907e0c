"""Cilium security identities: one number per set of security-relevant labels.

Cilium does not filter traffic by IP address: every endpoint gets a numeric *security
identity* derived from its labels, and policy is compiled against identities. Pods whose
security-relevant labels are equal share one identity (the API's two replicas do); a
pod whose labels change gets another.

What this module models, and where it comes from (cilium/cilium, pinned 1.20 line):

- **Reserved identities** are fixed numbers below 256 (``pkg/identity/numericidentity.go``:
  ``ReservedIdentityHost`` = 1 ... ``ReservedIdentityIngress`` = 8, then world-ipv4 9,
  world-ipv6 10 and encrypted-overlay 11 added for dual-stack and IPsec overlay).
- **Cluster-local identities** come from ``MinimalAllocationIdentity`` = 256 up to
  ``(1 << 16) * (cluster-id + 1) - 1`` (same file; cluster-id 0 on a lab cluster).
- **Security-relevant labels** (``pkg/labelsfilter``, ``pkg/k8s/apis/cilium.io/const.go``):
  the pod's own labels minus the ones that change per rollout or per pod
  (``pod-template-hash``, ``controller-revision-hash``, ``pod-template-generation``,
  ``statefulset.kubernetes.io/pod-name`` ...), plus ``io.kubernetes.pod.namespace``,
  ``io.cilium.k8s.policy.serviceaccount``, ``io.cilium.k8s.policy.cluster`` and each
  namespace label as ``io.cilium.k8s.namespace.labels.<key>``; all with source ``k8s:``.

In CRD mode (the default) the operator or agent picks a *free number at random* in the
range and stores it as a ``CiliumIdentity`` object named by the number. The sim cannot
be random and stay reproducible, so :class:`IdentityAllocator` derives the number from a
hash of the label set and probes for the next free one on a collision: the same labels
always get the same number, in any order of allocation (simulated, and labelled so).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from labkit.display.render import Rendered, html_table, text_table

#: pkg/identity/numericidentity.go (reserved identities and their label names).
RESERVED: dict[str, int] = {
    "host": 1, "world": 2, "unmanaged": 3, "health": 4, "init": 5, "remote-node": 6,
    "kube-apiserver": 7, "ingress": 8, "world-ipv4": 9, "world-ipv6": 10,
    "encrypted-overlay": 11,
}
MINIMAL_ALLOCATION_IDENTITY = 256
CLUSTER_ID_SHIFT = 16

#: Label keys Cilium's default label filter leaves out of the identity (pkg/labelsfilter).
EXCLUDED_KEYS = frozenset({
    "pod-template-hash", "controller-revision-hash", "pod-template-generation",
    "statefulset.kubernetes.io/pod-name", "batch.kubernetes.io/controller-uid",
    "controller-uid", "batch.kubernetes.io/job-name", "job-name",
})
NAMESPACE_LABEL = "io.kubernetes.pod.namespace"
SERVICE_ACCOUNT_LABEL = "io.cilium.k8s.policy.serviceaccount"
CLUSTER_LABEL = "io.cilium.k8s.policy.cluster"
NAMESPACE_META_PREFIX = "io.cilium.k8s.namespace.labels."


def security_labels(pod_labels: Mapping[str, str], namespace: str, *,
                    namespace_labels: Mapping[str, str] | None = None,
                    service_account: str = "default", cluster: str = "default"
                    ) -> tuple[str, ...]:
    """The sorted ``k8s:key=value`` labels Cilium derives a pod's identity from."""
    out = {f"k8s:{k}={v}" for k, v in pod_labels.items() if k not in EXCLUDED_KEYS}
    ns_labels = {"kubernetes.io/metadata.name": namespace, **(namespace_labels or {})}
    out |= {f"k8s:{NAMESPACE_META_PREFIX}{k}={v}" for k, v in ns_labels.items()}
    out |= {f"k8s:{NAMESPACE_LABEL}={namespace}",
            f"k8s:{SERVICE_ACCOUNT_LABEL}={service_account}",
            f"k8s:{CLUSTER_LABEL}={cluster}"}
    return tuple(sorted(out))


@dataclass
class IdentityAllocator:
    """Cluster-local identities, stable per label set (see the module docstring)."""

    cluster_id: int = 0
    by_labels: dict[tuple[str, ...], int] = field(default_factory=dict)

    @property
    def first(self) -> int:
        return MINIMAL_ALLOCATION_IDENTITY if self.cluster_id == 0 else \
            (1 << CLUSTER_ID_SHIFT) * self.cluster_id

    @property
    def last(self) -> int:
        return (1 << CLUSTER_ID_SHIFT) * (self.cluster_id + 1) - 1

    def allocate(self, labels: Iterable[str]) -> int:
        key = tuple(sorted(labels))
        if key in self.by_labels:
            return self.by_labels[key]
        size = self.last - self.first + 1
        start = int(hashlib.sha256("\n".join(key).encode()).hexdigest(), 16) % size
        taken = set(self.by_labels.values())
        for step in range(size):
            number = self.first + (start + step) % size
            if number not in taken:
                self.by_labels[key] = number
                return number
        raise RuntimeError("identity range exhausted")  # 65280 label sets: not in a lab


@dataclass(frozen=True)
class IdentityRow:
    identity: int
    labels: tuple[str, ...]
    pods: tuple[str, ...]


@dataclass(frozen=True, repr=False)
class Identities(Rendered):
    """The identities of a set of pods (``kubectl get ciliumendpoints``), plus the reserved."""

    rows: tuple[IdentityRow, ...]
    simulated: bool = False
    reserved: tuple[tuple[str, int], ...] = tuple(RESERVED.items())

    def of(self, pod: str) -> int:
        for row in self.rows:
            if pod in row.pods:
                return row.identity
        raise KeyError(pod)

    def _table(self) -> list[list[str]]:
        return [[str(r.identity), ", ".join(r.pods),
                 " ".join(lb.removeprefix("k8s:") for lb in r.labels
                          if not lb.startswith(("k8s:" + NAMESPACE_META_PREFIX,
                                                "k8s:" + CLUSTER_LABEL)))]
                for r in self.rows]

    def to_text(self) -> str:
        reserved = ", ".join(f"{n}={i}" for n, i in self.reserved)
        note = "\n(simulated: numbers chosen like Cilium's allocator, not by a cluster)" \
            if self.simulated else ""
        return (text_table(["IDENTITY", "PODS", "LABELS (namespace labels and cluster left out)"],
                           self._table()) + f"\nreserved: {reserved}" + note)

    def _repr_html_(self) -> str:
        note = "<p><i>simulated</i></p>" if self.simulated else ""
        return (html_table(["identity", "pods", "labels"], self._table())
                + html_table(["reserved identity", "number"], self.reserved) + note)

    def as_dict(self) -> dict[str, Any]:
        return {"simulated": self.simulated, "reserved": dict(self.reserved),
                "identities": [{"identity": r.identity, "labels": list(r.labels),
                                "pods": list(r.pods)} for r in self.rows]}


def group(pairs: Iterable[tuple[str, int, tuple[str, ...]]], *, simulated: bool
          ) -> Identities:
    """(pod, identity, labels) triples -> one row per identity, pods sorted."""
    rows: dict[int, tuple[tuple[str, ...], list[str]]] = {}
    for pod, number, labels in pairs:
        rows.setdefault(number, (tuple(sorted(labels)), []))[1].append(pod)
    return Identities(tuple(IdentityRow(n, lb, tuple(sorted(pods)))
                            for n, (lb, pods) in sorted(rows.items())), simulated)
