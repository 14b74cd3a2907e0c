"""An in-memory kind cluster: nodes, system pods, workloads, services, policies.

Deterministic: the same sequence of calls gives the same names and addresses.
Each behaviour mirrors a documented real one (cited where it is modelled):

- Each node gets its ``podCIDR`` (a /24 of the pod subnet) when it registers: kubeadm
  runs kube-controller-manager with ``--allocate-node-cidrs=true`` and the cluster's
  ``podSubnet`` as ``--cluster-cidr``, so kind nodes have one before any CNI exists
  (kubeadm's controller-manager flags; ``kubectl get nodes -o
  custom-columns=NAME:.metadata.name,CIDR:.spec.podCIDR`` on a fresh kind cluster).
- Nodes stay NotReady until a CNI is installed; the kubelet's Ready condition
  then says "container runtime network not ready ... cni plugin not initialized"
  (shared/reference/samples/kubectl-nodes-pods/node_ready_condition_message_...).
- CoreDNS and local-path-provisioner stay Pending meanwhile (same folder,
  kubectl_get_pods_all_namespaces_kind_no_cni_coredns_pending_...): the scheduler
  will not place pods on nodes tainted node.kubernetes.io/not-ready.
- Control-plane static pods and kube-proxy use the host network and run anyway.
- In a multi-node kind cluster the control plane keeps its NoSchedule taint, so
  workload pods land on workers; replicas spread over nodes (the scheduler's
  default topology spreading), modelled as least-loaded first, ties by name.
- A node runs at most 110 pods (the kubelet's default ``maxPods``, KubeletConfiguration
  reference); the scheduler leaves pods beyond every node's capacity Pending with
  FailedScheduling's "N Too many pods". A pod whose node has no address left stays
  Pending too, with the CNI's IPAM error (host-local: "no IP addresses available").
- ClusterIPs: ``kubernetes`` gets the first address of the service subnet and
  ``kube-dns`` the tenth (kubeadm); others a reproducible spot in the range
  (the API server allocates at random). ``kubernetes`` serves 443/TCP (``https``),
  forwarded to the API server's 6443 on kind.
- Every object gets a creation time (wall clock) when it first appears, as the API
  server sets ``metadata.creationTimestamp``: kubectl's AGE is computed from it.
"""

from __future__ import annotations

import collections
import hashlib
import ipaddress
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from labkit.backends.base import NodeRow, PodRow
from labkit.backends.sim.ipam import AddressesExhausted, Ipam, node_cidrs
from labkit.backends.sim.names import pod_suffix, template_hash
from labkit.cnis import KUBERNETES_NAMESPACES
from labkit.environments import Stage
from labkit.model import (
    LOCAL_CLUSTER,
    ClusterState,
    ContainerPort,
    Deployment,
    Namespace,
    Pod,
    Secret,
    Service,
    ServicePort,
    endpoints_of,
)
from labkit.policy.state import identity

NOT_READY_MESSAGE = ("container runtime network not ready: NetworkReady=false "
                     "reason:NetworkPluginNotReady message:Network plugin returns error: "
                     "cni plugin not initialized")
#: Where creation times come from (tests replace it to get fixed AGEs).
clock: Callable[[], float] = time.time
#: The kubelet's default maxPods: how many pods one node runs, host-network ones included.
MAX_PODS = 110
DEFAULT_NAMESPACES = ("default", *KUBERNETES_NAMESPACES)


@dataclass
class SimNode:
    name: str
    ip: str
    roles: tuple[str, ...]
    pod_cidr: str = ""
    ready: bool = False

    def row(self) -> NodeRow:
        return NodeRow(self.name, self.ready, self.roles, self.ip, self.pod_cidr,
                       "" if self.ready else NOT_READY_MESSAGE)


@dataclass
class SimPod:
    pod: Pod
    owner: str = ""  # "Deployment ns/name", "DaemonSet ns/name" or "" (static / bare)
    phase: str = "Pending"
    reason: str = ""
    pin_node: str = ""  # static pods, DaemonSet pods, system pods
    tolerates_control_plane: bool = False

    def row(self) -> PodRow:
        return PodRow(self.pod.namespace, self.pod.name, self.phase, self.phase == "Running",
                      self.pod.ip, self.pod.node, self.reason, self.pod.host_network)


@dataclass
class CniRecord:
    name: str
    ipam: Ipam
    namespace: str
    daemonset: str
    #: What the install chose that shows on the wire (``labkit.capture.datapath_for``).
    settings: dict[str, Any] = field(default_factory=dict)


Hook = Callable[["SimCluster"], None]


@dataclass
class SimCluster:
    stage: Stage
    nodes: dict[str, SimNode] = field(default_factory=dict)
    namespaces: dict[str, Namespace] = field(default_factory=dict)
    deployments: dict[str, tuple[Deployment, str]] = field(default_factory=dict)
    pods: dict[str, SimPod] = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict)
    secrets: dict[str, Secret] = field(default_factory=dict)
    policies: list[Any] = field(default_factory=list)
    cni: CniRecord | None = None
    #: (apiVersion, kind) served beyond the CNI's CRDs (add-ons such as MetalLB add theirs).
    extra_served: set[tuple[str, str]] = field(default_factory=set)
    #: Called after every change (add-on controllers: e.g. a LoadBalancer IP allocator).
    hooks: list[Hook] = field(default_factory=list)
    #: Pods whose data path is gone (pod key -> why), e.g. pods that kept a Flannel address
    #: after the migration to Calico (labkit.cni.calico_sim): their traffic is dropped.
    no_network: dict[str, str] = field(default_factory=dict)
    #: The applied manifest of each policy, by identity: what is saved, and parsed on load.
    policy_docs: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    #: When each object appeared (``object_key`` -> seconds since the epoch).
    created: dict[str, float] = field(default_factory=dict)
    #: Hubble (with Cilium): the identities allocated to label sets, and how many probes
    #: were answered (the flows themselves are in the store's flows file).
    identities: dict[str, int] = field(default_factory=dict)
    probes: int = 0
    #: Called after every change (outside a batch): the sim backend saves the cluster there.
    on_change: Hook | None = field(default=None, repr=False, compare=False)
    #: What the backend last wrote or read for this cluster (its state file's bookkeeping).
    saved: Any = field(default=None, repr=False, compare=False)
    _generation: int = 0
    _batch: int = field(default=0, repr=False, compare=False)

    # -- change notification -------------------------------------------------------------
    def changed(self) -> None:
        if self.on_change is not None and not self._batch:
            self.on_change(self)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Changes inside are reported once, at the end (one save per ``apply``)."""
        self._batch += 1
        try:
            yield
        finally:
            self._batch -= 1
            self.changed()

    # -- creation ----------------------------------------------------------------------
    @classmethod
    def create(cls, stage: Stage) -> SimCluster:
        c = cls(stage)
        base = ipaddress.ip_address("172.18.0.2")  # kind's Docker network, first host address
        cidrs = node_cidrs(stage.pod_subnet, stage.node_names())  # at registration
        for i, (name, role) in enumerate(zip(stage.node_names(), stage.node_roles,
                                              strict=True)):
            roles = ("control-plane",) if role == "control-plane" else ()
            c.nodes[name] = SimNode(name, str(base + i), roles, pod_cidr=cidrs[name])
        for ns in DEFAULT_NAMESPACES:
            c.namespaces[ns] = Namespace(ns)
        cp = c.control_plane
        for component in ("etcd", "kube-apiserver", "kube-controller-manager",
                          "kube-scheduler"):
            c._add_pod(Pod("kube-system", f"{component}-{cp}", {"component": component},
                           host_network=True), pin_node=cp)
        if stage.kube_proxy_mode != "none":
            c.add_daemonset("kube-system", "kube-proxy", {"k8s-app": "kube-proxy"})
        c._add_system_deployment("kube-system", "coredns", 2, {"k8s-app": "kube-dns"},
                                 (ContainerPort(53, "UDP", "dns"),
                                  ContainerPort(53, "TCP", "dns-tcp")))
        c._add_system_deployment("local-path-storage", "local-path-provisioner", 1,
                                 {"app": "local-path-provisioner"}, ())
        c.services["default/kubernetes"] = Service(
            "default", "kubernetes", {}, (ServicePort(443, 6443, "TCP", "https"),),
            cluster_ip=c._service_ip_at(1))
        c.services["kube-system/kube-dns"] = Service(
            "kube-system", "kube-dns", {"k8s-app": "kube-dns"},
            (ServicePort(53, 53, "UDP", "dns"), ServicePort(53, 53, "TCP", "dns-tcp")),
            cluster_ip=c._service_ip_at(10))
        c.reconcile()
        return c

    @property
    def control_plane(self) -> str:
        return next(n.name for n in self.nodes.values() if "control-plane" in n.roles)

    def _add_pod(self, pod: Pod, *, owner: str = "", pin_node: str = "",
                 tolerates_control_plane: bool = False) -> None:
        self.pods[pod.key] = SimPod(pod, owner, pin_node=pin_node,
                                    tolerates_control_plane=tolerates_control_plane)
        # a new pod object, even when it reuses a deleted pod's name: its AGE starts now
        self.created[object_key("Pod", pod.namespace, pod.name)] = clock()

    def _add_system_deployment(self, ns: str, name: str, replicas: int,
                               labels: dict[str, str], ports: tuple[ContainerPort, ...]) -> None:
        deploy = Deployment(ns, name, replicas, labels, ports)
        self.apply_deployment(deploy, pin_node=self.control_plane)

    def add_daemonset(self, ns: str, name: str, labels: dict[str, str], *,
                      host_network: bool = True) -> None:
        """One pod per node (kube-proxy, kube-flannel-ds ...), tolerating every taint."""
        for node in self.nodes.values():
            pod = Pod(ns, f"{name}-{pod_suffix(f'{ns}/{name}/{node.name}')}", dict(labels),
                      host_network=host_network)
            self._add_pod(pod, owner=f"DaemonSet {ns}/{name}", pin_node=node.name)
        self.namespaces.setdefault(ns, Namespace(ns))
        self.changed()

    # -- CNI ---------------------------------------------------------------------------
    @property
    def pod_cidrs(self) -> dict[str, str]:
        """Each node's podCIDR (assigned when the node registered)."""
        return {n.name: n.pod_cidr for n in self.nodes.values()}

    def install_cni(self, record: CniRecord) -> None:
        """The CNI's DaemonSet writes its config on every node: the kubelet reports Ready."""
        if self.cni is not None and self.cni.name == record.name:
            return
        self.cni = record
        for node in self.nodes.values():
            node.ready = True
        self.add_daemonset(record.namespace, record.daemonset, {"app": record.name})
        self.reconcile()

    # -- workloads -------------------------------------------------------------------
    def apply_deployment(self, deploy: Deployment, *, pin_node: str = "") -> None:
        seed = f"{deploy.key}|{sorted(deploy.labels.items())}|{deploy.ports}|{deploy.image}"
        thash = template_hash(seed)
        old = self.deployments.get(deploy.key)
        if old is not None and old[1] != thash:
            # A changed template means a new ReplicaSet: the old pods go, new ones come.
            for key in [k for k, p in self.pods.items() if p.owner == f"Deployment {deploy.key}"]:
                self._remove_pod(key)
        self.deployments[deploy.key] = (deploy, thash)
        mine = [k for k, p in self.pods.items() if p.owner == f"Deployment {deploy.key}"]
        for key in mine[deploy.replicas:]:
            self._remove_pod(key)
        index = len(mine)
        while len(mine) < deploy.replicas:
            self._generation += 1
            name = f"{deploy.name}-{thash}-{pod_suffix(f'{deploy.key}/{thash}/{index}')}"
            labels = {**deploy.labels, "pod-template-hash": thash}
            pod = Pod(deploy.namespace, name, labels, ports=deploy.ports,
                      containers=deploy.containers)
            self._add_pod(pod, owner=f"Deployment {deploy.key}", pin_node=pin_node)
            mine.append(pod.key)
            index += 1
        self.namespaces.setdefault(deploy.namespace, Namespace(deploy.namespace))
        self.changed()

    def delete_deployment(self, key: str) -> bool:
        if self.deployments.pop(key, None) is None:
            return False
        for pod_key in [k for k, p in self.pods.items() if p.owner == f"Deployment {key}"]:
            self._remove_pod(pod_key)
        self.changed()
        return True

    def apply_pod(self, pod: Pod) -> None:
        old = self.pods.get(pod.key)
        if old is not None:
            # Pod specs are immutable but labels are not: keep placement and address.
            old.pod = replace(pod, ip=old.pod.ip, node=old.pod.node)
        else:
            self._add_pod(replace(pod, ip="", node=""), pin_node=pod.node)
        self.changed()

    def _remove_pod(self, key: str) -> None:
        sp = self.pods.pop(key)
        self.no_network.pop(key, None)
        if sp.pod.ip and not sp.pod.host_network and self.cni is not None:
            self.cni.ipam.release(sp.pod.ip)

    def delete_pod(self, key: str) -> bool:
        if key not in self.pods:
            return False
        self._remove_pod(key)
        self.changed()
        return True

    def apply_service(self, svc: Service) -> None:
        old = self.services.get(svc.key)
        ip = svc.cluster_ip or (old.cluster_ip if old else "") or self._allocate_service_ip(svc)
        self.services[svc.key] = replace(svc, cluster_ip=ip, ports=self._node_ports(svc, old))
        self.namespaces.setdefault(svc.namespace, Namespace(svc.namespace))
        self.changed()

    def _node_ports(self, svc: Service, old: Service | None) -> tuple[ServicePort, ...]:
        """NodePort and LoadBalancer Services get a node port per port, from 30000-32767
        (the API server's default --service-node-port-range; it picks at random, the sim at a
        reproducible spot), kept across re-applies like the real allocation."""
        if svc.type not in ("NodePort", "LoadBalancer"):
            return svc.ports
        kept = {(p.port, p.protocol): p.node_port for p in (old.ports if old else ())}
        taken = {p.node_port for s in self.services.values() if s.key != svc.key
                 for p in s.ports if p.node_port}
        out = []
        for p in svc.ports:
            port = p.node_port or kept.get((p.port, p.protocol))
            if port is None:
                seed = int(hashlib.sha256(f"{svc.key}/{p.port}/{p.protocol}".encode())
                           .hexdigest(), 16)
                port = next(30000 + (seed + step) % 2768 for step in range(2768)
                            if 30000 + (seed + step) % 2768 not in taken)
            taken.add(port)
            out.append(replace(p, node_port=port))
        return tuple(out)

    def _service_ip_at(self, offset: int) -> str:
        return str(ipaddress.ip_network(self.stage.service_subnet).network_address + offset)

    def _allocate_service_ip(self, svc: Service) -> str:
        net = ipaddress.ip_network(self.stage.service_subnet)
        size = net.num_addresses - 2
        taken = {s.cluster_ip for s in self.services.values()}
        start = int(hashlib.sha256(svc.key.encode()).hexdigest(), 16) % size
        for step in range(size):
            ip = str(net.network_address + 1 + (start + step) % size)
            if ip not in taken and not ip.endswith(".0"):
                return ip
        raise RuntimeError(f"service subnet {net} is full")

    # -- the control loop -------------------------------------------------------------
    def schedulable(self, sp: SimPod) -> list[SimNode]:
        ready = [n for n in self.nodes.values() if n.ready]
        if sp.pin_node:
            return [n for n in ready if n.name == sp.pin_node]
        workers = [n for n in ready if "control-plane" not in n.roles]
        # A single-node kind cluster has its control-plane taint removed.
        return workers or ready

    def reconcile(self) -> None:
        """Schedule pending pods and give them addresses, in creation order."""
        total: collections.Counter[str] = collections.Counter()
        same: collections.Counter[tuple[str, str]] = collections.Counter()
        for sp in self.pods.values():
            if sp.pod.node and sp.phase == "Running":
                total[sp.pod.node] += 1
                same[(sp.owner, sp.pod.node)] += 1
        for sp in self.pods.values():
            if sp.phase == "Running":
                continue
            if sp.pod.host_network and sp.pin_node:
                node = self.nodes[sp.pin_node]
                sp.pod = replace(sp.pod, node=node.name, ip=node.ip)
                sp.phase, sp.reason = "Running", ""
                total[node.name] += 1
                continue
            candidates = self.schedulable(sp)
            if not candidates or self.cni is None:
                sp.phase = "Pending"
                n = len(self.nodes)
                sp.reason = (f"0/{n} nodes are available: {n} node(s) had untolerated taint "
                             "{node.kubernetes.io/not-ready: }")
                continue
            room = [c for c in candidates if total[c.name] < MAX_PODS]
            if not room:
                sp.phase, sp.reason = "Pending", self._too_many_pods(len(candidates))
                continue
            node = min(room, key=lambda c: (same[(sp.owner, c.name)] if sp.owner else 0,
                                            total[c.name], c.name))
            try:
                ip = node.ip if sp.pod.host_network else self.cni.ipam.allocate(node.name)
            except AddressesExhausted as exc:
                sp.phase, sp.reason = "Pending", f"FailedCreatePodSandBox on {node.name}: {exc}"
                continue
            sp.pod = replace(sp.pod, node=node.name, ip=ip)
            sp.phase, sp.reason = "Running", ""
            total[node.name] += 1
            same[(sp.owner, node.name)] += 1
        for hook in list(self.hooks):
            hook(self)
        self._stamp()
        self.changed()

    def _stamp(self) -> None:
        """Creation times for new objects; forget those of objects that are gone."""
        keys = [object_key("Node", "", n) for n in self.nodes]
        keys += [object_key("Namespace", "", n) for n in self.namespaces]
        keys += [object_key(kind, *key.split("/", 1)) for kind, objs in
                 (("Pod", self.pods), ("Service", self.services),
                  ("Deployment", self.deployments)) for key in objs]
        keys += [object_key(*identity(p)) for p in self.policies]
        now = clock()
        self.created = {k: self.created.get(k, now) for k in keys}

    def created_at(self, kind: str, namespace: str, name: str) -> float | None:
        return self.created.get(object_key(kind, namespace, name))

    def _too_many_pods(self, full: int) -> str:
        """FailedScheduling when every node the pod may use holds MAX_PODS pods (the others
        keep their control-plane taint)."""
        n = len(self.nodes)
        tainted = n - full
        parts = ([f"{tainted} node(s) had untolerated taint "
                  "{node-role.kubernetes.io/control-plane: }"] if tainted else []) + \
            [f"{full} Too many pods"]
        preemption = ([f"{tainted} Preemption is not helpful for scheduling"] if tainted
                      else []) + [f"{full} No preemption victims found for incoming pod"]
        return (f"0/{n} nodes are available: {', '.join(parts)}. preemption: 0/{n} nodes are "
                f"available: {', '.join(preemption)}.")

    # -- views -------------------------------------------------------------------------
    def endpoints(self, key: str) -> list[str]:
        """``ip:port`` of the ready pods behind a Service, like its EndpointSlice."""
        running = (sp.pod for sp in self.pods.values() if sp.phase == "Running")
        return sorted(f"{p.ip}:{port}" for p, port in endpoints_of(self.services[key], running))

    def state(self) -> ClusterState:
        running = {k: sp.pod for k, sp in self.pods.items() if sp.phase == "Running"}
        settings = self.cni.settings if self.cni else {}
        return ClusterState(
            name=LOCAL_CLUSTER, namespaces=dict(self.namespaces), pods=running,
            services=dict(self.services), secrets=dict(self.secrets),
            nodes={n.name: n.row().node() for n in self.nodes.values()},
            policies=list(self.policies), pod_cidr=self.stage.pod_subnet,
            service_cidr=self.stage.service_subnet,
            policy_enforcement=str(settings.get("policyEnforcementMode", "default")),
            dns_names={n: tuple(ips) for n, ips in (settings.get("dns_names") or {}).items()})


def object_key(kind: str, namespace: str, name: str) -> str:
    """How :attr:`SimCluster.created` names an object (policies: their identity)."""
    return f"{kind}|{namespace}|{name}"
