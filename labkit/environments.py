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

import yaml

from labkit.errors import ManifestError

#: Where kind's config schema lives; the only apiVersion kind v0.33 accepts.
KIND_CONFIG_API = "kind.x-k8s.io/v1alpha4"
#: kind's defaults when the config leaves them out (kind docs, "Configuration").
DEFAULT_POD_SUBNET = "10.244.0.0/16"
DEFAULT_SERVICE_SUBNET = "10.96.0.0/16"


def environments_dir() -> Path:
    """``environments/`` of the checkout (``LABKIT_ENVIRONMENTS`` overrides it)."""
    override = os.environ.get("LABKIT_ENVIRONMENTS")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[1] / "environments"


@lru_cache(maxsize=4)
def _versions_at(path: str) -> dict[str, Any]:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
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
        folder = environments_dir() / "stages" / name
        config_path = folder / "kind-config.yaml"
        if not config_path.exists():
            known = sorted(p.name for p in (environments_dir() / "stages").glob("*")
                           if (p / "kind-config.yaml").exists())
            raise ManifestError(f"no stage {name!r} ({config_path} does not exist)",
                                hint=f"known stages: {', '.join(known) or 'none'}")
        config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        values_path = folder / "values.yaml"
        values = (yaml.safe_load(values_path.read_text(encoding="utf-8")) or {}
                  if values_path.exists() else {})
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
        for key in ("podSubnet", "serviceSubnet"):
            text = self.networking.get(key)
            if text is not None:
                try:
                    ipaddress.ip_network(text)
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
