"""Lab 02 (Flannel -> Calico): the starting state, self-checks and the closing check.

Like every lab's checks (labkit.labs.common), each check probes traffic and raises
CheckFailed with a hint when the behaviour is missing; an exercise left empty is "not
attempted". The course set-up lab 03 also uses (ensure_calico) lives in labs.common.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from labkit.cni.calico import recipe as calico
from labkit.errors import CheckFailed
from labkit.labs.common import (
    LAB01_POLICY,
    POLICIES,
    CheckResult,
    clean_slate,
    describe,
    ensure_calico,
    ensure_lab01,
    fail,
    judge_policy,
    not_attempted,
    require_cni,
)
from labkit.labs.exercise import exercise as exercise_check
from labkit.labs.exercise import summary as exercise_summary
from labkit.matrix import plural

if TYPE_CHECKING:
    from labkit.lab import Lab

#: The "try it" cell, where the learner types the kubectl command (judged by check_typed).
LAB02_TRY_IT = "try it: curl from the frontend to the database"
LAB02_EXERCISES = ("lab02-ex1", "prediction", LAB02_TRY_IT)
__all__ = ["LAB02_EXERCISES", "LAB02_TRY_IT", "POLICIES", "address_table", "calico_goal",
           "clean_slate", "dns_reachable", "ensure_calico", "ensure_lab01", "exercise_db_no_egress",
           "policy_enforced", "stale_pods", "stale_pods_cut_off", "tier_outcomes"]

def address_table(lab: Lab) -> list[dict[str, Any]]:
    """The shop's pods with their node and the /26 block (Calico) their address falls in."""
    rows = []
    for pod in lab.pods():
        if pod.host_network or pod.namespace not in ("shop-web", "shop-api"):
            continue
        block = ipaddress.ip_network(f"{pod.ip}/26", strict=False)
        rows.append({"pod": pod.key, "ip": pod.ip, "node": pod.node, "block /26": str(block)})
    return rows


def stale_pods(lab: Lab) -> list[str]:
    """Pods still holding a pre-Calico address (labkit.cni.calico's rule, on both backends)."""
    return calico.RECIPE.stale_pod_keys(lab.impl)


def stale_pods_cut_off(lab: Lab) -> CheckResult:
    """Before the restart: a pod with a Flannel address reaches nothing (or is already gone)."""
    name = "pods with Flannel addresses have no network"
    stale = [k for k in stale_pods(lab) if k.split("/")[0] in ("shop-web", "shop-api")]
    if not stale:
        return CheckResult(name, True, "no stale pod left (the workloads were already restarted, "
                           "e.g. by an earlier run of this notebook)", [], lab.simulated)
    others = [p.key for p in lab.pods() if p.key != stale[0] and not p.host_network
              and p.namespace in ("shop-web", "shop-api")]
    cell = lab.probe(stale[0], others[0])
    if cell.seen.allowed:
        raise fail(name, f"{describe(cell)} still connects",
                    "the stale pod should lose its network once Flannel's devices are gone")
    return CheckResult(name, True, f"{len(stale)} pods keep their Flannel address and reach "
                       "nothing until restarted", [describe(cell)], lab.simulated)


def policy_enforced(lab: Lab, source: str = "shop-web/frontend",
                    destination: str = "shop-api/db", port: int = 8080) -> CheckResult:
    """The lab-01 lesson reversed: the policy says blocked, and the traffic IS blocked."""
    name = "NetworkPolicy enforced"
    cell = lab.probe(source, destination, port)
    if cell.expected.allowed:
        raise fail(name, f"{describe(cell)}: no applied policy blocks it",
                    f"apply {LAB01_POLICY.name} first")
    if cell.seen.allowed:
        raise fail(name, f"{describe(cell)}: the connection is still open",
                    "is Calico running and were the pods restarted? lab.verify_cni()")
    return CheckResult(name, True, f"{lab.cni} blocks what the policy blocks",
                       [describe(cell), *cell.expected.reasons], lab.simulated)


def dns_reachable(lab: Lab, source: str = "shop-web/frontend", *, open: bool = True
                  ) -> CheckResult:
    """Can ``source`` reach CoreDNS on UDP 53 (name lookups)? ``open=False`` wants it blocked."""
    dns = sorted(p.key for p in lab.pods("kube-system") if p.labels.get("k8s-app") == "kube-dns")
    if not dns:
        raise CheckFailed("no CoreDNS pod", hint="lab.status() shows kube-system's pods")
    cell = lab.probe(source, dns[0], 53, "UDP")
    name = f"DNS from {source} {'works' if open else 'is blocked'}"
    if cell.seen.allowed != open or cell.expected.allowed != open:
        raise fail(name, describe(cell),
                    "a default deny must allow egress to kube-dns on UDP and TCP 53"
                    if open else "this policy was supposed to forget the DNS exception")
    return CheckResult(name, True, describe(cell), list(cell.expected.reasons), lab.simulated)


def tier_outcomes(lab: Lab) -> CheckResult:
    """Deny / Allow / Pass in tier `security`, each seen on one connection to the database."""
    name = "policy order: Deny, Allow and Pass"
    db = lab.resolve("shop-api/db")
    # Pass needs a source in neither shop-web nor the API: labkit's probe pod, in a namespace
    # of its own (never a CoreDNS pod: its image has no shell and no curl).
    cases = [("shop-web/frontend", False, "Deny"), ("shop-api/api", True, "Allow"),
             (lab.probe_pod(), True, "Pass")]
    details = []
    for src, want, action in cases:
        cell = lab.probe(src, db, 8080)
        if cell.expected.allowed != want or cell.seen.allowed != want:
            raise fail(name, f"{action}: {describe(cell)}",
                        "apply environments/policies/calico-tiers/ (the Tier, its two "
                        "policies and the broad NetworkPolicy)")
        why = next((r for r in cell.expected.reasons if "ingress" in r), "")
        details.append(f"{action}: {describe(cell)} — {why}")
    return CheckResult(name, True, "the security tier decides before the default tier",
                       details, lab.simulated)


@exercise_check("lab02-ex1")
def exercise_db_no_egress(lab: Lab, manifest: Any) -> CheckResult:
    """Exercise: a policy in tier `security` that stops the database opening connections.

    Judged by meaning first (the engine over the whole cluster and decoys, against
    environments/exercises/02-db-no-egress.yaml), then confirmed by real probes.
    """
    name = "exercise: the database opens no connection"
    if manifest is None:
        return not_attempted(name, "write your GlobalNetworkPolicy in MY_POLICY")
    applied = judge_policy(lab, name, manifest, "lab02-ex1", "02-db-no-egress")
    db, api = lab.resolve("shop-api/db"), lab.resolve("shop-api/api")
    out, back = lab.probe(db, api, 8080), lab.probe(api, db, 8080)
    if out.seen.allowed or out.expected.allowed:
        raise fail(name, f"the database still connects: {describe(out)}",
                   "the engine agrees with the reference but the probe does not: is Calico "
                   "running? lab.verify_cni()")
    if not back.seen.allowed:
        raise fail(name, f"the API lost the database: {describe(back)}",
                   "deny only the database's egress: its ingress (and the answers to "
                   "connections it accepts) must keep working")
    return CheckResult(name, True, "the database reaches nobody, and still answers the API",
                       [*applied.removed_note(), describe(out), describe(back)],
                       lab.simulated)


def calico_goal(lab: Lab) -> CheckResult:
    """Lab 02 reached its goal: Calico runs, every pod moved, policies mean what they do."""
    name = "lab 02 (Calico)"
    require_cni(lab, name, "calico", "run the migration cell (calico.RECIPE.migrate(lab))")
    verification = lab.verify_cni()
    if not verification.ok:
        raise fail(name, verification.to_text(), "lab.status() shows nodes and pods")
    left = stale_pods(lab)
    if left:
        raise fail(name, f"pods still on Flannel addresses: {', '.join(left[:5])}",
                    "run calico.RECIPE.restart_workloads(lab)")
    matrix = lab.matrix(title="lab 02 closing check")
    blocked = [c for c in matrix.cells.values() if not c.expected.allowed]
    if not blocked:
        raise fail(name, "no applied policy blocks any shop connection",
                    "apply the lab's policies (section 6 or 7)")
    if matrix.diff():
        raise fail(name, f"observed differs from expected in {plural(len(matrix.diff()), 'cell')}"
                   f", e.g. {describe(matrix.diff()[0])}",
                    "on Calico expected and observed agree; a difference is a finding")
    enforced = "the one blocked connection" if len(blocked) == 1 else \
        f"all {len(blocked)} blocked connections"
    return CheckResult(name, True, f"Calico enforces {enforced}; observed equals expected",
                       [verification.to_text().splitlines()[0], matrix.summary(),
                        exercise_summary(lab, LAB02_EXERCISES)], lab.simulated)
