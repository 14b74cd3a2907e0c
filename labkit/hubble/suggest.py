"""Least-privilege policies from observed flows: allow exactly what was seen forwarded.

Every workload that sent or received an observed forwarded flow (outside ``kube-system``) gets
one policy that selects it by its identity labels and isolates it both ways: ingress from each
observed client on the observed ports, egress to each observed server on the observed ports;
nothing else. With the ``cilium`` dialect, a port on which HTTP requests were seen carries
``rules.http`` with exactly the observed method and path (Cilium matches the path as a regular
expression over the whole value, so the path is escaped). ``kubernetes`` NetworkPolicy has no
L7, so that dialect allows the port and says so in a note.

Peers are selected as Cilium derives identities: a pod's own labels (``k8s:`` source, minus the
``io.kubernetes``/``io.cilium.k8s`` bookkeeping), in its namespace. Flows whose ends carry no
labels (field-masked exports), world/host/remote-node peers and ICMP are left out, with a note:
a pod selector cannot express them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import yaml

from labkit.errors import LabkitError
from labkit.hubble.flow import Endpoint, Flow
from labkit.model import CILIUM_NAMESPACE_LABEL, NAMESPACE_NAME_LABEL

DIALECTS = ("kubernetes", "cilium")
SKIP_NAMESPACES = frozenset({"kube-system"})
_META = ("io.kubernetes.", "io.cilium.k8s.")
_ALLOWED = ("FORWARDED", "REDIRECTED")
_POLICY_VERDICT = 5

Workload = tuple[str, tuple[tuple[str, str], ...]]  # namespace, sorted selector labels
Port = tuple[int, str]


@dataclass
class _Rules:
    """Observed traffic between one client and one server workload."""

    ports: set[Port] = field(default_factory=set)
    http: dict[Port, set[tuple[str, str]]] = field(default_factory=dict)


@dataclass(frozen=True)
class Suggestion:
    dialect: str
    policies: tuple[dict[str, Any], ...]
    notes: tuple[str, ...] = ()

    def to_yaml(self) -> str:
        head = "".join(f"# {n}\n" for n in self.notes)
        return head + yaml.safe_dump_all(list(self.policies), sort_keys=False)


def workload_of(ep: Endpoint) -> Workload | None:
    """The namespace and selector labels of a pod endpoint (None when there are none)."""
    if not ep.pod_name or not ep.namespace or not ep.labels:
        return None
    labels = []
    for label in ep.labels:
        source, _, kv = label.partition(":")
        key, sep, value = kv.partition("=")
        if source == "k8s" and sep and not key.startswith(_META):
            labels.append((key, value))
    return (ep.namespace, tuple(sorted(labels))) if labels else None


def _is_request(f: Flow) -> bool:
    if f.verdict not in _ALLOWED:
        return False
    if f.l7 is not None:
        return f.l7.type == "REQUEST"
    if f.is_reply is None:  # only policy verdicts say nothing of direction and still mean it
        return f.record.get("event_type", {}).get("type") == _POLICY_VERDICT
    return not f.is_reply


def suggest(flows: Iterable[Flow], dialect: str = "cilium") -> Suggestion:
    if dialect not in DIALECTS:
        raise LabkitError(f"unknown dialect {dialect!r}", hint=f"use one of {', '.join(DIALECTS)}")
    edges: dict[tuple[Workload, Workload], _Rules] = {}
    notes: set[str] = set()
    for f in flows:
        if not _is_request(f):
            continue
        src, dst = workload_of(f.source), workload_of(f.destination)
        port = f.l4.destination_port
        if src is None or dst is None or port is None or f.l4.protocol is None:
            notes.add(f"left out (no pod selector or port can express it): "
                      f"{f.source.workload} -> {f.destination.workload} {f.l4.protocol or ''}")
            continue
        rules = edges.setdefault((src, dst), _Rules())
        key = (port, f.l4.protocol)
        rules.ports.add(key)
        if f.http is not None and f.http.method and f.http.url:
            parts = urlsplit(f.http.url)
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            rules.http.setdefault(key, set()).add((f.http.method, path or "/"))
    if not edges:
        raise LabkitError("no forwarded pod-to-pod flows with identity labels to learn from",
                          hint="capture with `hubble observe -o jsonpb` while the workloads "
                          "talk (field-masked exports without labels cannot be used)")
    if dialect == "kubernetes" and any(r.http for r in edges.values()):
        notes.add("HTTP method/path were observed, but NetworkPolicy has no L7 rules: use "
                  "--dialect cilium to allow only the observed requests")
    if not any(port == (53, "UDP") for r in edges.values() for port in r.ports):
        notes.add("no DNS lookup was observed, so the egress rules allow none: pods that "
                  "resolve names need an egress rule to kube-dns on 53/UDP")
    targets = sorted({w for pair in edges for w in pair if w[0] not in SKIP_NAMESPACES})
    make = _cilium if dialect == "cilium" else _kubernetes
    names = _names(targets)
    policies = tuple(make(w, edges, names[w]) for w in targets)
    return Suggestion(dialect, policies, tuple(sorted(notes)))


def _names(targets: list[Workload]) -> dict[Workload, str]:
    """A policy name per workload, unique in its namespace: ``suggested-<app>``, or with every
    label value when two workloads share an app (``reviews`` v1 and v2)."""
    def name(values: Iterable[str], suffix: str = "") -> str:
        text = re.sub(r"[^a-z0-9]+", "-", "-".join(values).lower()).strip("-")
        return f"suggested-{text}"[:63 - len(suffix)].rstrip("-") + suffix

    def short(w: Workload) -> str:
        apps = [v for k, v in w[1] if k in ("app", "app.kubernetes.io/name")]
        return name(apps or [v for _, v in w[1]])

    out: dict[Workload, str] = {}
    for w in targets:
        clash = any(short(o) == short(w) and o[0] == w[0] for o in targets if o != w)
        out[w] = name(v for _, v in w[1]) if clash else short(w)
    taken: set[tuple[str, str]] = set()
    for w in targets:  # label values that still collide after cleaning: number them
        candidate, i = out[w], 1
        while (w[0], candidate) in taken:
            i += 1
            candidate = name([out[w].removeprefix("suggested-")], f"-{i}")
        taken.add((w[0], candidate))
        out[w] = candidate
    return out


def _ports_k8s(ports: Iterable[Port]) -> list[dict[str, Any]]:
    return [{"protocol": proto, "port": number} for number, proto in sorted(ports)]


def _kubernetes(w: Workload, edges: dict[tuple[Workload, Workload], _Rules],
                name: str) -> dict[str, Any]:
    def peer(p: Workload) -> dict[str, Any]:
        return {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: p[0]}},
                "podSelector": {"matchLabels": dict(p[1])}}

    ingress = [{"from": [peer(s)], "ports": _ports_k8s(r.ports)}
               for (s, d), r in sorted(edges.items()) if d == w]
    egress = [{"to": [peer(d)], "ports": _ports_k8s(r.ports)}
              for (s, d), r in sorted(edges.items()) if s == w]
    spec: dict[str, Any] = {"podSelector": {"matchLabels": dict(w[1])},
                            "policyTypes": ["Ingress", "Egress"]}
    if ingress:
        spec["ingress"] = ingress
    if egress:
        spec["egress"] = egress
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": w[0]}, "spec": spec}


def _cilium(w: Workload, edges: dict[tuple[Workload, Workload], _Rules],
            name: str) -> dict[str, Any]:
    def peer(p: Workload) -> dict[str, Any]:
        return {"matchLabels": {**dict(p[1]), f"k8s:{CILIUM_NAMESPACE_LABEL}": p[0]}}

    def to_ports(r: _Rules, *, l7: bool) -> list[dict[str, Any]]:
        out = []
        for number, proto in sorted(r.ports):
            entry: dict[str, Any] = {"ports": [{"port": str(number), "protocol": proto}]}
            requests = r.http.get((number, proto)) if l7 else None
            if requests:
                entry["rules"] = {"http": [{"method": m, "path": _re2_literal(p)}
                                           for m, p in sorted(requests)]}
            out.append(entry)
        return out

    ingress = [{"fromEndpoints": [peer(s)], "toPorts": to_ports(r, l7=True)}
               for (s, d), r in sorted(edges.items()) if d == w]
    egress = [{"toEndpoints": [peer(d)], "toPorts": to_ports(r, l7=False)}
              for (s, d), r in sorted(edges.items()) if s == w]
    # An empty rule ({}) puts the direction in default-deny without allowing anything (cilium
    # examples/policies/l3/egress-default-deny/egress-default-deny.yaml: `egress: [{}]`).
    spec = {"endpointSelector": {"matchLabels": dict(w[1])},
            "ingress": ingress or [{}], "egress": egress or [{}]}
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
            "metadata": {"name": name, "namespace": w[0]}, "spec": spec}


def _re2_literal(text: str) -> str:
    """``text`` as an RE2 pattern that matches exactly it (Cilium matches the whole path)."""
    return re.sub(r"([\\.^$|?*+()\[\]{}])", r"\\\1", text)
