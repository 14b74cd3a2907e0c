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
    assert "  1 x/a" in text and ".!" in text
    assert text.splitlines()[-1] == "observed (simulated): 4 of 4 cells, 1 differ from expected"


def test_html_and_json_carry_the_same_story() -> None:
    _, observed = expected_and_flannel()
    page = observed._repr_html_()
    assert "simulated" in page and page.count("<td") == 4
    assert page.count("border:3px solid #c00;text-align") == 1  # the one differing cell
    data = json.loads(observed.to_json())
    assert data["summary"] == {"cells": 4, "allowed": 3, "observed": 4, "differ": 1}
    cell = next(c for c in data["cells"] if (c["from"], c["to"]) == ("x/a", "x/b"))
    assert cell["expected"]["allowed"] is False and cell["observed"]["allowed"] is True
    assert observed._repr_html_() == page  # deterministic, for nbval
