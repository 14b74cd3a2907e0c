"""ConnectivityMatrix: diff semantics and the three renderings."""

from __future__ import annotations

import json

from labkit.matrix import ConnectivityMatrix, Observation
from labkit.model import Denial, Traffic
from labkit.policy import Engine, build_state, parse_text
from tests.manifests import manifest, pod

OBJECTS = manifest(pod("x", "a", {"pod": "a"}), pod("x", "b", {"pod": "b"}), """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-b, namespace: x}
spec: {podSelector: {matchLabels: {pod: b}}}
""")
PODS = ["x/a", "x/b"]


def expected_and_flannel() -> tuple[ConnectivityMatrix, ConnectivityMatrix]:
    state = build_state(parse_text(OBJECTS))
    expected = ConnectivityMatrix.expected(Engine(state, None), PODS, PODS, title="lab")
    flannel = Engine(state, "flannel")
    observed = {k: Observation.from_verdict(flannel.evaluate(Traffic(*k)), simulated=True)
                for k in expected.cells}
    return expected, expected.with_observed(observed)


def test_flannel_observation_differs_exactly_where_policy_denies() -> None:
    expected, observed = expected_and_flannel()
    assert expected.diff() == []  # nothing observed yet
    assert [(c.source, c.destination) for c in observed.diff()] == [("x/a", "x/b")]
    assert observed.cell("x/a", "x/b").matches is False
    assert observed.cell("x/b", "x/a").matches is True
    assert observed.simulated and not expected.simulated


def test_denial_kind_must_match_too() -> None:
    expected, _ = expected_and_flannel()
    key = ("x/a", "x/b", 80, "TCP")
    forbidden = expected.with_observed({key: Observation(False, Denial.HTTP_403)})
    assert forbidden.cell("x/a", "x/b").matches is False  # expected a drop, saw a 403
    dropped = expected.with_observed({key: Observation(False, Denial.DROP)})
    assert dropped.cell("x/a", "x/b").matches is True


def test_text_grid_marks_differences_and_says_simulated() -> None:
    _, observed = expected_and_flannel()
    text = observed.to_text()
    lines = text.splitlines()
    assert lines[2].split() == ["x/a", "x/b"]  # column headers
    assert lines[3].split() == ["x/a", "✓", "✗", "→", "✓"]  # expected ✗ → observed ✓
    assert lines[-2] == "observed (simulated): 4 of 4 cells, 1 differs from expected"
    # the reasons of a differing cell are below the grid, not only in hover titles
    assert lines[-1].startswith("  x/a → x/b TCP/80: expected denied (")
    assert "; observed allowed" in lines[-1]


def test_learner_labels_tooltips_and_left_aligned_cells() -> None:
    state = build_state(parse_text(OBJECTS))
    m = ConnectivityMatrix.expected(Engine(state, None), PODS, PODS,
                                    labels={"x/a": "frontend", "x/b": "api-1"})
    page = m._repr_html_()
    assert '<th title="x/a" style="text-align:left;padding:2px 6px">frontend</th>' in page
    assert "text-align:center" not in page.split("</table>")[0]
    assert m.to_text().splitlines()[2].split() == ["frontend", "✓", "✗"]
    assert m.summary() == "expected: 3 of 4 connections allowed"


def test_html_and_json_carry_the_same_story() -> None:
    _, observed = expected_and_flannel()
    page = observed._repr_html_()
    assert "simulated" in page and page.count("<td") == 4
    assert page.count("border:3px solid #c00;text-align") == 1  # the one differing cell
    assert "✗ → ✓</td>" in page and "<li>x/a → x/b TCP/80: expected denied" in page
    data = json.loads(observed.to_json())
    assert data["summary"] == {"cells": 4, "allowed": 3, "observed": 4, "differ": 1}
    cell = next(c for c in data["cells"] if (c["from"], c["to"]) == ("x/a", "x/b"))
    assert cell["expected"]["allowed"] is False and cell["observed"]["allowed"] is True
    assert observed._repr_html_() == page  # deterministic, for nbval
