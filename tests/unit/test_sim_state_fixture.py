"""A simulated cluster saved by an earlier labkit version still loads, with the same view.

``tests/fixtures/sim-state/cluster.json`` was written by labkit before the package
reshape (issue 7): Flannel, the shop, then the migration to Calico (Calico IPAM),
the Calico policies and tiers, and MetalLB with the frontend LoadBalancer Service.
``view.json`` is what a learner saw of it then (``snapshot_of``). Renaming or
moving modules must not change the file format nor what it loads into.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_sim_persistence import snapshot_of  # tests/unit is on sys.path (rootdir import mode)

from labkit import CheckFailed, Lab
from labkit.backends.sim import store
from labkit.backends.sim.backend import CLUSTERS
from labkit.labs.metallb import external_ip_assigned, reached_from_outside

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "sim-state"


@pytest.fixture
def saved_lab(monkeypatch: pytest.MonkeyPatch) -> Lab:
    monkeypatch.setenv("LABKIT_PROGRESS", "off")
    CLUSTERS.clear()
    target = store.path_for("cni-lab")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURE / "cluster.json", target)
    return Lab("flannel", backend="sim")


def test_a_state_file_from_before_the_reshape_gives_the_same_view(saved_lab: Lab) -> None:
    expected = json.loads((FIXTURE / "view.json").read_text())
    assert saved_lab.cni == "calico"
    assert json.loads(json.dumps(snapshot_of(saved_lab))) == expected


def test_the_loaded_cluster_keeps_working(saved_lab: Lab) -> None:
    assert external_ip_assigned(saved_lab).passed
    # the saved GlobalNetworkPolicy default-deny still drops the request kube-proxy forwards
    with pytest.raises(CheckFailed, match="GlobalNetworkPolicy default-deny"):
        reached_from_outside(saved_lab)
    # and the next change is saved in the same format
    saved_lab.delete([{"apiVersion": "v1", "kind": "Service",
                       "metadata": {"name": "frontend-lb", "namespace": "shop-web"}}])
    data = json.loads(store.path_for("cni-lab").read_text())
    assert data["format"] == "labkit-sim-cluster/v1"
    assert data["cni"]["ipam"]["type"] == "calico"
