"""Lab 04 (a cluster that runs Cilium): the starting state, self-checks and the closing check.

Like every lab's checks (labkit.labs.common), each check probes traffic and raises
CheckFailed with a hint when the behaviour is missing; an exercise left empty is "not
attempted". The exercise is judged by meaning first (the engine over the cluster plus decoy
pods, labkit.labs.common.judge_meaning), then by probes on the cluster.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from labkit.cni.cilium import recipe as cilium
from labkit.environments import environments_dir
from labkit.labs.common import (
    LAB01_POLICY,
    POLICIES,
    SHOP_APPS,
    SHOP_PORT,
    CheckResult,
    describe,
    exercise_check,
    fail,
    judge_policy,
    not_attempted,
    reference,
    remove_policies,
    require_cni,
)
from labkit.labs.exercise import remove_attempts, summary

if TYPE_CHECKING:
    from labkit.lab import Lab

__all__ = ["ARTICLE_INSTALL", "EXERCISE_REFERENCE", "NETWORK_POLICIES", "cilium_goal",
           "clean_slate", "ensure_cilium", "exercise_cnp_frontend_to_api", "identities_shared",
           "kube_proxy_replaced", "live_migration_plan", "network_policies_enforced",
           "reference", "true_install"]

#: The article's install command (erratum (e), cni-ground-truth.md §6).
ARTICLE_INSTALL = "helm install cilium cilium/cilium --version 1.15.0"
#: Labs 01-02's NetworkPolicies, re-applied on Cilium.
NETWORK_POLICIES = (LAB01_POLICY, POLICIES / "shop")
EXERCISE_ID = "lab04-ex1"
EXERCISE_REFERENCE = "04-api-from-frontend-cnp"
CNP = ("cilium.io/v2", "CiliumNetworkPolicy")


def ensure_cilium(lab: Lab) -> str:
    """A cluster of stage ``cilium`` with Cilium and the shop, and no lab policy.

    Idempotent: an existing cluster is reused; a fresh sim kernel (or no kind cluster) is
    built the way this lab builds it.
    """
    lab.up()
    if lab.cni is None:
        lab.install_cni("cilium").raise_for_failure()
    lab.deploy_shop()
    clean_slate(lab)
    return f"cluster {lab.cluster_name}: CNI {lab.cni}, shop deployed, no lab policy applied"


def clean_slate(lab: Lab) -> list[str]:
    """Delete the shop's NetworkPolicies and CiliumNetworkPolicies (any name, any run)."""
    removed = remove_attempts(lab) + remove_policies(lab)
    stubs = [{"apiVersion": CNP[0], "kind": CNP[1],
              "metadata": {"name": p.name, "namespace": p.namespace},
              "spec": {"endpointSelector": {}}}
             for p in lab.impl.state().policies
             if getattr(p, "kind", "") == CNP[1]
             and getattr(p, "namespace", "") in ("shop-web", "shop-api")]
    return removed + (lab.delete(stubs) if stubs else [])


def true_install(lab: Lab) -> list[str]:
    """The commands that are true for the pinned Cilium (erratum (e)): repo, then install."""
    name, url = cilium.repo()
    return [f"helm repo add {name} {url}", " ".join(cilium.install_argv(lab.stage))]


def live_migration_plan() -> dict[str, Any]:
    """The per-node live migration (advanced, not run by the course), as data."""
    path = environments_dir() / "cilium" / "live-migration.yaml"
    return dict(yaml.safe_load(path.read_text(encoding="utf-8")))


# -- checks ---------------------------------------------------------------------------------
def kube_proxy_replaced(lab: Lab, source: str = "shop-web/frontend") -> CheckResult:
    """No kube-proxy DaemonSet, and a ClusterIP and a NodePort Service both answer."""
    name = "kube-proxy replacement"
    result = cilium.RECIPE.service_probes(lab, lab.resolve(source))
    if result.kube_proxy_daemonset:
        raise fail(name, "a kube-proxy DaemonSet runs in kube-system",
                   "this lab needs a cluster created without kube-proxy (stage 'cilium': "
                   "kubeProxyMode none): lab.down(), then run the notebook again")
    silent = [f"{w} ({u}): {d}" for w, u, ok, d in result.results if not ok]
    if silent:
        raise fail(name, "services do not answer: " + "; ".join(silent),
                   "is kubeProxyReplacement=true in environments/cilium/values.yaml, and "
                   "k8sServiceHost the control-plane node? `cilium status` tells")
    return CheckResult(name, True, "no kube-proxy, and services answer through Cilium",
                       [f"{w}: {u} answers ({d})" for w, u, _, d in result.results],
                       lab.simulated)


def identities_shared(lab: Lab) -> CheckResult:
    """One identity per app: the API's two replicas share theirs, the three apps differ."""
    name = "security identities"
    table = cilium.RECIPE.identities(lab)
    by_app: dict[str, set[int]] = {}
    for app in SHOP_APPS:
        ns, _, label = app.partition("/")
        pods = [p.key for p in lab.pods(ns) if p.labels.get("app") == label]
        by_app[app] = {table.of(p) for p in pods if any(p in r.pods for r in table.rows)}
    split = [a for a, numbers in by_app.items() if len(numbers) != 1]
    if split:
        raise fail(name, f"{', '.join(split)}: not exactly one identity ({by_app})",
                   "replicas with equal labels share an identity: are all pods Running?")
    numbers = [next(iter(n)) for n in by_app.values()]
    if len(set(numbers)) != len(numbers):
        raise fail(name, f"two apps share an identity: {by_app}",
                   "apps with different labels get different identities")
    reserved = [n for n in numbers if n < 256]
    if reserved:
        raise fail(name, f"identities {reserved} are in the reserved range",
                   "pods get cluster-local identities, 256 and up")
    return CheckResult(name, True, "one identity per app, shared by its replicas",
                       [f"{a}: {next(iter(n))}" for a, n in by_app.items()], lab.simulated)


def network_policies_enforced(lab: Lab) -> CheckResult:
    """Labs 01-02's NetworkPolicies on Cilium: expected equals observed, and they block."""
    name = "labs 01-02 NetworkPolicies on Cilium"
    for path in NETWORK_POLICIES:
        lab.apply(Path(path))
    matrix = lab.matrix(title="labs 01-02 NetworkPolicies on Cilium")
    blocked = [c for c in matrix.cells.values() if not c.expected.allowed]
    if not blocked:
        raise fail(name, "no applied policy blocks any shop connection",
                   "apply environments/policies/shop/ and shop-db-from-api-only.yaml")
    if matrix.diff():
        raise fail(name, f"{len(matrix.diff())} cells differ, e.g. {describe(matrix.diff()[0])}",
                   "on Cilium expected and observed agree; is Cilium Ready? lab.verify_cni()")
    return CheckResult(name, True, f"Cilium enforces all {len(blocked)} blocked connections; "
                       "observed equals expected", [matrix.summary()], lab.simulated)


# -- exercise -------------------------------------------------------------------------------
@exercise_check(EXERCISE_ID)
def exercise_cnp_frontend_to_api(lab: Lab, manifest: Any) -> CheckResult:
    """Exercise: a CiliumNetworkPolicy that lets only the frontend call the API on 8080.

    Judged by meaning first (labkit.labs.exercise: the engine over the whole cluster plus
    decoys: another shop-web pod, a pod with the frontend's labels in shop-ops, an outside
    address, port 9090), then real probes.
    """
    name = "exercise: a CiliumNetworkPolicy for the API"
    if manifest is None:
        return not_attempted(name, "write your CiliumNetworkPolicy in MY_POLICY")
    clean_slate(lab)
    applied = judge_policy(lab, name, manifest, EXERCISE_ID, EXERCISE_REFERENCE)
    front = lab.probe("shop-web/frontend", "shop-api/api", SHOP_PORT)
    db = lab.probe("shop-api/db", "shop-api/api", SHOP_PORT)
    if not front.seen.allowed or db.seen.allowed:
        raise fail(name, f"the cluster disagrees: {describe(front)}; {describe(db)}",
                   "the engine accepted your policy; is Cilium Ready? lab.verify_cni()")
    return CheckResult(name, True, "your policy means what the exercise asks, and the cluster "
                       "does it", [*applied.removed_note(), "same meaning as the reference over "
                                   "every pod, the decoys (shop-web/debug, shop-ops/frontend, "
                                   "an outside address) and port 9090",
                                   describe(front), describe(db)], lab.simulated)


# -- closing check -------------------------------------------------------------------------
def cilium_goal(lab: Lab) -> CheckResult:
    """Lab 04 reached its goal: Cilium runs without kube-proxy, and policies are enforced."""
    name = "lab 04 (Cilium)"
    require_cni(lab, name, "cilium", "run the notebook from the top: lab.install_cni('cilium')")
    verification = lab.verify_cni()
    if not verification.ok:
        raise fail(name, verification.to_text(), "lab.status() shows nodes and pods")
    kpr = kube_proxy_replaced(lab)
    policies = network_policies_enforced(lab)
    return CheckResult(name, True, "Cilium runs with kube-proxy replacement and enforces the "
                       "course's NetworkPolicies", [verification.to_text().splitlines()[0],
                                                   kpr.message, policies.message,
                                                   summary(lab, [EXERCISE_ID])],
                       lab.simulated)
