"""Is an observed traffic split consistent with the configured weights?

A fixed tolerance ("80/20 within 5 points") is wrong both ways: too strict for 50
requests, too lax for 50,000. Each backend's observed share gets a Wilson score
interval for a binomial proportion (Wilson 1927; see
https://en.wikipedia.org/wiki/Binomial_proportion_confidence_interval), at a
Bonferroni-corrected level so that the whole check keeps the stated confidence;
the split passes when every configured share lies inside its interval.
"""

from __future__ import annotations

import html
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist

from labkit.errors import LabkitError


@dataclass(frozen=True)
class ShareCheck:
    backend: str
    expected: float
    count: int
    observed: float
    low: float
    high: float

    @property
    def ok(self) -> bool:
        return self.low <= self.expected <= self.high


@dataclass(frozen=True)
class SplitCheck:
    total: int
    confidence: float
    shares: tuple[ShareCheck, ...]

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.shares)

    def as_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "total": self.total, "confidence": self.confidence,
                "shares": [{"backend": s.backend, "expected": s.expected, "count": s.count,
                            "observed": s.observed, "interval": [s.low, s.high], "ok": s.ok}
                           for s in self.shares]}

    def to_text(self) -> str:
        head = (f"traffic split over {self.total} requests, {self.confidence:.0%} confidence: "
                + ("consistent with the weights" if self.ok else "NOT consistent with the weights"))
        rows = [f"  {'ok' if s.ok else 'FAIL':<4} {s.backend:<28} expected {s.expected:6.1%}  "
                f"observed {s.observed:6.1%} ({s.count})  interval {s.low:6.1%}-{s.high:6.1%}"
                for s in self.shares]
        return "\n".join([head, *rows])

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{'✔' if s.ok else '✘'}</td><td>{html.escape(s.backend)}</td>"
            f"<td>{s.expected:.1%}</td><td>{s.observed:.1%} ({s.count})</td>"
            f"<td>{s.low:.1%} – {s.high:.1%}</td></tr>" for s in self.shares)
        verdict = "consistent with" if self.ok else "<b>not</b> consistent with"
        return (f"<p>Traffic split over {self.total} requests is {verdict} the weights "
                f"({self.confidence:.0%} confidence, Wilson intervals).</p><table>"
                "<tr><th></th><th>backend</th><th>expected</th><th>observed</th>"
                f"<th>interval</th></tr>{rows}</table>")


def wilson_interval(count: int, total: int, confidence: float) -> tuple[float, float]:
    """The Wilson score interval for ``count`` successes out of ``total`` trials."""
    if total <= 0:
        raise LabkitError("a split needs at least one request",
                          hint="send some requests before checking the split")
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    p = count / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def split_check(observed: Mapping[str, int], weights: Mapping[str, int | float], *,
                confidence: float = 0.95) -> SplitCheck:
    """Judge counts per backend (``{"shop/checkout-v1": 161, ...}``) against weights
    (``{"shop/checkout-v1": 80, "shop/checkout-v2": 20}``).

    A backend that answered but has no weight counts as expected 0; a weighted
    backend that never answered counts as observed 0.
    """
    if not 0 < confidence < 1:
        raise LabkitError(f"confidence {confidence} is not between 0 and 1",
                          hint="use e.g. 0.95")
    if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise LabkitError("weights must be non-negative and not all zero",
                          hint="pass the backendRefs' weights, e.g. {'ns/v1': 80, 'ns/v2': 20}")
    if any(c < 0 for c in observed.values()):
        raise LabkitError("observed counts must be non-negative")
    total = sum(observed.values())
    weight = sum(weights.values())
    backends = list(weights) + [b for b in observed if b not in weights]
    level = 1 - (1 - confidence) / len(backends)  # Bonferroni: one test per backend
    shares = []
    for b in backends:
        count = observed.get(b, 0)
        low, high = wilson_interval(count, total, level)
        shares.append(ShareCheck(b, weights.get(b, 0) / weight, count, count / total, low, high))
    return SplitCheck(total, confidence, tuple(shares))


def draw_split(backends: Mapping[str, float], requests: int, *, seed: int = 0
               ) -> dict[str, int]:
    """Counts per backend for ``requests`` requests, each sent to one backend at random in
    proportion to its fraction, as Envoy's weighted clusters pick per request
    (https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/route/v3/route_components.proto,
    WeightedCluster). Seeded, so a simulated run is the same every time."""
    if requests < 0 or not backends or any(f < 0 for f in backends.values()):
        raise LabkitError("draw_split needs a non-negative number of requests and backends "
                          "with non-negative fractions", hint="pass Result.backends")
    names = list(backends)
    rng = random.Random(seed)
    picks = rng.choices(names, weights=[backends[n] for n in names], k=requests)
    return {n: picks.count(n) for n in names}

