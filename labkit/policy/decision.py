"""The contract between the engine and each CNI's policy semantics.

For one *local* endpoint, one direction, one port and protocol, a CNI's
``decide`` function says which *remote* endpoints are allowed, as a bitset, and
can explain the answer for any one remote. Ingress: local = destination,
remote = source. Egress: local = source, remote = destination.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from labkit.model import ClusterState
from labkit.policy.ir import Direction, Endpoint, HttpMatcher, Policy, Rule, Universe


@dataclass(frozen=True)
class DecideInput:
    u: Universe
    state: ClusterState
    local: Endpoint
    direction: Direction
    port: int
    protocol: str
    #: Enforced policies whose target selector matches ``local``, in the order applied.
    policies: Sequence[Policy]


def _no_l7(remote: int) -> tuple[HttpMatcher, ...] | None:
    return None


@dataclass
class Decision:
    """The outcome for every remote at once, plus per-remote explanations.

    ``reasons(i)`` lists, for remote ``i``, the policies that selected the
    local endpoint and the rule that allowed or denied the traffic (or why no
    rule did). ``l7(i)`` is None when no HTTP filter applies to an allowed
    remote, else the alternatives a request must match (Cilium); ``l7_bits``
    is the set of remotes where it is not None.
    """

    allowed: int
    reasons: Callable[[int], list[str]]
    l7: Callable[[int], tuple[HttpMatcher, ...] | None] = field(default=_no_l7)
    l7_bits: int = 0


def allow_all(reason: str) -> Decision:
    """Nothing isolates the local endpoint in this direction."""
    return Decision(allowed=-1, reasons=lambda i: [reason])  # -1: every bit set


Semantics = Callable[[DecideInput], Decision]


def rule_bits(inp: DecideInput, rule: Rule) -> int:
    """Remote endpoints a rule matches for this local endpoint, port and protocol.

    Ports are read on the destination: for ingress that is the local endpoint
    (one yes/no), for egress it is each remote (named ports differ per pod).
    """
    if rule.local is not None and not (rule.local.bits(inp.u) >> inp.local.index) & 1:
        return 0
    bits = rule.peer.bits(inp.u)
    if inp.direction is Direction.INGRESS:
        return bits if rule.port_ok(inp.local, inp.port, inp.protocol) else 0
    return bits & rule.dst_port_bits(inp.u, inp.port, inp.protocol)


def has_bit(bits: int, index: int) -> bool:
    return bool((bits >> index) & 1)
