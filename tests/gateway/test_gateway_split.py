"""The traffic-split check for lab 08: Wilson intervals, not a fixed tolerance."""

from __future__ import annotations

import random

import pytest

from labkit.errors import LabkitError
from labkit.gateway import draw_split, split_check
from labkit.gateway.split import wilson_interval

W = {"shop/checkout-v1": 80, "shop/checkout-v2": 20}


def test_wilson_interval_matches_published_values() -> None:
    """Reference values: 50 of 100 at 95 % gives 0.4038-0.5962; 0 of 10 gives 0-0.2775
    (Wilson score interval, e.g. Newcombe 1998, Stat. Med. 17:857, table I)."""
    low, high = wilson_interval(50, 100, 0.95)
    assert (low, high) == (pytest.approx(0.4038, abs=1e-4), pytest.approx(0.5962, abs=1e-4))
    low, high = wilson_interval(0, 10, 0.95)
    assert low == pytest.approx(0, abs=1e-12) and high == pytest.approx(0.2775, abs=1e-4)


def test_an_80_20_split_passes_and_a_50_50_one_fails_with_enough_requests() -> None:
    good = split_check({"shop/checkout-v1": 161, "shop/checkout-v2": 39}, W)
    assert good.ok and good.total == 200
    assert [round(s.expected, 2) for s in good.shares] == [0.8, 0.2]
    bad = split_check({"shop/checkout-v1": 100, "shop/checkout-v2": 100}, W)
    assert not bad.ok and "NOT consistent" in bad.to_text()
    assert "✘" in bad._repr_html_() and bad.as_dict()["ok"] is False


def test_the_tolerance_shrinks_with_the_sample_unlike_a_fixed_margin() -> None:
    """6 of 10 for v1 cannot be told from 80 %; 600 of 1000 clearly is not 80 %."""
    assert split_check({"shop/checkout-v1": 6, "shop/checkout-v2": 4}, W).ok
    assert not split_check({"shop/checkout-v1": 600, "shop/checkout-v2": 400}, W).ok
    # 75 % is within 5 points of 80 %, yet over 10,000 requests it is a real difference.
    assert not split_check({"shop/checkout-v1": 7500, "shop/checkout-v2": 2500}, W).ok


def test_unexpected_and_silent_backends_fail() -> None:
    stray = split_check({"shop/checkout-v1": 80, "shop/checkout-v2": 15, "shop/other": 5}, W)
    assert not stray.ok
    assert [s.backend for s in stray.shares if not s.ok] == ["shop/other"]
    silent = split_check({"shop/checkout-v1": 200}, W)
    assert not silent.ok and silent.shares[1].count == 0


def test_false_alarms_stay_near_the_stated_level() -> None:
    """Drawing from the configured 80/20 itself, the check fails rarely (at most the 5 %
    it allows); a seeded generator keeps the test deterministic."""
    rng = random.Random(8020)
    failures = 0
    for _ in range(400):
        v1 = sum(rng.random() < 0.8 for _ in range(100))
        failures += not split_check({"shop/checkout-v1": v1, "shop/checkout-v2": 100 - v1}, W).ok
    assert failures / 400 <= 0.05


@pytest.mark.parametrize(("observed", "weights", "confidence", "message"), [
    ({}, W, 0.95, "at least one request"),
    ({"a": 1}, {"a": 0}, 0.95, "not all zero"),
    ({"a": 1}, {"a": -1, "b": 2}, 0.95, "non-negative"),
    ({"a": -1}, {"a": 1}, 0.95, "non-negative"),
    ({"a": 1}, {"a": 1}, 1.0, "between 0 and 1"),
])
def test_bad_input_is_one_clear_error(observed: dict[str, int], weights: dict[str, int],
                                      confidence: float, message: str) -> None:
    with pytest.raises(LabkitError, match=message):
        split_check(observed, weights, confidence=confidence)


def test_a_drawn_split_is_reproducible_and_consistent_with_its_weights() -> None:
    fractions = {"shop/checkout-v1": 0.8, "shop/checkout-v2": 0.2}
    counts = draw_split(fractions, 500, seed=7)
    assert counts == draw_split(fractions, 500, seed=7) and sum(counts.values()) == 500
    assert counts != draw_split(fractions, 500, seed=8)
    assert split_check(counts, W).ok
    assert draw_split({"a": 1.0, "b": 0.0}, 50) == {"a": 50, "b": 0}
    with pytest.raises(LabkitError):
        draw_split({}, 10)
