"""Lab 02's checks: the default deny isolates the shop's namespaces and nothing else; the
tier Pass probe runs from labkit's probe pod.

"Every namespace except kube-system, calico-system ..." also catches default,
kube-public, kube-node-lease and local-path-storage (the storage provisioner then loses
the API server): the policy must select the shop's namespaces.
"""

from __future__ import annotations

import pytest

from labkit import Lab
from labkit.environments import environments_dir
from labkit.model import Traffic
from labkit.policy import Engine

POLICIES = environments_dir() / "policies"


@pytest.mark.parametrize("path", ["calico/10-default-deny-keeps-dns.yaml",
                                  "calico-traps/default-deny-forgets-dns.yaml"])
def test_default_deny_isolates_only_the_shop_namespaces(path: str) -> None:
    from labkit.labs.calico import ensure_calico

    lab = Lab("flannel", backend="sim")
    ensure_calico(lab)
    lab.apply(POLICIES / path)
    state = lab.impl.state()
    engine = Engine(state, cni=None)
    storage = lab.resolve("local-path-storage/local-path-provisioner")
    dns = sorted(p.key for p in lab.pods("kube-system") if p.labels.get("k8s-app") == "kube-dns")
    # The provisioner is not selected: its egress stays open (it must reach the API server).
    assert engine.evaluate(Traffic(storage, dns[0], 8080)).allowed
    # The shop's pods are isolated both ways.
    for src in ("shop-web/frontend", "shop-api/api"):
        assert not engine.evaluate(Traffic(lab.resolve(src), dns[0], 8080)).allowed
        assert not engine.evaluate(Traffic(storage, lab.resolve(src), 8080)).allowed


def test_tier_pass_is_probed_from_labkits_probe_pod_never_from_coredns() -> None:
    from labkit.labs.calico import clean_slate, ensure_calico, tier_outcomes

    lab = Lab("flannel", backend="sim")
    ensure_calico(lab)
    clean_slate(lab)
    lab.apply(POLICIES / "calico-tiers")
    result = tier_outcomes(lab)
    passed = next(d for d in result.details if d.startswith("Pass:"))
    assert passed.startswith("Pass: probe -> db TCP/8080: expected open, observed open")
    assert "passes it to the next tier" in passed and "coredns" not in " ".join(result.details)
    assert lab.resolve("labkit-probe/probe").startswith("labkit-probe/probe-")
    # labkit's probe pod stays out of the shop's matrices
    assert not any(k.startswith("labkit-probe/") for k in lab.workload_pods())
