"""How Calico combines everything it enforces: tiers, policy order, actions, profiles.

From the Calico v3.33 docs ("Tier" resource, "Get started with policy tiers",
"Rule") and Felix's policy sorter (``felix/calc/policy_sorter.go``):

- tiers run in ``order`` (lowest first; a tier without order runs last; ties
  by name); the default tier's order is fixed at 1,000,000;
- a tier takes part for an endpoint and direction only if one of its policies
  selects the endpoint for that direction; otherwise it is skipped entirely;
- inside a tier, policies run by ``order`` (none sorts last, ties by name);
  Kubernetes NetworkPolicies sit in the default tier at order 1000 (Calico's
  converter names them ``knp.default.<name>``);
- rules run in order; Allow and Deny decide, Pass jumps to the next tier,
  Log records and carries on;
- a packet no rule decided meets the tier's ``defaultAction``: Deny (the
  end-of-tier drop) or Pass;
- after the last tier, the endpoint's profiles: Kubernetes' namespace profile
  (``kns.<namespace>``) allows everything.

The walk is done on bitsets of remote endpoints, once per (local endpoint,
rule); ``reasons(i)`` replays it for one remote.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, field

from labkit.policy.decision import DecideInput, Decision, allow_all, has_bit, rule_bits
from labkit.policy.ir import Action, Policy, Rule, Universe

DEFAULT_TIER = "default"
#: Tiers Calico creates itself, with orders it does not let you change (v3.32+).
WELL_KNOWN_TIER_ORDERS = {DEFAULT_TIER: 1_000_000.0, "kube-admin": 1_000.0,
                          "kube-baseline": 10_000_000.0}
_WELL_KNOWN_DEFAULT_ACTION = {DEFAULT_TIER: "Deny", "kube-admin": "Pass",
                              "kube-baseline": "Pass"}
#: Calico's converter gives every Kubernetes NetworkPolicy this order.
K8S_POLICY_ORDER = 1000.0
K8S_KIND = "NetworkPolicy"


@dataclass(frozen=True)
class Tier:
    """A projectcalico.org/v3 Tier."""

    name: str
    order: float | None = None  # None: after every ordered tier
    default_action: str = "Deny"  # Deny | Pass
    source: str = field(default="", compare=False)
    namespace: str = ""  # tiers are cluster-wide; kept for identity()
    kind: str = "Tier"

    @property
    def ref(self) -> str:
        return f"Tier {self.name}"

    @property
    def identity(self) -> tuple[str, str, str]:
        return ("Tier", "", self.name)

    def describe(self) -> str:
        order = "no order (last)" if self.order is None else f"order {number(self.order)}"
        return f"tier {self.name} ({order}, defaultAction {self.default_action})"


_tier_cache: weakref.WeakKeyDictionary[Universe, dict[str, Tier]] = \
    weakref.WeakKeyDictionary()


def _tiers(inp: DecideInput) -> dict[str, Tier]:
    found = _tier_cache.get(inp.u)
    if found is None:
        found = {t.name: t for t in inp.state.policies if isinstance(t, Tier)}
        _tier_cache[inp.u] = found
    return found


def number(x: float) -> str:
    """An order as people write it: 1000000, not 1e+06."""
    return str(int(x)) if x == int(x) else repr(x)


def tier_of(name: str, tiers: dict[str, Tier]) -> Tier:
    if name in tiers:
        return tiers[name]
    if name in WELL_KNOWN_TIER_ORDERS:
        return Tier(name, WELL_KNOWN_TIER_ORDERS[name], _WELL_KNOWN_DEFAULT_ACTION[name])
    # The API server refuses a policy whose tier does not exist; if one got here anyway
    # (e.g. the Tier was deleted), order it last and say so in the reasons.
    return Tier(name, None, "Deny", source="<missing>")


def tier_key(t: Tier) -> tuple[bool, float, str]:
    return (t.order is None, t.order if t.order is not None else 0.0, t.name)


def policy_order(p: Policy) -> float | None:
    return K8S_POLICY_ORDER if p.kind == K8S_KIND and p.order is None else p.order


def policy_key(p: Policy) -> tuple[float, str, str, str]:
    order = policy_order(p)
    name = f"knp.default.{p.name}" if p.kind == K8S_KIND else p.name
    return (math.inf if order is None else order, name, p.namespace, p.kind)


def _order_text(p: Policy) -> str:
    order = policy_order(p)
    return "no order" if order is None else f"order {number(order)}"


@dataclass
class _Step:
    policy: Policy
    rule: Rule
    bits: int


@dataclass
class _TierRun:
    tier: Tier
    policies: list[Policy]
    steps: list[_Step]


def decide(inp: DecideInput) -> Decision:
    """Calico semantics for one local endpoint, direction, port and protocol."""
    d = inp.direction
    who = inp.local.key
    tiers = _tiers(inp)
    by_tier: dict[str, list[Policy]] = {}
    for p in inp.policies:
        if p.rules(d) is not None:
            by_tier.setdefault(p.tier or DEFAULT_TIER, []).append(p)
    if not by_tier:
        return allow_all(f"calico: no policy selects {who} for {d}; its namespace profile "
                         f"kns.{inp.local.namespace} allows all traffic")

    order = sorted((tier_of(name, tiers) for name in by_tier), key=tier_key)
    undecided = inp.u.all_bits
    allowed = 0
    runs: list[_TierRun] = []
    for tier in order:
        if not undecided:
            break
        policies = sorted(by_tier[tier.name], key=policy_key)
        run = _TierRun(tier, policies, [])
        runs.append(run)
        passed = 0
        for policy in policies:
            for rule in policy.rules(d) or ():
                if not undecided:
                    break
                bits = rule_bits(inp, rule)
                run.steps.append(_Step(policy, rule, bits))
                hit = bits & undecided
                if not hit or rule.action is Action.LOG:
                    continue
                undecided &= ~hit
                if rule.action is Action.ALLOW:
                    allowed |= hit
                elif rule.action is Action.PASS:
                    passed |= hit
        if tier.default_action == "Pass":
            passed |= undecided
        undecided = passed  # the rest met the end-of-tier deny
    allowed |= undecided  # passed through every tier: the namespace profile allows

    def reasons(i: int) -> list[str]:
        return _explain(inp, runs, i)

    return Decision(allowed=allowed, reasons=reasons)


def _explain(inp: DecideInput, runs: list[_TierRun], i: int) -> list[str]:
    d, who = inp.direction, inp.local.key
    remote = inp.u.endpoints[i].key
    out: list[str] = []
    for run in runs:
        tier = run.tier
        head = f"calico {d} of {who}, {tier.describe()}"
        if tier.source == "<missing>":
            head += " [no such Tier object: the API server would refuse these policies]"
        decided = False
        for step in run.steps:
            if not has_bit(step.bits, i):
                continue
            rule, policy = step.rule, step.policy
            where = f"{rule.origin} ({_order_text(policy)})"
            if rule.action is Action.LOG:
                out.append(f"{head}: {where} logs the packet and evaluation continues")
                continue
            if rule.action is Action.ALLOW:
                out.append(f"{head}: allowed by {where}")
                return out
            if rule.action is Action.DENY:
                out.append(f"{head}: denied by {where}")
                return out
            out.append(f"{head}: {where} passes it to the next tier")
            decided = True
            break
        if decided:
            continue
        names = ", ".join(f"{p.ref} ({_order_text(p)})" for p in run.policies)
        if tier.default_action == "Pass":
            out.append(f"{head}: no rule of {names} matches {remote}; the tier's defaultAction "
                       "Pass moves on to the next tier")
            continue
        out.append(f"{head}: no rule of {names} matches {remote} on "
                   f"{inp.protocol}/{inp.port}; end-of-tier deny")
        return out
    out.append(f"calico {d} of {who}: passed through every tier; the namespace profile "
               f"kns.{inp.local.namespace} allows")
    return out
