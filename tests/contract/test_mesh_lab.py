"""Lab 08 on every backend (sim always, kind with --kind): Gateway API on lab 04's cluster.

Behaviour, not objects: Gateway objects refused until the CRDs exist, a Gateway that gets an
address and answers, /checkout split 80/20 by measured requests north-south and east-west, the
canary header pinning v2, and a changed weight changing the measurement.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from labkit import CheckFailed, Lab, UnknownKindError
from labkit.addons import gateway_api
from labkit.backends.sim.backend import CLUSTERS
from labkit.labs import mesh


@pytest.fixture(params=["sim", pytest.param("kind", marks=pytest.mark.kind)])
def lab(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    monkeypatch.setenv("LABKIT_PROGRESS", "off")
    CLUSTERS.clear()
    lab = Lab("cilium", backend=request.param)
    lab.down()
    yield lab
    lab.down()


def _gateway(lab: Lab) -> None:
    mesh.ensure_mesh(lab)
    gateway_api.install_crds(lab)
    gateway_api.enable(lab)
    gateway_api.apply(lab)


def test_gateway_objects_wait_for_the_crds(lab: Lab) -> None:
    mesh.ensure_mesh(lab)
    with pytest.raises(UnknownKindError):
        gateway_api.apply(lab)
    gateway_api.install_crds(lab)
    gateway_api.enable(lab)
    assert gateway_api.apply(lab)
    assert mesh.gateway_ready(lab).passed


def test_checkout_splits_80_20_both_ways_and_the_canary_pins_v2(lab: Lab) -> None:
    _gateway(lab)
    north = gateway_api.send(lab, mesh.NORTH_SOUTH, 300)
    assert set(north.counts) == {mesh.V1, mesh.V2} and north.ok
    assert mesh.split_consistent(lab, north).passed
    east = gateway_api.send(lab, mesh.EAST_WEST, 300, seed=3)
    assert mesh.split_consistent(lab, east).passed
    assert mesh.canary_pinned(lab).passed
    assert mesh.mesh_goal(lab).passed


def test_a_50_50_route_is_measured_as_50_50_and_fails_the_80_20_check(lab: Lab) -> None:
    _gateway(lab)
    text = gateway_api.ROUTES.read_text().replace("weight: 80}", "weight: 50}").replace(
        "weight: 20}", "weight: 50}")
    gateway_api.apply(lab, text)
    run = gateway_api.send(lab, mesh.NORTH_SOUTH, 400)
    assert run.route.backends == {mesh.V1: 0.5, mesh.V2: 0.5} and run.ok
    with pytest.raises(CheckFailed, match="routes send this request"):
        mesh.split_consistent(lab, run)
    assert mesh.split_consistent(lab, run, run.route.backends).passed
