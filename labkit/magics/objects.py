"""The simulated cluster as the API server would return its objects (what ``kubectl get -o
yaml`` prints and what the tables are made from)."""

from __future__ import annotations

import platform
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from labkit.display import kubectl as fmt
from labkit.environments import pinned
from labkit.magics.cli import Resource

if TYPE_CHECKING:
    from labkit.backends.sim.cluster import SimCluster, SimPod
    from labkit.model import Service

#: The kubelet's node conditions besides Ready, as reported while they are False (kubelet
#: setters.go; the real sample in tests/fixtures/kubectl shows MemoryPressure this way).
PRESSURE_CONDITIONS = (
    ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
)


class ApiView:
    """API objects built from a simulated cluster; ``now`` is the clock of AGE and heartbeats."""

    def __init__(self, cluster: SimCluster, now: Callable[[], float]) -> None:
        self.cluster = cluster
        self.now = now

    def objects(self, res: Resource, namespace: str | None) -> list[dict[str, Any]]:
        """The API objects of a kind (in ``namespace``, or all), sorted as the API lists them."""
        c = self.cluster
        build = {"Node": lambda: [self.node(n) for n in c.nodes],
                 "Namespace": lambda: [self.namespace(n) for n in c.namespaces],
                 "Pod": lambda: [self.pod(sp) for sp in c.pods.values()],
                 "Service": lambda: [self.service(s) for s in c.services.values()],
                 "Deployment": lambda: [self.deployment(k) for k in c.deployments],
                 "NetworkPolicy": lambda: [self.policy(k, d) for k, d in c.policy_docs.items()
                                           if k[0] == "NetworkPolicy"]}[res.kind]
        objs = [o for o in build() if not res.namespaced or namespace is None
                or o["metadata"].get("namespace") == namespace]
        return sorted(objs, key=lambda o: (o["metadata"].get("namespace", ""),
                                           o["metadata"]["name"]))

    def _meta(self, kind: str, namespace: str, name: str, **extra: Any) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name}
        if namespace:
            meta["namespace"] = namespace
        created = self.cluster.created_at(kind, namespace, name)
        if created is not None:
            meta["creationTimestamp"] = fmt.timestamp(created)
        meta.update({k: v for k, v in extra.items() if v})
        return meta

    def node(self, name: str) -> dict[str, Any]:
        n = self.cluster.nodes[name]
        labels = {"kubernetes.io/arch": "amd64", "kubernetes.io/hostname": name,
                  "kubernetes.io/os": "linux",
                  **{f"node-role.kubernetes.io/{r}": "" for r in n.roles}}
        row = n.row()
        created = self.cluster.created_at("Node", "", name) or self.now()
        beat, since = fmt.timestamp(self.now()), fmt.timestamp(created)
        # The kubelet's pressure conditions (the sim models healthy nodes) and Ready, which
        # turns True when the CNI's agent on the node writes its config: its pod's start.
        conditions = [{"type": t, "status": "False", "reason": reason, "message": message,
                       "lastHeartbeatTime": beat, "lastTransitionTime": since}
                      for t, reason, message in PRESSURE_CONDITIONS]
        conditions.append({
            "type": "Ready", "status": "True" if n.ready else "False",
            "reason": "KubeletReady" if n.ready else "KubeletNotReady",
            "message": "kubelet is posting ready status" if n.ready else row.message,
            "lastHeartbeatTime": beat,
            "lastTransitionTime": fmt.timestamp(self._ready_since(name) or created)})
        spec: dict[str, Any] = {}
        if n.pod_cidr:
            spec = {"podCIDR": n.pod_cidr, "podCIDRs": [n.pod_cidr]}
        taints = node_taints(n.roles, n.ready)
        if taints:
            spec["taints"] = taints
        return {"apiVersion": "v1", "kind": "Node",
                "metadata": self._meta("Node", "", name, labels=labels), "spec": spec,
                "status": {"addresses": [{"address": n.ip, "type": "InternalIP"},
                                         {"address": name, "type": "Hostname"}],
                           "conditions": conditions,
                           "nodeInfo": {"kubeletVersion": kubelet_version(),
                                        "kernelVersion": platform.release()}}}

    def _ready_since(self, node: str) -> float | None:
        """When the node turned Ready: when the CNI's agent pod on it was created."""
        cni = self.cluster.cni
        if cni is None or not self.cluster.nodes[node].ready:
            return None
        owner = f"DaemonSet {cni.namespace}/{cni.daemonset}"
        agent = next((sp.pod for sp in self.cluster.pods.values()
                      if sp.owner == owner and sp.pod.node == node), None)
        return None if agent is None else \
            self.cluster.created_at("Pod", agent.namespace, agent.name)

    def namespace(self, name: str) -> dict[str, Any]:
        ns = self.cluster.namespaces[name]
        return {"apiVersion": "v1", "kind": "Namespace",
                "metadata": self._meta("Namespace", "", name, labels=ns.all_labels()),
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}

    def pod(self, sp: SimPod) -> dict[str, Any]:
        p = sp.pod
        names = p.containers or (p.name.rsplit("-", 2)[0],)
        running = sp.phase == "Running"
        status: dict[str, Any] = {"phase": sp.phase}
        if running:
            status |= {"podIP": p.ip, "hostIP": self.cluster.nodes[p.node].ip if p.node else "",
                       "containerStatuses": [{"name": c, "ready": True, "restartCount": 0,
                                              "state": {"running": {}}} for c in names]}
        elif sp.reason:
            status["conditions"] = [{"type": "PodScheduled", "status": "False",
                                     "reason": "Unschedulable", "message": sp.reason}]
        spec: dict[str, Any] = {"containers": [{"name": c} for c in names]}
        if p.node:
            spec["nodeName"] = p.node
        if p.host_network:
            spec["hostNetwork"] = True
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": self._meta("Pod", p.namespace, p.name, labels=p.labels),
                "spec": spec, "status": status}

    def service(self, s: Service) -> dict[str, Any]:
        ports = []
        for sp in s.ports:
            port: dict[str, Any] = {"port": sp.port, "protocol": sp.protocol,
                                    "targetPort": sp.target_port}
            if sp.name:
                port["name"] = sp.name
            if sp.node_port:
                port["nodePort"] = sp.node_port
            ports.append(port)
        spec: dict[str, Any] = {"clusterIP": s.cluster_ip, "clusterIPs": [s.cluster_ip],
                                "ports": ports, "type": s.type}
        if s.selector:
            spec["selector"] = dict(s.selector)
        status: dict[str, Any] = {"loadBalancer": {}}
        if s.external_ip:
            status["loadBalancer"] = {"ingress": [{"ip": s.external_ip, "ipMode": "VIP"}]}
        return {"apiVersion": "v1", "kind": "Service",
                "metadata": self._meta("Service", s.namespace, s.name,
                                       annotations=dict(s.annotations)),
                "spec": spec, "status": status}

    def deployment(self, key: str) -> dict[str, Any]:
        d, _ = self.cluster.deployments[key]
        ready = sum(1 for sp in self.cluster.pods.values()
                    if sp.owner == f"Deployment {key}" and sp.phase == "Running")
        return {"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": self._meta("Deployment", d.namespace, d.name),
                "spec": {"replicas": d.replicas, "selector": {"matchLabels": dict(d.labels)}},
                "status": {"replicas": d.replicas, "readyReplicas": ready,
                           "availableReplicas": ready, "updatedReplicas": d.replicas}}

    def policy(self, key: tuple[str, str, str], doc: dict[str, Any]) -> dict[str, Any]:
        kind, ns, name = key
        out = {k: v for k, v in doc.items() if k not in ("metadata", "status")}
        meta = {k: v for k, v in (doc.get("metadata") or {}).items()}
        meta |= self._meta(kind, ns, name, generation=1)
        spec = dict(out.get("spec") or {})
        if kind == "NetworkPolicy" and "policyTypes" not in spec:
            # defaulted by the API server: Ingress, plus Egress when egress rules are given
            spec["policyTypes"] = ["Ingress", *(["Egress"] if spec.get("egress") else [])]
            out["spec"] = spec
        return {**out, "metadata": meta}

def node_taints(roles: Sequence[str], ready: bool) -> list[dict[str, str]]:
    """kubeadm taints the control plane NoSchedule (kind keeps it when there are workers); the
    node lifecycle controller taints a NotReady node (Kubernetes docs, "Taints and
    Tolerations", taint-nodes-by-condition; kind issue 3603 shows both effects on kind)."""
    taints = []
    if "control-plane" in roles:
        taints.append({"effect": "NoSchedule", "key": "node-role.kubernetes.io/control-plane"})
    if not ready:
        taints += [{"effect": "NoSchedule", "key": "node.kubernetes.io/not-ready"},
                   {"effect": "PreferNoSchedule", "key": "node.kubernetes.io/not-ready"}]
    return taints


def kubelet_version() -> str:
    """The node image's Kubernetes version (kindest/node:v1.36.4@sha256:... -> v1.36.4)."""
    image = str(pinned("kind", "node_image"))
    return image.split("@")[0].rsplit(":", 1)[-1]
