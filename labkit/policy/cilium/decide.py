"""How Cilium 1.20 combines everything it enforces for one endpoint: ``decide``.

Inputs are Kubernetes NetworkPolicies and Cilium policies (namespaced and
clusterwide) that select the local endpoint. Semantics, with their sources:

- deny rules (``ingressDeny``/``egressDeny``) win over any allow, from any policy
  kind, NetworkPolicy included (security/policy/deny.rst);
- an endpoint is in default-deny for a direction once any selecting rule has a
  rule in that direction, deny-only included, unless that policy sets
  ``enableDefaultDeny`` to false (security/policy/intro.rst, api ``Rule``);
  a NetworkPolicy isolates the directions of its policyTypes;
- allows from NetworkPolicy, CiliumNetworkPolicy and clusterwide policies add up;
- L7: when the allowing rules for a peer on this port carry HTTP rules, a
  request must match one of them (all such rules, from every policy, are
  alternatives); a rule for the same peer and port *without* HTTP rules (L3-only,
  L4-only, or a NetworkPolicy) lets all HTTP through ("If a layer 4 rule is
  specified in the policy, and a similar layer 4 rule with layer 7 rules is also
  specified, then the layer 7 portions of the latter rule will have no effect",
  layer7.rst v1.20; wildcard L7 rules for L3/L4-only selectors:
  cilium/cilium#3698, #7471). ``enableDefaultDeny: false`` does not switch L7
  rules off (intro.rst warning);
- NetworkPolicy features Cilium 1.20 lists as unsupported (network/kubernetes/
  policy.rst): ``ipBlock`` never matches pod IPs (nor node IPs, without
  ``policy-cidr-match-mode=nodes``), and SCTP (see ``SCTP_ENABLED``); endPort is
  supported since 1.16 and honoured;
- Kubernetes deployments allow traffic from the local node to its pods
  (``allow-localhost``, layer 3 docs "Access to/from local host");
- ``toFQDNs`` admits the addresses of the names the endpoint may look up through the DNS
  proxy (an egress ``rules.dns`` rule to kube-dns on port 53), labkit.policy.cilium.fqdn;
- ``policyEnforcementMode`` (``ClusterState.policy_enforcement``, security/policy/intro.rst
  "Policy Enforcement Modes"): ``default`` isolates an endpoint once a rule selects it;
  ``always`` isolates every endpoint in both directions even without any policy, so
  everything not explicitly allowed, DNS to kube-dns included, is dropped; ``never``
  enforces nothing (L7 rules included).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from labkit.model import CILIUM_NAMESPACE_LABEL
from labkit.policy.cilium.fqdn import FqdnSelector
from labkit.policy.cilium.match import NS_LABELS_PREFIX, CidrSet, CiliumSelector, node_of
from labkit.policy.decision import DecideInput, Decision, has_bit
from labkit.policy.ir import (
    Action,
    AnyEndpoint,
    AnyOf,
    Direction,
    EndpointKind,
    HttpMatcher,
    Matcher,
    Policy,
    Rule,
)
from labkit.policy.selectors import (
    IpBlock,
    LabelSelector,
    PodsInNamespace,
    PodsInNamespaces,
    Requirement,
)

KIND_CNP = "CiliumNetworkPolicy"
KIND_CCNP = "CiliumClusterwideNetworkPolicy"
CILIUM_KINDS = (KIND_CNP, KIND_CCNP)
NETWORK_POLICY = "NetworkPolicy"
#: The lab installs Cilium without ``sctp.enabled`` (beta, off by default), and
#: Cilium 1.20 lists SCTP as unsupported for NetworkPolicy: an endpoint in
#: default-deny gets no SCTP through.
SCTP_ENABLED = False
_SCTP_NOTE = ("Cilium 1.20 does not enforce SCTP policy (SCTP is listed as unsupported for "
              "NetworkPolicy and needs sctp.enabled=true, a beta feature), so SCTP allow rules "
              "have no effect here")


@dataclass(frozen=True)
class _Step:
    policy: Policy
    rule: Rule
    bits: int

    @property
    def http(self) -> tuple[HttpMatcher, ...] | None:
        return self.rule.http


def decide(inp: DecideInput) -> Decision:
    d = inp.direction
    u = inp.u
    local = inp.local
    who = local.key
    mode = inp.state.policy_enforcement
    if mode == "never":
        return Decision(allowed=-1, reasons=lambda i: [
            f"policyEnforcementMode=never: Cilium enforces no policy on {who}"])
    isolating: list[Policy] = []
    relaxed: list[Policy] = []  # select the endpoint with rules but enableDefaultDeny false
    allows: list[_Step] = []
    denies: list[_Step] = []
    learned = _learned_names(inp) if d is Direction.EGRESS else []
    for p in inp.policies:
        if p.kind == NETWORK_POLICY:
            rules = p.rules(d)
            if rules is None:
                continue
            isolating.append(p)
            allows.extend(_Step(p, r, _np_rule_bits(inp, r)) for r in rules)
        elif p.kind in CILIUM_KINDS:
            mine = [r for r in p.rules(d) or () if r.local is None
                    or has_bit(r.local.bits(u), local.index)]
            if _isolates(p, inp):
                isolating.append(p)
            elif mine:
                relaxed.append(p)
            for r in mine:
                step = _Step(p, r, _cilium_rule_bits(inp, r, learned))
                (denies if r.action is Action.DENY else allows).append(step)

    denied = 0
    for s in denies:
        denied |= s.bits
    sctp_blocked = inp.protocol == "SCTP" and not SCTP_ENABLED
    allowed_bits = 0
    plain = 0  # peers some rule admits without HTTP rules
    with_l7 = 0
    for s in allows:
        allowed_bits |= s.bits
        if _http_of(s, inp) is None:
            plain |= s.bits
        else:
            with_l7 |= s.bits
    localhost = _localhost_bits(inp) if d is Direction.INGRESS else 0
    plain |= localhost
    always = mode == "always"
    if isolating or always:
        allowed = 0 if sctp_blocked else (allowed_bits | localhost) & ~denied
    else:
        allowed = -1 & ~denied
    names = ", ".join(p.ref for p in isolating) or \
        "policyEnforcementMode=always (every endpoint is in default-deny, with or without a policy)"

    l7_bits = allowed & with_l7 & ~plain

    def l7(i: int) -> tuple[HttpMatcher, ...] | None:
        if not has_bit(l7_bits, i):
            return None
        out: list[HttpMatcher] = []
        for s in allows:
            http = _http_of(s, inp)
            if http is not None and has_bit(s.bits, i):
                out.extend(m for m in http if m not in out)
        return tuple(out)

    def reasons(i: int) -> list[str]:
        peer = u.endpoints[i].key
        on = f"{inp.protocol}/{inp.port}"
        hits = [s.rule.origin for s in denies if has_bit(s.bits, i)]
        if hits:
            return [f"{who} {d}: {peer} on {on} is denied by {hits[0]} (deny rules take "
                    "precedence over every allow, NetworkPolicy included)"]
        out: list[str] = []
        if not isolating and not always:
            out.append(f"no policy puts {who} in default-deny for {d}, so {d} is not isolated")
            if relaxed:
                out.append(f"{', '.join(p.ref for p in relaxed)} select {who} with "
                           "enableDefaultDeny false: they do not isolate it")
        elif sctp_blocked:
            out.append(f"{who} {d} is isolated by {names}; {_SCTP_NOTE}")
        else:
            hits = [s.rule.origin for s in allows if has_bit(s.bits, i)]
            if hits:
                out.append(f"{who} {d} is isolated by {names}; allowed by {hits[0]}")
            elif has_bit(localhost, i):
                out.append(f"{who} {d} is isolated by {names}; {peer} is the pod's own node, "
                           "which Cilium always lets in (allow-localhost)")
            else:
                out.append(f"{who} {d} is isolated by {names}; no rule admits {peer} on {on}")
                out.extend(_ip_block_notes(inp, isolating, i))
                out.extend(_fqdn_notes(inp, allows, learned, i))
        alternatives = l7(i)
        if alternatives is not None:
            out.append(f"HTTP to {who} on {on} must match one of: "
                       + "; ".join(m.describe() for m in alternatives))
        return out

    return Decision(allowed=allowed, reasons=reasons, l7=l7, l7_bits=l7_bits)


def _isolates(p: Policy, inp: DecideInput) -> bool:
    index = 0 if inp.direction is Direction.INGRESS else 1
    specs = getattr(p, "specs", ())
    if not specs:
        return bool(p.rules(inp.direction)) and p.isolates(inp.direction)
    return any(s.isolates[index] and has_bit(s.subject.bits(inp.u), inp.local.index)
               for s in specs)


def _http_of(s: _Step, inp: DecideInput) -> tuple[HttpMatcher, ...] | None:
    # HTTP rules only exist for TCP; an ANY-protocol entry still admits UDP at L4.
    return s.rule.http if inp.protocol == "TCP" else None


def _ports_bits(inp: DecideInput, rule: Rule, peers: int) -> int:
    if inp.direction is Direction.INGRESS:
        return peers if rule.port_ok(inp.local, inp.port, inp.protocol) else 0
    return peers & rule.dst_port_bits(inp.u, inp.port, inp.protocol)


def _cilium_rule_bits(inp: DecideInput, rule: Rule, learned: Sequence[str] = ()) -> int:
    bits_for = getattr(rule.peer, "bits_for", None)
    peers = bits_for(inp.u, inp.local) if bits_for is not None else rule.peer.bits(inp.u)
    fqdns: tuple[FqdnSelector, ...] = getattr(rule.peer, "fqdns", ())
    for name in learned:
        if any(f.matches(name) for f in fqdns):
            for ip in inp.state.dns_names[name]:
                index = inp.u.by_key.get(f"ip:{ip}")
                if index is not None:
                    peers |= 1 << index
    return _ports_bits(inp, rule, peers)


def _learned_names(inp: DecideInput) -> list[str]:
    """The names whose addresses Cilium learns for this endpoint: those an egress rule with
    ``rules.dns`` lets it look up at kube-dns on port 53 (the DNS proxy sees the answers)."""
    if not inp.state.dns_names:
        return []
    u, local = inp.u, inp.local
    dns_pods = [e for e in u.endpoints if e.kind is EndpointKind.POD
                and e.namespace == "kube-system" and e.labels.get("k8s-app") == "kube-dns"]
    patterns: list[FqdnSelector] = []
    for p in inp.policies:
        if p.kind not in CILIUM_KINDS:
            continue
        for r in p.rules(Direction.EGRESS) or ():
            if r.dns is None or r.action is Action.DENY or (
                    r.local is not None and not has_bit(r.local.bits(u), local.index)):
                continue
            bits_for = getattr(r.peer, "bits_for", None)
            peers = bits_for(u, local) if bits_for is not None else r.peer.bits(u)
            if any(has_bit(peers, e.index) and r.port_ok(e, 53, "UDP") for e in dns_pods):
                patterns.extend(r.dns)
    return [n for n in inp.state.dns_names if any(f.matches(n) for f in patterns)]


def _fqdn_notes(inp: DecideInput, allows: Sequence[_Step], learned: Sequence[str],
                i: int) -> list[str]:
    """Why a toFQDNs rule did not admit an address that one of its names resolves to."""
    ip = inp.u.endpoints[i].ip
    names = [n for n, ips in inp.state.dns_names.items() if ip in ips]
    out = []
    for s in allows:
        fqdns: tuple[FqdnSelector, ...] = getattr(s.rule.peer, "fqdns", ())
        hit = [n for n in names if any(f.matches(n) for f in fqdns) and n not in learned]
        if hit:
            out.append(f"{s.rule.origin} names {hit[0]}, but no rules.dns lets {inp.local.key} "
                       "look it up through kube-dns, so Cilium never learns its address")
    return out


def _np_rule_bits(inp: DecideInput, rule: Rule) -> int:
    return _ports_bits(inp, rule, as_cilium(rule.peer).bits(inp.u))


def _localhost_bits(inp: DecideInput) -> int:
    node = node_of(inp.local)
    if not node:
        return 0
    return inp.u.where(("cilium-localhost", node), lambda e: e.kind is EndpointKind.HOST
                       and node_of(e) == node)


# -- NetworkPolicy peers, the way Cilium reads them ------------------------------------------
@dataclass(frozen=True)
class _Union:
    parts: tuple[Matcher, ...]

    def bits(self, u: object) -> int:
        out = 0
        for p in self.parts:
            out |= p.bits(u)  # type: ignore[arg-type]
        return out

    def describe(self) -> str:
        return " or ".join(p.describe() for p in self.parts)


@lru_cache(maxsize=4096)
def as_cilium(m: Matcher) -> Matcher:
    """A NetworkPolicy peer with Cilium's reading: local cluster, ipBlock outside pods."""
    if isinstance(m, AnyEndpoint):
        return m
    if isinstance(m, AnyOf):
        return _Union(tuple(as_cilium(p) for p in m.parts))
    if isinstance(m, PodsInNamespace):
        reqs = (*_reqs(m.selector), Requirement(CILIUM_NAMESPACE_LABEL, "In", (m.namespace,)))
        return CiliumSelector(reqs, cluster="", text=m.describe())
    if isinstance(m, PodsInNamespaces):
        ns_reqs = tuple(Requirement(NS_LABELS_PREFIX + r.key, r.operator, r.values)
                        for r in _reqs(m.namespaces))
        return CiliumSelector((*_reqs(m.pods), *ns_reqs), cluster="", text=m.describe())
    if isinstance(m, IpBlock):
        return CidrSet(m.cidr, m.excepts)
    return m


def _reqs(sel: LabelSelector) -> tuple[Requirement, ...]:
    return (*(Requirement(k, "In", (v,)) for k, v in sel.match_labels), *sel.expressions)


def _ip_blocks(m: Matcher) -> list[IpBlock]:
    if isinstance(m, IpBlock):
        return [m]
    if isinstance(m, AnyOf):
        return [b for p in m.parts for b in _ip_blocks(p)]
    return []


def _ip_block_notes(inp: DecideInput, policies: Sequence[Policy], i: int) -> list[str]:
    """Explain an ipBlock that covers a pod's address: Cilium does not match it."""
    e = inp.u.endpoints[i]
    if e.kind is not EndpointKind.POD or not e.ip:
        return []
    out = []
    for p in policies:
        if p.kind != NETWORK_POLICY:
            continue
        for r in p.rules(inp.direction) or ():
            for block in _ip_blocks(r.peer):
                if has_bit(IpBlock(block.cidr, block.excepts, pods=True).bits(inp.u), i):
                    out.append(f"{r.origin}: ipBlock {block.cidr} covers {e.key}'s address "
                               f"{e.ip}, but Cilium does not match pod IPs with ipBlock "
                               "(a documented limitation)")
    return out
