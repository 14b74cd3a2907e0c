"""Hostnames, path/header/query/method matches and their precedence.

Each scenario restates a gateway-api v1.6.1 conformance test in its own data
(the source is named in the test's docstring) or a sentence of the specification
(apis/v1/httproute_types.go, gateway_types.go).
"""

from __future__ import annotations

import pytest

from labkit.gateway.hostnames import intersect, matches
from tests.gateway.scenarios import backend, http_route, route_in, routes, to

GW = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\n"


def test_wildcards_cover_one_or_more_labels_but_not_the_bare_domain() -> None:
    """HTTPRouteSpec.Hostnames: "*.example.com" matches test.example.com and
    foo.test.example.com, not example.com."""
    assert matches("*.example.com", "test.example.com")
    assert matches("*.example.com", "foo.test.example.com")
    assert not matches("*.example.com", "example.com")
    assert not matches("*.example.com", "test.example.net")
    assert intersect("*.example.com", "*.foo.example.com") == "*.foo.example.com"
    assert intersect("*.foo.example.com", "*.example.com") == "*.foo.example.com"
    assert intersect("very.specific.com", "*.specific.com") == "very.specific.com"
    assert intersect("*.wildcard.io", "wildcard.io") is None
    assert intersect("", "a.b") == "a.b" and intersect("a.b", "") == "a.b"


HOSTS = GW + """metadata: {name: hosts, namespace: infra}
spec:
  gatewayClassName: test
  listeners:
  - {name: l1, port: 80, protocol: HTTP, hostname: very.specific.com}
  - {name: l2, port: 80, protocol: HTTP, hostname: "*.wildcard.io"}
  - {name: l3, port: 80, protocol: HTTP, hostname: "*.anotherwildcard.io"}
---
""" + routes(
    http_route("exact-exact", [{"matches": [{"path": {"value": "/s1"}}],
                                "backendRefs": to("infra-backend-v1")}],
               parents=[{"name": "hosts"}],
               hostnames=["non.matching.com", "*.nonmatchingwildcard.io", "very.specific.com"]),
    http_route("exact-wild", [{"matches": [{"path": {"value": "/s2"}}],
                               "backendRefs": to("infra-backend-v2")}],
               parents=[{"name": "hosts"}],
               hostnames=["non.matching.com", "wildcard.io", "foo.wildcard.io",
                          "bar.wildcard.io", "foo.bar.wildcard.io"]),
    http_route("wild-exact", [{"matches": [{"path": {"value": "/s3"}}],
                               "backendRefs": to("infra-backend-v3")}],
               parents=[{"name": "hosts"}], hostnames=["non.matching.com", "*.specific.com"]),
    http_route("wild-wild", [{"matches": [{"path": {"value": "/s4"}}],
                              "backendRefs": to("infra-backend-v1")}],
               parents=[{"name": "hosts"}], hostnames=["*.anotherwildcard.io"]),
    http_route("disjoint", [{"matches": [{"path": {"value": "/s5"}}],
                             "backendRefs": to("infra-backend-v2")}],
               parents=[{"name": "hosts"}], hostnames=["specific.but.wrong.com", "wildcard.io"]))


@pytest.mark.parametrize(("host", "path", "expected"), [
    ("very.specific.com", "/s1", "infra-backend-v1"),
    ("very.specific.com:1234", "/s1", "infra-backend-v1"),  # the Host's port is ignored
    ("non.matching.com", "/s1", None),
    ("foo.nonmatchingwildcard.io", "/s1", None),
    ("foo.wildcard.io", "/s1", None),
    ("foo.wildcard.io", "/s2", "infra-backend-v2"),
    ("foo.bar.wildcard.io", "/s2", "infra-backend-v2"),
    ("wildcard.io", "/s2", None),
    ("very.specific.com", "/s2", None),
    ("very.specific.com", "/s3", "infra-backend-v3"),
    ("foo.specific.com", "/s3", None),  # *.specific.com narrowed to the listener's host
    ("bar.anotherwildcard.io", "/s4", "infra-backend-v1"),
    ("anotherwildcard.io", "/s4", None),
    ("specific.but.wrong.com", "/s5", None),
    ("wildcard.io", "/s5", None),
])
def test_hostname_intersection(host: str, path: str, expected: str | None) -> None:
    """conformance/tests/httproute-hostname-intersection.{yaml,go}"""
    result = route_in(HOSTS, gateway="infra/hosts", host=host, path=path)
    assert backend(result) == expected
    assert result.status == (200 if expected else 404)


def test_a_route_with_no_intersecting_hostname_is_not_attached_and_says_why() -> None:
    result = route_in(HOSTS, gateway="infra/hosts", host="foo.wildcard.io", path="/s5")
    assert any("disjoint" in r and "NoMatchingListenerHostname" in r for r in result.reasons)


LISTENERS = GW + """metadata: {name: multi, namespace: infra}
spec:
  gatewayClassName: test
  listeners:
  - {name: bar, port: 80, protocol: HTTP, hostname: bar.com}
  - {name: foo-bar, port: 80, protocol: HTTP, hostname: foo.bar.com}
  - {name: wild-bar, port: 80, protocol: HTTP, hostname: "*.bar.com"}
  - {name: wild-foo, port: 80, protocol: HTTP, hostname: "*.foo.com"}
  - {name: any, port: 80, protocol: HTTP}
---
""" + routes(*(http_route(f"r-{section}", [{"backendRefs": to(svc)}],
                          parents=[{"name": "multi", "sectionName": section}])
               for section, svc in [("bar", "infra-backend-v1"), ("foo-bar", "infra-backend-v2"),
                                    ("wild-bar", "infra-backend-v3"),
                                    ("wild-foo", "infra-backend-v3"), ("any", "web-backend")]))


@pytest.mark.parametrize(("host", "expected"), [
    ("bar.com", "infra-backend-v1"),
    ("foo.bar.com", "infra-backend-v2"),  # exact beats *.bar.com
    ("x.y.bar.com", "infra-backend-v3"),
    ("bar.foo.com", "infra-backend-v3"),
    ("foo.com", None),  # falls to the listener without hostname
    (None, None),
])
def test_listener_hostnames_most_specific_first_and_isolated(host: str | None,
                                                              expected: str | None) -> None:
    """conformance/tests/httproute-listener-hostname-matching and
    gateway-http-listener-isolation: a request is served only by the routes of the most
    specific listener whose hostname matches (gateway_types.go, "Listeners that are
    distinct only by Hostname")."""
    # The "any" listener's route names infra/web-backend, which does not exist: its 500
    # shows that the request stayed with that listener and no other listener's routes.
    result = route_in(LISTENERS, gateway="infra/multi", host=host)
    assert backend(result) == expected
    if host in ("foo.com", None):
        assert result.status == 500
        assert any("listener any" in r for r in result.reasons)


PATHS = routes(http_route("order", [
    {"matches": [{"path": {"type": "Exact", "value": "/match"}}],
     "backendRefs": to("infra-backend-v1")},
    {"matches": [{"path": {"type": "Exact", "value": "/match/exact"}}],
     "backendRefs": to("infra-backend-v2")},
    {"matches": [{"path": {"type": "Exact", "value": "/match/exact/one"}}],
     "backendRefs": to("infra-backend-v3")},
    {"matches": [{"path": {"type": "PathPrefix", "value": "/match/"}}],
     "backendRefs": to("infra-backend-v3")},
    {"matches": [{"path": {"type": "PathPrefix", "value": "/match/prefix/"}}],
     "backendRefs": to("infra-backend-v1")},
    {"matches": [{"path": {"type": "PathPrefix", "value": "/match/prefix/one"}}],
     "backendRefs": to("infra-backend-v2")},
]))


@pytest.mark.parametrize(("path", "expected"), [
    ("/match/exact/one", "infra-backend-v3"),
    ("/match/exact", "infra-backend-v2"),
    ("/match", "infra-backend-v1"),
    ("/match/prefix/one/any", "infra-backend-v2"),
    ("/match/prefix/any", "infra-backend-v1"),
    ("/match/any", "infra-backend-v3"),
    ("/matchx", None),  # PathPrefix compares whole path elements
    ("/match/prefix/onex", "infra-backend-v1"),
])
def test_exact_beats_prefix_and_the_longest_prefix_wins(path: str, expected: str | None) -> None:
    """conformance/tests/httproute-path-match-order.{yaml,go}"""
    assert backend(route_in(PATHS, path=path)) == expected


@pytest.mark.parametrize(("path", "expected"), [
    ("/one", "infra-backend-v1"), ("/two", "infra-backend-v2"),
    ("/one/", None), ("/One", None), ("/onex", None), ("/", None),
])
def test_exact_path_is_exact_and_case_sensitive(path: str, expected: str | None) -> None:
    """conformance/tests/httproute-exact-path-matching.{yaml,go}"""
    manifests = routes(http_route("exact", [
        {"matches": [{"path": {"type": "Exact", "value": "/one"}}],
         "backendRefs": to("infra-backend-v1")},
        {"matches": [{"path": {"type": "Exact", "value": "/two"}}],
         "backendRefs": to("infra-backend-v2")}]))
    assert backend(route_in(manifests, path=path)) == expected


@pytest.mark.parametrize(("path", "matched"), [
    ("/abc", True), ("/abc/", True), ("/abc/def", True), ("/abcd", False),
])
def test_path_prefix_segment_rule_ignores_a_trailing_slash(path: str, matched: bool) -> None:
    """PathMatchPathPrefix in httproute_types.go: /abc, /abc/ and /abc/def match the prefix
    /abc (and /abc/), /abcd does not."""
    for prefix in ("/abc", "/abc/"):
        manifests = routes(http_route("p", [{"matches": [{"path": {"value": prefix}}],
                                             "backendRefs": to("infra-backend-v1")}]))
        assert (route_in(manifests, path=path).status == 200) is matched


ACROSS = routes(
    http_route("matching-part1", [{"matches": [{"path": {"value": "/"}},
                                               {"headers": [{"name": "version", "value": "one"}]}],
                                   "backendRefs": to("infra-backend-v1")}],
               hostnames=["example.com", "example.net"]),
    http_route("matching-part2", [{"matches": [{"path": {"value": "/v2"}},
                                               {"headers": [{"name": "version", "value": "two"}]}],
                                   "backendRefs": to("infra-backend-v2")}],
               hostnames=["example.com"]))


@pytest.mark.parametrize(("host", "path", "headers", "expected"), [
    ("example.com", "/", {}, "infra-backend-v1"),
    ("example.net", "/example", {}, "infra-backend-v1"),
    ("example.com", "/example", {"Version": "one"}, "infra-backend-v1"),
    ("example.com", "/v2", {}, "infra-backend-v2"),
    ("example.net", "/v2", {}, "infra-backend-v1"),
    ("example.com", "/v2/example", {}, "infra-backend-v2"),
    ("example.com", "/", {"Version": "two"}, "infra-backend-v2"),
])
def test_matching_across_routes(host: str, path: str, headers: dict[str, str],
                                expected: str) -> None:
    """conformance/tests/httproute-matching-across-routes.{yaml,go}"""
    assert backend(route_in(ACROSS, host=host, path=path, headers=headers)) == expected


HEADERS = routes(http_route("headers", [
    {"matches": [{"headers": [{"name": "version", "value": "one"}]}],
     "backendRefs": to("infra-backend-v1")},
    {"matches": [{"headers": [{"name": "version", "value": "two"}]}],
     "backendRefs": to("infra-backend-v2")},
    {"matches": [{"headers": [{"name": "version", "value": "two"},
                              {"name": "color", "value": "orange"}]}],
     "backendRefs": to("infra-backend-v1")},
    {"matches": [{"headers": [{"name": "color", "value": "blue"}]},
                 {"headers": [{"name": "color", "value": "green"}]}],
     "backendRefs": to("infra-backend-v1")},
    {"matches": [{"headers": [{"name": "color", "value": "red"}]},
                 {"headers": [{"name": "color", "value": "yellow"}]}],
     "backendRefs": to("infra-backend-v2")},
]))


@pytest.mark.parametrize(("headers", "expected"), [
    ({"Version": "one"}, "infra-backend-v1"),
    ({"version": "two"}, "infra-backend-v2"),
    ({"VERSION": "two", "Color": "orange"}, "infra-backend-v1"),  # more headers win
    ({"Version": "two", "Color": "blue"}, "infra-backend-v2"),
    ({"Color": "green"}, "infra-backend-v1"),
    ({"Color": "yellow"}, "infra-backend-v2"),
    ({"Version": "One"}, None),  # values compare exactly
    ({"Version": "four"}, None),
    ({"Color": "purple"}, None),
    ({}, None),
])
def test_header_matching(headers: dict[str, str], expected: str | None) -> None:
    """conformance/tests/httproute-header-matching.{yaml,go}: names without case, values
    exactly; any match of a rule suffices, all conditions of a match must hold."""
    assert backend(route_in(HEADERS, headers=headers)) == expected


QUERY = routes(http_route("query", [
    {"matches": [{"queryParams": [{"name": "animal", "value": "whale"}]}],
     "backendRefs": to("infra-backend-v1")},
    {"matches": [{"queryParams": [{"name": "animal", "value": "dolphin"}]}],
     "backendRefs": to("infra-backend-v2")},
    {"matches": [{"queryParams": [{"name": "animal", "value": "dolphin"},
                                  {"name": "color", "value": "blue"}]},
                 {"queryParams": [{"name": "ANIMAL", "value": "Whale"}]}],
     "backendRefs": to("infra-backend-v3")},
    {"matches": [{"path": {"value": "/path5"}}], "backendRefs": to("infra-backend-v1")},
    {"matches": [{"queryParams": [{"name": "animal", "value": "hydra"}]}],
     "backendRefs": to("infra-backend-v2")},
    {"matches": [{"headers": [{"name": "version", "value": "four"}]}],
     "backendRefs": to("infra-backend-v3")},
]))


@pytest.mark.parametrize(("path", "headers", "expected"), [
    ("/?animal=whale", {}, "infra-backend-v1"),
    ("/?animal=dolphin", {}, "infra-backend-v2"),
    ("/?animal=dolphin&color=blue", {}, "infra-backend-v3"),
    ("/?ANIMAL=Whale", {}, "infra-backend-v3"),  # names are case-sensitive
    ("/?animal=whale&otherparam=irrelevant", {}, "infra-backend-v1"),
    ("/?animal=dolphin&color=yellow", {}, "infra-backend-v2"),
    ("/?animal=whale&animal=dolphin", {}, "infra-backend-v1"),  # the first value counts
    ("/?color=blue", {}, None),
    ("/?animal=whaledolphin", {}, None),
    ("/", {}, None),
    ("/path5?animal=hydra", {}, "infra-backend-v1"),  # a longer prefix beats a query match
    ("/?animal=hydra", {"version": "four"}, "infra-backend-v3"),  # headers before params
])
def test_query_param_matching(path: str, headers: dict[str, str], expected: str | None) -> None:
    """conformance/tests/httproute-query-param-matching.{yaml,go}"""
    assert backend(route_in(QUERY, path=path, headers=headers)) == expected


METHODS = routes(http_route("methods", [
    {"matches": [{"method": "POST"}], "backendRefs": to("infra-backend-v1")},
    {"matches": [{"method": "GET"}], "backendRefs": to("infra-backend-v2")},
    {"matches": [{"path": {"value": "/path5"}}], "backendRefs": to("infra-backend-v1")},
    {"matches": [{"method": "PATCH"}], "backendRefs": to("infra-backend-v2")},
    {"matches": [{"headers": [{"name": "version", "value": "four"}]}],
     "backendRefs": to("infra-backend-v3")},
]))


@pytest.mark.parametrize(("method", "path", "headers", "expected"), [
    ("POST", "/", {}, "infra-backend-v1"),
    ("GET", "/", {}, "infra-backend-v2"),
    ("HEAD", "/", {}, None),
    ("PATCH", "/path5", {}, "infra-backend-v1"),  # the longer prefix first
    ("PATCH", "/", {"version": "four"}, "infra-backend-v2"),  # method before headers
])
def test_method_matching(method: str, path: str, headers: dict[str, str],
                         expected: str | None) -> None:
    """conformance/tests/httproute-method-matching.{yaml,go}"""
    assert backend(route_in(METHODS, method=method, path=path, headers=headers)) == expected


def test_ties_go_to_the_oldest_route_then_alphabetical_then_the_first_rule() -> None:
    """HTTPRouteRule.Matches: on equal matches the oldest Route wins, then the first in
    "{namespace}/{name}" order, then the first matching rule within a route."""
    rule = lambda svc: [{"matches": [{"path": {"value": "/x"}}], "backendRefs": to(svc)}]  # noqa: E731
    older = routes(http_route("zz-old", rule("infra-backend-v1"), created="2026-01-01T00:00:00Z"),
                   http_route("aa-new", rule("infra-backend-v2"), created="2026-01-02T00:00:00Z"))
    assert backend(route_in(older, path="/x")) == "infra-backend-v1"
    undated = routes(http_route("zz", rule("infra-backend-v1")),
                     http_route("aa", rule("infra-backend-v2")))
    assert backend(route_in(undated, path="/x")) == "infra-backend-v2"
    one = routes(http_route("one", rule("infra-backend-v3") + rule("infra-backend-v1")))
    assert backend(route_in(one, path="/x")) == "infra-backend-v3"


def test_an_exact_hostname_route_outranks_a_wildcard_one() -> None:
    """HTTPRouteSpec.Hostnames: precedence to the route with the most characters in a
    matching non-wildcard hostname, even over a longer path match elsewhere."""
    manifests = routes(
        http_route("wild", [{"matches": [{"path": {"value": "/long/path"}}],
                             "backendRefs": to("infra-backend-v1")}], hostnames=["*.example.com"]),
        http_route("exact", [{"backendRefs": to("infra-backend-v2")}],
                   hostnames=["www.example.com"]))
    assert backend(route_in(manifests, host="www.example.com",
                            path="/long/path")) == "infra-backend-v2"
    assert backend(route_in(manifests, host="api.example.com",
                            path="/long/path")) == "infra-backend-v1"


def test_regular_expressions_rank_after_exact_and_before_prefix_like_cilium() -> None:
    """RegularExpression precedence is implementation-specific; Cilium orders regex paths
    after exact ones and before prefixes (operator/pkg/model/translation)."""
    manifests = routes(http_route("re", [
        {"matches": [{"path": {"type": "PathPrefix", "value": "/items/special"}}],
         "backendRefs": to("infra-backend-v1")},
        {"matches": [{"path": {"type": "RegularExpression", "value": "/items/[0-9a-z]+"}}],
         "backendRefs": to("infra-backend-v2")},
        {"matches": [{"path": {"type": "Exact", "value": "/items/special"}},
                     {"headers": [{"name": "x-id", "type": "RegularExpression",
                                   "value": "[0-9]{3}"}]}],
         "backendRefs": to("infra-backend-v3")}]))
    assert backend(route_in(manifests, path="/items/special")) == "infra-backend-v3"
    assert backend(route_in(manifests, path="/items/specialx")) == "infra-backend-v2"
    assert backend(route_in(manifests, path="/items/special/")) == "infra-backend-v1"
    assert backend(route_in(manifests, path="/other", headers={"X-Id": "123"})) == \
        "infra-backend-v3"
    assert route_in(manifests, path="/other", headers={"X-Id": "1234"}).status == 404
