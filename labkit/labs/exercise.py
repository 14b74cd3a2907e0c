"""Exercise grading: a learner's answer is judged by what it *means*, then by real probes.

A self-check that only probes the cells the exercise is about lets the classic mistakes
through: a ``namespaceSelector`` and a ``podSelector`` in two separate ``from`` items
(OR: every pod of the frontend's namespace gets in) looks right from the frontend. So a
policy answer is compared with the reference solution by the policy engine over the
whole cluster, plus *decoy* endpoints that tell those mistakes apart:

- another pod in the frontend's namespace (``shop-web/debug``): AND written as OR;
- a pod with the frontend's labels in another namespace (``shop-ops/frontend``): a
  ``podSelector`` without its ``namespaceSelector``, or an empty ``namespaceSelector``;
- an address outside the cluster: a rule with no peer at all;
- a second port (9090): a rule without ``ports``.

The first difference is reported in plain words; only then do real probes confirm.

Every object an exercise check applies carries the annotation ``labkit/exercise``; the
next attempt at the same exercise deletes the earlier ones first (a policy under a
different name would otherwise stay and change the verdict), and says so.
"""

from __future__ import annotations

import copy
import functools
import ipaddress
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar

from labkit.errors import CheckFailed, LabkitError
from labkit.model import ClusterState, HttpRequest, Namespace, Pod, Traffic, Verdict, short_names
from labkit.policy import Engine
from labkit.policy.state import add_policy

if TYPE_CHECKING:
    from labkit.lab import Lab, Manifests
    from labkit.labs.common import CheckResult

#: Set by labkit on every object an exercise check applies (value: the exercise's id).
ANNOTATION = "labkit/exercise"
#: The kinds an exercise answer may be; earlier attempts are looked for among these.
KINDS = (("networking.k8s.io/v1", "NetworkPolicy"), ("projectcalico.org/v3", "NetworkPolicy"),
         ("projectcalico.org/v3", "GlobalNetworkPolicy"), ("cilium.io/v2", "CiliumNetworkPolicy"),
         ("v1", "Service"))
OUTSIDE = "ip:203.0.113.10"  # TEST-NET-3 (RFC 5737): an address outside the cluster
OTHER_PORT = 9090


@dataclass(frozen=True)
class Decoy:
    namespace: str
    name: str
    labels: dict[str, str]
    why: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


DECOYS = (
    Decoy("shop-web", "debug", {"app": "debug"}, "another pod in shop-web, not the frontend"),
    Decoy("shop-ops", "frontend", {"app": "frontend", "tier": "web"},
          "a pod with the frontend's labels in another namespace, shop-ops"),
)


# -- who is who, in the learner's words ---------------------------------------------------
def endpoint_label(key: str, state: ClusterState | None = None) -> str:
    """``shop-api/api-2`` for the second API pod; decoys and addresses say what they are."""
    decoy = next((d for d in DECOYS if d.key == key), None)
    if decoy is not None:
        return f"{key} (a decoy: {decoy.why})"
    if key == OUTSIDE:
        return f"{key[3:]} (an address outside the cluster)"
    if key.startswith("ip:") or state is None or key not in state.pods:
        return key[3:] if key.startswith("ip:") else key
    ns = key.split("/")[0]
    same_ns = [k for k in state.pods if k.split("/")[0] == ns]
    return f"{ns}/{short_names(same_ns, state.pods)[key]}"


# -- earlier attempts ------------------------------------------------------------------------
def annotate(docs: Sequence[dict[str, Any]], exercise: str) -> list[dict[str, Any]]:
    out = []
    for doc in docs:
        doc = copy.deepcopy(doc)
        meta = doc.setdefault("metadata", {})
        meta["annotations"] = {**(meta.get("annotations") or {}), ANNOTATION: exercise}
        out.append(doc)
    return out


def earlier_attempts(lab: Lab, exercise: str | None = None) -> list[dict[str, Any]]:
    """Stubs (apiVersion, kind, name, namespace) of what earlier attempts left applied."""
    served = lab.served() | {("networking.k8s.io/v1", "NetworkPolicy"), ("v1", "Service")}
    found = lab.impl.annotated(ANNOTATION, [k for k in KINDS if k in served])
    return [stub for stub, value in found if exercise is None or value == exercise]


def remove_attempts(lab: Lab, exercise: str | None = None) -> list[str]:
    """Delete what earlier attempts at ``exercise`` (every exercise: None) left applied."""
    stubs = earlier_attempts(lab, exercise)
    return lab.delete(stubs) if stubs else []


# -- meaning -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Difference:
    traffic: Traffic
    learner: Verdict
    reference: Verdict

    @property
    def too_open(self) -> bool:
        return self.learner.allowed and not self.reference.allowed


def _outcome(v: Verdict) -> str:
    """``allowed``, ``answered 403`` (an HTTP rule refused it) or ``dropped``."""
    if v.allowed:
        return "allowed"
    return "answered 403" if v.denial is not None and v.denial.value == "http-403" \
        else "dropped"


@dataclass
class Comparison:
    state: ClusterState
    differences: list[Difference] = field(default_factory=list)
    cells: int = 0


def with_decoys(state: ClusterState) -> ClusterState:
    """``state`` plus the decoy pods (addresses at the top of the pod subnet, unused)."""
    net = ipaddress.ip_network(state.pod_cidr)
    pods, namespaces = dict(state.pods), dict(state.namespaces)
    for i, d in enumerate(DECOYS):
        namespaces.setdefault(d.namespace, Namespace(d.namespace))
        pods[d.key] = Pod(d.namespace, d.name, dict(d.labels), str(net.broadcast_address - 2 - i))
    return replace(state, pods=pods, namespaces=namespaces, policies=list(state.policies))


def _with(state: ClusterState, objects: Iterable[Any]) -> ClusterState:
    out = replace(state, policies=list(state.policies))
    for obj in objects:
        add_policy(out, obj)
    return out


def compare(state: ClusterState, learner: Sequence[Any], reference: Sequence[Any],
            ports: Sequence[int] = (8080, OTHER_PORT),
            requests: Sequence[HttpRequest] = ()) -> Comparison:
    """What ``learner`` allows against what ``reference`` allows, over every pod of
    ``state`` plus the decoys and an outside address, on ``ports`` (TCP). With ``requests``
    (L7 exercises) each is also sent on the first port, and a 403 differs from a drop."""
    full = with_decoys(state)
    pods = [k for k, p in full.pods.items() if not p.host_network]
    pods.sort(key=lambda k: (_rank(k), k))
    sources = [*pods, OUTSIDE]
    traffic = [Traffic(s, d, p) for p in ports for s in sources for d in pods if s != d]
    traffic += [Traffic(s, d, ports[0], "TCP", r) for r in requests for s in sources
                for d in pods if s != d]
    mine = Engine(_with(full, learner), cni=None).evaluate_all(traffic)
    ref = Engine(_with(full, reference), cni=None).evaluate_all(traffic)
    diffs = [Difference(t, a, b) for t, a, b in zip(traffic, mine, ref, strict=True)
             if _outcome(a) != _outcome(b)]
    return Comparison(full, diffs, len(traffic))


def _rank(key: str) -> int:
    """Report order: the shop first, then the decoys, then the rest of the cluster."""
    if key.split("/")[0] in ("shop-web", "shop-api") and key not in {d.key for d in DECOYS}:
        return 0
    return 1 if any(d.key == key for d in DECOYS) else 2


def explain(diff: Difference, state: ClusterState, docs: Sequence[dict[str, Any]]) -> str:
    """The difference in plain words, with the classic mistake behind it when one fits."""
    t = diff.traffic
    src, dst = endpoint_label(t.source, state), endpoint_label(t.destination, state)
    if t.http is not None:
        text = (f"with your policy {t.http.method} {t.http.path} from {src} to {dst} on TCP "
                f"{t.port} is {_outcome(diff.learner)}; the exercise wants it "
                f"{_outcome(diff.reference)}")
    elif diff.too_open:
        text = f"your policy also lets {src} reach {dst} on TCP {t.port}; the exercise does not"
    else:
        text = f"your policy blocks {src} -> {dst} on TCP {t.port}, which the exercise keeps open"
    why = classic_mistake(diff, docs)
    if why:
        return f"{text}: {why}"
    reason = _main_reason(diff.learner, docs)  # what the learner's policy did, and why
    return f"{text} ({reason})" if reason else text


def _main_reason(verdict: Verdict, docs: Sequence[dict[str, Any]]) -> str:
    """The reason that names one of the learner's policies, else the ingress side's."""
    names = [str((d.get("metadata") or {}).get("name", "")) for d in docs]
    for wanted in ([n for n in names if n], ["ingress"]):
        found = next((r for r in verdict.reasons if any(w in r for w in wanted)), "")
        if found:
            return found
    return verdict.reasons[0] if verdict.reasons else ""


def classic_mistake(diff: Difference, docs: Sequence[dict[str, Any]]) -> str:
    """A sentence naming the well-known mistake that explains ``diff``, or ""."""
    t = diff.traffic
    cilium = _cilium_mistake(diff, docs)
    if cilium:
        return cilium
    for doc in docs:
        if doc.get("kind") != "NetworkPolicy" or "networking.k8s.io" not in str(
                doc.get("apiVersion")):
            continue
        spec = doc.get("spec") or {}
        for direction, peers_key in (("ingress", "from"), ("egress", "to")):
            for rule in spec.get(direction) or []:
                peers = rule.get(peers_key) or []
                ns_only = [p for p in peers if "namespaceSelector" in p and "podSelector" not in p]
                pod_only = [p for p in peers if "podSelector" in p and "namespaceSelector" not in p]
                if diff.too_open and ns_only and pod_only:
                    return (f"the namespaceSelector and the podSelector are in separate "
                            f"`{peers_key}` items, which means OR (any pod of that namespace, "
                            "or any pod with those labels here); put both in ONE item for AND")
                if diff.too_open and t.port == OTHER_PORT and not rule.get("ports"):
                    return ("the rule has no `ports`, so it opens every port, not just 8080")
                if not diff.too_open and pod_only and t.source.split("/")[0] != \
                        (doc.get("metadata") or {}).get("namespace"):
                    return ("a podSelector alone only matches pods in the policy's own "
                            "namespace; add a namespaceSelector in the same item")
    return ""


def _cilium_mistake(diff: Difference, docs: Sequence[dict[str, Any]]) -> str:
    """The classic CiliumNetworkPolicy mistakes (Cilium 1.20 docs: policy language, layer 7)."""
    t = diff.traffic
    for doc in docs:
        if doc.get("kind") != "CiliumNetworkPolicy":
            continue
        ns = (doc.get("metadata") or {}).get("namespace")
        for rule in (doc.get("spec") or {}).get("ingress") or []:
            selectors = [s.get("matchLabels") or {} for s in rule.get("fromEndpoints") or []]
            no_ns = [s for s in selectors if "k8s:io.kubernetes.pod.namespace" not in s]
            if no_ns and not diff.learner.allowed and diff.reference.allowed \
                    and t.source.split("/")[0] != ns:
                return ("in a CiliumNetworkPolicy, fromEndpoints selects pods of the policy's "
                        f"own namespace ({ns}) unless the selector names another with the label "
                        "k8s:io.kubernetes.pod.namespace")
            if diff.too_open and t.port == OTHER_PORT and selectors and not rule.get("toPorts"):
                return "the rule has no `toPorts`, so it opens every port, not just 8080"
        if t.http is not None and diff.too_open:
            return ("an HTTP rule's method and path are regular expressions that must match the "
                    "WHOLE value, and a request needs only one rule to match: look for a pattern "
                    "that is wider than you meant (such as .*)")
        if t.http is not None and not diff.learner.allowed and not diff.reference.allowed:
            return ("this source reaches the proxy and gets 403 instead of being dropped: a rule "
                    "admits it at L3/L4; only the frontend should pass L3/L4 at all"
                    if _outcome(diff.learner) == "answered 403" else
                    "this source is dropped at L3/L4 instead of reaching the proxy")
    return ""


# -- bookkeeping for the closing check ----------------------------------------------------------
F = TypeVar("F", bound=Callable[..., "CheckResult"])


def exercise(exercise_id: str) -> Callable[[F], F]:
    """Record each run of an exercise check on the Lab (passed, failed, not attempted)."""
    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def run(lab: Lab, *args: Any, **kwargs: Any) -> CheckResult:
            book: dict[str, bool | None] = getattr(lab, "exercises", {})
            try:
                result = fn(lab, *args, **kwargs)
            except LabkitError:
                book[exercise_id] = False
                raise
            book[exercise_id] = result.passed
            return result
        return run  # type: ignore[return-value]
    return wrap


def summary(lab: Lab, exercise_ids: Sequence[str]) -> str:
    """``exercises: 1/2 passed, 1 not attempted`` for the closing check."""
    seen = [lab.exercises.get(e) for e in exercise_ids]
    passed = sum(1 for s in seen if s is True)
    failed = sum(1 for s in seen if s is False)
    parts = [f"exercises: {passed}/{len(seen)} passed"]
    if failed:
        parts.append(f"{failed} failed")
    if len(seen) - passed - failed:
        parts.append(f"{len(seen) - passed - failed} not attempted")
    return ", ".join(parts)


@dataclass(frozen=True)
class Answer:
    docs: list[dict[str, Any]]
    objects: list[Any]
    #: What earlier attempts had left applied, now deleted.
    removed: list[str]
    #: The cluster as it was before the answer was applied (earlier attempts removed).
    before: ClusterState

    def removed_note(self) -> list[str]:
        return [f"removed your earlier attempt: {', '.join(self.removed)}"] if self.removed \
            else []


def apply_answer(lab: Lab, exercise_id: str, answer: Manifests, *, what: str) -> Answer:
    """Validate the learner's answer, remove earlier attempts, apply it (annotated).

    Nothing is removed or applied when the answer does not parse: the error names the
    file, object and field.
    """
    if isinstance(answer, str) and not answer.strip():
        raise CheckFailed(f"{what} is empty", hint="write the YAML between the quotes")
    docs, objects = lab.validate(answer, source=what)
    if not docs:
        raise CheckFailed(f"{what} holds no object", hint="write the YAML between the quotes")
    removed = remove_attempts(lab, exercise_id)
    before = lab.impl.state()
    lab.apply(annotate(docs, exercise_id))
    return Answer(docs, objects, removed, before)
