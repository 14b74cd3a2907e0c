"""Matchers for Calico policies: which endpoints a policy applies to, and what a rule's
source/destination clause (an EntityRule) matches.

Scoping follows libcalico-go's rule conversion (``updateprocessors/rules.go``):
in a namespaced policy, a clause with a selector, notSelector or
serviceAccounts but no namespaceSelector is limited to the policy's namespace;
a namespaceSelector replaces that scope (``global()`` there means
non-namespaced resources, which labkit's clusters do not have). notSelector
itself is not scoped: it removes matching pods of every namespace. Selectors
only ever match workload endpoints (pods), never addresses outside the
cluster; nets/notNets match addresses, pods' included.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from labkit.inputs import quote
from labkit.policy.calico.selector import SYNTAX_HINT, Selector, SelectorError, parse
from labkit.policy.ir import Universe
from labkit.policy.parse import ParseContext


def parse_selector_field(ctx: ParseContext, value: Any, field: str) -> Selector | None:
    """A selector field; None when absent or empty (Calico treats "" as not set)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ctx.error(field, f"a Calico selector is a string expression, got {quote(value)}",
                        hint=SYNTAX_HINT + " (not matchLabels: that is Kubernetes syntax)")
    if not value.strip():
        return None
    try:
        return parse(value)
    except SelectorError as exc:
        raise ctx.error(field, f"invalid selector {quote(value)}: {exc}", hint=SYNTAX_HINT) from exc


@dataclass(frozen=True)
class CalicoTarget:
    """The endpoints a Calico policy applies to."""

    namespace: str | None  # a NetworkPolicy's namespace; None for a GlobalNetworkPolicy
    selector: Selector | None = None
    ns_selector: Selector | None = None
    sa_selector: Selector | None = None
    host_only: bool = False  # doNotTrack / preDNAT: host endpoints only

    def bits(self, u: Universe) -> int:
        if self.host_only:
            return 0
        out = u.pod_bits
        if self.namespace is not None:
            out &= u.ns_index.get(self.namespace, 0)
        if self.selector is not None:
            out &= self.selector.pod_bits(u)
        if self.ns_selector is not None:
            out &= self.ns_selector.namespace_bits(u)
        if self.sa_selector is not None:
            out &= self.sa_selector.service_account_bits(u)
        return out

    def describe(self) -> str:
        parts = [self.selector.describe() if self.selector else "all()"]
        if self.namespace is not None:
            parts.append(f"in namespace {self.namespace}")
        if self.ns_selector is not None:
            parts.append(f"in namespaces [{self.ns_selector.describe()}]")
        if self.sa_selector is not None:
            parts.append(f"with service account [{self.sa_selector.describe()}]")
        return "endpoints " + " ".join(parts) if not self.host_only else "host endpoints only"


@dataclass(frozen=True)
class CalicoEntity:
    """One side of a rule (an EntityRule); every given criterion must match."""

    scope: str | None = None  # the policy's namespace (namespaced policies)
    ns_selector: Selector | None = None
    selector: Selector | None = None
    not_selector: Selector | None = None
    sa_names: tuple[str, ...] | None = None
    sa_selector: Selector | None = None
    nets: tuple[str, ...] = ()
    not_nets: tuple[str, ...] = ()
    ip_version: int | None = None

    @property
    def _identity_part(self) -> bool:
        return (self.selector is not None or self.not_selector is not None
                or self.ns_selector is not None or self.sa_names is not None
                or self.sa_selector is not None)

    @property
    def constrains(self) -> bool:
        """Whether the clause narrows anything at all (an empty clause matches everything)."""
        return self._identity_part or bool(self.nets or self.not_nets) or \
            self.ip_version is not None

    def bits(self, u: Universe) -> int:
        return u.cached(("calico-entity", self), lambda: self._compute(u))

    def _compute(self, u: Universe) -> int:
        out = u.all_bits
        # The positive identity part: which pods, in which namespaces.
        scoped = self.ns_selector is not None or (self.scope is not None and self._identity_part)
        if scoped:
            if self.ns_selector is not None:
                out &= 0 if self.ns_selector.is_global else self.ns_selector.namespace_bits(u)
            else:
                out &= u.ns_index.get(self.scope or "", 0) & u.pod_bits
        if self.selector is not None:
            out &= self.selector.pod_bits(u)
        if self.sa_names is not None or self.sa_selector is not None:
            out &= self._sa_bits(u)
        if self.not_selector is not None:
            out &= ~self.not_selector.pod_bits(u)
        if self.nets:
            any_net = 0
            for net in self.nets:
                any_net |= u.cidr_bits(net)
            out &= any_net
        for net in self.not_nets:
            out &= ~u.cidr_bits(net)
        if self.ip_version is not None:
            version = self.ip_version
            out &= u.where(("ip-version", version), lambda e: bool(e.ip) and
                           ipaddress.ip_address(e.ip).version == version)
        return out

    def _sa_bits(self, u: Universe) -> int:
        bits = u.pod_bits
        if self.sa_names is not None:
            names = frozenset(self.sa_names)
            bits &= u.where(("calico-sa-names", names), lambda e: e.pod is not None and
                            e.pod.service_account in names)
        if self.sa_selector is not None:
            bits &= self.sa_selector.service_account_bits(u)
        return bits

    def describe(self) -> str:
        parts: list[str] = []
        if self.selector is not None:
            parts.append(f"endpoints [{self.selector.describe()}]")
        if self.ns_selector is not None:
            parts.append(f"in namespaces [{self.ns_selector.describe()}]")
        elif self.scope is not None and self._identity_part:
            if self.selector is None:
                parts.append("endpoints")
            parts.append(f"in namespace {self.scope}")
        if self.sa_names is not None:
            parts.append(f"with service account in {{{', '.join(self.sa_names)}}}")
        if self.sa_selector is not None:
            parts.append(f"with service account [{self.sa_selector.describe()}]")
        if self.not_selector is not None:
            parts.append(f"except endpoints [{self.not_selector.describe()}]")
        if self.nets:
            parts.append(f"in nets {', '.join(self.nets)}")
        if self.not_nets:
            parts.append(f"outside nets {', '.join(self.not_nets)}")
        if self.ip_version is not None:
            parts.append(f"IPv{self.ip_version}")
        return " ".join(parts) if parts else "anywhere"
