"""Lab 01 (Flannel): self-checks and the closing check; they test *behaviour* (probes).

The result type and the checks every lab shares are in :mod:`labkit.labs.common`;
the ones the notebook calls through this module (``checks.connection``,
``checks.exercise_prediction``, ``checks.remove_policies``) are listed in ``__all__``.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from labkit.cnis import CNIS
from labkit.labs.common import (
    SHOP_APPS,
    SHOP_PORT,
    CheckResult,
    connection,
    describe,
    exercise_prediction,
    fail,
    judge_policy,
    not_attempted,
    reference,
    remove_policies,
    require_cni,
)
from labkit.labs.exercise import exercise as exercise_check
from labkit.labs.exercise import summary as exercise_summary
from labkit.matrix import plural

if TYPE_CHECKING:
    from labkit.lab import Lab

#: Flannel's VXLAN backend sends on UDP 8472 (the Linux kernel's default port, which
#: Flannel keeps; chart values in cni-ground-truth.md §3).
FLANNEL_VXLAN_PORT = CNIS["flannel"].datapath.vxlan_port
#: The "try it" cell, where the learner types the kubectl command (judged by check_typed).
LAB01_TRY_IT = "try it: the shop's pods, their addresses and nodes"
LAB01_EXERCISES = ("lab01-ex1", "prediction", LAB01_TRY_IT)
__all__ = ["FLANNEL_VXLAN_PORT", "LAB01_EXERCISES", "LAB01_TRY_IT", "CheckResult", "connection",
           "exercise_api_from_frontend_only", "exercise_prediction", "flannel_goal",
           "nodes_ready", "overlay_path", "pods_in_node_ranges", "policy_ignored", "reference",
           "remove_policies", "vxlan_seen"]


# -- cluster ----------------------------------------------------------------------------------
def nodes_ready(lab: Lab) -> CheckResult:
    nodes = lab.status().nodes
    if not nodes:
        raise fail("nodes Ready", "the cluster has no nodes", "run lab.up() first")
    waiting = [n for n in nodes if not n.ready]
    if waiting:
        raise fail("nodes Ready", f"{len(waiting)} of {len(nodes)} nodes are NotReady: "
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
        raise fail("pod addresses", "no pod on the pod network has an address yet",
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
        raise fail("pod addresses", f"{len(wrong)} pods have addresses outside their node's "
                    f"podCIDR, e.g. {wrong[0]}",
                    "pods started before the CNI keep stale addresses: restart them "
                    "(delete the pods; their Deployment recreates them)")
    return CheckResult("pod addresses", True, f"all {len(pods)} pods on the pod network have an "
                       "address from their node's podCIDR", details, lab.simulated)


def policy_ignored(lab: Lab, source: str, destination: str, port: int = SHOP_PORT
                   ) -> CheckResult:
    """The Flannel lesson for one connection: the policies say blocked, the traffic flows."""
    cell = lab.probe(source, destination, port)
    name = "policy ignored by the CNI"
    if cell.expected.allowed:
        raise fail(name, f"{describe(cell)}: no applied policy blocks this connection",
                    "apply the lab's NetworkPolicy first (the cell that calls lab.apply)")
    if not cell.seen.allowed:
        raise fail(name, f"{describe(cell)}: the CNI enforced the policy ({lab.cni})",
                    "this lesson needs Flannel, which enforces no policy; kind's default "
                    "kindnetd does enforce NetworkPolicy")
    return CheckResult(name, True, f"{lab.cni} let the connection through although the "
                       "policy blocks it", [describe(cell), *cell.expected.reasons],
                       lab.simulated)


# -- lab 01 exercises -------------------------------------------------------------------------
@exercise_check("lab01-ex1")
def exercise_api_from_frontend_only(lab: Lab, manifest: Any) -> CheckResult:
    """Exercise: a NetworkPolicy letting only the frontend reach the API on 8080.

    Judged by meaning first (labkit.labs.exercise: the engine over the whole cluster and
    decoys that tell the classic mistakes apart), then real probes: expected allows
    frontend -> api and blocks db -> api; observed stays open on Flannel, the lab's point.
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
        raise fail(name, f"the probes disagree with the engine: {describe(front)}; "
                   f"{describe(db)}", "lab.status() shows whether the pods are Running")
    details = [*applied.removed_note(), "same meaning as the reference over every pod, the "
               "decoys (shop-web/debug, shop-ops/frontend, an outside address) and port 9090",
               describe(front), describe(db)]
    if lab.cni == "flannel" and db.observed and db.observed.allowed:
        details.append("observed stays open: Flannel does not enforce NetworkPolicy")
    return CheckResult(name, True, "your policy means what the exercise asks", details,
                       lab.simulated)


# -- lab 01 closing check ---------------------------------------------------------------------
def flannel_goal(lab: Lab) -> CheckResult:
    """Lab 01 reached its goal: Flannel runs, pods are addressed per node, policies are ignored."""
    name = "lab 01 (Flannel)"
    require_cni(lab, name, "flannel",
                "run the notebook from the top: lab.install_cni('flannel')")
    ready = nodes_ready(lab)
    addresses = pods_in_node_ranges(lab)
    for app in SHOP_APPS:
        lab.resolve(app)  # raises ClusterError with a hint when the shop is missing
    matrix = lab.matrix(title="lab 01 closing check")
    blocked = [c for c in matrix.cells.values() if not c.expected.allowed]
    if not blocked:
        raise fail(name, "no applied policy blocks any shop connection",
                    "apply the lab's NetworkPolicy (environments/policies/"
                    "shop-db-from-api-only.yaml)")
    enforced = [c for c in matrix.cells.values() if c.observed and not c.observed.allowed]
    if enforced:
        raise fail(name, f"{plural(len(enforced), 'connection')} blocked, e.g. "
                    f"{describe(enforced[0])}",
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


def vxlan_seen(capture: Any, port: int | None = FLANNEL_VXLAN_PORT) -> CheckResult:
    """A capture between two nodes shows the pods' traffic wrapped in VXLAN on UDP ``port``."""
    name = f"VXLAN on UDP {port}"
    key = f"UDP/{port}"
    if capture.empty or key not in capture.counts():
        seen = ", ".join(f"{k} x{n}" for k, n in capture.counts().items()) or "no packets"
        raise fail(name, f"the capture on {capture.node or '?'} saw {seen}",
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
