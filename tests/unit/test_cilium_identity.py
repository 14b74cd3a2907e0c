"""The identities table of lab 04 (labkit.cni.cilium.identity) over the shared allocator."""

from __future__ import annotations

import pytest

from labkit.cni.cilium import identity as ids
from labkit.policy.cilium.identity import RESERVED


def test_reserved_identities_are_cilium_s() -> None:
    # pkg/identity/numericidentity.go
    assert (RESERVED["host"], RESERVED["world"], RESERVED["health"], RESERVED["remote-node"],
            RESERVED["kube-apiserver"], RESERVED["ingress"]) == (1, 2, 4, 6, 7, 8)
    table = ids.group([], simulated=False)
    assert dict(table.reserved)["world"] == 2


def test_group_puts_replicas_on_one_row() -> None:
    labels = ("k8s:app=a", "k8s:io.cilium.k8s.namespace.labels.x=y",
              "k8s:io.cilium.k8s.policy.cluster=default")
    table = ids.group([("ns/a-1", 300, labels), ("ns/a-2", 300, labels),
                       ("ns/b-1", 299, ("k8s:app=b",))], simulated=True)
    assert [(r.identity, r.pods) for r in table.rows] == [(299, ("ns/b-1",)),
                                                           (300, ("ns/a-1", "ns/a-2"))]
    assert table.of("ns/a-2") == 300
    with pytest.raises(KeyError):
        table.of("ns/zzz")
    text = table.to_text()
    assert "app=a" in text and "namespace.labels" not in text and "policy.cluster" not in text
    assert "simulated" in text
    assert table.as_dict()["identities"][1]["pods"] == ["ns/a-1", "ns/a-2"]
