"""Lab 02 on every backend (sim always, kind with --kind): Flannel -> Calico in place.

Behaviour, not objects: nodes Ready, where addresses come from, what probes see.
"""

from __future__ import annotations

import ipaddress

import pytest

from labkit import Lab
from labkit.cni.calico import recipe as calico
from labkit.labs import calico as cc


def test_migration_in_place(lab: Lab) -> None:
    cc.ensure_lab01(lab)
    assert lab.cni == "flannel"
    before = {p.key: p.ip for p in lab.pods() if not p.host_network}
    m = lab.matrix()
    assert m.cell(lab.resolve("shop-web/frontend"), lab.resolve("shop-api/db")).observed.allowed

    report = calico.RECIPE.migrate(lab, restart=False)
    assert report.ok and lab.cni == "calico"
    # pods not restarted keep their Flannel address and reach nothing
    stale = [k for k in cc.stale_pods(lab) if k.split("/")[0] in ("shop-web", "shop-api")]
    assert stale and all(before.get(k) for k in stale)
    cc.stale_pods_cut_off(lab)

    calico.RECIPE.restart_workloads(lab)
    assert cc.stale_pods(lab) == []
    assert lab.verify_cni().ok
    # Calico's addresses: /26 blocks of the same pool, not the node's /24
    pool = ipaddress.ip_network(lab.stage.pod_subnet)
    nodes = {n.name: n for n in lab.nodes()}
    shop = [p for p in lab.pods() if p.namespace in ("shop-web", "shop-api")]
    assert all(ipaddress.ip_address(p.ip) in pool for p in shop)
    outside_node_range = [p for p in shop
                          if ipaddress.ip_address(p.ip) not in
                          ipaddress.ip_network(nodes[p.node].pod_cidr)]
    assert outside_node_range  # the /24 podCIDR no longer tells the node
    # the policy Flannel ignored is now enforced; expected == observed everywhere
    cc.policy_enforced(lab)
    assert lab.matrix().diff() == []


def test_migration_is_idempotent_and_resumable(lab: Lab) -> None:
    cc.ensure_lab01(lab)
    calico.RECIPE.migrate(lab)
    ips = {p.key: p.ip for p in lab.pods()}
    again = calico.RECIPE.migrate(lab)
    assert {s.status for s in again.steps} == {"skipped"}
    assert {p.key: p.ip for p in lab.pods()} == ips


def test_dns_default_deny_and_tiers(lab: Lab) -> None:
    cc.ensure_calico(lab)
    lab.apply(cc.POLICIES / "calico")
    cc.dns_reachable(lab)
    lab.apply(cc.POLICIES / "calico-traps")
    cc.dns_reachable(lab, open=False)
    cc.clean_slate(lab)
    lab.apply(cc.POLICIES / "calico-tiers")
    cc.tier_outcomes(lab)
    assert lab.matrix().diff() == []


def test_calico_kinds_are_refused_before_calico(lab: Lab) -> None:
    from labkit.errors import UnknownKindError

    cc.ensure_lab01(lab)
    with pytest.raises(UnknownKindError, match="no matches for kind"):
        lab.apply(cc.POLICIES / "calico")


def test_live_migration_variant(lab: Lab) -> None:
    cc.ensure_lab01(lab)
    report = calico.RECIPE.migrate(lab, mode="live")
    assert lab.cni == "calico" and report.ok
    assert any("manifest install" in n for n in report.notes)
    assert cc.stale_pods(lab) == []  # the controller recreated every pod itself
    cc.policy_enforced(lab)
