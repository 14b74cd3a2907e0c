"""Filters, weights, invalid backends, ReferenceGrant, attachment and GAMMA.

Each scenario restates a gateway-api v1.6.1 conformance test in its own data (named
in the docstring) or a sentence of apis/v1/httproute_types.go.
"""

from __future__ import annotations

from typing import Any

import pytest

from labkit.gateway.filters import modify_path
from labkit.gateway.objects import PathMatch, PathModifier
from tests.gateway.scenarios import backend, http_route, route_in, routes, to

GW = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\n"


def one_rule(rule: dict[str, Any], **kw: Any) -> str:
    return routes(http_route(kw.pop("name", "r"), [rule], **kw))


@pytest.mark.parametrize(("path", "prefix", "replacement", "expected"), [
    ("/foo/bar", "/foo", "/xyz", "/xyz/bar"), ("/foo/bar", "/foo", "/xyz/", "/xyz/bar"),
    ("/foo/bar", "/foo/", "/xyz", "/xyz/bar"), ("/foo/bar", "/foo/", "/xyz/", "/xyz/bar"),
    ("/foo", "/foo", "/xyz", "/xyz"), ("/foo/", "/foo", "/xyz", "/xyz/"),
    ("/foo/bar", "/foo", "", "/bar"), ("/foo/", "/foo", "", "/"), ("/foo", "/foo", "", "/"),
    ("/foo/", "/foo", "/", "/"), ("/foo", "/foo", "/", "/"),
])
def test_replace_prefix_match_table(path: str, prefix: str, replacement: str,
                                    expected: str) -> None:
    """The ReplacePrefixMatch table of HTTPPathModifier in httproute_types.go."""
    assert modify_path(path, PathModifier("ReplacePrefixMatch", replacement),
                       PathMatch("PathPrefix", prefix)) == expected


def rewrite_rule(prefix: str, path: dict[str, str] | None = None, host: str | None = None
                 ) -> dict[str, Any]:
    rw: dict[str, Any] = {}
    if path:
        rw["path"] = path
    if host:
        rw["hostname"] = host
    return {"matches": [{"path": {"value": prefix}}],
            "filters": [{"type": "URLRewrite", "urlRewrite": rw}],
            "backendRefs": to("infra-backend-v1")}


REWRITES = routes(http_route("rewrite", [
    rewrite_rule("/prefix/one", {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/one"}),
    rewrite_rule("/strip-prefix", {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}),
    rewrite_rule("/full/one", {"type": "ReplaceFullPath", "replaceFullPath": "/one"}),
    rewrite_rule("/host", host="one.example.org"),
]))


@pytest.mark.parametrize(("path", "forwarded", "host"), [
    ("/prefix/one/two", "/one/two", "gw.example"),
    ("/strip-prefix/three", "/three", "gw.example"),
    ("/strip-prefix", "/", "gw.example"),
    ("/full/one/two", "/one", "gw.example"),
    ("/full/one/two?keep=1", "/one?keep=1", "gw.example"),
    ("/host/x", "/host/x", "one.example.org"),
])
def test_url_rewrite(path: str, forwarded: str, host: str) -> None:
    """conformance/tests/httproute-rewrite-path and httproute-rewrite-host"""
    result = route_in(REWRITES, host="gw.example", path=path)
    assert result.status == 200 and result.forwarded is not None
    assert (result.forwarded.path, result.forwarded.host) == (forwarded, host)


def test_request_header_modifier_set_add_remove_without_case() -> None:
    """conformance/tests/httproute-request-header-modifier ("/case-insensitivity" and
    "/add"): set overwrites, add appends with a comma, remove drops, any case."""
    manifests = one_rule({"filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": {
        "set": [{"name": "X-Header-Set", "value": "header-set"}],
        "add": [{"name": "X-Header-Add", "value": "header-add"},
                {"name": "X-Header-New", "value": "new"}],
        "remove": ["X-Header-Remove"]}}], "backendRefs": to("infra-backend-v1")})
    result = route_in(manifests, headers={"x-header-set": "original-val-set",
                                          "x-header-add": "original-val-add",
                                          "x-header-remove": "gone", "Another-Header": "kept"})
    assert result.forwarded is not None
    assert dict(result.forwarded.headers) == {
        "X-Header-Set": "header-set", "x-header-add": "original-val-add,header-add",
        "Another-Header": "kept", "X-Header-New": "new"}


def test_backend_level_header_modifier_applies_only_to_that_backend() -> None:
    """conformance/tests/httproute-request-header-modifier-backend and
    -backend-weights: filters on a backendRef run only for requests sent to it."""
    def header(value: str) -> list[dict[str, Any]]:
        return [{"type": "RequestHeaderModifier",
                 "requestHeaderModifier": {"set": [{"name": "X-Backend", "value": value}]}}]
    only = one_rule({"backendRefs": to("infra-backend-v1", filters=header("v1"))})
    result = route_in(only)
    assert result.forwarded is not None and dict(result.forwarded.headers) == {"X-Backend": "v1"}
    split = one_rule({"backendRefs": [*to("infra-backend-v1", filters=header("v1")),
                                      *to("infra-backend-v2", filters=header("v2"))]})
    result = route_in(split)
    assert result.backends == {"infra/infra-backend-v1": 0.5, "infra/infra-backend-v2": 0.5}
    assert any("to infra/infra-backend-v2 the request is forwarded as" in r and "'v2'" in r
               for r in result.reasons)


REDIRECTS = GW + """metadata: {name: ports, namespace: infra}
spec:
  gatewayClassName: test
  listeners:
  - {name: http, port: 80, protocol: HTTP}
  - {name: http-8080, port: 8080, protocol: HTTP}
  - name: https
    port: 443
    protocol: HTTPS
    tls: {certificateRefs: [{name: tls-cert}]}
---
apiVersion: v1
kind: Secret
metadata: {name: tls-cert, namespace: infra}
type: kubernetes.io/tls
stringData: {tls.crt: cert, tls.key: key}
---
""" + routes(http_route("redirects", [
    {"matches": [{"path": {"value": f"/{name}"}}],
     "filters": [{"type": "RequestRedirect", "requestRedirect": {"hostname": "example.org",
                                                                 **redirect}}]}
    for name, redirect in [("nil-nil", {}), ("nil-80", {"port": 80}), ("nil-8443", {"port": 8443}),
                           ("https-nil", {"scheme": "https"}),
                           ("https-443", {"scheme": "https", "port": 443}),
                           ("https-8443", {"scheme": "https", "port": 8443}),
                           ("http-nil", {"scheme": "http"})]], parents=[{"name": "ports"}]))


@pytest.mark.parametrize(("port", "path", "location"), [
    (80, "/nil-nil", "http://example.org/nil-nil"),
    (80, "/nil-80", "http://example.org/nil-80"),
    (8080, "/nil-nil", "http://example.org:8080/nil-nil"),  # the listener's port
    (8080, "/nil-80", "http://example.org/nil-80"),
    (80, "/https-nil", "https://example.org/https-nil"),  # a scheme brings its own port
    (8080, "/https-nil", "https://example.org/https-nil"),
    (80, "/https-443", "https://example.org/https-443"),
    (80, "/https-8443", "https://example.org:8443/https-8443"),
    (443, "/nil-nil", "https://example.org/nil-nil"),  # the HTTPS listener's scheme
    (443, "/nil-8443", "https://example.org:8443/nil-8443"),
    (443, "/http-nil", "http://example.org/http-nil"),
])
def test_redirect_port_and_scheme(port: int, path: str, location: str) -> None:
    """conformance/tests/httproute-redirect-port-and-scheme.{yaml,go}"""
    result = route_in(REDIRECTS, gateway="infra/ports", host="gw.example", path=path, port=port)
    assert result.status == 302 and result.redirect is not None
    assert result.redirect.url() == location
    assert result.backends == {} and result.forwarded is None


@pytest.mark.parametrize(("path", "status", "host", "location_path"), [
    ("/original-prefix/lemon", 302, "gw.example", "/replacement-prefix/lemon"),
    ("/full/path/original", 302, "gw.example", "/full-path-replacement"),
    ("/path-and-host", 302, "example.org", "/replacement-prefix"),
    ("/path-and-status", 301, "gw.example", "/replacement-prefix"),
])
def test_redirect_path_host_and_status(path: str, status: int, host: str,
                                       location_path: str) -> None:
    """conformance/tests/httproute-redirect-path.{yaml,go}"""
    prefix = {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/replacement-prefix"}
    full = {"type": "ReplaceFullPath", "replaceFullPath": "/full-path-replacement"}
    manifests = routes(http_route("redirect-path", [
        {"matches": [{"path": {"value": p}}],
         "filters": [{"type": "RequestRedirect", "requestRedirect": rd}]}
        for p, rd in [("/original-prefix", {"path": prefix}), ("/full", {"path": full}),
                      ("/path-and-host", {"path": prefix, "hostname": "example.org"}),
                      ("/path-and-status", {"path": prefix, "statusCode": 301})]]))
    result = route_in(manifests, host="gw.example:80", path=path)
    assert result.status == status and result.redirect is not None
    assert (result.redirect.host, result.redirect.path) == (host, location_path)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_status_codes(status: int) -> None:
    """conformance/tests/httproute-303/307/308-redirect and redirect-host-and-status"""
    manifests = one_rule({"filters": [{"type": "RequestRedirect", "requestRedirect": {
        "statusCode": status, "scheme": "https"}}]})
    assert route_in(manifests, host="a.example").status == status


def test_weights_split_proportionally_and_zero_weight_gets_nothing() -> None:
    """conformance/tests/httproute-weight: weights 70/30/0 (weight/sum, not percentages)."""
    manifests = one_rule({"backendRefs": [*to("infra-backend-v1", weight=70),
                                          *to("infra-backend-v2", weight=30),
                                          *to("infra-backend-v3", weight=0)]})
    result = route_in(manifests)
    assert result.backends == {"infra/infra-backend-v1": 0.7, "infra/infra-backend-v2": 0.3}
    assert sum(result.backends.values()) == pytest.approx(1)
    unweighted = one_rule({"backendRefs": to("infra-backend-v1", "infra-backend-v2")})
    assert route_in(unweighted).backends == {"infra/infra-backend-v1": 0.5,
                                            "infra/infra-backend-v2": 0.5}


@pytest.mark.parametrize("ref", [
    {"name": "does-not-exist", "port": 8080},  # httproute-invalid-nonexistent-backendref
    {"group": "unknownkind.example.com", "kind": "NonExistent", "name": "infra-backend-v1"},
    {"name": "web-backend", "namespace": "web", "port": 8080},  # no ReferenceGrant
    {"name": "infra-backend-v1", "port": 9999},  # the Service has no such port
])
def test_an_invalid_backend_gets_500(ref: dict[str, Any]) -> None:
    """conformance/tests/httproute-invalid-nonexistent-backendref,
    httproute-invalid-backendref-unknown-kind, httproute-invalid-cross-namespace-backend-ref"""
    result = route_in(one_rule({"backendRefs": [ref]}))
    assert (result.status, result.backends, result.forwarded) == (500, {}, None)
    assert any("invalid backendRef" in r for r in result.reasons)


def test_a_partly_invalid_rule_routes_the_rest_and_reports_the_500_share() -> None:
    """HTTPRouteRule.BackendRefs: the share that would go to an invalid backend gets 500;
    the valid backends keep their own weights."""
    manifests = one_rule({"backendRefs": [*to("infra-backend-v1", weight=3),
                                          *to("missing", weight=1)]})
    result = route_in(manifests)
    assert (result.status, result.backends) == (200, {"infra/infra-backend-v1": 1.0})
    assert any(r.startswith("1/4 of the requests this rule matches get 500")
               for r in result.reasons)


def test_omitted_backend_refs_give_500() -> None:
    """conformance/tests/httproute-omitted-backendrefs"""
    result = route_in(one_rule({"matches": [{"path": {"value": "/"}}]}))
    assert result.status == 500


GRANT = """apiVersion: gateway.networking.k8s.io/{version}
kind: ReferenceGrant
metadata: {{name: grant, namespace: web}}
spec:
  from: [{{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: infra}}]
  to: [{{group: "", kind: Service{name}}}]
---
"""


@pytest.mark.parametrize(("version", "name", "allowed"), [
    ("v1", "", True), ("v1beta1", "", True), ("v1beta1", ", name: web-backend", True),
    ("v1", ", name: other-backend", False),  # httproute-invalid-reference-grant
])
def test_cross_namespace_backend_needs_a_reference_grant(version: str, name: str,
                                                         allowed: bool) -> None:
    """conformance/tests/httproute-reference-grant and httproute-invalid-reference-grant;
    ReferenceGrant is served as v1 and v1beta1 by the v1.6.1 CRDs."""
    manifests = GRANT.format(version=version, name=name) + one_rule(
        {"backendRefs": to("web-backend", namespace="web")})
    result = route_in(manifests)
    assert (backend(result) == "web-backend") is allowed
    assert result.status == (200 if allowed else 500)


def test_a_grant_from_another_namespace_does_not_help() -> None:
    manifests = GRANT.format(version="v1", name="").replace("namespace: infra",
                                                            "namespace: apps") + one_rule(
        {"backendRefs": to("web-backend", namespace="web")})
    assert route_in(manifests).status == 500


@pytest.mark.parametrize(("listener", "route_ns", "attached"), [
    ("{from: Same}", "apps", False),  # httproute-invalid-cross-namespace-parent-ref
    ("{from: All}", "apps", True),  # httproute-cross-namespace
    ("{from: Selector, selector: {matchLabels: {gateway-conformance: web-backend}}}", "web",
     True),
    ("{from: Selector, selector: {matchLabels: {gateway-conformance: web-backend}}}", "apps",
     False),
    ("{from: Selector, selector: {matchExpressions: [{key: kubernetes.io/metadata.name, "
     "operator: In, values: [apps]}]}}", "apps", True),
])
def test_allowed_routes_namespaces(listener: str, route_ns: str, attached: bool) -> None:
    gateway = GW + f"""metadata: {{name: shared, namespace: infra}}
spec:
  gatewayClassName: test
  listeners:
  - {{name: http, port: 80, protocol: HTTP, allowedRoutes: {{namespaces: {listener}}}}}
---
"""
    svc = {"web": "web-backend", "apps": "app-backend"}[route_ns]
    manifests = gateway + routes(http_route("r", [{"backendRefs": to(svc)}], ns=route_ns,
                                            parents=[{"name": "shared", "namespace": "infra"}]))
    result = route_in(manifests, gateway="infra/shared")
    assert (result.status == 200) is attached
    if not attached:
        assert any("NotAllowedByListeners" in r for r in result.reasons)


def test_allowed_route_kinds_can_exclude_http_route() -> None:
    """conformance/tests/httproute-disallowed-kind"""
    manifests = GW + """metadata: {name: tcp-only, namespace: infra}
spec:
  gatewayClassName: test
  listeners:
  - {name: http, port: 80, protocol: HTTP, allowedRoutes: {kinds: [{kind: GRPCRoute}]}}
---
""" + one_rule({"backendRefs": to("infra-backend-v1")}, parents=[{"name": "tcp-only"}])
    result = route_in(manifests, gateway="infra/tcp-only")
    assert result.status == 404 and any("kinds exclude HTTPRoute" in r for r in result.reasons)


PORTS = GW + """metadata: {name: two-ports, namespace: infra}
spec:
  gatewayClassName: test
  listeners:
  - {name: eighty, port: 80, protocol: HTTP}
  - {name: eighty-eighty, port: 8080, protocol: HTTP}
---
"""


@pytest.mark.parametrize(("parent", "port", "routed"), [
    ({"sectionName": "eighty"}, 80, True), ({"sectionName": "eighty"}, 8080, False),
    ({"sectionName": "nope"}, 80, False),  # httproute-invalid-parentref-not-matching-section-name
    ({"port": 8080}, 8080, True), ({"port": 8080}, 80, False),  # httproute-listener-port-matching
    ({"port": 81}, 80, False),  # httproute-invalid-parentref-not-matching-listener-port
    ({"sectionName": "eighty", "port": 8080}, 80, False),  # ...-section-name-not-matching-port
    ({}, 80, True), ({}, 8080, True),
])
def test_parent_ref_section_name_and_port(parent: dict[str, Any], port: int,
                                          routed: bool) -> None:
    manifests = PORTS + one_rule({"backendRefs": to("infra-backend-v1")},
                                 parents=[{"name": "two-ports", **parent}])
    result = route_in(manifests, gateway="infra/two-ports", port=port)
    assert (result.status == 200) is routed


def test_https_listener_on_443_needs_its_certificate() -> None:
    """conformance/tests/httproute-https-listener and gateway-secret-missing-reference-grant"""
    rule = one_rule({"backendRefs": to("infra-backend-v1")}, parents=[{"name": "ports"}])
    base = REDIRECTS.split("---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute")[0]
    assert route_in(base + "---\n" + rule, gateway="infra/ports", port=443).status == 200
    missing = base.replace("name: tls-cert}", "name: no-such-cert}")
    result = route_in(missing + "---\n" + rule, gateway="infra/ports", port=443)
    assert result.status == 404
    assert any("not programmed" in r and "no-such-cert" in r for r in result.reasons)
    other_ns = base.replace("name: tls-cert}", "name: tls-cert, namespace: web}")
    result = route_in(other_ns + "---\n" + rule, gateway="infra/ports", port=443)
    assert any("RefNotPermitted" in r for r in result.reasons)


def test_request_mirror_is_reported_and_not_routed() -> None:
    """conformance/tests/httproute-request-mirror and -percentage-mirror"""
    manifests = one_rule({"filters": [{"type": "RequestMirror", "requestMirror": {
        "backendRef": {"name": "infra-backend-v2", "port": 8080}, "percent": 35}}],
        "backendRefs": to("infra-backend-v1")})
    result = route_in(manifests)
    assert result.backends == {"infra/infra-backend-v1": 1.0}
    assert any("7/20 of these requests are copied to infra/infra-backend-v2" in r
               for r in result.reasons)


def test_an_unresolvable_extension_filter_is_not_skipped() -> None:
    """HTTPRouteFilter.Type: an unresolved custom filter MUST give an HTTP error."""
    manifests = one_rule({"filters": [{"type": "ExtensionRef", "extensionRef": {
        "group": "example.net", "kind": "Auth", "name": "a"}}],
        "backendRefs": to("infra-backend-v1")})
    assert route_in(manifests).status == 500


MESH = """---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: infra}
spec:
  selector: {app: echo}
  ports: [{name: http, port: 80}, {name: admin, port: 9000}]
---
"""


def mesh_route(name: str, rules: list[dict[str, Any]], ns: str = "infra",
               **parent: Any) -> dict[str, Any]:
    return http_route(name, rules, ns=ns, parents=[
        {"group": "", "kind": "Service", "name": "echo", "namespace": "infra", **parent}])


def test_gamma_routes_split_and_reject_what_they_do_not_match() -> None:
    """conformance/tests/mesh/mesh-split and mesh/httproute-weight; GAMMA mesh-overview:
    with routes attached, "requests that do not match at least one of the Routes will be
    rejected"; GEP-1294: hostnames mean nothing to a mesh."""
    manifests = MESH + routes(mesh_route("split", [
        {"matches": [{"path": {"type": "Exact", "value": "/v1"}}],
         "backendRefs": to("infra-backend-v1")},
        {"matches": [{"path": {"type": "Exact", "value": "/both"}}],
         "backendRefs": [*to("infra-backend-v1", weight=80), *to("infra-backend-v2", weight=20)]}]))
    assert backend(route_in(manifests, service="infra/echo", host="echo", path="/v1")) == \
        "infra-backend-v1"
    assert route_in(manifests, service="infra/echo", path="/both").backends == {
        "infra/infra-backend-v1": 0.8, "infra/infra-backend-v2": 0.2}
    assert route_in(manifests, service="infra/echo", path="/other").status == 404


def test_gamma_without_routes_reaches_the_service_itself() -> None:
    """GEP-1294 "Route presence": with no route, traffic works as plain Kubernetes."""
    result = route_in(MESH, service="infra/echo", path="/any")
    assert (result.status, result.backends) == (200, {"infra/echo": 1.0})


def test_gamma_parent_port_and_consumer_routes() -> None:
    """conformance/tests/mesh/mesh-ports (parentRef port selects one Service port) and
    mesh/mesh-consumer-route (a route in another namespace only serves its own clients)."""
    manifests = MESH + routes(mesh_route("on-80", [{"backendRefs": to("infra-backend-v1")}],
                                         port=80),
                              mesh_route("consumer", [{"backendRefs": to("app-backend")}],
                                         ns="apps"))
    assert backend(route_in(manifests, service="infra/echo", port=80)) == "infra-backend-v1"
    result = route_in(manifests, service="infra/echo", port=9000)
    assert result.backends == {"infra/echo": 1.0}
    assert any("consumer route" in r for r in result.reasons)
    by_name = MESH + routes(mesh_route("admin", [{"backendRefs": to("infra-backend-v2")}],
                                       sectionName="admin"))
    assert backend(route_in(by_name, service="infra/echo", port=9000)) == "infra-backend-v2"
    assert backend(route_in(by_name, service="infra/echo", port=80)) == "echo"


def test_a_gateway_of_an_unknown_class_is_not_accepted() -> None:
    """GatewayClass: when the manifests define classes, a Gateway must name one of them."""
    manifests = routes(http_route("r", [{"backendRefs": to("infra-backend-v1")}]))
    other = route_in(manifests + "---\n" + GW + """metadata: {name: orphan,
  namespace: infra}
spec:
  gatewayClassName: missing
  listeners: [{name: http, port: 80, protocol: HTTP}]
""", gateway="infra/orphan")
    assert other.status == 404 and "GatewayClass missing" in other.reasons[0]


def test_http_listeners_sharing_a_port_with_a_tcp_listener_are_not_accepted() -> None:
    """gateway_types.go, distinct listeners: HTTP/HTTPS/TLS listeners on the port of a TCP
    listener MUST NOT be accepted."""
    manifests = GW + """metadata: {name: mixed, namespace: infra}
spec:
  gatewayClassName: test
  listeners:
  - {name: http, port: 80, protocol: HTTP}
  - {name: tcp, port: 80, protocol: TCP}
  - {name: alt, port: 8080, protocol: HTTP}
---
""" + one_rule({"backendRefs": to("infra-backend-v1")}, parents=[{"name": "mixed"}])
    result = route_in(manifests, gateway="infra/mixed")
    assert result.status == 404 and "TCP listener" in result.reasons[0]
    assert route_in(manifests, gateway="infra/mixed", port=8080).status == 200


def test_a_host_header_match_sees_the_request_host_in_a_mesh() -> None:
    """GEP-1294, "hostnames field": to filter on hostnames, a mesh route matches the Host
    header instead."""
    manifests = MESH + routes(mesh_route("by-host", [
        {"matches": [{"headers": [{"name": "Host", "value": "echo.infra"}]}],
         "backendRefs": to("infra-backend-v1")}]))
    assert backend(route_in(manifests, service="infra/echo", host="echo.infra")) == \
        "infra-backend-v1"
    assert route_in(manifests, service="infra/echo", host="echo").status == 404


def test_a_listener_that_is_not_programmed_leaves_the_host_to_the_next_listener() -> None:
    """Only accepted listeners take traffic: an HTTPS listener for a.example.com whose
    certificate is missing does not shadow the catch-all HTTPS listener."""
    manifests = GW + """metadata: {name: tls, namespace: infra}
spec:
  gatewayClassName: test
  listeners:
  - {name: a, port: 443, protocol: HTTPS, hostname: a.example.com,
     tls: {certificateRefs: [{name: missing}]}}
  - {name: any, port: 443, protocol: HTTPS, tls: {certificateRefs: [{name: wildcard}]}}
---
apiVersion: v1
kind: Secret
metadata: {name: wildcard, namespace: infra}
stringData: {tls.crt: c, tls.key: k}
---
""" + one_rule({"backendRefs": to("infra-backend-v1")}, parents=[{"name": "tls"}])
    result = route_in(manifests, gateway="infra/tls", host="a.example.com", port=443)
    assert backend(result) == "infra-backend-v1"
    assert result.reasons[:2] == [
        "listener a is not programmed: certificate Secret infra/missing does not exist "
        "(InvalidCertificateRef)", "listener any (HTTPS port 443) takes the request"]
