"""Cilium policies (cilium.io/v2 CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy): parsing.

Pinned to Cilium 1.20. Parsing is strict: unknown fields are refused, as the
CRD schema with server-side field validation does; fields the API server
accepts but labkit cannot model are either refused with a hint (host policies,
node selectors, CIDR groups, toServices, TLS, Kafka/proxylib rules removed in
1.20) or accepted with a warning that says how they are modelled
(``authentication`` is ignored); ``toFQDNs`` and ``rules.dns`` follow
labkit.policy.cilium.fqdn. The combination rules (``decide``) live in
``cilium_decide.py``; selectors in ``cilium_match.py``; HTTP in ``cilium_l7.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from labkit.model import CILIUM_NAMESPACE_LABEL
from labkit.policy.cilium.decide import CILIUM_KINDS, KIND_CCNP, KIND_CNP, decide
from labkit.policy.cilium.fqdn import FqdnSelector
from labkit.policy.cilium.l7 import HttpRule, parse_http_rules
from labkit.policy.cilium.match import (
    ENTITIES,
    NS_LABELS_PREFIX,
    RESERVED_PREFIX,
    CidrSet,
    CiliumPeers,
    CiliumSelector,
    normalise_key,
)
from labkit.policy.ir import Action, AnyOf, Policy, PortSpec, Rule
from labkit.policy.parse import ParseContext, name_of, namespace_of, subnet_within
from labkit.policy.selectors import Requirement

API = "cilium.io/v2"
__all__ = ["API", "CILIUM_KINDS", "KIND_CCNP", "KIND_CNP", "PARSERS", "CiliumPolicy",
           "CiliumSpec", "decide"]

_PORT_NAME = re.compile(r"^([a-zA-Z0-9]-?)*[a-zA-Z](-?[a-zA-Z0-9])*$")
_SPEC_FIELDS = ("endpointSelector", "nodeSelector", "ingress", "ingressDeny", "egress",
                "egressDeny", "labels", "enableDefaultDeny", "description", "log")
_FROM = ("fromEndpoints", "fromEntities", "fromCIDR", "fromCIDRSet", "fromNodes", "fromGroups")
_TO = ("toEndpoints", "toEntities", "toCIDR", "toCIDRSet", "toNodes", "toGroups", "toServices",
       "toFQDNs")
_REMOVED = {  # field -> hint
    "fromRequires": "fromRequires was removed in Cilium 1.19 (cilium/cilium#42615); "
                    "put the extra labels in fromEndpoints",
    "toRequires": "toRequires was removed in Cilium 1.19 (cilium/cilium#42615); "
                  "put the extra labels in toEndpoints",
}
_UNMODELLED = {  # field -> hint
    "fromNodes": "node selectors need enable-node-selector-labels; labkit does not model "
                 "them: use fromEntities: [host, remote-node]",
    "toNodes": "node selectors need enable-node-selector-labels; labkit does not model "
               "them: use toEntities: [host, remote-node]",
    "fromGroups": "cloud-provider groups are not modelled by labkit; use fromCIDRSet",
    "toGroups": "cloud-provider groups are not modelled by labkit; use toCIDRSet",
    "toServices": "toServices only applies to Services without a selector (Cilium docs, "
                  "'Services based'); use toEndpoints with the backend pods' labels",
}


@dataclass(frozen=True)
class CiliumSpec:
    """One entry of ``spec``/``specs``: whom it selects and whether it isolates them."""

    subject: CiliumSelector
    isolates: tuple[bool, bool]  # (ingress, egress), enableDefaultDeny resolved
    label: str = "spec"


@dataclass(frozen=True)
class CiliumPolicy(Policy):
    """A Cilium policy; ``specs`` keeps per-rule default-deny (``specs`` lists may differ)."""

    specs: tuple[CiliumSpec, ...] = ()


def parse_cnp(doc: dict[str, Any], ctx: ParseContext) -> list[Any]:
    return [_parse(doc, ctx, KIND_CNP)]


def parse_ccnp(doc: dict[str, Any], ctx: ParseContext) -> list[Any]:
    return [_parse(doc, ctx, KIND_CCNP)]


PARSERS = {(API, KIND_CNP): parse_cnp, (API, KIND_CCNP): parse_ccnp}


class _Builder:
    """Parses one policy object, collecting rules and warnings."""

    def __init__(self, ctx: ParseContext, kind: str, ns: str, name: str) -> None:
        self.ctx = ctx
        self.kind = kind
        self.clusterwide = kind == KIND_CCNP
        self.ns = ns
        self.ref = f"{kind} {ns}/{name}" if ns else f"{kind} {name}"
        self.warnings: list[str] = []

    # -- selectors ------------------------------------------------------------------------
    def selector(self, raw: Any, field: str, *, subject: bool = False) -> CiliumSelector:
        sel = self.ctx.label_selector(raw, field, keys=False)
        reqs = [Requirement(normalise_key(k), "In", (v,)) for k, v in sel.match_labels]
        reqs += [Requirement(normalise_key(r.key), r.operator, r.values)
                 for r in sel.expressions]
        text = sel.describe()
        keys = {r.key for r in reqs}
        if any(k.startswith(RESERVED_PREFIX) for k in keys):
            return CiliumSelector(tuple(reqs), cluster=None, text=text)
        has_ns = CILIUM_NAMESPACE_LABEL in keys
        has_ns_labels = any(k.startswith(NS_LABELS_PREFIX) for k in keys)
        if not self.clusterwide and (subject or not (has_ns or has_ns_labels)):
            # A namespaced policy only ever applies to pods of its own namespace.
            if subject and has_ns:
                self.warnings.append(
                    f"{self.ref}: {field} names a namespace; Kubernetes scopes a "
                    f"CiliumNetworkPolicy to its own namespace {self.ns}")
            reqs.append(Requirement(CILIUM_NAMESPACE_LABEL, "In", (self.ns,)))
            text = f"{text} in namespace {self.ns}" if text != "{}" else \
                f"all pods in namespace {self.ns}"
        elif text == "{}":
            text = "all pods in all namespaces"
        return CiliumSelector(tuple(reqs), cluster="", text=text)

    # -- rules ----------------------------------------------------------------------------
    def rules(self, raw: Any, field: str, *, egress: bool, deny: bool,
              local: CiliumSelector | None, spec_label: str) -> list[Rule]:
        peers_keys = _TO if egress else _FROM
        allowed = (*peers_keys, "toPorts", "icmps", *_REMOVED)
        if not deny:
            allowed = (*allowed, "authentication")
        out: list[Rule] = []
        section = field.rsplit(".", 1)[-1]
        for i, item in enumerate(self.ctx.sequence(raw, field)):
            where = f"{field}[{i}]"
            r = self.ctx.mapping(item, where, allowed=allowed)
            for key, hint in {**_REMOVED, **_UNMODELLED}.items():
                if key in r:
                    raise self.ctx.error(f"{where}.{key}", "is not supported", hint=hint)
            if "authentication" in r:
                self.ctx.mapping(r["authentication"], f"{where}.authentication",
                                 allowed=("mode",))
                self.warnings.append(f"{self.ref}: {where}.authentication is ignored "
                                     "(mutual authentication is deprecated in Cilium 1.20)")
            peers = self.peers(r, where, peers_keys)
            origin = f"{self.ref}{spec_label} {section} rule {i + 1} ({peers.describe()}"
            entries = self.to_ports(r.get("toPorts"), f"{where}.toPorts", deny=deny)
            if "icmps" in r:
                self.icmps(r["icmps"], f"{where}.icmps")
                entries.append(((PortSpec("ICMP"),), None, None, "ICMP only"))
            action = Action.DENY if deny else Action.ALLOW
            if not entries:
                out.append(Rule(origin + ", all ports)", action, peers, local))
            for ports, http, dns, what in entries:
                out.append(Rule(f"{origin}, {what})", action, peers, local, ports, http=http,
                                dns=dns))
        return out

    def peers(self, r: dict[str, Any], where: str, keys: tuple[str, ...]) -> CiliumPeers:
        if not any(k in r for k in keys):
            has_l4 = bool(r.get("toPorts")) or bool(r.get("icmps"))
            # Only ports: every peer, world included. Nothing at all ({}): no peer.
            return CiliumPeers(wildcard=has_l4)
        selectors: list[CiliumSelector] = []
        entities: list[str] = []
        cidrs: list[CidrSet] = []
        fqdns: list[FqdnSelector] = []
        ep_key, ent_key, cidr_key, set_key = keys[:4]
        for j, s in enumerate(self.ctx.sequence(r.get(ep_key), f"{where}.{ep_key}")):
            selectors.append(self.selector(s, f"{where}.{ep_key}[{j}]"))
        for j, e in enumerate(self.ctx.sequence(r.get(ent_key), f"{where}.{ent_key}")):
            text = self.ctx.string(e, f"{where}.{ent_key}[{j}]", required=True)
            if text not in ENTITIES:
                raise self.ctx.error(f"{where}.{ent_key}[{j}]", f"unknown entity {text!r}",
                                     hint=f"Cilium 1.20 entities: {', '.join(ENTITIES)}")
            entities.append(text)
        for j, c in enumerate(self.ctx.sequence(r.get(cidr_key), f"{where}.{cidr_key}")):
            cidrs.append(CidrSet(self.ctx.cidr(c, f"{where}.{cidr_key}[{j}]")))
        for j, c in enumerate(self.ctx.sequence(r.get(set_key), f"{where}.{set_key}")):
            cidrs.append(self.cidr_set(c, f"{where}.{set_key}[{j}]"))
        if "toFQDNs" in r:
            for j, f in enumerate(self.ctx.sequence(r["toFQDNs"], f"{where}.toFQDNs")):
                m = self.ctx.mapping(f, f"{where}.toFQDNs[{j}]",
                                     allowed=("matchName", "matchPattern"))
                fqdns.append(self.fqdn(m, f"{where}.toFQDNs[{j}]"))
        return CiliumPeers(tuple(selectors), tuple(entities), tuple(cidrs), False, tuple(fqdns))

    def cidr_set(self, raw: Any, field: str) -> CidrSet:
        m = self.ctx.mapping(raw, field, allowed=("cidr", "except", "cidrGroupRef",
                                                  "cidrGroupSelector"))
        for key in ("cidrGroupRef", "cidrGroupSelector"):
            if key in m:
                raise self.ctx.error(f"{field}.{key}", "is not supported",
                                     hint="CiliumCIDRGroup is not modelled by labkit; "
                                     "write the cidr and except entries inline")
        cidr = self.ctx.cidr(m.get("cidr"), f"{field}.cidr")
        excepts = []
        for k, e in enumerate(self.ctx.sequence(m.get("except"), f"{field}.except")):
            sub = self.ctx.cidr(e, f"{field}.except[{k}]")
            if not subnet_within(sub, cidr):
                raise self.ctx.error(f"{field}.except[{k}]", f"{sub} is not inside {cidr}",
                                     hint="each except entry carves a hole inside the cidr")
            excepts.append(sub)
        return CidrSet(cidr, tuple(excepts))

    def icmps(self, raw: Any, field: str) -> None:
        for i, item in enumerate(self.ctx.sequence(raw, field)):
            m = self.ctx.mapping(item, f"{field}[{i}]", allowed=("fields",))
            for j, f in enumerate(self.ctx.sequence(m.get("fields"), f"{field}[{i}].fields")):
                self.ctx.mapping(f, f"{field}[{i}].fields[{j}]", allowed=("family", "type"))

    # -- ports and L7 ---------------------------------------------------------------------
    def fqdn(self, m: dict[str, Any], field: str) -> FqdnSelector:
        name = self.ctx.string(m.get("matchName"), f"{field}.matchName")
        pattern = self.ctx.string(m.get("matchPattern"), f"{field}.matchPattern")
        if not name and not pattern:
            raise self.ctx.error(field, "needs matchName or matchPattern",
                                 hint='e.g. matchName: "catalog.shop.test" or '
                                 'matchPattern: "*.shop.test"')
        return FqdnSelector(name or "", "" if name else (pattern or ""))

    def to_ports(self, raw: Any, field: str, *, deny: bool
                 ) -> list[tuple[tuple[PortSpec, ...], tuple[HttpRule, ...] | None,
                                 tuple[FqdnSelector, ...] | None, str]]:
        out = []
        allowed = ("ports",) if deny else ("ports", "rules", "terminatingTLS",
                                           "originatingTLS", "serverNames", "listener")
        for i, item in enumerate(self.ctx.sequence(raw, field)):
            where = f"{field}[{i}]"
            m = self.ctx.mapping(item, where, allowed=allowed)
            for key in ("terminatingTLS", "originatingTLS", "serverNames", "listener"):
                if key in m:
                    raise self.ctx.error(f"{where}.{key}", "is not supported",
                                         hint="TLS interception, SNI rules and custom Envoy "
                                         "listeners are not modelled by labkit")
            ports = tuple(self.port(p, f"{where}.ports[{j}]")
                          for j, p in enumerate(self.ctx.sequence(m.get("ports"),
                                                                  f"{where}.ports")))
            http = self.l7(m.get("rules"), f"{where}.rules", ports)
            rules = m.get("rules")
            dns = tuple(self.fqdn(d, f"{where}.rules.dns[{k}]") for k, d in enumerate(
                rules["dns"])) if isinstance(rules, dict) and "dns" in rules else None
            what = ", ".join(p.describe() for p in ports) if ports else "all ports"
            if http:
                what += ", HTTP rules"
            if dns is not None:
                what += ", DNS rules"
            out.append((ports, http or None, dns, what))
        return out

    def port(self, raw: Any, field: str) -> PortSpec:
        m = self.ctx.mapping(raw, field, allowed=("port", "endPort", "protocol"))
        proto = self.ctx.string(m.get("protocol"), f"{field}.protocol") or "ANY"
        if proto not in ("TCP", "UDP", "SCTP", "ANY"):
            raise self.ctx.error(f"{field}.protocol", f"unsupported protocol {proto!r}",
                                 hint="use TCP, UDP, SCTP or ANY (ICMP goes under icmps)")
        protocol = None if proto == "ANY" else proto
        port = m.get("port")
        end = m.get("endPort")
        if isinstance(port, str) and port and not port.isdigit():
            if not _PORT_NAME.match(port) or len(port) > 15:
                raise self.ctx.error(f"{field}.port", f"{port!r} is not a port number or name",
                                     hint="a number 0-65535 or an IANA-style name like http")
            if end is not None:
                self.warnings.append(f"{self.ref}: {field}.endPort is ignored with the named "
                                     f"port {port!r}")
            return PortSpec(protocol, name=port)
        if port is not None and not isinstance(port, str):
            raise self.ctx.error(f"{field}.port", f"must be a string, got {port!r}",
                                 hint=f'the CRD types port as a string: write port: "{port}"')
        number = self._in_range(int(port), f"{field}.port") if port else 0
        if end is None or end == 0:
            return PortSpec(protocol, number, number) if number else PortSpec(protocol)
        if isinstance(end, bool) or not isinstance(end, int):
            raise self.ctx.error(f"{field}.endPort", f"must be an integer, got {end!r}",
                                 hint="endPort is a number, e.g. endPort: 8090")
        last = self._in_range(end, f"{field}.endPort")
        if number == 0 or last < number:
            raise self.ctx.error(f"{field}.endPort", f"endPort {last} needs a port between 1 "
                                 f"and {last}", hint="endPort is the inclusive end of the "
                                 "range that starts at port")
        return PortSpec(protocol, number, last)

    def _in_range(self, value: int, field: str) -> int:
        if not 0 <= value <= 65535:
            raise self.ctx.error(field, f"{value} is out of range 0-65535",
                                 hint="ports are 1-65535 (0 means every port)")
        return value

    def l7(self, raw: Any, field: str, ports: tuple[PortSpec, ...]
           ) -> tuple[HttpRule, ...] | None:
        if raw is None:
            return None
        r = self.ctx.mapping(raw, field)
        for key in ("kafka", "l7proto", "l7"):
            if key in r:
                raise self.ctx.error(f"{field}.{key}", f"{key} rules were removed in Cilium 1.20",
                                     hint="Cilium 1.20 removed Kafka and proxylib (Envoy Go "
                                     "extension) policies, cilium/cilium#43557; L7 rules are "
                                     "HTTP and DNS only (layer7.rst, v1.20)")
        r = self.ctx.mapping(raw, field, allowed=("http", "dns"))
        if "http" in r and "dns" in r:
            raise self.ctx.error(field, "sets both http and dns",
                                 hint="L7 rules are a union: one protocol per toPorts entry")
        if "dns" in r:
            for i, item in enumerate(self.ctx.sequence(r["dns"], f"{field}.dns")):
                self.ctx.mapping(item, f"{field}.dns[{i}]",
                                 allowed=("matchName", "matchPattern"))
            return None
        if "http" not in r:
            return None
        for i, p in enumerate(ports):
            if p.protocol not in (None, "TCP"):
                raise self.ctx.error(f"{field}.http", f"HTTP rules need TCP, but ports[{i}] "
                                     f"is {p.protocol}", hint="use protocol TCP (or ANY)")
        return parse_http_rules(self.ctx, r["http"], f"{field}.http", self.ns)


def _parse(doc: dict[str, Any], ctx: ParseContext, kind: str) -> Policy:
    ctx.mapping(doc, "", allowed=("apiVersion", "kind", "metadata", "spec", "specs", "status"))
    clusterwide = kind == KIND_CCNP
    ns = "" if clusterwide else namespace_of(doc)
    b = _Builder(ctx, kind, ns, name_of(doc))
    raw_specs: list[tuple[Any, str]] = []
    if doc.get("spec") is not None:
        raw_specs.append((doc["spec"], "spec"))
    raw_specs += [(s, f"specs[{i}]") for i, s in enumerate(ctx.sequence(doc.get("specs"),
                                                                          "specs"))]
    if not raw_specs:
        raise ctx.error("spec", "is required", hint="give the policy a spec (or a specs list)")
    several = len(raw_specs) > 1
    specs: list[CiliumSpec] = []
    ingress: list[Rule] = []
    egress: list[Rule] = []
    has_ingress = has_egress = False
    for raw, field in raw_specs:
        s = ctx.mapping(raw, field, allowed=_SPEC_FIELDS)
        if "nodeSelector" in s:
            hint = ("host policies (nodeSelector) are not modelled by labkit; select pods "
                    "with endpointSelector" if clusterwide else
                    "nodeSelector is only allowed in a CiliumClusterwideNetworkPolicy")
            raise ctx.error(f"{field}.nodeSelector", "is not supported", hint=hint)
        if "endpointSelector" not in s:
            raise ctx.error(f"{field}.endpointSelector", "is required",
                            hint="use endpointSelector: {} to select every pod")
        subject = b.selector(s["endpointSelector"], f"{field}.endpointSelector", subject=True)
        label = f" ({field})" if several else ""
        local = subject if several else None
        counts = {}
        for section, is_egress, deny in (("ingress", False, False), ("ingressDeny", False, True),
                                         ("egress", True, False), ("egressDeny", True, True)):
            raw_rules = ctx.sequence(s.get(section), f"{field}.{section}")
            counts[section] = len(raw_rules)
            target = egress if is_egress else ingress
            target.extend(b.rules(raw_rules, f"{field}.{section}", egress=is_egress, deny=deny,
                                  local=local, spec_label=label))
        dd = ctx.mapping(s.get("enableDefaultDeny"), f"{field}.enableDefaultDeny",
                         allowed=("ingress", "egress"))
        isolates = []
        for direction, sections in (("ingress", ("ingress", "ingressDeny")),
                                    ("egress", ("egress", "egressDeny"))):
            value = dd.get(direction)
            if value is not None and not isinstance(value, bool):
                raise ctx.error(f"{field}.enableDefaultDeny.{direction}", "must be true or false")
            has_rules = any(counts[x] for x in sections)
            isolates.append(has_rules if value is None else value)
        has_ingress |= counts["ingress"] + counts["ingressDeny"] > 0
        has_egress |= counts["egress"] + counts["egressDeny"] > 0
        specs.append(CiliumSpec(subject, (isolates[0], isolates[1]), field))
    selects = specs[0].subject if not several else AnyOf(tuple(s.subject for s in specs))
    return CiliumPolicy(
        kind=kind, name=name_of(doc), namespace=ns, selects=selects,
        ingress=tuple(ingress) if has_ingress else None,
        egress=tuple(egress) if has_egress else None,
        default_deny=(any(s.isolates[0] for s in specs), any(s.isolates[1] for s in specs)),
        warnings=tuple(dict.fromkeys(b.warnings)), source=ctx.source, specs=tuple(specs))

