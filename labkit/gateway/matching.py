"""One HTTP request against an HTTPRouteMatch, and the precedence between matches.

Semantics from ``HTTPRouteMatch``, ``HTTPPathMatch``, ``HTTPHeaderMatch`` and
``HTTPQueryParamMatch`` in apis/v1/httproute_types.go (gateway-api v1.6.1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from labkit.gateway.objects import PathMatch, RouteMatch, ValueMatch


@dataclass(frozen=True)
class Request:
    """A request as a client sends it, to a Gateway or (GAMMA) to a Service."""

    target: str  # "namespace/name" of the Gateway or Service
    mesh: bool = False  # True: east-west, addressed to a Service
    host: str | None = None
    path: str = "/"  # may carry "?query"
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    port: int = 80
    fields: dict[str, object] = field(default_factory=dict, compare=False, hash=False)

    @property
    def path_only(self) -> str:
        return self.path.split("?", 1)[0]

    @property
    def query(self) -> list[tuple[str, str]]:
        _, _, query = self.path.partition("?")
        return parse_qsl(query, keep_blank_values=True)

    @property
    def hostname(self) -> str:
        """The Host header without a port, lowercased: what hostname matching compares
        ("Implementations MUST ignore any port value specified in the HTTP Host header")."""
        host = (self.host or "").lower()
        if host.startswith("["):  # an IPv6 literal: [::1]:8080
            return host.split("]", 1)[0] + "]"
        return host.rsplit(":", 1)[0] if host.count(":") == 1 else host

    def header(self, name: str) -> str | None:
        """A header's value; names compare without case (RFC 7230 section 3.2). ``Host`` is
        the request's host (HTTP/2's :authority), which GEP-1294 suggests matching on in a
        mesh."""
        lower = name.lower()
        found = next((v for k, v in self.headers if k.lower() == lower), None)
        return self.host if found is None and lower == "host" else found


def path_matches(match: PathMatch, path: str) -> bool:
    if match.type == "Exact":
        return path == match.value
    if match.type == "RegularExpression":
        return re.fullmatch(match.value, path) is not None
    # PathPrefix: element by element; a trailing "/" in the prefix is ignored, so
    # "/abc" matches "/abc", "/abc/" and "/abc/def" but not "/abcd".
    prefix = match.value.rstrip("/")
    return path == prefix or path.startswith(prefix + "/") or not prefix


def _value_ok(m: ValueMatch, actual: str | None) -> bool:
    if actual is None:
        return False
    if m.type == "Exact":
        return actual == m.value
    return re.fullmatch(m.value, actual) is not None


def first_query_value(query: list[tuple[str, str]], name: str) -> str | None:
    """The first value of a repeated parameter, as the spec recommends; names are exact."""
    return next((v for k, v in query if k == name), None)


def request_matches(match: RouteMatch, req: Request) -> str | None:
    """None when ``req`` satisfies every condition of ``match``; else why not."""
    path = req.path_only
    if not path_matches(match.path, path):
        return f"path {path} is not {match.path.type} {match.path.value}"
    if match.method and req.method != match.method:
        return f"method {req.method} is not {match.method}"
    for h in match.headers:
        if not _value_ok(h, req.header(h.name)):
            return f"header {h.name} does not match {h.value!r}"
    query = req.query
    for q in match.query:
        if not _value_ok(q, first_query_value(query, q.name)):
            return f"query parameter {q.name} does not match {q.value!r}"
    return None


def match_precedence(match: RouteMatch) -> tuple[int, int, int, int, int, int]:
    """Sort key, larger wins: the spec's ordering of matches across rules and routes.

    Exact path, then the longest PathPrefix, then a method match, then the most
    header matches, then the most query parameter matches (``HTTPRouteRule.Matches``).
    RegularExpression precedence is implementation-specific: like Cilium, whose
    Envoy translation orders regex matches after exact ones and before prefixes, the
    longer pattern first (cilium operator/pkg/model/translation/envoy_virtual_host.go).
    """
    p = match.path
    return (len(p.value) if p.type == "Exact" else 0,
            len(p.value) if p.type == "RegularExpression" else 0,
            len(p.value) if p.type == "PathPrefix" else 0,
            1 if match.method else 0, len(match.headers), len(match.query))
