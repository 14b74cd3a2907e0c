"""Gateway API objects (v1.6.1, standard channel) as plain, typed data.

Only what routing needs is kept; defaults are the CRD's defaults, applied by
the parser, so every field here is concrete. The field meanings follow
``apis/v1/{gateway,httproute,shared,referencegrant}_types.go`` of
https://github.com/kubernetes-sigs/gateway-api/tree/v1.6.1.
"""

from __future__ import annotations

from dataclasses import dataclass

from labkit.model import Namespaced
from labkit.policy.selectors import LabelSelector

GROUP = "gateway.networking.k8s.io"
CORE_GROUP = ""


@dataclass(frozen=True)
class GatewayClass:
    name: str
    controller: str


@dataclass(frozen=True)
class CertificateRef:
    namespace: str
    name: str
    group: str = CORE_GROUP
    kind: str = "Secret"


@dataclass(frozen=True)
class Listener:
    name: str
    port: int
    protocol: str  # HTTP, HTTPS, TLS, TCP, UDP or a domain-prefixed custom protocol
    hostname: str = ""  # "" = any host
    namespaces_from: str = "Same"  # All | Same | Selector
    namespace_selector: LabelSelector | None = None
    kinds: tuple[tuple[str, str], ...] = ()  # (group, kind); () = by protocol
    certificates: tuple[CertificateRef, ...] = ()


@dataclass(frozen=True)
class Gateway(Namespaced):
    namespace: str
    name: str
    class_name: str
    listeners: tuple[Listener, ...]


@dataclass(frozen=True)
class ParentRef:
    group: str
    kind: str
    namespace: str
    name: str
    section: str = ""
    port: int | None = None

    def describe(self) -> str:
        kind = self.kind if self.group in (GROUP, CORE_GROUP) else f"{self.kind}.{self.group}"
        extra = "".join((f" sectionName={self.section}" if self.section else "",
                         f" port={self.port}" if self.port else ""))
        return f"{kind} {self.namespace}/{self.name}{extra}"


@dataclass(frozen=True)
class BackendObjectRef(Namespaced):
    group: str
    kind: str
    namespace: str
    name: str
    port: int | None

    def describe(self) -> str:
        kind = self.kind if self.group == CORE_GROUP else f"{self.kind}.{self.group}"
        port = f":{self.port}" if self.port else ""
        return f"{kind} {self.namespace}/{self.name}{port}"


@dataclass(frozen=True)
class HeaderModifier:
    set: tuple[tuple[str, str], ...] = ()
    add: tuple[tuple[str, str], ...] = ()
    remove: tuple[str, ...] = ()


@dataclass(frozen=True)
class PathModifier:
    type: str  # ReplaceFullPath | ReplacePrefixMatch
    value: str


@dataclass(frozen=True)
class Redirect:
    scheme: str | None = None
    hostname: str | None = None
    path: PathModifier | None = None
    port: int | None = None
    status: int = 302


@dataclass(frozen=True)
class Rewrite:
    hostname: str | None = None
    path: PathModifier | None = None


@dataclass(frozen=True)
class Mirror:
    backend: BackendObjectRef
    numerator: int = 100
    denominator: int = 100


@dataclass(frozen=True)
class Filter:
    """One HTTPRouteFilter; exactly the field named by ``type`` is set."""

    type: str
    headers: HeaderModifier | None = None
    redirect: Redirect | None = None
    rewrite: Rewrite | None = None
    mirror: Mirror | None = None
    extension: str = ""  # ExtensionRef: group/kind/name, which labkit cannot resolve


@dataclass(frozen=True)
class BackendRef:
    ref: BackendObjectRef
    weight: int = 1
    filters: tuple[Filter, ...] = ()


@dataclass(frozen=True)
class PathMatch:
    type: str = "PathPrefix"  # Exact | PathPrefix | RegularExpression
    value: str = "/"


@dataclass(frozen=True)
class ValueMatch:
    """A header or query parameter match."""

    name: str
    value: str
    type: str = "Exact"  # Exact | RegularExpression


@dataclass(frozen=True)
class RouteMatch:
    path: PathMatch = PathMatch()
    headers: tuple[ValueMatch, ...] = ()
    query: tuple[ValueMatch, ...] = ()
    method: str = ""

    def describe(self) -> str:
        parts = [f"{self.path.type} {self.path.value}"]
        parts += [f"method {self.method}"] if self.method else []
        parts += [f"header {h.name}{'~' if h.type != 'Exact' else '='}{h.value}"
                  for h in self.headers]
        parts += [f"query {q.name}{'~' if q.type != 'Exact' else '='}{q.value}"
                  for q in self.query]
        return ", ".join(parts)


@dataclass(frozen=True)
class Rule:
    matches: tuple[RouteMatch, ...] = (RouteMatch(),)
    filters: tuple[Filter, ...] = ()
    backends: tuple[BackendRef, ...] = ()
    name: str = ""


@dataclass(frozen=True)
class HTTPRoute(Namespaced):
    namespace: str
    name: str
    parents: tuple[ParentRef, ...]
    hostnames: tuple[str, ...] = ()
    rules: tuple[Rule, ...] = (Rule(),)
    #: metadata.creationTimestamp as a UTC ISO string; "" (not created yet) sorts after
    #: every dated route, and routes without one tie, so their names decide.
    created: str = ""


@dataclass(frozen=True)
class GrantFrom:
    group: str
    kind: str
    namespace: str


@dataclass(frozen=True)
class GrantTo:
    group: str
    kind: str
    name: str = ""  # "" = every object of that kind in the namespace


@dataclass(frozen=True)
class ReferenceGrant(Namespaced):
    namespace: str
    name: str
    sources: tuple[GrantFrom, ...]
    targets: tuple[GrantTo, ...]

    def allows(self, src: GrantFrom, group: str, kind: str, name: str) -> bool:
        return src in self.sources and any(
            t.group == group and t.kind == kind and t.name in ("", name) for t in self.targets)
