"""Stages and pinned versions: the data under ``environments/``, read in one place.

A stage is a folder ``environments/stages/<name>/`` holding the kind config of
its cluster (``kind-config.yaml``) and optional ``values.yaml`` (description,
default CNI, Helm values). Versions come only from ``environments/versions.yaml``.
"""

from __future__ import annotations

import copy
import ipaddress
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from labkit.errors import ManifestError
from labkit.inputs import quote, read_yaml

#: Where kind's config schema lives; the only apiVersion kind v0.33 accepts.
KIND_CONFIG_API = "kind.x-k8s.io/v1alpha4"
#: kind's defaults when the config leaves them out (kind docs, "Configuration").
DEFAULT_POD_SUBNET = "10.244.0.0/16"
DEFAULT_SERVICE_SUBNET = "10.96.0.0/16"
#: kind's rule for cluster names (pkg/internal/apis/config/validate.go, validNameRE) and its
#: length limit (pkg/cluster/internal/create/create.go, clusterNameMax: a node's host name is
#: the cluster name plus "-control-plane", and host names stop at 64 characters).
CLUSTER_NAME = re.compile(r"^[a-z0-9.-]+$")
CLUSTER_NAME_MAX = 50


def environments_dir() -> Path:
    """``environments/`` of the checkout (``LABKIT_ENVIRONMENTS`` overrides it)."""
    override = os.environ.get("LABKIT_ENVIRONMENTS")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[1] / "environments"


@lru_cache(maxsize=4)
def _versions_at(path: str) -> dict[str, Any]:
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ManifestError("versions.yaml must be a mapping", source=path)
    return data


def load_versions() -> dict[str, Any]:
    """``environments/versions.yaml`` as a dict (a copy: callers may not change the pins)."""
    path = environments_dir() / "versions.yaml"
    if not path.exists():
        raise ManifestError(f"{path}: no such file",
                            hint="run from a checkout of the course, or set LABKIT_ENVIRONMENTS")
    return copy.deepcopy(_versions_at(str(path)))


def pinned(*keys: str) -> Any:
    """One pinned value, e.g. ``pinned("kind", "node_image")``."""
    value: Any = load_versions()
    for i, key in enumerate(keys):
        if not isinstance(value, dict) or key not in value:
            raise ManifestError(f"versions.yaml has no {'.'.join(keys[:i + 1])}",
                                source="environments/versions.yaml",
                                hint="add the pin there; nothing else may hard-code a version")
        value = value[key]
    return value


_PLACEHOLDER = re.compile(r"\{\{\s*([a-z0-9_.]+)\s*\}\}")


def render(text: str, source: str = "<text>") -> str:
    """Replace ``{{images.agnhost}}``-style placeholders with pinned values.

    The course's manifests name images this way so that versions.yaml stays the
    only place that pins a version.
    """
    def value(m: re.Match[str]) -> str:
        try:
            found = pinned(*m.group(1).split("."))
        except ManifestError as exc:
            raise ManifestError(f"unknown placeholder {m.group(0)}", source=source,
                                hint=exc.hint) from exc
        return str(found)

    return _PLACEHOLDER.sub(value, text)


@dataclass(frozen=True)
class Stage:
    """One lab stage: the kind cluster it needs and its values."""

    name: str
    kind_config: dict[str, Any] = field(hash=False, compare=False)
    values: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    path: Path | None = None

    @classmethod
    def load(cls, name: str) -> Stage:
        if "/" in name or name in (".", ".."):
            raise ManifestError(f"no stage {quote(name)}: a stage is a folder name, not a path",
                                hint="name a folder of environments/stages, e.g. flannel")
        folder = environments_dir() / "stages" / name
        config_path = folder / "kind-config.yaml"
        if not config_path.exists():
            known = sorted(p.name for p in (environments_dir() / "stages").glob("*")
                           if (p / "kind-config.yaml").exists())
            raise ManifestError(f"no stage {name!r} ({config_path} does not exist)",
                                hint=f"known stages: {', '.join(known) or 'none'}")
        config = read_yaml(config_path)
        values_path = folder / "values.yaml"
        values = (read_yaml(values_path) or {}) if values_path.exists() else {}
        if not isinstance(values, dict):
            raise ManifestError("must be a mapping", source=str(values_path))
        stage = cls(name, config, values, folder)
        stage.validate(str(config_path))
        return stage

    def validate(self, source: str = "kind-config.yaml") -> None:
        cfg = self.kind_config
        if not isinstance(cfg, dict) or cfg.get("kind") != "Cluster" or \
                cfg.get("apiVersion") != KIND_CONFIG_API:
            raise ManifestError(f"not a kind cluster config (want kind: Cluster, apiVersion: "
                                f"{KIND_CONFIG_API})", source=source)
        if not isinstance(cfg.get("name"), str) or not cfg["name"]:
            raise ManifestError("is required", source=source, field="name",
                                hint="name the cluster; its kube context is kind-<name>")
        # A name of dots only passes kind's pattern but not Docker's container-name rule
        # (it must start with a letter or digit), and "." or ".." would be a path here.
        if not CLUSTER_NAME.match(cfg["name"]) or cfg["name"].strip(".") == "":
            raise ManifestError(
                f"{quote(cfg['name'])} is not a valid cluster name, cluster names must match "
                f"`{CLUSTER_NAME.pattern}`", source=source, field="name",
                hint="use lowercase letters, digits, '-' and '.' (kind's rule)")
        if len(cfg["name"]) > CLUSTER_NAME_MAX:
            raise ManifestError(f"cluster name should not be more than {CLUSTER_NAME_MAX} "
                                "characters", source=source, field="name",
                                hint="kind adds '-control-plane' to make node host names")
        if not isinstance(cfg.get("networking") or {}, dict):
            raise ManifestError("must be a mapping", source=source, field="networking")
        nodes = cfg.get("nodes") or []
        if not isinstance(nodes, list) or not all(isinstance(n, dict) for n in nodes):
            raise ManifestError("must be a list of mappings", source=source, field="nodes")
        for key in ("podSubnet", "serviceSubnet"):
            text = self.networking.get(key)
            if text is not None:
                try:
                    ipaddress.ip_network(str(text))
                except ValueError as exc:
                    raise ManifestError(f"invalid CIDR {text!r}", source=source,
                                        field=f"networking.{key}") from exc
        for i, node in enumerate(self.node_roles):
            if node not in ("control-plane", "worker"):
                raise ManifestError(f"unknown role {node!r}", source=source,
                                    field=f"nodes[{i}].role")
        if "image" in str(cfg.get("nodes")):
            raise ManifestError("node images are pinned in versions.yaml, not in a stage",
                                source=source, field="nodes[].image")

    # -- the cluster's shape -----------------------------------------------------------
    @property
    def cluster_name(self) -> str:
        return str(self.kind_config["name"])

    @property
    def context(self) -> str:
        """The kube context kind writes for this cluster."""
        return f"kind-{self.cluster_name}"

    @property
    def networking(self) -> dict[str, Any]:
        return dict(self.kind_config.get("networking") or {})

    @property
    def pod_subnet(self) -> str:
        return str(self.networking.get("podSubnet", DEFAULT_POD_SUBNET))

    @property
    def service_subnet(self) -> str:
        return str(self.networking.get("serviceSubnet", DEFAULT_SERVICE_SUBNET))

    @property
    def default_cni_disabled(self) -> bool:
        return bool(self.networking.get("disableDefaultCNI", False))

    @property
    def kube_proxy_mode(self) -> str:
        return str(self.networking.get("kubeProxyMode", "iptables"))

    @property
    def node_roles(self) -> list[str]:
        nodes = self.kind_config.get("nodes") or [{"role": "control-plane"}]
        return [str(n.get("role", "control-plane")) for n in nodes]

    def node_names(self) -> list[str]:
        """Node names as kind gives them: <name>-control-plane, <name>-worker, -worker2 ..."""
        names: list[str] = []
        counts = {"control-plane": 0, "worker": 0}
        for role in self.node_roles:
            counts[role] += 1
            n = counts[role]
            names.append(f"{self.cluster_name}-{role}{n if n > 1 else ''}")
        return names

    def rendered_kind_config(self, node_image: str) -> dict[str, Any]:
        """The config labkit hands to ``kind create cluster``: every node pinned to the image."""
        cfg = copy.deepcopy(self.kind_config)
        nodes = cfg.get("nodes") or [{"role": "control-plane"}]
        cfg["nodes"] = [{**n, "image": node_image} for n in nodes]
        return cfg

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "cluster": self.cluster_name, "context": self.context,
                "nodes": self.node_names(), "pod_subnet": self.pod_subnet,
                "service_subnet": self.service_subnet,
                "default_cni_disabled": self.default_cni_disabled,
                "kube_proxy_mode": self.kube_proxy_mode,
                "description": self.values.get("description", "")}
