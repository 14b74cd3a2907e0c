"""Strict parsing of HTTPRoute: matches, filters, backendRefs and the CRD's CEL rules.

What the API server with the v1.6.1 standard CRDs refuses, this refuses (schema and
``x-kubernetes-validations`` of config/crd/standard/gateway.networking.k8s.io_httproutes.yaml),
naming the file, the object and the field; the CRD's defaults are applied.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from labkit.gateway.fields import (
    HOSTNAME,
    KIND,
    NAMESPACE,
    PRECISE_HOSTNAME,
    SECTION_NAME,
    api_group,
    enum_field,
    list_field,
    optional_port,
    string_field,
    unique_names,
)
from labkit.gateway.objects import (
    CORE_GROUP,
    GROUP,
    BackendObjectRef,
    BackendRef,
    Filter,
    HeaderModifier,
    HTTPRoute,
    Mirror,
    ParentRef,
    PathMatch,
    PathModifier,
    Redirect,
    Rewrite,
    RouteMatch,
    Rule,
    ValueMatch,
)
from labkit.policy.parse import ParseContext, name_of, namespace_of

HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$")
DURATION = re.compile(r"^([0-9]{1,5}(h|m|s|ms)){1,4}$")
PATH_CHARS = re.compile(r"^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|%[0-9a-fA-F]{2})+$")
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
FILTER_FIELDS = {"RequestHeaderModifier": "requestHeaderModifier",
                 "ResponseHeaderModifier": "responseHeaderModifier",
                 "RequestMirror": "requestMirror", "RequestRedirect": "requestRedirect",
                 "URLRewrite": "urlRewrite", "ExtensionRef": "extensionRef", "CORS": "cors"}
#: Filters that may appear once per list (CEL "... filter cannot be repeated").
UNIQUE_FILTERS = ("CORS", "RequestHeaderModifier", "ResponseHeaderModifier", "RequestRedirect",
                  "URLRewrite")


def http_route(doc: dict[str, Any], ctx: ParseContext) -> list[Any]:
    spec = ctx.mapping(doc.get("spec"), "spec", allowed=("parentRefs", "hostnames", "rules"))
    ns = namespace_of(doc)
    parents = tuple(_parent_ref(ctx, p, f"spec.parentRefs[{i}]", ns) for i, p in
                    enumerate(list_field(ctx, spec.get("parentRefs"), "spec.parentRefs",
                                         max_items=32)))
    _check_distinct_parents(ctx, parents)
    hostnames = tuple(
        string_field(ctx, h, f"spec.hostnames[{i}]", HOSTNAME, required=True, what="hostname")
        for i, h in enumerate(list_field(ctx, spec.get("hostnames"), "spec.hostnames",
                                         max_items=16)))
    if spec.get("rules") is None:  # the CRD's default: one rule matching every request
        rules: tuple[Rule, ...] = (Rule(),)
    else:
        raw = list_field(ctx, spec["rules"], "spec.rules", min_items=1, max_items=16)
        rules = tuple(_rule(ctx, r, f"spec.rules[{i}]", ns) for i, r in enumerate(raw))
        if sum(len(r.matches) for r in rules) > 128:
            raise ctx.error("spec.rules", "the total number of matches across all rules in a "
                            "route must be at most 128")
        unique_names(ctx, [r.name for r in rules if r.name], "spec.rules", "rule name")
    created = doc["metadata"].get("creationTimestamp")
    return [HTTPRoute(ns, name_of(doc), parents, hostnames, rules,
                      "" if created is None else _timestamp(ctx, created))]


def _timestamp(ctx: ParseContext, value: Any) -> str:
    """creationTimestamp as a sortable UTC ISO string (YAML may already give a datetime)."""
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise ctx.error("metadata.creationTimestamp", f"{value!r} is not an RFC 3339 time",
                        hint="write e.g. 2026-01-31T12:00:00Z") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def _parent_ref(ctx: ParseContext, item: Any, where: str, route_ns: str) -> ParentRef:
    raw = ctx.mapping(item, where, allowed=("group", "kind", "namespace", "name", "sectionName",
                                            "port"))
    group = GROUP if raw.get("group") is None else api_group(ctx, raw["group"], f"{where}.group")
    return ParentRef(
        group,
        string_field(ctx, raw.get("kind"), f"{where}.kind", KIND, max_len=63, what="kind")
        or "Gateway",
        string_field(ctx, raw.get("namespace"), f"{where}.namespace", NAMESPACE, max_len=63,
                     what="namespace") or route_ns,
        string_field(ctx, raw.get("name"), f"{where}.name", required=True),
        string_field(ctx, raw.get("sectionName"), f"{where}.sectionName", SECTION_NAME,
                     what="section name"),
        optional_port(ctx, raw.get("port"), f"{where}.port"))


def _check_distinct_parents(ctx: ParseContext, parents: tuple[ParentRef, ...]) -> None:
    """CEL on spec.parentRefs: refs to one parent all set sectionName, each a different one."""
    by_parent: dict[tuple[str, str, str, str], list[str]] = {}
    for p in parents:
        by_parent.setdefault((p.group, p.kind, p.namespace, p.name), []).append(p.section)
    for sections in by_parent.values():
        if len(sections) < 2:
            continue
        if not all(sections):
            raise ctx.error("spec.parentRefs", "sectionName must be specified when parentRefs "
                            "includes 2 or more references to the same parent")
        if len(set(sections)) != len(sections):
            raise ctx.error("spec.parentRefs", "sectionName must be unique when parentRefs "
                            "includes 2 or more references to the same parent")


def _rule(ctx: ParseContext, item: Any, where: str, ns: str) -> Rule:
    raw = ctx.mapping(item, where, allowed=("name", "matches", "filters", "backendRefs",
                                            "timeouts"))
    name = string_field(ctx, raw.get("name"), f"{where}.name", SECTION_NAME, what="rule name")
    if raw.get("matches") is None:
        matches: tuple[RouteMatch, ...] = (RouteMatch(),)
    else:
        matches = tuple(_match(ctx, m, f"{where}.matches[{i}]") for i, m in
                        enumerate(list_field(ctx, raw["matches"], f"{where}.matches",
                                             max_items=64)))
    filters = _filters(ctx, raw.get("filters"), f"{where}.filters", ns)
    backends = tuple(_backend_ref(ctx, b, f"{where}.backendRefs[{i}]", ns) for i, b in
                     enumerate(list_field(ctx, raw.get("backendRefs"), f"{where}.backendRefs",
                                          max_items=16)))
    if backends and any(f.type == "RequestRedirect" for f in filters):
        raise ctx.error(where, "RequestRedirect filter must not be used together with "
                        "backendRefs", hint="a redirect answers the client itself: drop one")
    prefix_rules = [f for f in (*filters, *(f for b in backends for f in b.filters))
                    if _replaces_prefix(f)]
    if prefix_rules and (len(matches) != 1 or matches[0].path.type != "PathPrefix"):
        raise ctx.error(f"{where}.matches", f"when using {prefix_rules[0].type} filter with "
                        "path.replacePrefixMatch, exactly one PathPrefix match must be specified")
    timeouts = ctx.mapping(raw.get("timeouts"), f"{where}.timeouts",
                           allowed=("request", "backendRequest"))
    for key, value in timeouts.items():
        string_field(ctx, value, f"{where}.timeouts.{key}", DURATION, what="duration (e.g. 10s)")
    return Rule(matches, filters, backends, name)


def _replaces_prefix(f: Filter) -> bool:
    path = (f.redirect.path if f.redirect else f.rewrite.path if f.rewrite else None)
    return path is not None and path.type == "ReplacePrefixMatch"


def _match(ctx: ParseContext, item: Any, where: str) -> RouteMatch:
    raw = ctx.mapping(item, where, allowed=("path", "headers", "queryParams", "method"))
    path = _path_match(ctx, raw.get("path"), f"{where}.path")
    headers = _value_matches(ctx, raw.get("headers"), f"{where}.headers", fold_case=True)
    query = _value_matches(ctx, raw.get("queryParams"), f"{where}.queryParams", fold_case=False)
    method = enum_field(ctx, raw.get("method"), f"{where}.method", METHODS, "")
    return RouteMatch(path, headers, query, method)


def _path_match(ctx: ParseContext, item: Any, where: str) -> PathMatch:
    raw = ctx.mapping(item, where, allowed=("type", "value"))
    kind = enum_field(ctx, raw.get("type"), f"{where}.type", ("Exact", "PathPrefix",
                                                               "RegularExpression"), "PathPrefix")
    value = "/" if raw.get("value") is None else ctx.string(raw["value"], f"{where}.value")
    if len(value) > 1024:
        raise ctx.error(f"{where}.value", "must be at most 1024 characters")
    if kind == "RegularExpression":
        try:
            re.compile(value)
        except re.error as exc:
            raise ctx.error(f"{where}.value", f"invalid regular expression: {exc}",
                            hint="the API server stores it, but the gateway's proxy cannot "
                            "compile it and the route never matches; fix the pattern") from exc
    else:
        _check_path(ctx, value, f"{where}.value", kind)
    return PathMatch(kind, value)


def _check_path(ctx: ParseContext, value: str, field: str, kind: str) -> None:
    """The CEL rules of HTTPPathMatch for Exact and PathPrefix values."""
    problems = [(not value.startswith("/"), "value must be an absolute path and start with '/'")]
    problems += [(bad in value, f"must not contain {bad!r}")
                 for bad in ("//", "/./", "/../", "%2f", "%2F", "#")]
    problems += [(value.endswith(end), f"must not end with {end!r}") for end in ("/..", "/.")]
    problems += [(not PATH_CHARS.match(value), f"must only contain valid characters (matching "
                  f"{PATH_CHARS.pattern})")]
    for broken, message in problems:
        if broken:
            raise ctx.error(field, f"{message} when type is {kind}")


def _value_matches(ctx: ParseContext, items: Any, where: str, *, fold_case: bool
                   ) -> tuple[ValueMatch, ...]:
    out: list[ValueMatch] = []
    names: list[str] = []
    for i, item in enumerate(list_field(ctx, items, where, max_items=16)):
        raw = ctx.mapping(item, f"{where}[{i}]", allowed=("type", "name", "value"))
        name = string_field(ctx, raw.get("name"), f"{where}[{i}].name", HEADER_NAME, required=True,
                            max_len=256, what="header or parameter name")
        value = ctx.string(raw.get("value"), f"{where}[{i}].value", required=True)
        kind = enum_field(ctx, raw.get("type"), f"{where}[{i}].type",
                          ("Exact", "RegularExpression"), "Exact")
        if not value or len(value) > 4096:
            raise ctx.error(f"{where}[{i}].value", "must be 1 to 4096 characters long")
        if kind == "RegularExpression":
            try:
                re.compile(value)
            except re.error as exc:
                raise ctx.error(f"{where}[{i}].value", f"invalid regular expression: {exc}"
                                ) from exc
        names.append(name)
        # The spec: "If multiple entries specify equivalent names, only the first entry
        # ... MUST be considered"; header names are equivalent regardless of case.
        key = name.lower() if fold_case else name
        if all((m.name.lower() if fold_case else m.name) != key for m in out):
            out.append(ValueMatch(name, value, kind))
    unique_names(ctx, names, where, "name")  # listType=map keyed by name: exact duplicates refused
    return tuple(out)


# -- filters ------------------------------------------------------------------------------
def _filters(ctx: ParseContext, items: Any, where: str, ns: str) -> tuple[Filter, ...]:
    filters = tuple(_filter(ctx, f, f"{where}[{i}]", ns) for i, f in
                    enumerate(list_field(ctx, items, where, max_items=16)))
    types = [f.type for f in filters]
    for kind in UNIQUE_FILTERS:
        if types.count(kind) > 1:
            raise ctx.error(where, f"{kind} filter cannot be repeated")
    if "RequestRedirect" in types and "URLRewrite" in types:
        raise ctx.error(where, "May specify either httpRouteFilterRequestRedirect or "
                        "httpRouteFilterRequestRewrite, but not both")
    return filters


def _filter(ctx: ParseContext, item: Any, where: str, ns: str) -> Filter:
    raw = ctx.mapping(item, where, allowed=("type", *FILTER_FIELDS.values()))
    if raw.get("type") is None:
        raise ctx.error(f"{where}.type", "is required",
                        hint=f"one of {', '.join(FILTER_FIELDS)}")
    kind = enum_field(ctx, raw.get("type"), f"{where}.type", tuple(FILTER_FIELDS), "")
    for other_kind, key in FILTER_FIELDS.items():
        if other_kind != kind and raw.get(key) is not None:
            raise ctx.error(f"{where}.{key}", f"filter.{key} must be nil if the filter.type is "
                            f"not {other_kind}")
    key = FILTER_FIELDS[kind]
    if raw.get(key) is None:
        raise ctx.error(f"{where}.{key}", f"filter.{key} must be specified for {kind} "
                        "filter.type")
    return _FILTER_PARSERS[kind](ctx, raw[key], f"{where}.{key}", ns)


def _header_modifier(kind: str) -> Callable[[ParseContext, Any, str, str], Filter]:
    def parse(ctx: ParseContext, item: Any, where: str, ns: str) -> Filter:
        return Filter(kind, headers=_headers(ctx, item, where))
    return parse


def _headers(ctx: ParseContext, item: Any, where: str) -> HeaderModifier:
    raw = ctx.mapping(item, where, allowed=("set", "add", "remove"))
    pairs: dict[str, tuple[tuple[str, str], ...]] = {}
    for action in ("set", "add"):
        found = []
        for i, h in enumerate(list_field(ctx, raw.get(action), f"{where}.{action}", max_items=16)):
            hm = ctx.mapping(h, f"{where}.{action}[{i}]", allowed=("name", "value"))
            name = string_field(ctx, hm.get("name"), f"{where}.{action}[{i}].name", HEADER_NAME,
                                required=True, max_len=256, what="header name")
            value = ctx.string(hm.get("value"), f"{where}.{action}[{i}].value", required=True)
            if not value or len(value) > 4096:
                raise ctx.error(f"{where}.{action}[{i}].value", "must be 1 to 4096 characters")
            found.append((name, value))
        unique_names(ctx, [n for n, _ in found], f"{where}.{action}", "header name")
        pairs[action] = tuple(found)
    remove = tuple(ctx.string(r, f"{where}.remove[{i}]", required=True) for i, r in
                   enumerate(list_field(ctx, raw.get("remove"), f"{where}.remove", max_items=16)))
    unique_names(ctx, list(remove), f"{where}.remove", "header name")  # listType=set
    return HeaderModifier(pairs["set"], pairs["add"], remove)


def _path_modifier(ctx: ParseContext, item: Any, where: str) -> PathModifier | None:
    if item is None:
        return None
    raw = ctx.mapping(item, where, allowed=("type", "replaceFullPath", "replacePrefixMatch"))
    if raw.get("type") is None:
        raise ctx.error(f"{where}.type", "is required",
                        hint="ReplaceFullPath or ReplacePrefixMatch")
    kind = enum_field(ctx, raw["type"], f"{where}.type", ("ReplaceFullPath", "ReplacePrefixMatch"),
                      "")
    key = "replaceFullPath" if kind == "ReplaceFullPath" else "replacePrefixMatch"
    other = "replacePrefixMatch" if kind == "ReplaceFullPath" else "replaceFullPath"
    if raw.get(other) is not None:
        raise ctx.error(f"{where}.{other}", f"type must be {other[0].upper() + other[1:]!r} "
                        f"when {other} is set")
    if raw.get(key) is None:
        raise ctx.error(f"{where}.{key}", f"{key} must be specified when type is set to "
                        f"{kind!r}")
    value = ctx.string(raw[key], f"{where}.{key}")
    if len(value) > 1024:
        raise ctx.error(f"{where}.{key}", "must be at most 1024 characters")
    return PathModifier(kind, value)


def _redirect(ctx: ParseContext, item: Any, where: str, ns: str) -> Filter:
    raw = ctx.mapping(item, where, allowed=("scheme", "hostname", "path", "port", "statusCode"))
    scheme = enum_field(ctx, raw.get("scheme"), f"{where}.scheme", ("http", "https"), "") or None
    hostname = string_field(ctx, raw.get("hostname"), f"{where}.hostname", PRECISE_HOSTNAME,
                            what="hostname (no wildcard)") or None
    status = raw.get("statusCode", 302)
    if status not in (301, 302, 303, 307, 308) or isinstance(status, bool):
        raise ctx.error(f"{where}.statusCode", f"unsupported value {status!r}",
                        hint="supported values: 301, 302, 303, 307, 308")
    return Filter("RequestRedirect", redirect=Redirect(
        scheme, hostname, _path_modifier(ctx, raw.get("path"), f"{where}.path"),
        optional_port(ctx, raw.get("port"), f"{where}.port"), status))


def _rewrite(ctx: ParseContext, item: Any, where: str, ns: str) -> Filter:
    raw = ctx.mapping(item, where, allowed=("hostname", "path"))
    hostname = string_field(ctx, raw.get("hostname"), f"{where}.hostname", PRECISE_HOSTNAME,
                            what="hostname (no wildcard)") or None
    return Filter("URLRewrite", rewrite=Rewrite(
        hostname, _path_modifier(ctx, raw.get("path"), f"{where}.path")))


def _mirror(ctx: ParseContext, item: Any, where: str, ns: str) -> Filter:
    raw = ctx.mapping(item, where, allowed=("backendRef", "percent", "fraction"))
    if raw.get("backendRef") is None:
        raise ctx.error(f"{where}.backendRef", "is required")
    ref = _object_ref(ctx, raw["backendRef"], f"{where}.backendRef", ns, ())
    if raw.get("percent") is not None and raw.get("fraction") is not None:
        raise ctx.error(where, "Only one of percent or fraction may be specified in "
                        "HTTPRequestMirrorFilter")
    numerator, denominator = 100, 100
    if raw.get("percent") is not None:
        numerator = ctx.integer(raw["percent"], f"{where}.percent", low=0, high=100)
    elif raw.get("fraction") is not None:
        frac = ctx.mapping(raw["fraction"], f"{where}.fraction",
                           allowed=("numerator", "denominator"))
        if frac.get("numerator") is None:
            raise ctx.error(f"{where}.fraction.numerator", "is required")
        numerator = ctx.integer(frac["numerator"], f"{where}.fraction.numerator", low=0,
                                high=2**31 - 1)
        denominator = ctx.integer(frac.get("denominator", 100), f"{where}.fraction.denominator",
                                  low=1, high=2**31 - 1)
        if numerator > denominator:
            raise ctx.error(f"{where}.fraction", "numerator must be less than or equal to "
                            "denominator")
    return Filter("RequestMirror", mirror=Mirror(ref, numerator, denominator))


def _extension(ctx: ParseContext, item: Any, where: str, ns: str) -> Filter:
    raw = ctx.mapping(item, where, allowed=("group", "kind", "name"))
    if raw.get("group") is None:
        raise ctx.error(f"{where}.group", "is required")
    group = api_group(ctx, raw["group"], f"{where}.group")
    kind = string_field(ctx, raw.get("kind"), f"{where}.kind", KIND, required=True, max_len=63,
                        what="kind")
    name = string_field(ctx, raw.get("name"), f"{where}.name", required=True)
    return Filter("ExtensionRef", extension=f"{kind}.{group} {name}" if group else
                  f"{kind} {name}")


def _cors(ctx: ParseContext, item: Any, where: str, ns: str) -> Filter:
    raw = ctx.mapping(item, where, allowed=("allowOrigins", "allowCredentials", "allowMethods",
                                            "allowHeaders", "exposeHeaders", "maxAge"))
    for key in ("allowOrigins", "allowMethods", "allowHeaders"):
        values = ctx.sequence(raw.get(key), f"{where}.{key}")
        if "*" in values and len(values) > 1:
            raise ctx.error(f"{where}.{key}", f"{key[0].upper()}{key[1:]} cannot contain '*' "
                            "alongside other values")
    return Filter("CORS")


_FILTER_PARSERS: dict[str, Callable[[ParseContext, Any, str, str], Filter]] = {
    "RequestHeaderModifier": _header_modifier("RequestHeaderModifier"),
    "ResponseHeaderModifier": _header_modifier("ResponseHeaderModifier"),
    "RequestRedirect": _redirect, "URLRewrite": _rewrite, "RequestMirror": _mirror,
    "ExtensionRef": _extension, "CORS": _cors}


# -- backend references -------------------------------------------------------------------
def _object_ref(ctx: ParseContext, item: Any, where: str, ns: str, extra: tuple[str, ...]
                ) -> BackendObjectRef:
    raw = ctx.mapping(item, where, allowed=("group", "kind", "name", "namespace", "port", *extra))
    group = CORE_GROUP if raw.get("group") is None else api_group(ctx, raw["group"],
                                                                  f"{where}.group")
    kind = string_field(ctx, raw.get("kind"), f"{where}.kind", KIND, max_len=63, what="kind") \
        or "Service"
    port = optional_port(ctx, raw.get("port"), f"{where}.port")
    if group == CORE_GROUP and kind == "Service" and port is None:
        raise ctx.error(f"{where}.port", "Must have port for Service reference",
                        hint="name the Service port, e.g. port: 8080")
    return BackendObjectRef(
        group, kind, string_field(ctx, raw.get("namespace"), f"{where}.namespace", NAMESPACE,
                                  max_len=63, what="namespace") or ns,
        string_field(ctx, raw.get("name"), f"{where}.name", required=True), port)


def _backend_ref(ctx: ParseContext, item: Any, where: str, ns: str) -> BackendRef:
    ref = _object_ref(ctx, item, where, ns, ("weight", "filters"))
    raw = ctx.mapping(item, where)
    weight = 1 if raw.get("weight") is None else ctx.integer(raw["weight"], f"{where}.weight",
                                                             low=0, high=1_000_000)
    return BackendRef(ref, weight, _filters(ctx, raw.get("filters"), f"{where}.filters", ns))
