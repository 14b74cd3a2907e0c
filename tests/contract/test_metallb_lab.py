"""Lab 03 on every backend (sim always, kind with --kind): MetalLB L2 on the Calico cluster."""

from __future__ import annotations

import pytest

from labkit import Lab
from labkit.addons import metallb
from labkit.labs import calico as cc
from labkit.labs import metallb as cm

LB = cc.POLICIES.parent / "metallb" / "frontend-lb.yaml"


def test_pending_then_assigned_then_reached(lab: Lab) -> None:
    cc.ensure_calico(lab)
    lab.apply(LB)
    assert metallb.external_ip(lab, cm.SERVICE) == ""
    cm.external_ip_pending(lab)
    pool = metallb.install(lab)
    ip = metallb.external_ip(lab, cm.SERVICE)
    assert ip == metallb.pool_range(cm.kind_subnet(lab))[0]  # the pool's lowest free address
    assert pool[0]["spec"]["addresses"] == ["-".join(metallb.pool_range(cm.kind_subnet(lab)))]
    cm.metallb_goal(lab)
    # re-running keeps the same address
    metallb.install(lab)
    lab.apply(LB)
    assert metallb.external_ip(lab, cm.SERVICE) == ip


def test_a_policy_can_block_the_load_balanced_path(lab: Lab) -> None:
    cc.ensure_calico(lab)
    lab.apply(LB)
    metallb.install(lab)
    ip = metallb.external_ip(lab, cm.SERVICE)
    lab.apply({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
               "metadata": {"name": "frontend-closed", "namespace": "shop-web"},
               "spec": {"podSelector": {"matchLabels": {"app": "frontend"}},
                        "policyTypes": ["Ingress"]}})
    assert not metallb.reach(lab, ip).ok


def test_metallb_kinds_served_only_after_install(lab: Lab) -> None:
    if not lab.simulated:
        pytest.skip("the kind backend's served() lists CNI kinds only (see the report)")
    cc.ensure_calico(lab)
    assert ("metallb.io/v1beta1", "IPAddressPool") not in lab.served()
    metallb.install(lab)
    assert ("metallb.io/v1beta1", "IPAddressPool") in lab.served()
