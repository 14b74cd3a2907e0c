"""Route HTTP requests through Gateways (north-south) and Services (GAMMA, east-west).

``Router(objects).route(request)`` answers what a conformant Gateway API
implementation does with one request: which listener takes it, which routes are
attached there and why others are not, which rule's match wins by the spec's
precedence, what the filters do, and which backends share the traffic by weight.
Citations point at gateway-api v1.6.1 (``apis/v1/*_types.go``) and its
conformance suite (``conformance/tests``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

from labkit.gateway import hostnames
from labkit.gateway.filters import Forwarded, Location, modify_headers, redirect_location, rewrite
from labkit.gateway.matching import Request, match_precedence, request_matches
from labkit.gateway.objects import (
    CORE_GROUP,
    GROUP,
    BackendObjectRef,
    BackendRef,
    Filter,
    Gateway,
    GatewayClass,
    GrantFrom,
    HTTPRoute,
    Listener,
    ParentRef,
    ReferenceGrant,
    RouteMatch,
    Rule,
)
from labkit.model import NAMESPACE_NAME_LABEL, Namespace, Secret, Service

#: Listener protocols whose default route kinds include HTTPRoute (Listener.AllowedRoutes).
HTTP_PROTOCOLS = {"HTTP": "http", "HTTPS": "https"}
#: The class Cilium creates itself when gatewayAPI.enabled=true
#: (https://docs.cilium.io/en/stable/network/servicemesh/gateway-api/gateway-api/).
CILIUM_CLASS = "cilium"


@dataclass
class Result:
    """What happened to one request; ``as_dict`` is the CLI's JSON contract."""

    status: int = 404
    backends: dict[str, float] = field(default_factory=dict)
    redirect: Location | None = None
    forwarded: Forwarded | None = None
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "backends": self.backends,
                "redirect": self.redirect.as_dict() if self.redirect else None,
                "request": self.forwarded.as_dict() if self.forwarded else None,
                "reasons": self.reasons}


@dataclass(frozen=True)
class Candidate:
    """A route's match that a request satisfies, with everything precedence looks at."""

    route: HTTPRoute
    rule_index: int
    match_index: int
    host_rank: tuple[int, int]

    @property
    def rule(self) -> Rule:
        return self.route.rules[self.rule_index]

    @property
    def match(self) -> RouteMatch:
        return self.rule.matches[self.match_index]

    def sort_key(self) -> tuple[Any, ...]:
        """Ascending order = precedence: hostname, then the match itself, then the oldest
        route, then "{namespace}/{name}" alphabetically, then the first rule and match."""
        created = (0, self.route.created) if self.route.created else (1, "")
        return (tuple(-x for x in self.host_rank), tuple(-x for x in match_precedence(self.match)),
                created, self.route.key, self.rule_index, self.match_index)

    def describe(self) -> str:
        rule = self.rule.name or f"rules[{self.rule_index}]"
        return f"HTTPRoute {self.route.key} {rule} matches[{self.match_index}] " \
               f"({self.match.describe()})"


class Router:
    """The routing view of a set of parsed objects."""

    def __init__(self, objects: Iterable[Any]) -> None:
        self.classes: dict[str, GatewayClass] = {}
        self.gateways: dict[str, Gateway] = {}
        self.routes: list[HTTPRoute] = []
        self.services: dict[str, Service] = {}
        self.secrets: set[str] = set()
        self.namespaces: dict[str, dict[str, str]] = {}
        self.grants: dict[str, ReferenceGrant] = {}
        for obj in objects:
            if isinstance(obj, GatewayClass):
                self.classes[obj.name] = obj
            elif isinstance(obj, Gateway):
                self.gateways[obj.key] = obj
            elif isinstance(obj, HTTPRoute):
                self.routes = [r for r in self.routes if r.key != obj.key] + [obj]
            elif isinstance(obj, Service):
                self.services[obj.key] = obj
            elif isinstance(obj, Secret):
                self.secrets.add(f"{obj.namespace}/{obj.name}")
            elif isinstance(obj, Namespace):
                self.namespaces[obj.name] = obj.all_labels()
            elif isinstance(obj, ReferenceGrant):
                self.grants[obj.key] = obj

    # -- references -----------------------------------------------------------------------
    def namespace_labels(self, name: str) -> dict[str, str]:
        return self.namespaces.get(name, {NAMESPACE_NAME_LABEL: name})

    def granted(self, src: GrantFrom, group: str, kind: str, namespace: str, name: str) -> bool:
        """A cross-namespace reference needs a ReferenceGrant in the target's namespace."""
        return src.namespace == namespace or any(
            g.namespace == namespace and g.allows(src, group, kind, name)
            for g in self.grants.values())

    def backend_problem(self, route: HTTPRoute, ref: BackendObjectRef) -> str:
        """Why a backendRef is invalid ("" when it is valid): HTTPBackendRef's list of
        InvalidKind, BackendNotFound and RefNotPermitted."""
        if (ref.group, ref.kind) != (CORE_GROUP, "Service"):
            return f"{ref.describe()} is of an unsupported kind (InvalidKind)"
        src = GrantFrom(GROUP, "HTTPRoute", route.namespace)
        if not self.granted(src, CORE_GROUP, "Service", ref.namespace, ref.name):
            return (f"{ref.describe()} is in another namespace and no ReferenceGrant in "
                    f"{ref.namespace} allows HTTPRoutes from {route.namespace} (RefNotPermitted)")
        svc = self.services.get(ref.key)
        if svc is None:
            return f"{ref.describe()} does not exist (BackendNotFound)"
        if ref.port is not None and all(p.port != ref.port for p in svc.ports):
            return f"{ref.describe()}: the Service has no port {ref.port} (BackendNotFound)"
        return ""

    def listener_problem(self, gw: Gateway, listener: Listener) -> str:
        if listener.protocol != "HTTPS":
            return ""
        if not listener.certificates:
            return "the HTTPS listener names no certificate"
        src = GrantFrom(GROUP, "Gateway", gw.namespace)
        for cert in listener.certificates:
            key = f"{cert.namespace}/{cert.name}"
            if (cert.group, cert.kind) != (CORE_GROUP, "Secret"):
                return f"certificateRef {cert.kind} {key} is not a Secret (InvalidCertificateRef)"
            if not self.granted(src, CORE_GROUP, "Secret", cert.namespace, cert.name):
                return (f"certificate Secret {key} is in another namespace and no ReferenceGrant "
                        "allows it (RefNotPermitted)")
            if key not in self.secrets:
                return f"certificate Secret {key} does not exist (InvalidCertificateRef)"
        return ""

    # -- attachment -----------------------------------------------------------------------
    def attachment_problem(self, route: HTTPRoute, gw: Gateway, listener: Listener) -> str:
        """Why ``route`` is not attached to ``listener`` ("" when it is)."""
        refs = [p for p in route.parents if (p.group, p.kind, p.namespace, p.name)
                == (GROUP, "Gateway", gw.namespace, gw.name)]
        if not refs:
            return "names no parentRef to this Gateway"
        if not any(_selects(p, listener) for p in refs):
            return "its parentRef selects another listener (" + \
                "; ".join(p.describe() for p in refs) + ") (NoMatchingParent)"
        allowed = listener.kinds or ((GROUP, "HTTPRoute"),)
        if (GROUP, "HTTPRoute") not in allowed:
            return "the listener's allowedRoutes.kinds exclude HTTPRoute (NotAllowedByListeners)"
        frm = listener.namespaces_from
        if frm == "Same" and route.namespace != gw.namespace or frm == "Selector" and (
                listener.namespace_selector is None or
                not listener.namespace_selector.matches(self.namespace_labels(route.namespace))):
            return (f"allowedRoutes.namespaces.from={frm} does not admit namespace "
                    f"{route.namespace} (NotAllowedByListeners)")
        if route.hostnames and not _effective_hostnames(route, listener):
            return (f"no route hostname ({', '.join(route.hostnames)}) intersects the listener "
                    f"hostname {listener.hostname} (NoMatchingListenerHostname)")
        return ""

    # -- routing --------------------------------------------------------------------------
    def route(self, req: Request) -> Result:
        return self._mesh(req) if req.mesh else self._north_south(req)

    def _north_south(self, req: Request) -> Result:
        gw = self.gateways[req.target]
        res = Result()
        if self.classes and gw.class_name not in self.classes:
            res.reasons.append(f"Gateway {gw.key} is not accepted: GatewayClass "
                               f"{gw.class_name} is not among the manifests")
            return res
        if not self.classes and gw.class_name != CILIUM_CLASS:
            res.reasons.append(f"GatewayClass {gw.class_name} is not among the manifests: "
                               "taken as installed")
        listener = self._listener(gw, req, res)
        if listener is None:
            return res
        candidates: list[Candidate] = []
        for route in self.routes:
            problem = self.attachment_problem(route, gw, listener)
            if problem:
                if any((p.kind, p.namespace, p.name) == ("Gateway", gw.namespace, gw.name)
                       for p in route.parents):
                    res.reasons.append(f"HTTPRoute {route.key} is not attached to listener "
                                       f"{listener.name}: {problem}")
                continue
            effective = _effective_hostnames(route, listener) if route.hostnames else [
                listener.hostname]
            host = req.hostname
            hit = [h for h in effective if not h or hostnames.matches(h, host)]
            if not hit:
                res.reasons.append(f"HTTPRoute {route.key}: host {req.host or '(none)'} is not "
                                   f"one of its hostnames ({', '.join(effective)})")
                continue
            rank = max(hostnames.route_precedence(h) for h in hit) if route.hostnames else (0, 0)
            candidates += self._candidates(route, req, rank, res)
        scheme = HTTP_PROTOCOLS[listener.protocol]
        return self._decide(candidates, req, res, scheme=scheme, port=listener.port,
                            none_attached="")

    def _listener(self, gw: Gateway, req: Request, res: Result) -> Listener | None:
        """The one listener a request reaches: on its port, the most specific hostname that
        matches, exact before wildcard before none ("Listeners that are distinct only by
        Hostname", gateway_types.go), whose routes alone serve it (listener isolation)."""
        on_port = [lst for lst in gw.listeners if lst.port == req.port]
        http = [lst for lst in on_port if lst.protocol in HTTP_PROTOCOLS]
        if not http:
            what = f"only {', '.join(lst.protocol for lst in on_port)} listeners" if on_port \
                else "no listener"
            res.reasons.append(f"Gateway {gw.key} has {what} on port {req.port}: "
                               "nothing there serves HTTP")
            return None
        if any(lst.protocol == "TCP" for lst in on_port):
            # "all the Listeners that share a port with the TCP Listener are not distinct
            # and so MUST NOT be accepted" (Gateway.Listeners in gateway_types.go)
            res.reasons.append(f"Gateway {gw.key}: the listeners on port {req.port} share it "
                               "with a TCP listener, so none of them is accepted")
            return None
        host = req.hostname
        fitting = [lst for lst in http if not lst.hostname or hostnames.matches(lst.hostname, host)]
        if not fitting:
            res.reasons.append(f"no listener of Gateway {gw.key} on port {req.port} accepts "
                               f"host {req.host or '(none)'} (" + ", ".join(
                                   f"{lst.name}: {lst.hostname}" for lst in http) + ")")
            return None
        programmed = []
        for lst in fitting:  # a listener that is not programmed is not there to take requests
            problem = self.listener_problem(gw, lst)
            if problem:
                res.reasons.append(f"listener {lst.name} is not programmed: {problem}")
            else:
                programmed.append(lst)
        if not programmed:
            return None
        listener = max(programmed, key=lambda lst: hostnames.specificity(lst.hostname))
        res.reasons.append(f"listener {listener.name} ({listener.protocol} port {listener.port}"
                           f"{', hostname ' + listener.hostname if listener.hostname else ''}) "
                           "takes the request")
        return listener

    def _mesh(self, req: Request) -> Result:
        """GAMMA: routes whose parentRef is the Service (group "", kind Service)."""
        svc = self.services[req.target]
        res = Result()
        port = next(p for p in svc.ports if p.port == req.port)
        candidates: list[Candidate] = []
        attached = False
        for route in self.routes:
            refs = [p for p in route.parents if (p.group, p.kind, p.namespace, p.name)
                    == (CORE_GROUP, "Service", svc.namespace, svc.name)]
            if not refs:
                continue
            # sectionName names a Service port, port its number (ParentReference).
            if not any(p.port in (None, port.port) and p.section in ("", port.name)
                       for p in refs):
                res.reasons.append(f"HTTPRoute {route.key} targets another port of Service "
                                   f"{svc.key} ({'; '.join(p.describe() for p in refs)})")
                continue
            if route.namespace != svc.namespace:
                # A consumer route only shapes requests from workloads in its own namespace
                # (GAMMA mesh-overview, "Different Namespaces"); a request here has no client.
                res.reasons.append(f"HTTPRoute {route.key} is a consumer route: it applies only "
                                   f"to clients in namespace {route.namespace}")
                continue
            attached = True
            # GEP-1294: mesh implementations infer nothing from spec.hostnames.
            candidates += self._candidates(route, req, (0, 0), res)
        if not attached:
            # "If no Routes are attached to a Service, requests to the Service simply
            # proceed per the mesh's default behavior" (GAMMA mesh-overview).
            res.status, res.backends = 200, {svc.key: 1.0}
            res.forwarded = Forwarded(req.path, req.host, req.headers)
            res.reasons.append(f"no HTTPRoute is attached to Service {svc.key} port {port.port}:"
                               " the request goes to the Service as it would without a mesh")
            return res
        return self._decide(candidates, req, res, scheme="http", port=port.port,
                            none_attached=svc.key)

    def _candidates(self, route: HTTPRoute, req: Request, rank: tuple[int, int], res: Result
                    ) -> list[Candidate]:
        found = []
        for ri, rule in enumerate(route.rules):
            for mi, match in enumerate(rule.matches):
                if request_matches(match, req) is None:
                    found.append(Candidate(route, ri, mi, rank))
        if not found:
            why = "; ".join(sorted({w for rule in route.rules for m in rule.matches
                                    if (w := request_matches(m, req))}))
            res.reasons.append(f"HTTPRoute {route.key}: no match ({why})")
        return found

    def _decide(self, candidates: list[Candidate], req: Request, res: Result, *, scheme: str,
                port: int, none_attached: str) -> Result:
        if not candidates:
            res.reasons.append("no rule matches: 404" + (
                f" (routes are attached to Service {none_attached}, so unmatched requests are "
                "rejected)" if none_attached else ""))
            return res
        ranked = sorted(candidates, key=Candidate.sort_key)
        win = ranked[0]
        res.reasons.append(f"matched {win.describe()}")
        for other in ranked[1:]:
            if other.route.key != win.route.key or other.rule_index != win.rule_index:
                res.reasons.append(f"also matched, lower precedence: {other.describe()}")
        return self._apply(win, req, res, scheme=scheme, port=port)

    # -- the winning rule -----------------------------------------------------------------
    def _apply(self, win: Candidate, req: Request, res: Result, *, scheme: str, port: int
               ) -> Result:
        fwd = Forwarded(req.path, req.host, req.headers)
        outcome = self._filters(win, win.rule.filters, fwd, req, res, scheme=scheme, port=port)
        if not isinstance(outcome, Forwarded):
            return res
        fwd = outcome
        rule = win.rule
        if not rule.backends:
            res.status = 500
            res.reasons.append("the rule has no backendRefs: 500")
            return res
        valid: list[BackendRef] = []
        for b in rule.backends:
            problem = self.backend_problem(win.route, b.ref) or next(
                (f"{b.ref.describe()} has ExtensionRef filter {f.extension}, which labkit "
                 "cannot resolve" for f in b.filters if f.type == "ExtensionRef"), "")
            if problem:
                res.reasons.append(f"invalid backendRef: {problem}")
            else:
                valid.append(b)
        total = sum(b.weight for b in rule.backends)
        live = [b for b in valid if b.weight > 0]
        if not live:
            res.status = 500
            res.reasons.append("every backendRef is invalid: 500" if not valid else
                               "no valid backendRef has a weight above 0: 500")
            return res
        weight = sum(b.weight for b in live)
        lost = Fraction(total - sum(b.weight for b in valid), total)
        if lost:
            # "the proportion of requests that would otherwise have been routed to an
            # invalid backend MUST receive a 500 status code" (HTTPRouteRule.BackendRefs)
            res.reasons.append(f"{lost} of the requests this rule matches get 500: that is the "
                               "weight of its invalid backends; the fractions are of the rest")
        res.status = 200
        shares: dict[str, Fraction] = {}
        for b in live:
            shares[b.ref.key] = shares.get(b.ref.key, Fraction(0)) + Fraction(b.weight, weight)
        res.backends = {k: float(v) for k, v in shares.items()}
        res.reasons.append("backends by weight: " + ", ".join(
            f"{b.ref.key} {b.weight}" for b in rule.backends))
        variants: dict[str, Forwarded] = {}
        for b in live:
            scratch = Result()
            out = self._filters(win, b.filters, fwd, req, scratch, scheme=scheme, port=port)
            res.reasons += [f"to {b.ref.key}: {r}" for r in scratch.reasons]
            if out is None:  # a backend-level redirect or an unresolvable extension
                if len(shares) == 1:
                    res.status, res.backends = scratch.status, {}
                    res.redirect, res.forwarded = scratch.redirect, None
                    return res
                res.reasons.append(f"requests sent to {b.ref.key} get {scratch.status}")
            else:
                variants[b.ref.key] = out
        distinct = set(variants.values())
        res.forwarded = distinct.pop() if len(distinct) == 1 else fwd
        if len(set(variants.values())) > 1:
            res.reasons += [f"to {key} the request is forwarded as {v.as_dict()}"
                            for key, v in variants.items()]
        return res

    def _filters(self, win: Candidate, filters: tuple[Filter, ...], fwd: Forwarded,
                 req: Request, res: Result, *, scheme: str, port: int) -> Forwarded | None:
        """Apply filters in order; None when the gateway answers the request itself."""
        for f in filters:
            if f.type == "RequestHeaderModifier" and f.headers is not None:
                fwd = replace(fwd, headers=modify_headers(fwd.headers, f.headers))
            elif f.type == "URLRewrite" and f.rewrite is not None:
                fwd = rewrite(fwd, f.rewrite, win.match.path)
                res.reasons.append(f"URLRewrite: forwarded as {fwd.host or ''}{fwd.path}")
            elif f.type == "RequestRedirect" and f.redirect is not None:
                loc = redirect_location(f.redirect, scheme=scheme, host=req.hostname, port=port,
                                        path=req.path_only, matched=win.match.path)
                res.status, res.redirect, res.forwarded = f.redirect.status, loc, None
                res.reasons.append(f"RequestRedirect: {f.redirect.status} to {loc.url()}")
                return None
            elif f.type == "RequestMirror" and f.mirror is not None:
                m = f.mirror
                problem = self.backend_problem(win.route, m.backend)
                share = Fraction(m.numerator, m.denominator)
                res.reasons.append(
                    f"RequestMirror: not mirrored, {problem}" if problem else
                    f"RequestMirror: {share} of these requests are copied to {m.backend.key}; "
                    "its responses are ignored")
            elif f.type == "ExtensionRef":
                # "If a reference to a custom filter type cannot be resolved, the filter MUST
                # NOT be skipped. Instead, requests ... MUST receive a HTTP error response."
                res.status, res.forwarded = 500, None
                res.reasons.append(f"ExtensionRef filter {f.extension} cannot be resolved: 500")
                return None
            else:
                res.reasons.append(f"{f.type} filter: changes the response only")
        return fwd


def _selects(ref: ParentRef, listener: Listener) -> bool:
    """sectionName and port, when set, must both name this listener (ParentReference)."""
    return ref.section in ("", listener.name) and ref.port in (None, listener.port)


def _effective_hostnames(route: HTTPRoute, listener: Listener) -> list[str]:
    """Route hostnames that intersect the listener's; the others "MUST be ignored"."""
    out = []
    for h in route.hostnames:
        both = hostnames.intersect(listener.hostname, h)
        if both is not None:
            out.append(both)
    return out
