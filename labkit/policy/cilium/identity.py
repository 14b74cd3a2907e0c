"""Cilium security identities: reserved numbers, identity labels, and a deterministic allocator.

Cilium gives every set of security-relevant labels one numeric identity; pods with the same
labels (replicas) share it. Facts, from cilium v1.19 (as vendored by cilium/hubble 75d3a68):

- Reserved identities are fixed (``pkg/identity/numericidentity.go``): unknown 0, host 1,
  world 2, unmanaged 3, health 4, init 5, remote-node 6, kube-apiserver 7, ingress 8,
  world-ipv4 9, world-ipv6 10; Hubble prints them by name, ``(health)``, and others as
  ``(ID:n)`` (``hubble/pkg/printer/printer.go``, ``fmtIdentity``).
- Cluster-local identities start at ``MinimalNumericIdentity`` 256; with cluster ID 0 they end
  at 65535 (16 bits a cluster).
- The allocator leases an *available ID at random* from that range (``pkg/idpool/idpool.go``,
  ``LeaseAvailableID``), which is why real flows show identities such as 3418 or 51420. The sim
  must be deterministic, so :class:`IdentityAllocator` picks the "random" start from a hash of
  the label set and probes upward: the same labels always get the same number.
- In CRD identity mode (the Helm default) there are no well-known identities for CoreDNS and the
  like: a real capture shows ``kube-system/coredns-...:53 (ID:5128)`` (cilium PR 39860).
- Which labels count (``pkg/labelsfilter/filter.go``, ``defaultLabelPrefixCfg``): the pod's own
  labels minus Kubernetes bookkeeping (``pod-template-hash``, ``controller-revision-hash``,
  ``io.kubernetes*``, ``kubernetes.io*``, ...), plus ``io.kubernetes.pod.namespace``, every
  namespace label as ``io.cilium.k8s.namespace.labels.*``, ``io.cilium.k8s.policy.cluster`` and
  ``io.cilium.k8s.policy.serviceaccount``; all with the ``k8s:`` source prefix, sorted as Hubble
  lists them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from labkit.model import CILIUM_CLUSTER_LABEL, CILIUM_NAMESPACE_LABEL, ClusterState, Pod

#: Reserved identities by name (pkg/identity/numericidentity.go, pkg/labels/labels.go).
RESERVED: dict[str, int] = {
    "host": 1, "world": 2, "unmanaged": 3, "health": 4, "init": 5, "remote-node": 6,
    "kube-apiserver": 7, "ingress": 8, "world-ipv4": 9, "world-ipv6": 10,
}
#: The numbers Hubble prints by name, ``unknown`` (0) included.
RESERVED_NAMES: dict[int, str] = {0: "unknown", **{v: k for k, v in RESERVED.items()}}
#: Labels Hubble shows for reserved endpoints (``reserved:<name>``); kube-apiserver nodes also
#: carry ``reserved:remote-node`` (numericidentity.go, reservedIdentityLabels).
RESERVED_LABELS: dict[int, tuple[str, ...]] = {
    number: (f"reserved:{name}",) for name, number in RESERVED.items()
}
RESERVED_LABELS[RESERVED["kube-apiserver"]] = ("reserved:kube-apiserver", "reserved:remote-node")

MINIMAL_NUMERIC_IDENTITY = 256
MAX_CLUSTER_LOCAL_IDENTITY = 65535

NAMESPACE_LABELS_PREFIX = "io.cilium.k8s.namespace.labels."
SERVICE_ACCOUNT_LABEL = "io.cilium.k8s.policy.serviceaccount"

# labelsfilter defaults: kept first, then the exclusions (a label that matches none is kept).
_KEEP = re.compile(r"^(io\.kubernetes\.pod\.namespace|io\.cilium\.k8s\.namespace\.labels|"
                   r"app\.kubernetes\.io|io\.cilium\.k8s\.policy\.cluster|"
                   r"io\.cilium\.k8s\.policy\.serviceaccount)")
_DROP = re.compile(r"^(io\.kubernetes|kubernetes\.io|statefulset\.kubernetes\.io/pod-name|"
                   r"apps\.kubernetes\.io/pod-index|batch\.kubernetes\.io/job-completion-index|"
                   r"batch\.kubernetes\.io/controller-uid|.*beta\.kubernetes\.io|k8s\.io|"
                   r"pod-template-generation|pod-template-hash|controller-revision-hash|"
                   r"controller-uid|annotation.*|etcd_node|topology\.kubernetes\.io)")


def is_identity_label(key: str) -> bool:
    """Whether Cilium's default label filter keeps a pod label for the identity."""
    return bool(_KEEP.match(key)) or not _DROP.match(key)


def identity_labels(pod: Pod, state: ClusterState, cluster: str = "default") -> tuple[str, ...]:
    """The pod's security labels as Hubble lists them (``k8s:key=value``, sorted)."""
    labels = {k: v for k, v in pod.labels.items() if is_identity_label(k)}
    labels[CILIUM_NAMESPACE_LABEL] = pod.namespace
    for key, value in state.namespace(pod.namespace).all_labels().items():
        labels[NAMESPACE_LABELS_PREFIX + key] = value
    labels[CILIUM_CLUSTER_LABEL] = cluster
    labels[SERVICE_ACCOUNT_LABEL] = pod.service_account
    return tuple(sorted(f"k8s:{k}={v}" for k, v in labels.items()))


@dataclass
class IdentityAllocator:
    """Cluster-local identities, one per label set, stable across runs (see module docs)."""

    by_labels: dict[tuple[str, ...], int] = field(default_factory=dict)

    def allocate(self, labels: Iterable[str]) -> int:
        key = tuple(sorted(labels))
        if key in self.by_labels:
            return self.by_labels[key]
        size = MAX_CLUSTER_LOCAL_IDENTITY - MINIMAL_NUMERIC_IDENTITY + 1
        digest = hashlib.sha256("\n".join(key).encode()).digest()
        start = int.from_bytes(digest[:8], "big") % size
        taken = set(self.by_labels.values())
        for step in range(size):
            number = MINIMAL_NUMERIC_IDENTITY + (start + step) % size
            if number not in taken:
                self.by_labels[key] = number
                return number
        raise RuntimeError("the cluster-local identity range is exhausted")

    def for_pods(self, state: ClusterState, cluster: str = "default") -> dict[str, int]:
        """Every pod's identity, allocated in a fixed order (pod key) so runs agree."""
        return {key: self.allocate(identity_labels(pod, state, cluster))
                for key, pod in sorted(state.pods.items()) if not pod.host_network}

    def as_dict(self) -> dict[str, int]:
        return {"\n".join(k): v for k, v in self.by_labels.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, int]) -> IdentityAllocator:
        return cls({tuple(k.split("\n")) if k else (): int(v) for k, v in data.items()})
