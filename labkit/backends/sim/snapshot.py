"""A simulated cluster as plain JSON data, and back.

Everything the sim needs to continue exactly where it stopped is kept: objects
in creation order (the scheduler and the IPAM walk them in that order), the
IPAM's cursors and free lists, add-on controllers (hooks), and pods cut off from
the network. Policies are kept as the manifests that were applied and parsed
again on load, so the policy engine's objects need no serialisation.

Anything this module cannot encode (a new IPAM or hook class) raises a
ClusterError at save time: silently dropping it would give a different cluster
after the next load.
"""

from __future__ import annotations

import collections
import dataclasses
import ipaddress
import typing
from functools import cache
from typing import Any

from labkit import model
from labkit.backends.sim.cluster import CniRecord, SimCluster, SimNode, SimPod
from labkit.backends.sim.controllers import SimAllocator, SimGatewayController
from labkit.backends.sim.ipam import CalicoIpam, NodeRangeIpam
from labkit.environments import Stage
from labkit.errors import ClusterError
from labkit.policy.kinds import parse_one

#: Bumped whenever the layout changes; files of another format are refused, not guessed at.
FORMAT = "labkit-sim-cluster/v1"
_MODEL = {cls.__name__: cls for cls in (model.ContainerPort, model.Namespace, model.Pod,
                                        model.Deployment, model.ServicePort, model.Service,
                                        model.Secret)}


# -- model dataclasses -----------------------------------------------------------------------

def _obj(value: Any) -> dict[str, Any]:
    return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _obj(value)
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _build(cls: type, data: dict[str, Any]) -> Any:
    """``cls(**data)``, turning lists back into the tuples (of dataclasses) the model uses."""
    hints = _hints(cls)
    unknown = set(data) - set(hints)
    if unknown:
        raise ValueError(f"{cls.__name__} has no field {sorted(unknown)[0]!r}")
    return cls(**{k: _typed(hints[k], v) for k, v in data.items()})


def _typed(hint: Any, value: Any) -> Any:
    if typing.get_origin(hint) is tuple and isinstance(value, list):
        item = typing.get_args(hint)[0]
        if isinstance(item, type) and item.__name__ in _MODEL:
            return tuple(_build(item, v) for v in value)
        return tuple(value)
    return value


# -- IPAM and hooks: one codec per class -----------------------------------------------------

def _ipam_data(ipam: Any) -> dict[str, Any]:
    if isinstance(ipam, NodeRangeIpam):
        return {"type": "node-range", "name": ipam.name, "ranges": ipam.ranges,
                "first_offset": ipam.first_offset, "next": ipam._next,
                "used": sorted(ipam._used)}
    if isinstance(ipam, CalicoIpam):
        return {"type": "calico", "pool": str(ipam.pool), "block_size": ipam.block_size,
                "affinity": {n: [str(b) for b in bs] for n, bs in ipam.affinity.items()},
                "free": {str(b): list(q) for b, q in ipam._free.items()},
                "tunnel": ipam.tunnel}
    raise _unsupported("IPAM", ipam)


def _ipam_from(data: dict[str, Any]) -> Any:
    if data["type"] == "node-range":
        ipam = NodeRangeIpam(data["ranges"], first_offset=data["first_offset"],
                             name=data["name"])
        ipam._next = dict(data["next"])
        ipam._used = set(data["used"])
        return ipam
    if data["type"] == "calico":
        calico = CalicoIpam(data["pool"], data["block_size"])
        for node, blocks in data["affinity"].items():
            nets = [ipaddress.ip_network(b) for b in blocks]
            calico.affinity[node] = nets
            calico._owner.update({net: node for net in nets})
        calico._free = {ipaddress.ip_network(b): collections.deque(free)
                        for b, free in data["free"].items()}
        calico.tunnel = dict(data["tunnel"])
        return calico
    raise ValueError(f"unknown IPAM type {data['type']!r}")


def _hook_data(hook: Any) -> dict[str, Any]:
    if isinstance(hook, SimAllocator):
        return {"type": "metallb", "addresses": hook.addresses, "assigned": hook.assigned}
    if isinstance(hook, SimGatewayController):
        return {"type": "cilium-gateway-api", "objects": hook.docs}
    raise _unsupported("controller hook", hook)


def _hook_from(data: dict[str, Any]) -> Any:
    if data["type"] == "metallb":
        hook = SimAllocator(list(data["addresses"]))
        hook.assigned = dict(data["assigned"])
        return hook
    if data["type"] == "cilium-gateway-api":
        return SimGatewayController(dict(data["objects"]))
    raise ValueError(f"unknown controller hook type {data['type']!r}")


def _legacy_settings(cni: dict[str, Any]) -> dict[str, Any]:
    """Settings of a file saved before CniRecord had them: Calico's pool was VXLAN
    (environments/calico/custom-resources.yaml), and calico-node in kube-system meant the
    live migration (Flannel's VXLAN port and VNI kept)."""
    if cni["name"] != "calico":
        return {}
    return {"encapsulation": "VXLAN", "live_migration": cni["namespace"] == "kube-system"}


def _unsupported(what: str, value: Any) -> ClusterError:
    return ClusterError(f"cannot save the simulated cluster: no codec for the {what} "
                        f"{type(value).__name__}",
                        hint="teach labkit/backends/sim/snapshot.py to encode it")


# -- the cluster ----------------------------------------------------------------------------

def dump(cluster: SimCluster, policy_docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The cluster as JSON-ready data; ``policy_docs`` are the manifests of its policies."""
    cni = cluster.cni
    return {
        "format": FORMAT,
        "cluster": cluster.stage.cluster_name,
        "stage": cluster.stage.name,
        "generation": cluster._generation,
        "nodes": [dataclasses.asdict(n) for n in cluster.nodes.values()],
        "namespaces": [_obj(ns) for ns in cluster.namespaces.values()],
        "deployments": [{"deployment": _obj(d), "template_hash": h}
                        for d, h in cluster.deployments.values()],
        "pods": [{"pod": _obj(sp.pod), "owner": sp.owner, "phase": sp.phase,
                  "reason": sp.reason, "pin_node": sp.pin_node,
                  "tolerates_control_plane": sp.tolerates_control_plane}
                 for sp in cluster.pods.values()],
        "services": [_obj(s) for s in cluster.services.values()],
        "secrets": [_obj(s) for s in cluster.secrets.values()],
        "policies": policy_docs,
        "cni": None if cni is None else {"name": cni.name, "namespace": cni.namespace,
                                         "daemonset": cni.daemonset,
                                         "ipam": _ipam_data(cni.ipam),
                                         "settings": cni.settings},
        "extra_served": sorted([list(pair) for pair in cluster.extra_served]),
        "hooks": [_hook_data(h) for h in cluster.hooks],
        "no_network": cluster.no_network,
        "hubble": {"identities": cluster.identities, "probes": cluster.probes},
    }


def load(data: dict[str, Any], source: str) -> tuple[SimCluster, list[tuple[Any, dict[str, Any]]]]:
    """(the cluster without its policies, [(policy, its manifest)]), from :func:`dump`.

    Raises ValueError/KeyError/TypeError on a malformed file and LabkitError
    (ManifestError) when a stored policy no longer parses; the caller wraps both.
    """
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"format is {found!r}, this labkit reads {FORMAT!r}")
    c = SimCluster(Stage.load(data["stage"]))
    if c.stage.cluster_name != data["cluster"]:
        raise ValueError(f"stage {data['stage']!r} now names its cluster "
                         f"{c.stage.cluster_name!r}, not {data['cluster']!r}")
    c._generation = int(data["generation"])
    c.nodes = {n["name"]: SimNode(**{**n, "roles": tuple(n["roles"])}) for n in data["nodes"]}
    c.namespaces = {d["name"]: _build(model.Namespace, d) for d in data["namespaces"]}
    for item in data["deployments"]:
        d = _build(model.Deployment, item["deployment"])
        c.deployments[d.key] = (d, item["template_hash"])
    for item in data["pods"]:
        pod = _build(model.Pod, item["pod"])
        c.pods[pod.key] = SimPod(pod, item["owner"], item["phase"], item["reason"],
                                 item["pin_node"], item["tolerates_control_plane"])
    c.services = {s.key: s for s in (_build(model.Service, d) for d in data["services"])}
    c.secrets = {f"{s.namespace}/{s.name}": s
                 for s in (_build(model.Secret, d) for d in data["secrets"])}
    cni = data["cni"]
    if cni is not None:
        c.cni = CniRecord(cni["name"], _ipam_from(cni["ipam"]), cni["namespace"],
                          cni["daemonset"], cni.get("settings", _legacy_settings(cni)))
    c.extra_served = {(api, kind) for api, kind in data["extra_served"]}
    c.hooks = [_hook_from(h) for h in data["hooks"]]
    c.no_network = dict(data["no_network"])
    hubble = data.get("hubble") or {}  # absent in files written before Hubble was modelled
    c.identities = {str(k): int(v) for k, v in hubble.get("identities", {}).items()}
    c.probes = int(hubble.get("probes", 0))
    policies = [(obj, doc) for i, doc in enumerate(data["policies"])
                for obj in parse_one(doc, f"{source}: policies[{i}]")]
    return c, policies
