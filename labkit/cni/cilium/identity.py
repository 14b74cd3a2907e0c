"""The shop's security identities as a table (``kubectl get ciliumendpoints``, in short).

Cilium gives every endpoint a numeric *security identity* derived from its security-relevant
labels; pods whose labels are equal share one (the API's two replicas do), and policy is
compiled against identities, not addresses. Which labels count, the reserved numbers and the
sim's allocator live in :mod:`labkit.policy.cilium.identity` (shared with the Hubble flows the
sim emits, so a pod has the same number in both); this module only shows them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from labkit.display.render import Rendered, html_table, text_table
from labkit.model import CILIUM_CLUSTER_LABEL
from labkit.policy.cilium.identity import NAMESPACE_LABELS_PREFIX, RESERVED


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
                          if not lb.startswith(("k8s:" + NAMESPACE_LABELS_PREFIX,
                                                "k8s:" + CILIUM_CLUSTER_LABEL)))]
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
