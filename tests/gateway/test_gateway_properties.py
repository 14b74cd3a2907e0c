"""Properties the specification implies for every input, checked on generated cases."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.gateway import Request, router_from_text
from labkit.gateway.hostnames import intersect, matches
from tests.gateway.scenarios import BASE, http_route, routes, to

SERVICES = ["infra-backend-v1", "infra-backend-v2", "infra-backend-v3"]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(SERVICES), st.integers(0, 1000)), min_size=1,
                max_size=4))
def test_fractions_are_weight_over_sum_and_add_up_to_one(refs: list[tuple[str, int]]) -> None:
    """BackendRef.Weight: each backend gets weight / (sum of weights); the same Service
    named twice gets both shares."""
    manifests = routes(http_route("w", [{"backendRefs": [
        {"name": n, "port": 8080, "weight": w} for n, w in refs]}]))
    result = router_from_text(BASE + "---\n" + manifests).route(Request("infra/same-namespace"))
    total = sum(w for _, w in refs)
    if total == 0:
        assert (result.status, result.backends) == (500, {})
        return
    expected: dict[str, Fraction] = {}
    for n, w in refs:
        if w:
            expected[f"infra/{n}"] = expected.get(f"infra/{n}", Fraction(0)) + Fraction(w, total)
    assert result.backends == {k: float(v) for k, v in expected.items()}
    assert abs(sum(result.backends.values()) - 1) < 1e-9


PATHS = st.sampled_from(["/", "/a", "/a/", "/a/b", "/ab", "/a/b/c", "/b"])
RULES = st.lists(st.tuples(st.sampled_from(["Exact", "PathPrefix"]), PATHS,
                           st.sampled_from(["", "GET", "POST"]),
                           st.lists(st.sampled_from(["h1", "h2"]), unique=True, max_size=2),
                           st.sampled_from(SERVICES)), min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(RULES, PATHS, st.sampled_from(["GET", "POST"]), st.permutations(range(6)))
def test_the_winner_does_not_depend_on_the_order_of_the_manifests(
        rules: list[tuple[str, str, str, list[str], str]], path: str, method: str,
        order: list[int]) -> None:
    """Precedence is defined on the matches, ages and names of routes, never on the order
    in which the objects were applied."""
    docs = []
    for i, (kind, value, verb, headers, svc) in enumerate(rules):
        match: dict[str, object] = {"path": {"type": kind, "value": value}}
        if verb:
            match["method"] = verb
        if headers:
            match["headers"] = [{"name": h, "value": "x"} for h in headers]
        docs.append(http_route(f"r{i}", [{"matches": [match], "backendRefs": to(svc)}]))
    shuffled = [docs[i] for i in order if i < len(docs)]
    req = Request("infra/same-namespace", path=path, method=method,
                  headers=(("H1", "x"), ("h2", "x")))
    first = router_from_text(BASE + "---\n" + routes(*docs)).route(req)
    second = router_from_text(BASE + "---\n" + routes(*shuffled)).route(req)
    assert (first.status, first.backends) == (second.status, second.backends)
    assert [r for r in first.reasons if r.startswith("matched")] == \
        [r for r in second.reasons if r.startswith("matched")]


LABELS = st.sampled_from(["a", "b", "example", "com"])
NAMES = st.lists(LABELS, min_size=1, max_size=4).map(".".join)
PATTERNS = st.one_of(NAMES, NAMES.map(lambda n: "*." + n), st.just(""))


@settings(max_examples=200, deadline=None)
@given(PATTERNS, PATTERNS, NAMES)
def test_hostname_intersection_accepts_exactly_what_both_accept(listener: str, route: str,
                                                               host: str) -> None:
    """A host passes the intersection iff it passes the listener and the route hostname."""
    both = intersect(listener, route)
    def ok(pattern: str) -> bool:
        return not pattern or matches(pattern, host)
    assert (both is not None and ok(both)) == (ok(listener) and ok(route))
