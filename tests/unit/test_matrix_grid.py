"""Matrices come from bitset grids; each cell's explained verdict must agree with its bits."""

from __future__ import annotations

import html
import io
import json
from pathlib import Path

import pytest

from labkit import Lab
from labkit.backends.sim.backend import CLUSTERS
from labkit.matrix import COMPACT_ABOVE, ConnectivityMatrix, Observation
from labkit.model import Denial, HttpRequest, Traffic
from labkit.policy import Engine, build_state, load_objects

EXAMPLE = Path(__file__).resolve().parents[2] / "environments/examples/policy-check"


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABKIT_PROGRESS", "off")
    CLUSTERS.clear()


def outcome(allowed: bool, denial: Denial | None) -> tuple[bool, Denial | None]:
    return allowed, None if allowed else denial


@pytest.mark.parametrize("request_", [None, HttpRequest("GET", "/healthz"),
                                      HttpRequest("POST", "/orders")])
def test_grid_bits_equal_explained_verdicts_http_included(request_) -> None:
    engine = Engine(build_state(load_objects([EXAMPLE / "cluster.yaml"])), "cilium")
    pods = sorted(engine.state.pods)
    ports = [(8080, "TCP"), (80, "TCP"), (53, "UDP")]
    m = ConnectivityMatrix.expected(engine, pods, pods, ports, http=request_)
    seen = set()
    for key in m.grid.cell_keys():
        cell = m.cells[key]
        verdict = engine.evaluate(Traffic(*key, request_ if key[3] == "TCP" else None))
        assert outcome(cell.expected.allowed, cell.expected.denial) == \
            outcome(verdict.allowed, verdict.denial), key
        assert cell.expected.reasons == verdict.reasons
        assert m.grid.layers[key[2:]].outcome(*m.grid.position(*key[:2])) == \
            outcome(verdict.allowed, verdict.denial)
        seen.add(outcome(verdict.allowed, verdict.denial))
    if request_ is not None and request_.method == "POST":
        assert (False, Denial.HTTP_403) in seen  # the L7 path is exercised
    assert (False, Denial.DROP) in seen and (True, None) in seen


def broken_lab() -> Lab:
    """Flannel shop with a deny policy, one pod cut off and ports nothing listens on."""
    lab = Lab("flannel", backend="sim")
    lab.up()
    lab.install_cni("flannel")
    lab.deploy_shop()
    lab.apply("""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-db, namespace: shop-api}
spec: {podSelector: {}}
""")
    victim = lab.workload_pods()[0]
    CLUSTERS[lab.cluster_name].no_network[victim] = "kept a stale address"
    return lab


def test_sim_matrix_from_the_grid_equals_one_observation_per_cell() -> None:
    lab = broken_lab()
    pods = lab.workload_pods()
    ports = [(8080, "TCP"), (9, "TCP"), (53, "UDP")]
    m = lab.matrix(pods, pods, ports)
    keys = list(m.grid.cell_keys())
    per_cell = lab._backend.observe([m.grid.traffic(k) for k in keys], {})
    kinds = set()
    for key in keys:
        want = per_cell[m.grid.traffic(key)]
        got = m.cell(key[0], key[1], key[2], key[3]).seen
        assert got == want, key
        i, j = m.grid.position(key[0], key[1])
        assert m.observed is not None
        assert m.observed.layers[key[2:]].outcome(i, j) == (want.allowed, want.denial), key
        kinds.add((want.allowed, want.denial, "refused" in want.detail, "stale" in want.detail))
    # every path of the simulated data plane shows up: open, refused, cut off, dropped
    assert {(True, None, False, False), (False, None, True, False),
            (False, Denial.DROP, False, True)} <= kinds
    differ = {(c.source, c.destination, c.port) for c in m.diff()}
    assert differ == {k[:3] for k in keys if m.cells[k].matches is False}
    assert m.differ_count() == len(differ) > 0


def test_kind_style_observations_merge_cell_by_cell() -> None:
    engine = Engine(build_state(load_objects([EXAMPLE / "cluster.yaml"])), "cilium")
    pods = sorted(engine.state.pods)
    m = ConnectivityMatrix.expected(engine, pods, pods)
    a, b = pods[0], pods[1]
    first = m.with_observed({(a, b, 80, "TCP"): Observation(False, Denial.HTTP_403)})
    both = first.with_observed({(b, a, 80, "TCP"): Observation(True)})
    assert both.observed_count == 2
    assert both.cell(a, b).seen.denial is Denial.HTTP_403 and both.cell(b, a).seen.allowed
    assert both.cell(a, a).observed is None
    with pytest.raises(KeyError):
        m.with_observed({(a, "nowhere/x", 80, "TCP"): Observation(True)})


def big_matrix(n: int) -> ConnectivityMatrix:
    text = "\n---\n".join(
        f"apiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}, namespace: ns, labels: "
        f"{{i: '{i % 3}'}}}}\nspec: {{containers: [{{name: c, image: x}}]}}" for i in range(n))
    text += """
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: only-zero, namespace: ns}
spec:
  podSelector: {matchLabels: {i: '1'}}
  ingress: [{from: [{podSelector: {matchLabels: {i: '0'}}}]}]
"""
    from labkit.policy import parse_text

    engine = Engine(build_state(parse_text(text)), "kindnet")
    pods = sorted(engine.state.pods)
    return ConnectivityMatrix.expected(engine, pods, pods)


def test_large_json_is_compact_rows_streamed_and_small_json_lists_cells() -> None:
    m = big_matrix(101)
    assert m.grid.cells > COMPACT_ABOVE
    out = io.StringIO()
    m.write_json(out)
    data = json.loads(out.getvalue())
    assert data == m.as_dict() and data["format"] == "rows" and "cells" not in data
    assert json.loads(m.to_json(indent=2)) == data and m.to_json(indent=2).startswith("{\n  ")
    rows = data["expected"]["80/TCP"]
    assert len(rows) == 101 and {len(r) for r in rows} == {101}
    for i, src in enumerate(m.sources):
        for j, dst in enumerate(m.destinations):
            assert (rows[i][j] == ".") == m.grid.allowed(src, dst)
    assert data["summary"]["allowed"] == sum(r.count(".") for r in rows)
    assert data["observed"] is None and data["differ"] == []
    explained = m.as_dict(explain=True)
    assert explained["format"] == "cells" and len(explained["cells"]) == m.grid.cells
    assert all(c["expected"]["reasons"] for c in explained["cells"][:50])
    small = big_matrix(5).as_dict()
    assert small["format"] == "cells" and len(small["cells"]) == 25


def test_text_rows_match_cells_and_html_keeps_reasons_for_small_matrices() -> None:
    m = big_matrix(7)
    lines = m.to_text().splitlines()
    for src in m.sources:
        row = next(line for line in lines if line.startswith(f"{src} "))
        assert row.split() == [src, *(m.cell(src, d).glyph for d in m.destinations)]
    page = m._repr_html_()
    reason = m.cell(m.sources[1], m.sources[0]).expected.reasons[0]
    assert page.count("<td") == 49 and html.escape(reason) in page


def test_large_text_lists_the_first_mismatches_and_counts_the_rest() -> None:
    m = big_matrix(30)
    flannel = {k: Observation(True, simulated=True) for k in m.grid.cell_keys()}
    seen = m.with_observed(flannel)
    differ = seen.differ_count()
    assert differ == m.grid.cells - m.grid.allowed_count() > 60
    lines = seen.to_text().splitlines()
    listed = [line for line in lines if line.startswith("  ns/")]
    assert len(listed) == 50 and " → " in listed[0] and "expected denied" in listed[0]
    assert lines[-1] == f"  ... and {differ - 50} more cells (matrix.diff() lists them all)"
    for src in seen.sources[:5]:
        row = next(line for line in lines if line.startswith(f"{src} "))
        glyphs = [seen.cell(src, d).glyph for d in seen.destinations]
        assert row.split() == [src, *" ".join(glyphs).split()]
