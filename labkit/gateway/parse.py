"""Strict parsers for GatewayClass, Gateway, HTTPRoute and ReferenceGrant.

They refuse what the API server refuses with the v1.6.1 standard-channel CRDs
installed: unknown fields, out-of-enum values, broken patterns and the CRDs'
CEL rules (``x-kubernetes-validations`` in
https://github.com/kubernetes-sigs/gateway-api/tree/v1.6.1/config/crd/standard),
and they apply the CRDs' defaults. Errors name the file, the object and the field.
HTTPRoute, the largest, has its own module (``parse_route``).
"""

from __future__ import annotations

from typing import Any

from labkit.gateway.fields import (
    CONTROLLER,
    HOSTNAME,
    KIND,
    NAMESPACE,
    PROTOCOL,
    SECTION_NAME,
    Shape,
    api_group,
    check_keys,
    enum_field,
    list_field,
    string_field,
    unique_names,
)
from labkit.gateway.objects import (
    CORE_GROUP,
    GROUP,
    CertificateRef,
    Gateway,
    GatewayClass,
    GrantFrom,
    GrantTo,
    Listener,
    ReferenceGrant,
)
from labkit.gateway.parse_route import http_route
from labkit.policy.parse import ParseContext, Parser, name_of, namespace_of

_REF: Shape = {"group": None, "kind": None, "name": None, "namespace": None}
_SELECTOR: Shape = {"matchLabels": None, "matchExpressions": [{"key": None, "operator": None,
                                                               "values": None}]}
_VALIDATION: Shape = {"caCertificateRefs": [_REF], "mode": None}
#: The Gateway fields routing does not read, checked for unknown keys only.
GATEWAY_EXTRAS: Shape = {
    "addresses": [{"type": None, "value": None}],
    "infrastructure": {"labels": None, "annotations": None,
                       "parametersRef": {"group": None, "kind": None, "name": None}},
    "allowedListeners": {"namespaces": {"from": None, "selector": _SELECTOR}},
    "tls": {"backend": {"clientCertificateRef": _REF},
            "frontend": {"default": {"validation": _VALIDATION},
                         "perPort": [{"port": None, "tls": {"validation": _VALIDATION}}]}},
}


# -- GatewayClass -------------------------------------------------------------------------
def _gateway_class(doc: dict[str, Any], ctx: ParseContext) -> list[Any]:
    spec = ctx.mapping(doc.get("spec"), "spec",
                       allowed=("controllerName", "description", "parametersRef"))
    controller = string_field(ctx, spec.get("controllerName"), "spec.controllerName", CONTROLLER,
                              required=True, what="controller name (domain/path)")
    ctx.mapping(spec.get("parametersRef"), "spec.parametersRef",
                allowed=("group", "kind", "name", "namespace"))
    return [GatewayClass(name_of(doc), controller)]


# -- Gateway ------------------------------------------------------------------------------
def _gateway(doc: dict[str, Any], ctx: ParseContext) -> list[Any]:
    spec = ctx.mapping(doc.get("spec"), "spec", allowed=(
        "gatewayClassName", "listeners", "addresses", "infrastructure", "allowedListeners", "tls"))
    class_name = string_field(ctx, spec.get("gatewayClassName"), "spec.gatewayClassName",
                              required=True)
    ns = namespace_of(doc)
    raw = list_field(ctx, spec.get("listeners"), "spec.listeners", min_items=1, max_items=64)
    listeners = tuple(_listener(ctx, item, f"spec.listeners[{i}]", ns)
                      for i, item in enumerate(raw))
    unique_names(ctx, [lst.name for lst in listeners], "spec.listeners", "listener name")
    unique_names(ctx, [f"{lst.port}/{lst.protocol}/{lst.hostname}" for lst in listeners],
                 "spec.listeners", "combination of port, protocol and hostname")
    check_keys(ctx, {k: spec.get(k) for k in GATEWAY_EXTRAS}, "spec", GATEWAY_EXTRAS)
    return [Gateway(ns, name_of(doc), class_name, listeners)]


def _listener(ctx: ParseContext, item: Any, where: str, gw_ns: str) -> Listener:
    raw = ctx.mapping(item, where, allowed=("name", "hostname", "port", "protocol", "tls",
                                            "allowedRoutes"))
    name = string_field(ctx, raw.get("name"), f"{where}.name", SECTION_NAME, required=True,
                        what="listener name")
    if raw.get("port") is None:
        raise ctx.error(f"{where}.port", "is required")
    port = ctx.port_number(raw.get("port"), f"{where}.port")
    protocol = string_field(ctx, raw.get("protocol"), f"{where}.protocol", PROTOCOL, required=True,
                            max_len=255, what="protocol")
    hostname = string_field(ctx, raw.get("hostname"), f"{where}.hostname", HOSTNAME,
                            what="hostname")
    if hostname and protocol in ("TCP", "UDP"):
        raise ctx.error(f"{where}.hostname", "hostname must not be specified for protocols "
                        "['TCP', 'UDP']")
    certs = _listener_tls(ctx, raw, where, protocol, gw_ns)
    allowed = ctx.mapping(raw.get("allowedRoutes"), f"{where}.allowedRoutes",
                          allowed=("namespaces", "kinds"))
    nss = ctx.mapping(allowed.get("namespaces"), f"{where}.allowedRoutes.namespaces",
                      allowed=("from", "selector"))
    from_ = enum_field(ctx, nss.get("from"), f"{where}.allowedRoutes.namespaces.from",
                       ("All", "Selector", "Same"), "Same")
    selector = (ctx.label_selector(nss["selector"], f"{where}.allowedRoutes.namespaces.selector")
                if nss.get("selector") is not None else None)
    kinds = []
    kinds_field = f"{where}.allowedRoutes.kinds"
    for i, k in enumerate(list_field(ctx, allowed.get("kinds"), kinds_field, max_items=8)):
        km = ctx.mapping(k, f"{kinds_field}[{i}]", allowed=("group", "kind"))
        group = GROUP if km.get("group") is None else api_group(ctx, km["group"],
                                                               f"{kinds_field}[{i}].group")
        kinds.append((group, string_field(ctx, km.get("kind"), f"{kinds_field}[{i}].kind", KIND,
                                          required=True, max_len=63, what="kind")))
    return Listener(name, port, protocol, hostname, from_, selector, tuple(kinds), certs)


def _listener_tls(ctx: ParseContext, raw: dict[str, Any], where: str, protocol: str,
                  gw_ns: str) -> tuple[CertificateRef, ...]:
    if raw.get("tls") is None:
        if protocol == "TLS":
            raise ctx.error(f"{where}.tls", "tls mode must be set for protocol TLS")
        return ()
    if protocol in ("HTTP", "TCP", "UDP"):
        raise ctx.error(f"{where}.tls", "tls must not be specified for protocols "
                        "['HTTP', 'TCP', 'UDP']", hint="use protocol HTTPS to terminate TLS")
    tls = ctx.mapping(raw["tls"], f"{where}.tls", allowed=("mode", "certificateRefs", "options"))
    mode = enum_field(ctx, tls.get("mode"), f"{where}.tls.mode", ("Terminate", "Passthrough"),
                      "Terminate")
    if protocol == "HTTPS" and mode != "Terminate":
        raise ctx.error(f"{where}.tls.mode", "tls mode must be Terminate for protocol HTTPS")
    refs = []
    field = f"{where}.tls.certificateRefs"
    for i, r in enumerate(list_field(ctx, tls.get("certificateRefs"), field, max_items=64)):
        rm = ctx.mapping(r, f"{field}[{i}]", allowed=("group", "kind", "name", "namespace"))
        refs.append(CertificateRef(
            string_field(ctx, rm.get("namespace"), f"{field}[{i}].namespace", NAMESPACE, max_len=63,
                         what="namespace") or gw_ns,
            string_field(ctx, rm.get("name"), f"{field}[{i}].name", required=True),
            CORE_GROUP if rm.get("group") is None else api_group(ctx, rm["group"],
                                                                f"{field}[{i}].group"),
            string_field(ctx, rm.get("kind"), f"{field}[{i}].kind", KIND, max_len=63, what="kind")
            or "Secret"))
    options = ctx.mapping(tls.get("options"), f"{where}.tls.options")
    if mode == "Terminate" and not refs and not options:
        raise ctx.error(f"{where}.tls", "certificateRefs or options must be specified when "
                        "mode is Terminate", hint="name the Secret that holds the certificate")
    return tuple(refs)


# -- ReferenceGrant -----------------------------------------------------------------------
def _reference_grant(doc: dict[str, Any], ctx: ParseContext) -> list[Any]:
    spec = ctx.mapping(doc.get("spec"), "spec", allowed=("from", "to"))
    sources, targets = [], []
    for i, f in enumerate(list_field(ctx, spec.get("from"), "spec.from", min_items=1,
                                     max_items=16)):
        fm = ctx.mapping(f, f"spec.from[{i}]", allowed=("group", "kind", "namespace"))
        if fm.get("group") is None:
            raise ctx.error(f"spec.from[{i}].group", "is required",
                            hint=f"write group: {GROUP} for routes")
        sources.append(GrantFrom(
            api_group(ctx, fm["group"], f"spec.from[{i}].group"),
            string_field(ctx, fm.get("kind"), f"spec.from[{i}].kind", KIND, required=True,
                         max_len=63, what="kind"),
            string_field(ctx, fm.get("namespace"), f"spec.from[{i}].namespace", NAMESPACE,
                         required=True, max_len=63, what="namespace")))
    for i, t in enumerate(list_field(ctx, spec.get("to"), "spec.to", min_items=1, max_items=16)):
        tm = ctx.mapping(t, f"spec.to[{i}]", allowed=("group", "kind", "name"))
        if tm.get("group") is None:
            raise ctx.error(f"spec.to[{i}].group", "is required",
                            hint='write group: "" for Services and Secrets')
        targets.append(GrantTo(
            api_group(ctx, tm["group"], f"spec.to[{i}].group"),
            string_field(ctx, tm.get("kind"), f"spec.to[{i}].kind", KIND, required=True, max_len=63,
                         what="kind"),
            string_field(ctx, tm.get("name"), f"spec.to[{i}].name")))
    return [ReferenceGrant(namespace_of(doc), name_of(doc), tuple(sources), tuple(targets))]


def _not_modelled(doc: dict[str, Any], ctx: ParseContext) -> list[Any]:
    raise ctx.error("kind", f"{doc['kind']} is served by the Gateway API v1.6.1 CRDs, but "
                    "labkit routes HTTP only (HTTPRoute)",
                    hint="leave it out of the manifests given to labkit mesh route")


#: Standard-channel kinds of v1.6.1 that labkit does not model: named, not "unknown".
NOT_MODELLED = ("GRPCRoute", "TLSRoute", "TCPRoute", "UDPRoute", "ListenerSet",
                "BackendTLSPolicy")
V1 = f"{GROUP}/v1"
PARSERS: dict[tuple[str, str], Parser] = {
    **{(V1, kind): _not_modelled for kind in NOT_MODELLED},
    (V1, "GatewayClass"): _gateway_class,
    (V1, "Gateway"): _gateway,
    (V1, "HTTPRoute"): http_route,
    (V1, "ReferenceGrant"): _reference_grant,
    (f"{GROUP}/v1beta1", "ReferenceGrant"): _reference_grant,
}
