"""Calico policy (projectcalico.org/v3): NetworkPolicy, GlobalNetworkPolicy and Tier.

Parsing and validation follow the Calico v3.33 API reference (docs.tigera.io,
"NetworkPolicy", "GlobalNetworkPolicy", "Tier", "Rule", "EntityRule",
"Ports") and libcalico-go's validator. The evaluation order (tiers, policy
order, actions, end-of-tier deny, profiles) lives in ``calico_tiers.py``.

Policy names: since Calico v3.32 a policy in a non-default tier no longer
needs the ``<tier>.`` name prefix (projectcalico/calico#11232, listed in the
v3.32.0 release notes); v3.33.1, the pinned version, keeps that. A name may
still carry one dot, so ``security.allow-dns`` stays valid.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from typing import Any

from labkit.policy.calico.rules import CalicoEntity, CalicoTarget, parse_selector_field
from labkit.policy.calico.tiers import DEFAULT_TIER, WELL_KNOWN_TIER_ORDERS, Tier, decide, number
from labkit.policy.ir import Action, Policy, PortSpec, Rule
from labkit.policy.parse import ParseContext, name_of, namespace_of

__all__ = ["PARSERS", "Tier", "decide"]

API = "projectcalico.org/v3"
NP_KIND = "Calico NetworkPolicy"  # ir.Policy.kind: distinct from Kubernetes' NetworkPolicy
GNP_KIND = "GlobalNetworkPolicy"

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN = rf"{_LABEL}(\.{_LABEL})*"
_NP_NAME = re.compile(rf"^(({_LABEL})(\.{_LABEL})?|(knp|ossg)\.default\.{_SUBDOMAIN})$")
_GNP_NAME = re.compile(rf"^({_LABEL}\.)?{_LABEL}$")
_TIER_NAME = re.compile(rf"^{_LABEL}$")
_PORT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_RANGE = re.compile(r"^(\d+):(\d+)$")

_TOP = ("apiVersion", "kind", "metadata", "spec")
_NP_SPEC = ("order", "tier", "selector", "types", "ingress", "egress",
            "serviceAccountSelector", "performanceHints")
_GNP_SPEC = (*_NP_SPEC, "namespaceSelector", "doNotTrack", "preDNAT", "applyOnForward")
_RULE = ("metadata", "action", "protocol", "notProtocol", "icmp", "notICMP", "ipVersion",
         "source", "destination", "http")
_ENTITY = ("nets", "notNets", "selector", "notSelector", "namespaceSelector", "ports",
           "notPorts", "serviceAccounts", "services")
ACTIONS = ("Allow", "Deny", "Pass", "Log")
PROTOCOL_NAMES = ("TCP", "UDP", "ICMP", "ICMPv6", "SCTP", "UDPLite")
_PROTOCOL_NUMBERS = {6: "TCP", 17: "UDP", 132: "SCTP", 1: "ICMP", 58: "ICMPv6", 136: "UDPLite"}
_PORT_PROTOCOLS = ("TCP", "UDP", "SCTP", "UDPLite")


# -- Tier ---------------------------------------------------------------------------------
def parse_tier(doc: dict[str, Any], ctx: ParseContext) -> list[Any]:
    ctx.mapping(doc, "", allowed=_TOP)
    name = name_of(doc)
    if len(name) > 63 or not _TIER_NAME.match(name):
        raise ctx.error("metadata.name", f"{name!r} is not a valid tier name",
                        hint="lowercase letters, digits and '-', no dots, at most 63 characters")
    spec = ctx.mapping(doc.get("spec"), "spec", allowed=("order", "defaultAction"))
    order = _order(ctx, spec.get("order"), "spec.order")
    fixed = WELL_KNOWN_TIER_ORDERS.get(name)
    if fixed is not None and order is not None and order != fixed:
        raise ctx.error("spec.order", f"the {name} tier's order is fixed at {number(fixed)}",
                        hint="leave spec.order out, or create a tier of your own")
    action = ctx.string(spec.get("defaultAction"), "spec.defaultAction") or "Deny"
    if action not in ("Deny", "Pass"):
        raise ctx.error("spec.defaultAction", f"invalid defaultAction {action!r}",
                        hint="use Deny (the default) or Pass")
    return [Tier(name, order if order is not None else fixed, action, source=ctx.source)]


# -- policies -----------------------------------------------------------------------------
def parse_network_policy(doc: dict[str, Any], ctx: ParseContext) -> list[Any]:
    return [_policy(doc, ctx, namespaced=True)]


def parse_global_network_policy(doc: dict[str, Any], ctx: ParseContext) -> list[Any]:
    return [_policy(doc, ctx, namespaced=False)]


def _policy(doc: dict[str, Any], ctx: ParseContext, *, namespaced: bool) -> Policy:
    ctx.mapping(doc, "", allowed=_TOP)
    name = name_of(doc)
    pattern = _NP_NAME if namespaced else _GNP_NAME
    if len(name) > 253 or not pattern.match(name):
        raise ctx.error("metadata.name", f"{name!r} is not a valid policy name",
                        hint="lowercase letters, digits and '-', with at most one '.'")
    ns = namespace_of(doc) if namespaced else ""
    spec = ctx.mapping(doc.get("spec"), "spec", allowed=_NP_SPEC if namespaced else _GNP_SPEC)
    kind = NP_KIND if namespaced else GNP_KIND
    ref = f"{kind} {ns}/{name}" if namespaced else f"{kind} {name}"

    tier = ctx.string(spec.get("tier"), "spec.tier") or DEFAULT_TIER
    if not _TIER_NAME.match(tier):
        raise ctx.error("spec.tier", f"{tier!r} is not a valid tier name",
                        hint="lowercase letters, digits and '-', no dots")
    order = _order(ctx, spec.get("order"), "spec.order")
    for i, hint in enumerate(ctx.sequence(spec.get("performanceHints"), "spec.performanceHints")):
        if hint != "AssumeNeededOnEveryNode":
            raise ctx.error(f"spec.performanceHints[{i}]", f"unknown hint {hint!r}",
                            hint="the only hint is AssumeNeededOnEveryNode")

    selector = parse_selector_field(ctx, spec.get("selector"), "spec.selector")
    ns_selector = None if namespaced else parse_selector_field(
        ctx, spec.get("namespaceSelector"), "spec.namespaceSelector")
    sa_selector = parse_selector_field(ctx, spec.get("serviceAccountSelector"),
                                       "spec.serviceAccountSelector")
    for field, sel in (("spec.selector", selector), ("spec.serviceAccountSelector", sa_selector)):
        if sel is not None and "global(" in sel.text:
            raise ctx.error(field, "global() can only be used in a rule's namespaceSelector",
                            hint="use all() to select every endpoint")
    warnings: list[str] = []
    host_only = _host_flags(ctx, spec, namespaced, warnings, ref)

    ingress_raw = ctx.sequence(spec.get("ingress"), "spec.ingress")
    egress_raw = ctx.sequence(spec.get("egress"), "spec.egress")
    types = _types(ctx, spec, ingress_raw, egress_raw)
    scope = ns if namespaced else None
    ingress = tuple(_rule(ctx, r, f"spec.ingress[{i}]", scope, f"{ref} ingress rule {i + 1}",
                          ingress=True) for i, r in enumerate(ingress_raw))
    egress = tuple(_rule(ctx, r, f"spec.egress[{i}]", scope, f"{ref} egress rule {i + 1}",
                         ingress=False) for i, r in enumerate(egress_raw))
    for direction, rules in (("Ingress", ingress), ("Egress", egress)):
        if rules and direction not in types:
            warnings.append(f"{ref}: spec.types leaves out {direction}, so its "
                            f"{direction.lower()} rules are ignored")
    return Policy(
        kind=kind, name=name, namespace=ns,
        selects=CalicoTarget(scope, selector, ns_selector, sa_selector, host_only),
        ingress=ingress if "Ingress" in types else None,
        egress=egress if "Egress" in types else None,
        tier=tier, order=order, warnings=tuple(warnings), source=ctx.source,
    )


def _order(ctx: ParseContext, value: Any, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ctx.error(field, f"expected a number, got {value!r}",
                        hint="order is a number; lower orders are evaluated first")
    return float(value)


def _host_flags(ctx: ParseContext, spec: dict[str, Any], namespaced: bool,
                warnings: list[str], ref: str) -> bool:
    """doNotTrack / preDNAT / applyOnForward: only meaningful for host endpoints."""
    if namespaced:
        return False
    flags = {}
    for key in ("doNotTrack", "preDNAT", "applyOnForward"):
        value = spec.get(key, False)
        if not isinstance(value, bool):
            raise ctx.error(f"spec.{key}", f"expected true or false, got {value!r}")
        flags[key] = value
    if flags["doNotTrack"] and flags["preDNAT"]:
        raise ctx.error("spec.preDNAT", "doNotTrack and preDNAT cannot both be true",
                        hint="choose one of them")
    if (flags["doNotTrack"] or flags["preDNAT"]) and not flags["applyOnForward"]:
        raise ctx.error("spec.applyOnForward",
                        "applyOnForward must be true when doNotTrack or preDNAT is true")
    if flags["preDNAT"] and spec.get("egress"):
        raise ctx.error("spec.egress", "a preDNAT policy cannot have egress rules")
    if flags["doNotTrack"] or flags["preDNAT"]:
        warnings.append(f"{ref}: doNotTrack/preDNAT policies apply to host endpoints only, "
                        "so this policy selects no pod")
        return True
    return False


def _types(ctx: ParseContext, spec: dict[str, Any], ingress: list[Any], egress: list[Any]
           ) -> list[str]:
    if "types" not in spec:
        # Calico's defaulting: Egress alone only when there are egress rules and no ingress.
        if egress and not ingress:
            return ["Egress"]
        return ["Ingress", "Egress"] if egress else ["Ingress"]
    types: list[str] = []
    for i, t in enumerate(ctx.sequence(spec["types"], "spec.types")):
        if t not in ("Ingress", "Egress"):
            raise ctx.error(f"spec.types[{i}]", f"unknown type {t!r}",
                            hint="use Ingress and/or Egress")
        if t in types:
            raise ctx.error(f"spec.types[{i}]", f"duplicate type {t!r}")
        types.append(t)
    return types


# -- rules --------------------------------------------------------------------------------
def _rule(ctx: ParseContext, raw: Any, field: str, scope: str | None, origin: str, *,
          ingress: bool) -> Rule:
    r = ctx.mapping(raw, field, allowed=_RULE)
    meta = ctx.mapping(r.get("metadata"), f"{field}.metadata", allowed=("annotations",))
    ctx.labels(meta.get("annotations"), f"{field}.metadata.annotations", values=False)
    if "action" not in r:
        raise ctx.error(f"{field}.action", "is required", hint=f"use one of {', '.join(ACTIONS)}")
    action = ctx.string(r.get("action"), f"{field}.action")
    if action not in ACTIONS:
        raise ctx.error(f"{field}.action", f"invalid action {action!r}",
                        hint=f"use one of {', '.join(ACTIONS)}")
    if "http" in r:
        raise ctx.error(f"{field}.http", "HTTP match criteria need Calico's application layer "
                        "policy (Istio/Dikastes), which this lab does not install",
                        hint="match on ports here; for HTTP rules use the Cilium lab's "
                        "CiliumNetworkPolicy")
    protocol = _protocol(ctx, r.get("protocol"), f"{field}.protocol")
    not_protocol = _protocol(ctx, r.get("notProtocol"), f"{field}.notProtocol")
    for key in ("icmp", "notICMP"):
        if key in r:
            _icmp(ctx, r[key], f"{field}.{key}", protocol if key == "icmp" else not_protocol)
    ip_version = r.get("ipVersion")
    if ip_version is not None and ip_version not in (4, 6):
        raise ctx.error(f"{field}.ipVersion", f"invalid ipVersion {ip_version!r}",
                        hint="use 4 or 6")

    src_field, dst_field = f"{field}.source", f"{field}.destination"
    src = ctx.mapping(r.get("source"), src_field, allowed=_ENTITY)
    dst = ctx.mapping(r.get("destination"), dst_field, allowed=_ENTITY)
    for key in ("ports", "notPorts"):
        if src.get(key):
            raise ctx.error(f"{src_field}.{key}", "source ports are not modelled: labkit's "
                            "traffic carries only the destination port",
                            hint="source ports are ephemeral client ports; match "
                            "destination.ports instead")
    ports = _ports(ctx, dst.get("ports"), f"{dst_field}.ports", protocol)
    not_ports = _ports(ctx, dst.get("notPorts"), f"{dst_field}.notPorts", protocol)
    if not ports and protocol is not None:
        ports = (PortSpec(protocol),)  # a protocol alone: every port of it
    if not_protocol is not None:
        not_ports = (*not_ports, PortSpec(not_protocol))

    nets_version: set[int] = set()
    remote_raw, remote_field = (src, src_field) if ingress else (dst, dst_field)
    local_raw, local_field = (dst, dst_field) if ingress else (src, src_field)
    remote = _entity(ctx, remote_raw, remote_field, scope, ip_version, nets_version)
    local = _entity(ctx, local_raw, local_field, scope, ip_version, nets_version)
    if len(nets_version) > 1:
        raise ctx.error(field, "rule contains both IPv4 and IPv6 CIDRs",
                        hint="split it into one rule per IP version")
    return Rule(origin=origin, action=Action(action), peer=remote,
                local=local if local.constrains else None, ports=ports, not_ports=not_ports)


def _protocol(ctx: ParseContext, value: Any, field: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ctx.error(field, f"invalid protocol {value!r}")
    if isinstance(value, int):
        if not 1 <= value <= 255:
            raise ctx.error(field, f"protocol number {value} is out of range 1-255")
        return _PROTOCOL_NUMBERS.get(value, f"protocol-{value}")
    if value not in PROTOCOL_NAMES:
        raise ctx.error(field, f"invalid protocol {value!r}",
                        hint=f"use one of {', '.join(PROTOCOL_NAMES)} or a number 1-255")
    return value


def _icmp(ctx: ParseContext, raw: Any, field: str, protocol: str | None) -> None:
    m = ctx.mapping(raw, field, allowed=("type", "code"))
    if protocol not in ("ICMP", "ICMPv6"):
        raise ctx.error(field, "rules that specify ICMP fields must set protocol to ICMP",
                        hint="add protocol: ICMP (or ICMPv6)")
    if "code" in m and "type" not in m:
        raise ctx.error(f"{field}.code", "an ICMP code needs an ICMP type")
    if "type" in m:
        ctx.integer(m["type"], f"{field}.type", low=0, high=254)
    if "code" in m:
        ctx.integer(m["code"], f"{field}.code", low=0, high=255)


def _ports(ctx: ParseContext, raw: Any, field: str, protocol: str | None
           ) -> tuple[PortSpec, ...]:
    out: list[PortSpec] = []
    items = ctx.sequence(raw, field)
    if items and protocol is not None and protocol not in _PORT_PROTOCOLS:
        raise ctx.error(field, "rules that specify ports must set protocol to TCP or UDP or SCTP",
                        hint=f"protocol {protocol} has no ports")
    for i, item in enumerate(items):
        where = f"{field}[{i}]"
        first, last, name = _port(ctx, item, where)
        if name is None and protocol is None:
            raise ctx.error(where, "rules with a numeric port or port range must set protocol "
                            "to TCP or UDP or SCTP",
                            hint="add protocol: TCP (named ports work without one)")
        out.append(PortSpec(protocol, first, last, name))
    return tuple(out)


def _port(ctx: ParseContext, item: Any, where: str) -> tuple[int | None, int | None, str | None]:
    if isinstance(item, bool):
        raise ctx.error(where, f"invalid port {item!r}")
    if isinstance(item, int):
        number = ctx.integer(item, where, low=0, high=65535)
        return number, number, None
    if not isinstance(item, str):
        raise ctx.error(where, f"invalid port {item!r}",
                        hint="write 80, '8000:8080' or a port name")
    m = _RANGE.match(item)
    if m:
        first, last = int(m.group(1)), int(m.group(2))
        if last > 65535 or first > last:
            raise ctx.error(where, f"invalid port range {item!r}",
                            hint="write 'first:last' with 0 <= first <= last <= 65535")
        return first, last, None
    if item.isdigit():
        number = ctx.integer(int(item), where, low=0, high=65535)
        return number, number, None
    if len(item) > 15 or not _PORT_NAME.match(item) or "--" in item or \
            not any(c.isalpha() for c in item):
        raise ctx.error(where, f"{item!r} is neither a port, a range nor a valid port name",
                        hint="a named port has at most 15 lowercase letters, digits and '-'")
    return None, None, item


def _entity(ctx: ParseContext, e: dict[str, Any], field: str, scope: str | None,
            ip_version: int | None, versions: set[int]) -> CalicoEntity:
    if "services" in e:
        raise ctx.error(f"{field}.services", "service matches are not modelled by labkit",
                        hint="select the service's pods with a selector (and ports) instead")
    nets = _nets(ctx, e.get("nets"), f"{field}.nets", versions, negated=False)
    not_nets = _nets(ctx, e.get("notNets"), f"{field}.notNets", versions, negated=True)
    if ip_version is not None and versions and versions != {ip_version}:
        raise ctx.error(f"{field}.nets", "rule IP version doesn't match CIDR version")
    ns_sel = parse_selector_field(ctx, e.get("namespaceSelector"), f"{field}.namespaceSelector")
    if ns_sel is not None and "global(" in ns_sel.text and not ns_sel.is_global:
        raise ctx.error(f"{field}.namespaceSelector", "global() cannot be combined with other "
                        "selectors", hint="write namespaceSelector: global() on its own")
    sel = parse_selector_field(ctx, e.get("selector"), f"{field}.selector")
    not_sel = parse_selector_field(ctx, e.get("notSelector"), f"{field}.notSelector")
    for key, s in (("selector", sel), ("notSelector", not_sel)):
        if s is not None and "global(" in s.text:
            raise ctx.error(f"{field}.{key}", "global() can only be used in an EntityRule "
                            "namespaceSelector", hint="use all() to select every endpoint")
    sa_names: tuple[str, ...] | None = None
    sa_sel = None
    if "serviceAccounts" in e:
        sa = ctx.mapping(e["serviceAccounts"], f"{field}.serviceAccounts",
                         allowed=("names", "selector"))
        sa_names = tuple(ctx.string(n, f"{field}.serviceAccounts.names[{i}]", required=True)
                         for i, n in enumerate(ctx.sequence(sa.get("names"),
                                                            f"{field}.serviceAccounts.names")))
        sa_sel = parse_selector_field(ctx, sa.get("selector"),
                                      f"{field}.serviceAccounts.selector")
    return CalicoEntity(scope=scope, ns_selector=ns_sel, selector=sel, not_selector=not_sel,
                        sa_names=sa_names, sa_selector=sa_sel, nets=nets, not_nets=not_nets,
                        ip_version=ip_version)


def _nets(ctx: ParseContext, raw: Any, field: str, versions: set[int], *, negated: bool
          ) -> tuple[str, ...]:
    out: list[str] = []
    for i, item in enumerate(ctx.sequence(raw, field)):
        where = f"{field}[{i}]"
        text = ctx.string(item, where, required=True)
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError as exc:
            raise ctx.error(where, f"invalid CIDR {text!r}",
                            hint="write an address or address/prefix, e.g. 10.0.0.0/24") from exc
        if negated and net.prefixlen == 0:
            raise ctx.error(where, "a catch-all CIDR in notNets matches no traffic",
                            hint="remove it, or use nets to match everything")
        versions.add(net.version)
        out.append(str(net))
    return tuple(out)


PARSERS: dict[tuple[str, str], Any] = {
    (API, "NetworkPolicy"): parse_network_policy,
    (API, "GlobalNetworkPolicy"): parse_global_network_policy,
    (API, "Tier"): parse_tier,
}


def tiers_of(objects: Sequence[Any]) -> dict[str, Tier]:
    """The Tier objects among applied objects, by name."""
    return {t.name: t for t in objects if isinstance(t, Tier)}
