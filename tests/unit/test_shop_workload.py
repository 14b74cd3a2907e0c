"""The shop's manifests (environments/workloads/shop) against what a real kind cluster does."""

from __future__ import annotations

from typing import Any

import yaml

from labkit.environments import environments_dir, render

SHOP = environments_dir() / "workloads" / "shop"


def _deployments() -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted(SHOP.glob("*.yaml")):
        for doc in yaml.safe_load_all(render(path.read_text(encoding="utf-8"), str(path))):
            if doc and doc.get("kind") == "Deployment":
                out[doc["metadata"]["name"]] = doc
    return out


def test_agnhost_health_endpoints_are_only_probed_with_udp_on() -> None:
    """netexec's /healthz and /readyz answer 412 until its UDP server starts, and for ever
    with --udp-port=-1 (kubernetes/kubernetes test/images/agnhost/netexec/netexec.go)."""
    for name, deploy in _deployments().items():
        for c in deploy["spec"]["template"]["spec"]["containers"]:
            if "netexec" not in c.get("args", []):
                continue
            assert "--udp-port=-1" not in c["args"], name
            probe = c.get("readinessProbe", {}).get("httpGet", {})
            assert probe.get("path") == "/healthz" and probe.get("port") == "http", name


def test_api_replicas_must_land_on_different_nodes() -> None:
    """The VXLAN capture needs an api pair on two nodes: a hard spread by hostname."""
    spec = _deployments()["api"]["spec"]
    constraints = spec["template"]["spec"]["topologySpreadConstraints"]
    assert constraints == [{
        "maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
        "whenUnsatisfiable": "DoNotSchedule", "nodeTaintsPolicy": "Honor",
        "labelSelector": {"matchLabels": {"app": "api"}}}]
    assert spec["replicas"] == 2
