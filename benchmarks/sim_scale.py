"""Time a large simulated cluster: deploy N pods, then the full expected-vs-observed matrix.

    python benchmarks/sim_scale.py --pods 1000 --workers 10 --policies 100

The cluster is a kind-shaped stage (one control plane, ``--workers`` workers, Flannel),
built in memory: deployments of 10 replicas over namespaces of 100 pods, and Kubernetes
NetworkPolicies from the policy benchmark's generator. Prints one JSON line: seconds to
deploy (apply + schedule + addresses), seconds for ``lab.matrix()`` over every running
workload pod, how many pods run and how many stay Pending (a node runs at most 110).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from typing import Any

from labkit import Lab
from labkit.backends.sim.backend import SimBackend
from labkit.environments import Stage


def stage(workers: int) -> Stage:
    config = {"kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4", "name": "scale",
              "networking": {"disableDefaultCNI": True},
              "nodes": [{"role": "control-plane"}] + [{"role": "worker"}] * workers}
    return Stage("scale", config)


def workload(pods: int, policies: int) -> list[dict[str, Any]]:
    """Deployments of 10 replicas (namespaces of 100 pods) and policies that select them."""
    apps = max(1, pods // 10)
    # the namespaces first: the API server (and the sim) refuses objects in a missing one
    docs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"ns{n}"}}
        for n in range((apps - 1) // 10 + 1)]
    for a in range(apps):
        ns = f"ns{a // 10}"
        labels = {"app": f"app{a}", "tier": ("web", "api", "db")[a % 3]}
        container = {"name": "app", "image": "registry.k8s.io/pause:3.10",
                     "ports": [{"containerPort": 8080, "name": "http"}]}
        docs.append({"apiVersion": "apps/v1", "kind": "Deployment",
                     "metadata": {"name": f"app{a}", "namespace": ns},
                     "spec": {"replicas": min(10, pods - 10 * a),
                              "selector": {"matchLabels": labels},
                              "template": {"metadata": {"labels": labels},
                                           "spec": {"containers": [container]}}}})
    for p in range(policies):
        ns = f"ns{p % max(1, apps // 10)}"
        docs.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                     "metadata": {"name": f"p{p}", "namespace": ns},
                     "spec": {"podSelector": {"matchLabels": {"tier": ("api", "db")[p % 2]}},
                              "ingress": [{"from": [{"podSelector": {"matchLabels": {
                                  "tier": ("web", "api")[p % 2]}}}],
                                  "ports": [{"port": "http"}]}]}})
    return docs


def run(pods: int, workers: int, policies: int) -> dict[str, Any]:
    lab = Lab(backend_impl=SimBackend(stage(workers)))
    lab.up()
    lab.install_cni("flannel")
    docs = workload(pods, policies)
    cpu = time.process_time()
    start = time.perf_counter()
    lab.apply(docs)
    deployed = time.perf_counter()
    matrix = lab.matrix()
    done = time.perf_counter()
    cpu = time.process_time() - cpu
    rows = lab.status().pods
    running = sum(1 for p in rows if p.phase == "Running" and p.namespace.startswith("ns"))
    pending = sum(1 for p in rows if p.phase == "Pending" and p.namespace.startswith("ns"))
    return {"pods": pods, "workers": workers, "policies": policies, "running": running,
            "pending": pending, "cells": matrix.grid.cells,
            "allowed": matrix.grid.allowed_count(), "differ": matrix.differ_count(),
            "deploy_seconds": round(deployed - start, 3),
            "matrix_seconds": round(done - deployed, 3),
            "seconds": round(done - start, 3), "cpu_seconds": round(cpu, 3),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=10)
    parser.add_argument("--policies", type=int, default=100)
    args = parser.parse_args(argv)
    os.environ.setdefault("LABKIT_PROGRESS", "off")
    with tempfile.TemporaryDirectory() as home:
        os.environ["LABKIT_HOME"] = home  # the sim saves its state there; leave nothing behind
        print(json.dumps(run(args.pods, args.workers, args.policies)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
