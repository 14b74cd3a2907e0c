"""Security identities as Cilium allocates them (pkg/identity/numericidentity.go)."""

from __future__ import annotations

import pytest

from labkit.cni.cilium import identity as ids


def test_reserved_identities_are_fixed() -> None:
    assert ids.RESERVED["host"] == 1
    assert ids.RESERVED["world"] == 2
    assert ids.RESERVED["health"] == 4
    assert ids.RESERVED["remote-node"] == 6
    assert ids.RESERVED["kube-apiserver"] == 7
    assert ids.RESERVED["ingress"] == 8
    assert max(ids.RESERVED.values()) < ids.MINIMAL_ALLOCATION_IDENTITY


def test_security_labels_leave_out_per_rollout_labels() -> None:
    a = ids.security_labels({"app": "api", "pod-template-hash": "abc"}, "shop-api")
    b = ids.security_labels({"app": "api", "pod-template-hash": "xyz"}, "shop-api")
    assert a == b
    assert "k8s:io.kubernetes.pod.namespace=shop-api" in a
    assert "k8s:io.cilium.k8s.policy.serviceaccount=default" in a
    assert "k8s:io.cilium.k8s.policy.cluster=default" in a
    assert "k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=shop-api" in a
    assert not any("pod-template-hash" in lb for lb in a)
    # another namespace or service account is another label set
    assert ids.security_labels({"app": "api"}, "shop-web") != a
    assert ids.security_labels({"app": "api"}, "shop-api", service_account="api") != a


def test_allocation_is_stable_and_order_independent() -> None:
    sets = [ids.security_labels({"app": app}, "shop") for app in ("a", "b", "c", "d")]
    one, two = ids.IdentityAllocator(), ids.IdentityAllocator()
    first = [one.allocate(s) for s in sets]
    second = [two.allocate(s) for s in reversed(sets)][::-1]
    assert first == second
    assert len(set(first)) == 4
    assert all(256 <= n <= 65535 for n in first)
    assert one.allocate(sets[0]) == first[0]  # asking again gives the same number


def test_a_collision_takes_the_next_free_number() -> None:
    alloc = ids.IdentityAllocator()
    labels = ("k8s:app=x",)
    n = alloc.allocate(labels)
    alloc.by_labels = {("k8s:other=1",): n}  # someone already holds that number
    assert alloc.allocate(labels) == (n + 1 if n < alloc.last else alloc.first)


def test_cluster_id_moves_the_range() -> None:
    alloc = ids.IdentityAllocator(cluster_id=2)
    assert (alloc.first, alloc.last) == (2 << 16, (3 << 16) - 1)
    assert alloc.first <= alloc.allocate(("k8s:app=x",)) <= alloc.last


def test_group_puts_replicas_on_one_row() -> None:
    table = ids.group([("ns/a-1", 300, ("k8s:app=a",)), ("ns/a-2", 300, ("k8s:app=a",)),
                       ("ns/b-1", 299, ("k8s:app=b",))], simulated=True)
    assert [(r.identity, r.pods) for r in table.rows] == [(299, ("ns/b-1",)),
                                                           (300, ("ns/a-1", "ns/a-2"))]
    assert table.of("ns/a-2") == 300
    with pytest.raises(KeyError):
        table.of("ns/zzz")
    assert table.as_dict()["reserved"]["world"] == 2
