"""Calico's objects as data: what the migration sends and how it reads what comes back.

Pure functions over manifests and API objects (no cluster, no network): the
Installation/APIServer from environments/calico/, the pinned manifest URLs,
TigeraStatus conditions, and which pods still hold a Flannel address.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from labkit.cnis import CNIS
from labkit.environments import environments_dir, pinned
from labkit.errors import ManifestError

MODES = ("reinstall", "live")
OPERATOR_NAMESPACE = "tigera-operator"
CALICO_NAMESPACE = "calico-system"
INSTALLATION_CRD = "installations.operator.tigera.io"
OPERATOR_API = "operator.tigera.io/v1"
#: Calico's CNI plugin annotates every pod it sets up with its address.
POD_IP_ANNOTATION = "cni.projectcalico.org/podIP"
#: Namespaces whose pods Calico itself runs (never "restarted" by the migration): the CNI
#: table's, with calico-apiserver, where operators before v1.44 ran the API server.
CALICO_NAMESPACES = CNIS["calico"].system_namespaces
FLANNEL_OBJECTS: tuple[dict[str, Any], ...] = (
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-flannel"}},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
     "metadata": {"name": "flannel"}},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
     "metadata": {"name": "flannel"}},
)
TIGERA_COMPONENTS = ("calico", "apiserver")
ENCAPSULATIONS = ("VXLAN", "VXLANCrossSubnet", "IPIP", "IPIPCrossSubnet", "None")

Fetch = Callable[[str], str]


def custom_resources(pod_cidr: str, *, path: Path | None = None) -> list[dict[str, Any]]:
    """The Installation and APIServer from environments/calico/, pool CIDR set to ``pod_cidr``."""
    source = path or environments_dir() / "calico" / "custom-resources.yaml"
    docs = [d for d in yaml.safe_load_all(source.read_text(encoding="utf-8")) if d]
    inst = [d for d in docs if d.get("kind") == "Installation"]
    if len(inst) != 1:
        raise ManifestError("expected exactly one Installation", source=str(source))
    pools = (((inst[0].get("spec") or {}).get("calicoNetwork") or {}).get("ipPools") or [])
    if not pools:
        raise ManifestError("no IP pool", source=str(source), obj="Installation default",
                            field="spec.calicoNetwork.ipPools")
    enc = pools[0].get("encapsulation")
    if enc not in ENCAPSULATIONS:
        raise ManifestError(f"unknown encapsulation {enc!r}", source=str(source),
                            obj="Installation default",
                            field="spec.calicoNetwork.ipPools[0].encapsulation",
                            hint=f"one of {', '.join(ENCAPSULATIONS)}")
    pools[0]["cidr"] = pod_cidr
    return docs


def pool_of(installation: dict[str, Any]) -> dict[str, Any]:
    pools = (((installation.get("spec") or {}).get("calicoNetwork") or {}).get("ipPools") or [])
    return dict(pools[0]) if pools else {}


def tigera_available(status: dict[str, Any] | None) -> tuple[bool, str]:
    """(Available, message) of a TigeraStatus object, as ``kubectl get tigerastatus`` shows."""
    if not status:
        return False, "not reported yet"
    conds = {c.get("type"): c for c in (status.get("status") or {}).get("conditions") or []}
    avail = conds.get("Available") or {}
    if str(avail.get("status")) == "True":
        return True, str(avail.get("message") or "Available")
    degraded = conds.get("Degraded") or {}
    if str(degraded.get("status")) == "True":
        why = f"{degraded.get('reason', '')} {degraded.get('message', '')}".strip()
        return False, f"Degraded: {why}"
    return False, str(avail.get("message") or "Progressing")


def pods_predating_calico(pods: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Running pod-network pods that Calico has not set up (they predate it)."""
    out = []
    for pod in pods:
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        if spec.get("hostNetwork") or meta.get("namespace") in CALICO_NAMESPACES:
            continue
        if (pod.get("status") or {}).get("phase") not in ("Running", "Pending"):
            continue
        if POD_IP_ANNOTATION in (meta.get("annotations") or {}):
            continue
        out.append(pod)
    return out


def controller_of(pod: dict[str, Any]) -> str:
    refs = (pod.get("metadata") or {}).get("ownerReferences") or []
    ctrl = [r for r in refs if r.get("controller")] or refs
    return f"{ctrl[0].get('kind')}/{ctrl[0].get('name')}" if ctrl else ""


def manifest_urls(mode: str) -> list[str]:
    """The pinned manifests each mode creates (all derived from versions.yaml)."""
    operator = str(pinned("calico", "operator_manifest"))
    if mode == "reinstall":
        # The CRDs first: tigera-operator.yaml no longer carries them (Calico >= v3.30).
        return [str(pinned("calico", "operator_crds")), operator]
    base = operator.rsplit("/", 1)[0]
    spec = migration_spec()
    return [f"{base}/{m}" for m in spec["manifests"]]


def migration_spec() -> dict[str, Any]:
    path = environments_dir() / "calico" / "flannel-migration.yaml"
    return dict(yaml.safe_load(path.read_text(encoding="utf-8")))
