"""Strict parsing: what the API server with the v1.6.1 standard CRDs refuses, labkit refuses,
naming the file, the object and the field; what it accepts, labkit accepts, with its defaults.

Rules come from config/crd/standard/gateway.networking.k8s.io_*.yaml (OpenAPI schema and
x-kubernetes-validations) of gateway-api v1.6.1.
"""

from __future__ import annotations

import pytest

from labkit.errors import ManifestError, UnknownKindError
from labkit.gateway import router_from_text
from labkit.gateway.objects import HTTPRoute, PathMatch
from tests.gateway.scenarios import http_route, routes, to

GATEWAY = """apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: infra}}
spec:
  gatewayClassName: test
  listeners:
  {listeners}
"""


def refused(text: str) -> ManifestError:
    with pytest.raises(ManifestError) as err:
        router_from_text(text, "bad.yaml")
    return err.value


def route_text(rule: dict, **kw: object) -> str:
    return routes(http_route("r", [rule], **kw))  # type: ignore[arg-type]


@pytest.mark.parametrize(("rule", "field", "message"), [
    ({"matches": [{"path": {"value": "/a", "kind": "x"}}]}, "spec.rules[0].matches[0].path.kind",
     "unknown field"),
    ({"matches": [{"path": {"type": "Prefix", "value": "/a"}}]},
     "spec.rules[0].matches[0].path.type", "unsupported value 'Prefix'"),
    ({"matches": [{"path": {"value": "a"}}]}, "spec.rules[0].matches[0].path.value",
     "start with '/'"),
    ({"matches": [{"path": {"type": "Exact", "value": "/a//b"}}]},
     "spec.rules[0].matches[0].path.value", "must not contain '//'"),
    ({"matches": [{"path": {"value": "/a/.."}}]}, "spec.rules[0].matches[0].path.value",
     "must not end with '/..'"),
    ({"matches": [{"path": {"value": "/a b"}}]}, "spec.rules[0].matches[0].path.value",
     "valid characters"),
    ({"matches": [{"method": "get"}]}, "spec.rules[0].matches[0].method", "unsupported value"),
    ({"matches": [{"headers": [{"name": "a", "value": "1"}, {"name": "a", "value": "2"}]}]},
     "spec.rules[0].matches[0].headers[1]", "duplicate name"),
    ({"matches": [{"headers": [{"name": "bad name", "value": "1"}]}]},
     "spec.rules[0].matches[0].headers[0].name", "not a valid header"),
    ({"backendRefs": [{"name": "svc"}]}, "spec.rules[0].backendRefs[0].port",
     "Must have port for Service reference"),
    ({"backendRefs": to("svc", weight=1_000_001)}, "spec.rules[0].backendRefs[0].weight",
     "out of range"),
    ({"filters": [{"type": "RequestRedirect", "requestRedirect": {}}],
      "backendRefs": to("svc")}, "spec.rules[0]", "must not be used together with backendRefs"),
    ({"filters": [{"type": "RequestRedirect", "requestRedirect": {"statusCode": 304}}]},
     "spec.rules[0].filters[0].requestRedirect.statusCode", "unsupported value 304"),
    ({"filters": [{"type": "RequestRedirect", "requestRedirect": {"hostname": "*.a.com"}}]},
     "spec.rules[0].filters[0].requestRedirect.hostname", "not a valid hostname"),
    ({"filters": [{"type": "URLRewrite"}]}, "spec.rules[0].filters[0].urlRewrite",
     "must be specified for URLRewrite"),
    ({"filters": [{"type": "URLRewrite", "urlRewrite": {}, "requestRedirect": {}}]},
     "spec.rules[0].filters[0].requestRedirect", "must be nil"),
    ({"filters": [{"type": "URLRewrite", "urlRewrite": {}},
                  {"type": "RequestRedirect", "requestRedirect": {}}]},
     "spec.rules[0].filters", "not both"),
    ({"filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": {}},
                  {"type": "RequestHeaderModifier", "requestHeaderModifier": {}}]},
     "spec.rules[0].filters", "cannot be repeated"),
    ({"matches": [{"path": {"type": "Exact", "value": "/a"}}],
      "filters": [{"type": "URLRewrite", "urlRewrite": {"path": {
          "type": "ReplacePrefixMatch", "replacePrefixMatch": "/b"}}}], "backendRefs": to("s")},
     "spec.rules[0].matches", "exactly one PathPrefix match"),
    ({"filters": [{"type": "URLRewrite", "urlRewrite": {"path": {
        "type": "ReplaceFullPath", "replacePrefixMatch": "/b"}}}]},
     "spec.rules[0].filters[0].urlRewrite.path.replacePrefixMatch", "when replacePrefixMatch"),
    ({"filters": [{"type": "RequestMirror", "requestMirror": {
        "backendRef": {"name": "s", "port": 80}, "percent": 5,
        "fraction": {"numerator": 1}}}]}, "spec.rules[0].filters[0].requestMirror",
     "Only one of percent or fraction"),
    ({"filters": [{"type": "RequestMirror", "requestMirror": {
        "backendRef": {"name": "s", "port": 80}, "fraction": {"numerator": 3,
                                                              "denominator": 2}}}]},
     "spec.rules[0].filters[0].requestMirror.fraction", "numerator must be less than"),
    ({"timeouts": {"request": "10 seconds"}}, "spec.rules[0].timeouts.request",
     "not a valid duration"),
])
def test_http_route_rules_refused_like_the_api_server(rule: dict, field: str,
                                                      message: str) -> None:
    err = refused(route_text(rule))
    assert (err.source, err.obj, err.field) == ("bad.yaml", "HTTPRoute infra/r", field)
    assert message in str(err)


def test_parent_refs_to_one_gateway_need_distinct_section_names() -> None:
    two = [{"name": "gw"}, {"name": "gw"}]
    assert "sectionName must be specified" in str(refused(route_text({}, parents=two)))
    same = [{"name": "gw", "sectionName": "a"}, {"name": "gw", "sectionName": "a"}]
    assert "sectionName must be unique" in str(refused(route_text({}, parents=same)))
    distinct = [{"name": "gw", "sectionName": "a"}, {"name": "gw", "sectionName": "b"}]
    router_from_text(route_text({}, parents=distinct))


def test_hostnames_are_checked_and_wildcards_allowed_only_in_front() -> None:
    for bad in ("Foo.com", "a.*.com", "*"):
        err = refused(route_text({}, hostnames=[bad]))
        assert err.field == "spec.hostnames[0]"
    router_from_text(route_text({}, hostnames=["*.example.com", "a-b.example.com"]))


def test_defaults_are_the_crds() -> None:
    """No rules: one rule, PathPrefix /; a path without type is a PathPrefix; weight 1;
    a backendRef is a core Service in the route's namespace."""
    router = router_from_text(routes({"apiVersion": "gateway.networking.k8s.io/v1",
                                      "kind": "HTTPRoute", "metadata": {"name": "r"},
                                      "spec": {"parentRefs": [{"name": "gw"}]}},
                                     http_route("s", [{"matches": [{"path": {"value": "/a"}}],
                                                       "backendRefs": to("svc")}])))
    default, explicit = router.routes
    assert isinstance(default, HTTPRoute) and default.namespace == "default"
    assert default.rules[0].matches[0].path == PathMatch("PathPrefix", "/")
    assert default.parents[0].namespace == "default" and default.parents[0].kind == "Gateway"
    ref = explicit.rules[0].backends[0]
    assert (ref.weight, ref.ref.group, ref.ref.kind, ref.ref.namespace) == (1, "", "Service",
                                                                           "infra")


@pytest.mark.parametrize(("listeners", "field", "message"), [
    ("- {name: a, port: 80, protocol: HTTP, tls: {certificateRefs: [{name: c}]}}",
     "spec.listeners[0].tls", "tls must not be specified"),
    ("- {name: a, port: 443, protocol: HTTPS, tls: {mode: Passthrough}}",
     "spec.listeners[0].tls.mode", "must be Terminate"),
    ("- {name: a, port: 443, protocol: HTTPS, tls: {mode: Terminate}}",
     "spec.listeners[0].tls", "certificateRefs or options"),
    ("- {name: a, port: 9000, protocol: TCP, hostname: a.com}", "spec.listeners[0].hostname",
     "must not be specified"),
    ("- {name: a, port: 80, protocol: HTTP}\n  - {name: a, port: 81, protocol: HTTP}",
     "spec.listeners[1]", "duplicate listener name"),
    ("- {name: a, port: 80, protocol: HTTP}\n  - {name: b, port: 80, protocol: HTTP}",
     "spec.listeners[1]", "combination of port, protocol and hostname"),
    ("- {name: a, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: Any}}}",
     "spec.listeners[0].allowedRoutes.namespaces.from", "unsupported value 'Any'"),
    ("- {name: a, port: 0, protocol: HTTP}", "spec.listeners[0].port", "out of range"),
    ("- {name: A, port: 80, protocol: HTTP}", "spec.listeners[0].name", "not a valid"),
])
def test_gateway_listeners_refused_like_the_api_server(listeners: str, field: str,
                                                       message: str) -> None:
    err = refused(GATEWAY.format(listeners=listeners))
    assert (err.obj, err.field) == ("Gateway infra/gw", field)
    assert message in str(err)


def test_reference_grant_needs_group_and_an_unknown_kind_is_named() -> None:
    grant = """apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: g, namespace: web}
spec:
  from: [{kind: HTTPRoute, namespace: infra}]
  to: [{group: "", kind: Service}]
"""
    err = refused(grant)
    assert (err.obj, err.field) == ("ReferenceGrant web/g", "spec.from[0].group")
    with pytest.raises(UnknownKindError) as unknown:
        router_from_text(grant.replace("v1beta1", "v1alpha2"), "old.yaml")
    assert "served as apiVersion" in str(unknown.value)
    with pytest.raises(ManifestError, match="labkit routes HTTP only") as grpc:
        router_from_text("apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\n"
                         "metadata: {name: g}\n")
    assert not isinstance(grpc.value, UnknownKindError)
    with pytest.raises(UnknownKindError):
        router_from_text("apiVersion: gateway.networking.k8s.io/v1\nkind: Mesh\n"
                         "metadata: {name: m}\n")


@pytest.mark.parametrize(("extra", "field"), [
    ("addresses: [{type: IPAddress, value: 10.0.0.1, ip: x}]", "spec.addresses[0].ip"),
    ("infrastructure: {labels: {a: b}, parametersRef: {group: g, kind: K, name: n, x: 1}}",
     "spec.infrastructure.parametersRef.x"),
    ("tls: {frontend: {default: {validation: {caCertificateRefs: [{name: ca, grp: x}]}}}}",
     "spec.tls.frontend.default.validation.caCertificateRefs[0].grp"),
    ("allowedListeners: {namespaces: {from: All, selecter: x}}",
     "spec.allowedListeners.namespaces.selecter"),
])
def test_unknown_fields_are_refused_in_gateway_parts_routing_does_not_read(
        extra: str, field: str) -> None:
    gateway = GATEWAY.format(listeners="- {name: a, port: 80, protocol: HTTP}")
    err = refused(gateway + f"  {extra}\n")
    assert (err.field, "unknown field" in str(err)) == (field, True)
    unknown = field.rsplit(".", 1)[-1]
    router_from_text(gateway + "  " + extra.replace(f", {unknown}: x", "").replace(
        f", {unknown}: 1", "") + "\n")
