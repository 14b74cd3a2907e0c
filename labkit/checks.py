"""Learner self-checks and closing checks: they test *behaviour* (probes), not objects.

Each check returns a :class:`CheckResult` (text in a terminal, HTML in Jupyter,
JSON) when the behaviour is there, and raises :class:`~labkit.errors.CheckFailed`
with a hint that points at the fix when it is not. An exercise the learner has
not attempted (answer ``None``) is reported as "not attempted" and does not fail,
so a notebook runs green top to bottom before the learner writes anything.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from labkit.display import SIMULATED_BADGE, escape
from labkit.display.render import Rendered, html_text
from labkit.errors import CheckFailed
from labkit.exercise import exercise as exercise_check
from labkit.exercise import summary as exercise_summary
from labkit.matrix import plural

if TYPE_CHECKING:
    from labkit.lab import Lab
    from labkit.matrix import Cell

#: Flannel's VXLAN backend sends on UDP 8472 (the Linux kernel's default port, which
#: Flannel keeps; chart values in cni-ground-truth.md §3).
FLANNEL_VXLAN_PORT = 8472
SHOP_APPS = ("shop-web/frontend", "shop-api/api", "shop-api/db")
SHOP_PORT = 8080


@dataclass(repr=False)
class CheckResult(Rendered):
    name: str
    passed: bool | None  # None: the learner has not attempted it yet
    message: str
    details: list[str] = field(default_factory=list)
    simulated: bool = False

    @property
    def mark(self) -> str:
        return {True: "PASSED", False: "FAILED", None: "NOT ATTEMPTED"}[self.passed]

    def to_text(self) -> str:
        tag = " [simulated]" if self.simulated else ""
        lines = [f"[{self.mark}]{tag} {self.name}: {self.message}",
                 *(f"  - {d}" for d in self.details)]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        colour = {True: "#1a7f37", False: "#cf222e", None: "#9a6700"}[self.passed]
        items = "".join(f"<li>{html_text(d)}</li>" for d in self.details)
        tag = f" {SIMULATED_BADGE}" if self.simulated else ""
        return (f'<div style="border-left:4px solid {colour};padding-left:8px">'
                f'<b style="color:{colour}">{self.mark}</b>{tag} <b>{escape(self.name)}</b>: '
                f"{html_text(self.message)}<ul>{items}</ul></div>")

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "message": self.message,
                "details": list(self.details), "simulated": self.simulated}


def _fail(name: str, message: str, hint: str) -> CheckFailed:
    return CheckFailed(f"{name}: {message}", hint=hint)


def not_attempted(name: str, todo: str) -> CheckResult:
    """An exercise's check before the learner has written anything: what to write, where."""
    return CheckResult(name, None, f"{todo} and run this cell again (or set SOLVE_EXERCISES = "
                       "True to run the reference solution)")


def _verdict(allowed: bool) -> str:
    return "open" if allowed else "blocked"


def _describe(cell: Cell) -> str:
    """``frontend -> db TCP/8080: expected blocked, observed open`` (learner names)."""
    observed = _verdict(cell.seen.allowed) if cell.observed else "not probed"
    return f"{cell.title}: expected {_verdict(cell.expected.allowed)}, observed {observed}"


# -- cluster ----------------------------------------------------------------------------------
def nodes_ready(lab: Lab) -> CheckResult:
    nodes = lab.status().nodes
    if not nodes:
        raise _fail("nodes Ready", "the cluster has no nodes", "run lab.up() first")
    waiting = [n for n in nodes if not n.ready]
    if waiting:
        raise _fail("nodes Ready", f"{len(waiting)} of {len(nodes)} nodes are NotReady: "
                    f"{waiting[0].name}: {waiting[0].message or 'no message'}",
                    "a node is Ready only once a CNI is installed: lab.install_cni('flannel')")
    return CheckResult("nodes Ready", True, f"{len(nodes)} of {len(nodes)} nodes are Ready",
                       [f"{n.name}: podCIDR {n.pod_cidr or '<none>'}" for n in nodes],
                       lab.simulated)


def pods_in_node_ranges(lab: Lab) -> CheckResult:
    """Every pod on the pod network got its address from its own node's podCIDR."""
    cidrs = {n.name: n.pod_cidr for n in lab.nodes()}
    pods = [p for p in lab.pods() if p.ip and not p.host_network]
    if not pods:
        raise _fail("pod addresses", "no pod on the pod network has an address yet",
                    "install a CNI and deploy the shop: lab.install_cni('flannel'); "
                    "lab.deploy_shop()")
    details, wrong = [], []
    for p in sorted(pods, key=lambda p: (p.node, p.key)):
        cidr = cidrs.get(p.node, "")
        inside = bool(cidr) and ipaddress.ip_address(p.ip) in ipaddress.ip_network(cidr)
        details.append(f"{p.key} {p.ip} on {p.node} ({cidr or 'no podCIDR'})"
                       + ("" if inside else "  <-- outside its node's range"))
        if not inside:
            wrong.append(p.key)
    if wrong:
        raise _fail("pod addresses", f"{len(wrong)} pods have addresses outside their node's "
                    f"podCIDR, e.g. {wrong[0]}",
                    "pods started before the CNI keep stale addresses: restart them "
                    "(delete the pods; their Deployment recreates them)")
    return CheckResult("pod addresses", True, f"all {len(pods)} pods on the pod network have an "
                       "address from their node's podCIDR", details, lab.simulated)


def connection(lab: Lab, source: str, destination: str, port: int = SHOP_PORT, *,
               open: bool = True) -> CheckResult:
    """Probe one connection and require it to be open (or blocked)."""
    cell = lab.probe(source, destination, port)
    name = f"{source} -> {destination}:{port}"
    if cell.seen.allowed != open:
        raise _fail(name, f"observed {_verdict(cell.seen.allowed)}, wanted "
                    f"{_verdict(open)} ({cell.seen.detail or 'no detail'})",
                    "lab.status() shows whether the pods are Running and addressed")
    return CheckResult(name, True, f"observed {_verdict(open)} after "
                       f"{cell.seen.attempts} attempt(s)", [_describe(cell)], lab.simulated)


def policy_ignored(lab: Lab, source: str, destination: str, port: int = SHOP_PORT
                   ) -> CheckResult:
    """The Flannel lesson for one connection: the policies say blocked, the traffic flows."""
    cell = lab.probe(source, destination, port)
    name = "policy ignored by the CNI"
    if cell.expected.allowed:
        raise _fail(name, f"{_describe(cell)}: no applied policy blocks this connection",
                    "apply the lab's NetworkPolicy first (the cell that calls lab.apply)")
    if not cell.seen.allowed:
        raise _fail(name, f"{_describe(cell)}: the CNI enforced the policy ({lab.cni})",
                    "this lesson needs Flannel, which enforces no policy; kind's default "
                    "kindnetd does enforce NetworkPolicy")
    return CheckResult(name, True, f"{lab.cni} let the connection through although the "
                       "policy blocks it", [_describe(cell), *cell.expected.reasons],
                       lab.simulated)


# -- lab 01 exercises -------------------------------------------------------------------------
EXERCISES_DIR = "exercises"
LAB01_EXERCISES = ("lab01-ex1", "prediction")


def reference(name: str) -> str:
    """A reference solution (environments/exercises/NAME.yaml) as YAML text."""
    from labkit.backends.stage import environments_dir

    return (environments_dir() / EXERCISES_DIR / f"{name}.yaml").read_text(encoding="utf-8")


def judge_policy(lab: Lab, name: str, answer: Any, exercise_id: str, reference_name: str
                 ) -> Any:
    """Apply a policy answer (earlier attempts removed) and compare its meaning with the
    reference over the whole cluster plus decoys; raises CheckFailed on the first difference.
    Returns the applied Answer."""
    from labkit import exercise

    applied = exercise.apply_answer(lab, exercise_id, answer, what="MY_POLICY")
    ref_docs, ref_objects = lab.validate(reference(reference_name))
    result = exercise.compare(applied.before, applied.objects, ref_objects)
    if result.differences:
        first = result.differences[0]
        more = len(result.differences) - 1
        raise _fail(name, exercise.explain(first, result.state, applied.docs)
                    + (f" ({more} more connection{' differs' if more == 1 else 's differ'})"
                       if more else ""),
                    "fix the policy in your cell and run the check again (this attempt stays "
                    "applied until then; the next one replaces it)"
                    + ("; " + "; ".join(applied.removed_note()) if applied.removed else ""))
    return applied


@exercise_check("lab01-ex1")
def exercise_api_from_frontend_only(lab: Lab, manifest: Any) -> CheckResult:
    """Exercise: a NetworkPolicy letting only the frontend reach the API on 8080.

    Judged by meaning first (labkit.exercise: the engine over the whole cluster and decoys
    that tell the classic mistakes apart), then real probes: expected allows frontend -> api
    and blocks db -> api; observed stays open on Flannel, which is the point of the lab.
    """
    name = "exercise 1: only the frontend may call the API"
    if manifest is None:
        return not_attempted(name, "write your policy in MY_POLICY")
    applied = judge_policy(lab, name, manifest, "lab01-ex1", "01-api-from-frontend-only")
    api = lab.resolve("shop-api/api")
    cells = {src: lab.probe(src, api, SHOP_PORT)
             for src in ("shop-web/frontend", "shop-api/db")}
    front, db = cells["shop-web/frontend"], cells["shop-api/db"]
    if not front.expected.allowed or db.expected.allowed:
        raise _fail(name, f"the probes disagree with the engine: {_describe(front)}; "
                    f"{_describe(db)}", "lab.status() shows whether the pods are Running")
    details = [*applied.removed_note(), "same meaning as the reference over every pod, the "
               "decoys (shop-web/debug, shop-ops/frontend, an outside address) and port 9090",
               _describe(front), _describe(db)]
    if lab.cni == "flannel" and db.observed and db.observed.allowed:
        details.append("observed stays open: Flannel does not enforce NetworkPolicy")
    return CheckResult(name, True, "your policy means what the exercise asks", details,
                       lab.simulated)


@exercise_check("prediction")
def exercise_prediction(lab: Lab, prediction: str | None, source: str = "shop-api/db",
                        destination: str = "shop-api/api", port: int = SHOP_PORT
                        ) -> CheckResult:
    """Exercise: predict whether a connection is open or blocked, then a probe decides."""
    name = f"exercise 2: predict {source} -> {destination}:{port}"
    if prediction is None:
        return CheckResult(name, None, "set PREDICTION to 'open' or 'blocked' and run this "
                           "cell again")
    if prediction not in ("open", "blocked"):
        raise _fail(name, f"PREDICTION is {prediction!r}", "write 'open' or 'blocked'")
    cell = lab.probe(source, destination, port)
    seen = _verdict(cell.seen.allowed)
    if seen != prediction:
        raise _fail(name, f"you predicted {prediction}, the probe saw {seen} "
                    f"({_describe(cell)})",
                    "expected is what the policies mean; observed is what the CNI does. "
                    f"Which policies does {lab.cni} enforce?")
    return CheckResult(name, True, f"right: the probe saw {seen}", [_describe(cell)],
                       lab.simulated)


# -- lab 01 closing check ---------------------------------------------------------------------
def flannel_goal(lab: Lab) -> CheckResult:
    """Lab 01 reached its goal: Flannel runs, pods are addressed per node, policies are ignored."""
    name = "lab 01 (Flannel)"
    if lab.cni != "flannel":
        raise _fail(name, f"the installed CNI is {lab.cni or 'none'}, not flannel",
                    "run the notebook from the top: lab.install_cni('flannel')")
    ready = nodes_ready(lab)
    addresses = pods_in_node_ranges(lab)
    for app in SHOP_APPS:
        lab.resolve(app)  # raises ClusterError with a hint when the shop is missing
    matrix = lab.matrix(title="lab 01 closing check")
    blocked = [c for c in matrix.cells.values() if not c.expected.allowed]
    if not blocked:
        raise _fail(name, "no applied policy blocks any shop connection",
                    "apply the lab's NetworkPolicy (environments/policies/"
                    "shop-db-from-api-only.yaml)")
    enforced = [c for c in matrix.cells.values() if c.observed and not c.observed.allowed]
    if enforced:
        raise _fail(name, f"{plural(len(enforced), 'connection')} blocked, e.g. "
                    f"{_describe(enforced[0])}",
                    "Flannel enforces no policy: if traffic is blocked, something else is "
                    "wrong (pods not Ready? `lab.status()`)")
    return CheckResult(
        name, True,
        "Flannel runs, pods are addressed from their node's /24, and "
        + ("the one connection the policies block is open on Flannel" if len(blocked) == 1
           else f"all {len(blocked)} connections the policies block are open on Flannel"),
        [ready.message, addresses.message, matrix.summary(),
         exercise_summary(lab, LAB01_EXERCISES)], lab.simulated)


def overlay_path(lab: Lab, source: str, destination: str, port: int = SHOP_PORT) -> list[str]:
    """How a pod-to-pod packet between two nodes travels on Flannel's VXLAN overlay."""
    pods = {p.key: p for p in lab.pods()}
    nodes = {n.name: n for n in lab.nodes()}
    src, dst = pods[lab.resolve(source)], pods[lab.resolve(destination)]
    if src.node == dst.node:
        return [f"{src.key} and {dst.key} share node {src.node}: the packet crosses the node's "
                "cni0 bridge and never enters the overlay"]
    a, b = nodes[src.node], nodes[dst.node]
    return [
        f"inner packet: {src.ip} -> {dst.ip} TCP dport {port} ({src.key} -> {dst.key})",
        f"{src.node}: the route for {b.pod_cidr} points at flannel.1, which wraps the packet "
        "in VXLAN",
        f"outer packet: {a.ip} -> {b.ip} UDP dport {FLANNEL_VXLAN_PORT} on the kind network",
        f"{dst.node}: flannel.1 unwraps it and cni0 delivers it to {dst.key}",
    ]


def remove_policies(lab: Lab, namespaces: tuple[str, ...] = ("shop-web", "shop-api")
                    ) -> list[str]:
    """Delete every Kubernetes NetworkPolicy in ``namespaces`` (a notebook's clean slate).

    Re-running a notebook must start from the state its narrative describes, whatever
    policies an earlier run (or the learner) left behind, whatever their names.
    """
    stubs = [
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
         "metadata": {"name": p.name, "namespace": p.namespace}, "spec": {"podSelector": {}}}
        for p in lab.impl.state().policies
        if getattr(p, "kind", "") == "NetworkPolicy" and getattr(p, "namespace", "") in namespaces
    ]
    return lab.delete(stubs) if stubs else []


def vxlan_seen(capture: Any, port: int = FLANNEL_VXLAN_PORT) -> CheckResult:
    """A capture between two nodes shows the pods' traffic wrapped in VXLAN on UDP ``port``."""
    name = f"VXLAN on UDP {port}"
    key = f"UDP/{port}"
    if capture.empty or key not in capture.counts():
        seen = ", ".join(f"{k} x{n}" for k, n in capture.counts().items()) or "no packets"
        raise _fail(name, f"the capture on {capture.node or '?'} saw {seen}",
                    "capture on the SOURCE pod's node, between pods on different nodes "
                    "(same-node traffic never enters the overlay); notes: "
                    + ("; ".join(capture.notes) or "none"))
    details = [f"{capture.counts()[key]} packets on {key} between node addresses",
               f"encapsulation: {', '.join(capture.encapsulations) or 'not decoded'}",
               *(f"inside: {flow}" for flow in capture.inner_flows[:2])]
    if capture.cleartext_http:
        details.append("readable inside the tunnel: " + "; ".join(capture.http_lines[:2]))
    return CheckResult(name, True, "pod traffic between nodes travels inside VXLAN",
                       details, capture.simulated)
