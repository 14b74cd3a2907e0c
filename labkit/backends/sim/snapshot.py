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
import types
import typing
from functools import cache
from typing import Any

from labkit import model
from labkit.backends.sim.cluster import CniRecord, SimCluster, SimNode, SimPod
from labkit.backends.sim.controllers import SimAllocator
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


def _build(cls: type, data: Any, where: str = "") -> Any:
    """``cls(**data)`` with every field checked against its type hint (a state file is input:
    validated on load, so a wrong type fails here, not later in a notebook), turning lists
    back into the tuples (of dataclasses) the model uses."""
    where = where or cls.__name__
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object, got {type(data).__name__}")
    hints = _hints(cls)
    unknown = set(data) - set(hints)
    if unknown:
        raise ValueError(f"{where}: {cls.__name__} has no field {sorted(unknown)[0]!r}")
    return cls(**{k: _typed(hints[k], v, f"{where}.{k}") for k, v in data.items()})


def _typed(hint: Any, value: Any, where: str) -> Any:
    """``value`` as ``hint`` (str, int, float, bool, X | None, tuple[X, ...], dict[str, X], a
    dataclass), or ValueError naming the field."""
    if hint is Any:
        return value
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for option in args:
            try:
                return _typed(option, value, where)
            except ValueError:
                continue
        raise ValueError(f"{where}: unexpected {type(value).__name__} {str(value)[:40]!r}")
    if origin is tuple and isinstance(value, list):
        return tuple(_typed(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict and isinstance(value, dict):
        return {_typed(args[0], k, where): _typed(args[1], v, f"{where}.{k}")
                for k, v in value.items()}
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _build(hint, value, where)
    if hint is type(None) and value is None:
        return None
    if isinstance(hint, type) and hint in (str, int, float, bool) and type(value) is hint:
        return value
    raise ValueError(f"{where}: expected {getattr(hint, '__name__', hint)}, "
                     f"got {type(value).__name__}")


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
    raise _unsupported("controller hook", hook)


def _hook_from(data: dict[str, Any]) -> Any:
    if data["type"] == "metallb":
        hook = SimAllocator(list(data["addresses"]))
        hook.assigned = dict(data["assigned"])
        return hook
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
        "created": cluster.created,
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
    c._generation = _typed(int, data["generation"], "generation")
    nodes = [_build(SimNode, n, f"nodes[{i}]") for i, n in enumerate(_list(data, "nodes"))]
    c.nodes = {n.name: n for n in nodes}
    c.namespaces = {n.name: n for n in (_build(model.Namespace, d, f"namespaces[{i}]")
                                        for i, d in enumerate(_list(data, "namespaces")))}
    for i, item in enumerate(_list(data, "deployments")):
        d = _build(model.Deployment, item["deployment"], f"deployments[{i}]")
        c.deployments[d.key] = (d, _typed(str, item["template_hash"], f"deployments[{i}]"))
    for i, item in enumerate(_list(data, "pods")):
        sp = _build(SimPod, item, f"pods[{i}]")
        c.pods[sp.pod.key] = sp
    c.services = {s.key: s for s in (_build(model.Service, d, f"services[{i}]")
                                     for i, d in enumerate(_list(data, "services")))}
    c.secrets = {f"{s.namespace}/{s.name}": s
                 for s in (_build(model.Secret, d, f"secrets[{i}]")
                           for i, d in enumerate(_list(data, "secrets")))}
    cni = data["cni"]
    if cni is not None:
        c.cni = CniRecord(cni["name"], _ipam_from(cni["ipam"]), cni["namespace"],
                          cni["daemonset"], cni.get("settings", _legacy_settings(cni)))
    c.extra_served = {(api, kind) for api, kind in
                      _typed(tuple[tuple[str, str], ...], data["extra_served"], "extra_served")}
    c.hooks = [_hook_from(h) for h in _list(data, "hooks")]
    c.no_network = _typed(dict[str, str], data["no_network"], "no_network")
    # creation times (for kubectl's AGE column) are absent from files written before them
    c.created = {k: float(v) for k, v in
                 _typed(dict[str, int | float], data.get("created", {}), "created").items()}
    hubble = data.get("hubble") or {}  # absent in files written before Hubble was modelled
    c.identities = {str(k): int(v) for k, v in hubble.get("identities", {}).items()}
    c.probes = int(hubble.get("probes", 0))
    policies = [(obj, doc) for i, doc in enumerate(_list(data, "policies"))
                for obj in parse_one(_typed(dict[str, Any], doc, f"policies[{i}]"),
                                     f"{source}: policies[{i}]")]
    return c, policies


def _list(data: dict[str, Any], key: str) -> list[Any]:
    value = data[key]
    if not isinstance(value, list):
        raise ValueError(f"{key}: expected a list, got {type(value).__name__}")
    return value
