"""Calico selectors over a cluster: Calico's own labels, and the compiled bitset form.

The language itself (AST, tokenizer, parser) is in ``calico_selector_syntax``;
this module parses a selector once into a :class:`Selector`, evaluates it on
a label dict, and compiles it to bitsets over a :class:`Universe`.

Calico gives every workload endpoint a few labels of its own (see
``endpoint_labels``) and every namespace the label ``projectcalico.org/name``
(``namespace_labels``); the compiled forms honour both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from labkit.model import Pod
from labkit.policy.calico.syntax import (
    STRING_TESTS,
    All,
    And,
    Eq,
    Global,
    Has,
    In,
    Ne,
    Node,
    Not,
    NotIn,
    Or,
    SelectorError,
    StringTest,
    parse_node,
)
from labkit.policy.ir import Endpoint, EndpointKind, Universe

__all__ = ["NAME_LABEL", "SYNTAX_HINT", "All", "And", "Eq", "Global", "Has", "In", "Ne", "Node",
           "Not", "NotIn", "Or", "Selector", "SelectorError", "StringTest", "endpoint_labels",
           "namespace_labels", "parse", "service_account_labels"]

#: Label Calico puts on namespaces and service accounts with their name.
NAME_LABEL = "projectcalico.org/name"
#: Labels Calico puts on every Kubernetes workload endpoint.
NAMESPACE_LABEL = "projectcalico.org/namespace"
ORCHESTRATOR_LABEL = "projectcalico.org/orchestrator"
SERVICE_ACCOUNT_LABEL = "projectcalico.org/serviceaccount"
_SYSTEM_POD_LABELS = (NAMESPACE_LABEL, ORCHESTRATOR_LABEL, SERVICE_ACCOUNT_LABEL)

SYNTAX_HINT = (
    "Calico selector syntax: k == 'v', k != 'v', has(k), k in {'a', 'b'}, "
    "k not in {'a'}, k contains|starts with|ends with 's', all(), "
    "combined with !, &&, || and ( ); quote values with ' or \""
)


# -- labels Calico adds -----------------------------------------------------------------------
def endpoint_labels(pod: Pod) -> dict[str, str]:
    """A pod's labels as Calico's workload endpoint carries them."""
    return {**pod.labels, NAMESPACE_LABEL: pod.namespace, ORCHESTRATOR_LABEL: "k8s",
            SERVICE_ACCOUNT_LABEL: pod.service_account}


def namespace_labels(labels: Mapping[str, str], name: str) -> dict[str, str]:
    """A namespace's labels as Calico's namespace profile carries them."""
    return {**labels, NAME_LABEL: name}


def service_account_labels(name: str) -> dict[str, str]:
    """A service account's labels; labkit does not model ServiceAccount objects' own labels."""
    return {NAME_LABEL: name}


# -- public API -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Selector:
    """A parsed selector; ``text`` is what the user wrote (for explanations)."""

    root: Node
    text: str = ""

    def matches(self, labels: Mapping[str, str]) -> bool:
        return self.root.evaluate(labels)

    @property
    def selects_all(self) -> bool:
        return isinstance(self.root, All)

    @property
    def is_global(self) -> bool:
        return isinstance(self.root, Global)

    def describe(self) -> str:
        return self.text.strip() or "all()"

    def __str__(self) -> str:
        return str(self.root)

    # -- compiled forms over a Universe -----------------------------------------------------
    def pod_bits(self, u: Universe) -> int:
        """Workload endpoints (pods, not host-network) whose Calico labels match."""
        return u.cached(("calico-pods", self.root), lambda: _Compiler(u).bits(self.root))

    def namespace_bits(self, u: Universe) -> int:
        """Pods whose namespace (labels plus ``projectcalico.org/name``) matches."""

        def compute() -> int:
            out = 0
            for name, bits in u.ns_index.items():
                ns = u.state.namespace(name)
                if self.root.evaluate(namespace_labels(ns.all_labels(), name)):
                    out |= bits
            return out & u.pod_bits

        return u.cached(("calico-ns", self.root), compute)

    def service_account_bits(self, u: Universe) -> int:
        """Pods whose service account (labels: ``projectcalico.org/name``) matches."""
        return u.where(("calico-sa", self.root), lambda e: e.kind is EndpointKind.POD and
                       e.pod is not None and
                       self.root.evaluate(service_account_labels(e.pod.service_account)))


def parse(text: str) -> Selector:
    """Parse a selector; raise :class:`SelectorError` when Calico would reject it."""
    return Selector(parse_node(text), text)


class _Compiler:
    """Turns AST nodes into bitsets over the pods of a universe, with Calico's extra labels."""

    def __init__(self, u: Universe) -> None:
        self.u = u
        self.domain = u.pod_bits

    def bits(self, node: Node) -> int:
        return self.u.cached(("calico-node", node), lambda: self._compile(node))

    def _compile(self, node: Node) -> int:
        if isinstance(node, (All, Global)):
            return self.domain
        if isinstance(node, Has):
            return self.has(node.key)
        if isinstance(node, Eq):
            return self.equals(node.key, node.value)
        if isinstance(node, Ne):
            return self.domain & ~self.equals(node.key, node.value)
        if isinstance(node, (In, NotIn)):
            any_of = 0
            for v in node.values:
                any_of |= self.equals(node.key, v)
            return any_of if isinstance(node, In) else self.domain & ~any_of
        if isinstance(node, StringTest):
            test, want = STRING_TESTS[node.op], node.value
            return self.scan(node.key, lambda have: test(have, want))
        if isinstance(node, Not):
            return self.domain & ~self.bits(node.operand)
        if isinstance(node, And):
            out = self.domain
            for o in node.operands:
                out &= self.bits(o)
                if not out:
                    break
            return out
        if isinstance(node, Or):
            out = 0
            for o in node.operands:
                out |= self.bits(o)
            return out
        raise TypeError(f"unknown selector node {node!r}")

    def equals(self, key: str, value: str) -> int:
        if key in _SYSTEM_POD_LABELS:
            return self.scan(key, lambda have: have == value)
        return self.u.label_index.get((key, value), 0) & self.domain

    def has(self, key: str) -> int:
        if key in _SYSTEM_POD_LABELS:
            return self.domain
        return self.u.key_index.get(key, 0) & self.domain

    def scan(self, key: str, test: Callable[[str], bool]) -> int:
        """Pods that have ``key`` with a value passing ``test`` (uncached: callers cache)."""
        out = 0
        for e in _pods(self.u):
            labels = endpoint_labels(e.pod) if e.pod is not None else {}
            if key in labels and test(labels[key]):
                out |= 1 << e.index
        return out


def _pods(u: Universe) -> Iterator[Endpoint]:
    return (e for e in u.endpoints if e.kind is EndpointKind.POD)
