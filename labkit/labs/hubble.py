"""Lab 07 (Hubble): flows as data, the drops, 403s and DNS lookups of lab 05's policies, the
service map, the UI opened the right way, and least-privilege policies suggested from flows.

Facts (cni-ground-truth.md §5.5, erratum (d)): the UI is opened with ``cilium hubble ui`` (or
``kubectl -n kube-system port-forward svc/hubble-ui 12000:80``); ``cilium hubble
port-forward`` forwards the *relay* (gRPC, 127.0.0.1:4245) for the hubble CLI, not the UI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import yaml

from labkit.environments import environments_dir
from labkit.hubble.frame import workload
from labkit.hubble.log import FlowLog, time_key
from labkit.hubble.suggest import Suggestion, suggest
from labkit.hubble.writers import compact_line
from labkit.labs.cilium import clean_slate, ensure_cilium
from labkit.labs.common import SHOP_PORT, CheckResult, fail, not_attempted, require_cni
from labkit.labs.l7 import L7_POLICIES, dns_aware_egress, http_matrix

if TYPE_CHECKING:
    from labkit.hubble.flow import Flow
    from labkit.lab import Lab

__all__ = ["UI_COMMANDS", "clean_slate", "ensure_cilium", "exercise_policy_drops",
           "find_drops_403s_dns", "hubble_goal", "hubble_running", "make_traffic", "policy_drops",
           "prove_suggestion", "suggest_from_flows"]

#: How the UI is really opened in the pinned Cilium (erratum (d)), and what the article ran.
UI_COMMANDS = {
    "article (wrong)": "cilium hubble port-forward   # then http://localhost:12000",
    "what it does": "forwards hubble-relay (gRPC) to 127.0.0.1:4245 for the hubble CLI; "
                    "nothing listens on 12000",
    "the UI, with the cilium CLI": "cilium hubble ui   # forwards hubble-ui, opens a browser",
    "the UI, with kubectl": "kubectl -n kube-system port-forward svc/hubble-ui 12000:80   "
                            "# then http://127.0.0.1:12000",
    "flows without a host CLI": "kubectl -n kube-system exec ds/cilium -c cilium-agent -- "
                                "hubble observe -o jsonpb --last 200",
}
#: Lab 04's Helm values for the pinned Cilium chart (Hubble relay and UI on).
VALUES = environments_dir() / "cilium" / "values.yaml"
#: Enough history to hold this lab's traffic on every agent (Hubble keeps 4095 by default).
LAST = 2000


def hubble_running(lab: Lab) -> CheckResult:
    """Hubble relay and UI are on in the Helm values and run in kube-system, and the agents
    answer ``hubble observe``."""
    name = "Hubble relay and UI"
    ensure_cilium(lab)
    values = yaml.safe_load(VALUES.read_text(encoding="utf-8")).get("hubble", {})
    off = [part for part in ("relay", "ui") if not values.get(part, {}).get("enabled")]
    if off:
        raise fail(name, f"hubble.{off[0]}.enabled is not true in {VALUES.name}",
                   f"set it in environments/cilium/{VALUES.name} and re-run lab 04's install")
    running = {p.labels.get("app.kubernetes.io/name"): p.key for p in lab.pods("kube-system")}
    missing = [app for app in ("hubble-relay", "hubble-ui") if app not in running]
    if missing:
        raise fail(name, f"no {' and no '.join(missing)} pod in kube-system",
                   "cilium status shows what is wrong; the chart deploys them with the values")
    log = lab.flows(1)
    return CheckResult(name, True, "relay and UI are enabled and run; the agents answer "
                       "hubble observe", [f"{app}: {running[app]}" for app in
                                          ("hubble-relay", "hubble-ui")]
                       + [f"flows recorded so far: {'some' if len(log) else 'none yet'}"],
                       lab.simulated)


def _new_flows(lab: Lab, mark: tuple[str, int]) -> FlowLog:
    log = lab.flows(LAST)
    return FlowLog(tuple(f for f in log if time_key(f) > mark), log.skipped)


def make_traffic(lab: Lab) -> FlowLog:
    """Lab 05's traffic again, on a clean slate: the DNS-aware egress (lookups through
    Cilium's DNS proxy) and the HTTP matrix under the L7 policy (forwarded requests, 403s,
    drops). Returns the flows Hubble recorded for it, and only those."""
    ensure_cilium(lab)
    clean_slate(lab)
    before = lab.flows(LAST)
    mark = max((time_key(f) for f in before), default=("", 0))
    dns_aware_egress(lab)  # ends on a clean slate
    lab.apply(L7_POLICIES)
    http_matrix(lab, "lab 05's policy, once more for Hubble")
    log = _new_flows(lab, mark)
    if not len(log):
        raise fail("flows from Hubble", "Hubble recorded no flows for this lab's traffic",
                   "cilium status must show Hubble Relay OK (values: hubble.relay.enabled)")
    return log


def policy_drops(log: FlowLog) -> list[Flow]:
    """Flows whose packets a policy dropped at L3/L4 (not the HTTP requests the proxy refused:
    those carry no drop reason and are answered with 403)."""
    return [f for f in log if f.verdict == "DROPPED" and f.drop_reason == "POLICY_DENIED"]


def _pairs(flows: list[Flow]) -> list[str]:
    return sorted({f"{workload(f, 'source')} -> {workload(f, 'destination')}"
                   f":{f.l4.destination_port}" for f in flows})


def find_drops_403s_dns(lab: Lab, log: FlowLog) -> CheckResult:
    """The lab-05 policies seen in the flows: L3/L4 drops, the proxy's 403s, DNS lookups."""
    name = "drops, 403s and DNS lookups in Hubble's flows"
    drops = policy_drops(log)
    denied = [f for f in log if f.http is not None and f.http.code == 403]
    dns = [f for f in log if f.dns is not None and f.dns.query]
    missing = [what for what, found in (("a policy drop", drops), ("a 403", denied),
                                        ("a DNS lookup", dns)) if not found]
    if missing:
        raise fail(name, f"no {', no '.join(missing)} among {len(log)} flows",
                   "make_traffic(lab) runs lab 05's traffic; on kind, check that the L7 and "
                   "DNS policies were applied (HTTP and DNS flows need rules.http/rules.dns)")
    if "shop-api/db -> shop-api/api:8080" not in _pairs(drops):
        raise fail(name, "no drop of the database's requests to the API",
                   "lab 05's policy admits no rule for the database: its SYNs are dropped")
    refused = sorted({f"{workload(f, 'source')} -> {workload(f, 'destination')} "
                      f"{f.http.method} {f.http.url}" for f in log
                      if f.http is not None and f.verdict == "DROPPED"})
    queries = sorted({f.dns.query for f in dns if f.dns and f.dns.query})
    return CheckResult(name, True, f"{len(drops)} policy drops, {len(denied)} 403 responses, "
                       f"{len(dns)} DNS flows among {len(log)} flows",
                       [f"dropped: {p}" for p in _pairs(drops)]
                       + [f"403: {r}" for r in refused]
                       + [f"DNS: {', '.join(queries)}"], lab.simulated)


def suggest_from_flows(log: FlowLog) -> Suggestion:
    """``labkit policy suggest --from-flows FILE --dialect cilium`` on these flows."""
    return suggest(log, "cilium")


def prove_suggestion(lab: Lab, log: FlowLog, suggestion: Suggestion) -> CheckResult:
    """Apply the suggested policies alone; the matrix over the shop's pods must allow exactly
    the (client, server, port) workload pairs seen forwarded and deny every other pair."""
    name = "suggested policies: observed traffic flows, the rest is denied"
    clean_slate(lab)
    lab.apply(list(suggestion.policies))
    observed = {(workload(f, "source"), workload(f, "destination"), f.l4.destination_port)
                for f in log if f.verdict == "FORWARDED" and f.is_reply is False
                and f.l7 is None and f.source.pod_name and f.destination.pod_name}
    apps = {p.key: f"{p.namespace}/{p.labels.get('app', p.name)}"
            for ns in ("shop-web", "shop-api") for p in lab.pods(ns)}
    pods = sorted(apps)
    matrix = lab.matrix(pods, pods, ((SHOP_PORT, "TCP"),), title="suggested policies only")
    wrong = []
    for cell in matrix.cells.values():
        if cell.source == cell.destination:
            continue
        pair = (apps[cell.source], apps[cell.destination], cell.port)
        if cell.seen.allowed != (pair in observed):
            wrong.append(f"{cell.source} -> {cell.destination}:{cell.port} "
                         f"{'allowed' if cell.seen.allowed else 'denied'}, "
                         f"{'observed' if pair in observed else 'never observed'}")
    if wrong or matrix.diff():
        raise fail(name, "; ".join(wrong[:3]) or f"{len(matrix.diff())} cells differ",
                   "the suggestion must allow exactly what Hubble saw forwarded")
    allowed = sum(1 for c in matrix.cells.values() if c.seen.allowed
                  and c.source != c.destination)
    return CheckResult(name, True, f"{len(suggestion.policies)} policies: {allowed} observed "
                       "pod pairs still connect, every other pair is denied; observed equals "
                       "expected", [matrix.summary(), *suggestion.notes], lab.simulated)


# -- exercise -------------------------------------------------------------------------------
def exercise_policy_drops(lab: Lab, log: FlowLog, answer: Any) -> CheckResult:
    """Exercise: select, from the flows' DataFrame, the flows a policy dropped at L3/L4.
    Judged by meaning (which flows were selected, not how), then one of them is probed."""
    name = "exercise: the policy drops"
    if answer is None:
        return not_attempted(name, "put your selection of the DataFrame in MY_DROPS")
    import pandas as pd  # lazy: heavy, and only this exercise and DataFrame users need it

    if not isinstance(answer, pd.DataFrame):
        raise fail(name, f"MY_DROPS is a {type(answer).__name__}, not a DataFrame",
                   "select rows of the flows' DataFrame: df[(df.verdict == ...) & ...]")
    chosen = set(answer.index)
    flows = list(log)
    drops = {id(f) for f in policy_drops(log)}
    want = {i for i, f in enumerate(flows) if id(f) in drops}
    extra, missed = chosen - want, want - chosen
    if extra or missed:
        why = []
        refused = [i for i in extra if i < len(flows) and flows[i].l7 is not None]
        if refused:
            why.append(f"{len(refused)} of your flows are HTTP requests the proxy refused: "
                       "those got a 403 reply, their packets were not dropped")
        if len(refused) < len(extra):
            why.append(f"{len(extra) - len(refused)} flows you chose were not dropped by a "
                       "policy")
        if missed:
            why.append(f"you missed {len(missed)} policy drops (e.g. "
                       f"{compact_line(flows[min(missed)])})")
        raise fail(name, "; ".join(why), "look at verdict, drop_reason and l7_type")
    if not want:
        raise fail(name, "there are no policy drops to find", "run make_traffic(lab) first")
    shop = ("shop-web", "shop-api")
    again = next((flows[i] for i in sorted(want) if flows[i].source.namespace in shop
                  and flows[i].destination.namespace in shop), flows[min(want)])
    src, dst = again.source, again.destination
    details = [f"e.g. {compact_line(again)}"]
    if src.pod_name and dst.pod_name and src.namespace in shop and dst.namespace in shop:
        clean_slate(lab)
        lab.apply(L7_POLICIES)  # the policy that dropped it, then probe it again
        cell = lab.probe(f"{src.namespace}/{src.pod_name}", f"{dst.namespace}/{dst.pod_name}",
                         again.l4.destination_port or SHOP_PORT)
        if cell.seen.allowed:
            raise fail(name, f"under lab 05's policy the cluster let {cell.source} -> "
                       f"{cell.destination} through, though Hubble saw it dropped",
                       "is Cilium enforcing policies (cilium status)?")
        details.append(f"probed again under lab 05's policy: {cell.source} -> "
                       f"{cell.destination} dropped")
    return CheckResult(name, True, f"your {len(want)} flows are exactly the policy drops",
                       details, lab.simulated)


def hubble_goal(lab: Lab) -> CheckResult:
    """Lab 07 reached its goal: Hubble shows lab 05's drops, 403s and DNS lookups, and the
    policies suggested from them keep exactly the observed traffic."""
    name = "lab 07 (Hubble)"
    require_cni(lab, name, "cilium", "run lab 04 first (stage cilium)")
    log = make_traffic(lab)
    found = find_drops_403s_dns(lab, log)
    proved = prove_suggestion(lab, log, suggest_from_flows(log))
    clean_slate(lab)
    return CheckResult(name, True, f"{found.message}; {proved.message}",
                       [*found.details, *proved.details], lab.simulated)
