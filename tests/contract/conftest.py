"""The one ``lab`` fixture of the contract scenarios: every test runs on the sim, and on a real
kind cluster too with ``--kind``. Each starts from no cluster and leaves none behind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from labkit import Lab
from labkit.backends.sim.backend import CLUSTERS


@pytest.fixture(params=["sim", pytest.param("kind", marks=pytest.mark.kind)])
def lab(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    monkeypatch.setenv("LABKIT_PROGRESS", "off")
    if request.param == "kind":
        # One LABKIT_HOME for every kind scenario of the run: labkit deletes only the clusters
        # it recorded creating there, so a cluster an earlier scenario left is still its own.
        monkeypatch.setenv("LABKIT_HOME", str(tmp_path_factory.getbasetemp() / "kind-home"))
    CLUSTERS.clear()  # no simulated cluster left in memory by an earlier test
    lab = Lab("flannel", backend=request.param)
    lab.down()
    yield lab
    lab.down()
