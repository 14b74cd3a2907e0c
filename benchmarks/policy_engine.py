"""Time the policy engine's full single-port matrix on a synthetic cluster.

    python benchmarks/policy_engine.py --pods 1000 --policies 500 --json
    python benchmarks/policy_engine.py --sweep      # how the cost grows with pods and policies
    python benchmarks/policy_engine.py --pods 1000 --policies 500 --emit-yaml DIR
    labkit policy matrix DIR --cni kindnet          # the same cluster, parse to output

The cluster is deterministic for a given size: namespaces of 50 pods, apps of 10
pods, two tiers of labels, and Kubernetes NetworkPolicies that mix
podSelector, namespaceSelector (matchLabels and matchExpressions), ipBlock,
named and numbered ports, ingress and egress. Prints one JSON line per run.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
from pathlib import Path
from typing import Any

from labkit.policy import Engine, build_state, parse_text


def synthetic_objects(pods: int, policies: int, seed: int = 7, native: str = "",
                      pod_ipblocks: bool = True) -> list[Any]:
    """The synthetic cluster, parsed; see :func:`synthetic_manifests`."""
    return [obj for name, text in synthetic_manifests(pods, policies, seed, native,
                                                      pod_ipblocks).items()
            for obj in parse_text(text, name)]


def synthetic_manifests(pods: int, policies: int, seed: int = 7, native: str = "",
                        pod_ipblocks: bool = True) -> dict[str, str]:
    """The synthetic cluster as manifests, by file name: namespaces, pods (with their IPs
    and named ports) and policies. With ``native`` (calico|cilium) every other policy is
    that CNI's own kind, so its selectors, ordering and deny rules are timed too.
    ``pod_ipblocks=False`` moves ipBlock peers out of the pod addresses (what Kubernetes
    leaves undefined, and tools treat differently: see benchmarks/peer.py)."""
    rng = random.Random(seed)
    namespaces = max(1, pods // 50)
    apps = max(1, pods // 10)
    ns_docs = [f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: ns{n}, labels: "
               f"{{team: t{n % 5}, env: {'prod' if n % 2 else 'dev'}}}}}"
               for n in range(namespaces)]
    pod_docs = []
    for i in range(pods):
        app = i % apps
        pod_docs.append(
            f"apiVersion: v1\nkind: Pod\nmetadata: {{name: app{app}-{i}, namespace: "
            f"ns{app % namespaces}, labels: {{app: app{app}, tier: "
            f"{('web', 'api', 'db')[app % 3]}, v: v{i % 4}}}}}\n"
            "spec: {containers: [{name: app, image: registry.k8s.io/pause:3.10, ports: "
            "[{containerPort: 80, name: http}, {containerPort: 5432, name: pg}]}]}\n"
            f"status: {{phase: Running, podIP: 10.{(i >> 16) & 255}.{(i >> 8) & 255}."
            f"{i & 255}}}")
    block = "10.0.{0}.0/24, except: [10.0.{0}.0/28]" if pod_ipblocks else \
        "192.168.{0}.0/24, except: [192.168.{0}.0/28]"
    docs = []
    for p in range(policies):
        ns = f"ns{rng.randrange(namespaces)}"
        app = rng.randrange(apps)
        peer = rng.choice([
            f"- podSelector: {{matchLabels: {{app: app{rng.randrange(apps)}}}}}",
            f"- namespaceSelector: {{matchLabels: {{team: t{rng.randrange(5)}}}}}",
            "- namespaceSelector: {matchExpressions: [{key: env, operator: In, values: [prod]}]}"
            f"\n        podSelector: {{matchLabels: {{tier: {rng.choice(['web', 'api'])}}}}}",
            "- ipBlock: {cidr: " + block.format(rng.randrange(4)) + "}",
        ])
        port = rng.choice(["80", "http", "5432", "pg"])
        egress = ""
        types = "[Ingress]"
        if p % 4 == 0:
            types = "[Ingress, Egress]"
            egress = (f"\n  egress:\n  - to:\n    - podSelector: {{matchLabels: "
                      f"{{tier: {rng.choice(['api', 'db'])}}}}}\n    ports: [{{port: {port}}}]")
        if native and p % 2:
            docs.append(NATIVE[native](p, ns, app, rng.randrange(apps), rng))
            continue
        docs.append(f"""apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: p{p}, namespace: {ns}}}
spec:
  podSelector: {{matchLabels: {{app: app{app}}}}}
  policyTypes: {types}
  ingress:
  - from:
      {peer}
    ports: [{{port: {port}}}]{egress}""")
    return {name: "\n---\n".join(d) + "\n" for name, d in
            (("namespaces.yaml", ns_docs), ("pods.yaml", pod_docs), ("policies.yaml", docs))}


def emit_yaml(directory: Path, pods: int, policies: int, cni: str, pod_ipblocks: bool
              ) -> dict[str, Any]:
    directory.mkdir(parents=True, exist_ok=True)
    files = synthetic_manifests(pods, policies, native=cni if cni in NATIVE else "",
                                pod_ipblocks=pod_ipblocks)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return {"emitted": str(directory), "pods": pods, "policies": policies, "cni": cni,
            "files": sorted(files)}


def calico_policy(p: int, ns: str, app: int, peer: int, rng: random.Random) -> str:
    action = rng.choice(["Allow", "Allow", "Deny", "Pass"])
    return f"""apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {{name: c{p}, namespace: {ns}}}
spec:
  order: {rng.randrange(2000)}
  selector: app == 'app{app}' || (tier == 'db' && v in {{'v1', 'v2'}})
  types: [Ingress]
  ingress:
  - action: {action}
    protocol: TCP
    source: {{selector: "app == 'app{peer}' || !has(v)"}}
    destination: {{ports: [80, "5000:5500"]}}"""


def cilium_policy(p: int, ns: str, app: int, peer: int, rng: random.Random) -> str:
    section = rng.choice(["ingress", "ingress", "ingressDeny"])
    return f"""apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {{name: c{p}, namespace: {ns}}}
spec:
  endpointSelector: {{matchLabels: {{app: app{app}}}}}
  {section}:
  - fromEndpoints:
    - matchLabels: {{app: app{peer}, k8s:io.kubernetes.pod.namespace: {ns}}}
    - matchExpressions: [{{key: tier, operator: In, values: [web]}}]
    toPorts: [{{ports: [{{port: "80", protocol: TCP}}]}}]"""


NATIVE = {"calico": calico_policy, "cilium": cilium_policy}


def run(pods: int, policies: int, cni: str, pod_ipblocks: bool = True) -> dict[str, Any]:
    """``seconds``: state, engine and the full matrix; parsing the YAML is timed apart."""
    start = time.perf_counter()
    objects = synthetic_objects(pods, policies, native=cni if cni in NATIVE else "",
                                pod_ipblocks=pod_ipblocks)
    parsed = time.perf_counter()
    cpu = time.process_time()
    state = build_state(objects)
    engine = Engine(state, cni)
    names = sorted(state.pods)
    grid = engine.reachability(names, names, 80, "TCP")
    seconds = time.perf_counter() - parsed
    cpu = time.process_time() - cpu
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"pods": pods, "policies": policies, "cni": cni, "pairs": grid.pairs,
            "allowed": grid.allowed_count(), "seconds": round(seconds, 4),
            "cpu_seconds": round(cpu, 4),
            "parse_seconds": round(parsed - start, 4),
            "peak_rss_mb": round(peak_kb / 1024, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--policies", type=int, default=500)
    parser.add_argument("--cni", default="kindnet", choices=("kindnet", "calico", "cilium"))
    parser.add_argument("--json", action="store_true", help="one JSON line per run (default)")
    parser.add_argument("--sweep", action="store_true",
                        help="run a series of sizes to show how the cost grows")
    parser.add_argument("--emit-yaml", metavar="DIR", type=Path,
                        help="write the cluster as plain manifests to DIR instead of timing it")
    parser.add_argument("--external-ipblocks", action="store_true",
                        help="ipBlock peers outside the pod addresses (for peer comparisons)")
    args = parser.parse_args(argv)
    if args.emit_yaml:
        print(json.dumps(emit_yaml(args.emit_yaml, args.pods, args.policies, args.cni,
                                   not args.external_ipblocks)))
        return 0
    sizes = [(args.pods, args.policies)]
    if args.sweep:
        sizes = [(250, 125), (500, 250), (1000, 500), (2000, 1000), (1000, 125), (1000, 1000)]
    for pods, policies in sizes:
        print(json.dumps(run(pods, policies, args.cni, not args.external_ipblocks)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
