"""Calico on the sim backend: its IPAM, and the Flannel -> Calico migration in memory.

What is modelled, and the real behaviour each piece mirrors:

- **IPAM in /26 blocks.** Calico does not use the node's ``podCIDR``: each node
  claims blocks of ``blockSize`` (26) from the IP pool and hands out addresses
  from its own blocks; the first address of a node's first block goes to the
  node's ``vxlan.calico`` tunnel. Which block a node claims is pseudo-random:
  Calico seeds a generator with the FNV-1 hash of the node name
  (libcalico-go ipam ``randomBlockGenerator``); the sim starts at that hash
  modulo the number of blocks and walks forward, so blocks are reproducible
  but not the same ones a real cluster picks. Within a block, released
  addresses go to the back of the free list (the block's ``Unallocated`` queue).
- **Pods not restarted keep their Flannel address and lose the network.** Once
  ``cni0``/``flannel.1`` and Flannel's routes are gone, a pod that Calico did
  not set up has an address nothing routes to: its traffic is dropped until
  it is deleted and recreated (ground truth §5.2: "restart pods that predate
  the new CNI").
- **Nodes go NotReady** when Flannel's CNI config is removed and are Ready
  again once calico-node writes its own (the kubelet's network-ready check).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from labkit.backends.sim.cluster import CniRecord, SimCluster
from labkit.backends.sim.ipam import CalicoIpam
from labkit.cni import VerificationCheck
from labkit.cni.calico.report import MigrationReport
from labkit.cni.calico.resources import (
    CALICO_NAMESPACE,
    OPERATOR_NAMESPACE,
    custom_resources,
    migration_spec,
    pool_of,
)
from labkit.errors import ClusterError
from labkit.model import Deployment, Namespace, Pod

if TYPE_CHECKING:
    from labkit.backends.sim.backend import SimBackend

FLANNEL_DS_OWNER = "DaemonSet kube-flannel/kube-flannel-ds"
STALE_REASON = ("still has its Flannel address {ip}: flannel.1/cni0 and Flannel's routes are "
                "gone and Calico never set this pod up, so nothing routes to it; delete the pod "
                "(its controller recreates it with a Calico address)")


def no_network(cluster: SimCluster) -> dict[str, str]:
    """Pods whose data path is gone (pod key -> why); the sim's observe drops their traffic."""
    return cluster.no_network


# -- the migration ---------------------------------------------------------------------------

def migrate(backend: SimBackend, *, mode: str = "reinstall", restart: bool = True
            ) -> MigrationReport:
    c = backend.cluster
    report = MigrationReport(mode, simulated=True)
    if mode == "live":
        report.notes.extend(migration_spec()["caveats"])
        _live(backend, c, report)
        return report
    _remove_flannel(c, report)
    _clean_nodes(c, report)
    _install(backend, c, report)
    report.add("wait-available", "done" if report.steps[-1].status == "done" else "skipped",
               "calico: Available, apiserver: Available [simulated]")
    if restart:
        restart_workloads(backend, report)
    return report


def _flannel_pods(c: SimCluster) -> list[str]:
    return [k for k, sp in c.pods.items() if sp.owner == FLANNEL_DS_OWNER]


def _remove_flannel(c: SimCluster, report: MigrationReport) -> None:
    pods = _flannel_pods(c)
    if not pods and "kube-flannel" not in c.namespaces:
        report.add("remove-flannel", "skipped", "Flannel is not installed")
        return
    for key in pods:
        c.delete_pod(key)
    c.namespaces.pop("kube-flannel", None)
    report.add("remove-flannel", "done",
               "deleted Namespace kube-flannel, ClusterRoleBinding flannel, ClusterRole flannel")


def _clean_nodes(c: SimCluster, report: MigrationReport) -> None:
    if c.cni is None or c.cni.name != "flannel":
        report.add("clean-nodes", "skipped", "no Flannel leftovers on any node")
        return
    cut = no_network(c)
    for sp in c.pods.values():
        if sp.phase == "Running" and not sp.pod.host_network:
            cut[sp.pod.key] = STALE_REASON.format(ip=sp.pod.ip)
    for node in c.nodes.values():
        node.ready = False  # no CNI config left in /etc/cni/net.d: NetworkPluginNotReady
    c.cni = None
    report.add("clean-nodes", "done", "; ".join(
        f"{n}: removed flannel leftovers: 2 file(s); interfaces flannel.1, cni0; "
        "2 iptables chain(s)" for n in c.nodes))


def _install(backend: SimBackend, c: SimCluster, report: MigrationReport) -> None:
    if c.cni is not None:
        if c.cni.name != "calico":
            raise _other_cni(c.cni.name)
        report.add("install-operator", "skipped", "tigera-operator already installed")
        report.add("installation", "skipped", "Installation default already there")
        return
    pool = pool_of(custom_resources(backend.stage.pod_subnet)[0])
    ipam = CalicoIpam(pool["cidr"], int(pool.get("blockSize", 26)))
    c.namespaces.setdefault(OPERATOR_NAMESPACE, Namespace(OPERATOR_NAMESPACE))
    # tigera-operator runs with hostNetwork (it must work before any pod network exists)
    c.apply_pod(Pod(OPERATOR_NAMESPACE, "tigera-operator", {"name": "tigera-operator"},
                    host_network=True, node=c.control_plane))
    report.add("install-operator", "done", "created the tigera-operator objects [simulated]")
    for node in c.nodes:  # calico-node claims a block and its tunnel address on start
        ipam.ensure_tunnel(node)
    settings = {"encapsulation": pool.get("encapsulation", "VXLAN"), "live_migration": False}
    c.install_cni(CniRecord("calico", ipam, CALICO_NAMESPACE, "calico-node", settings))
    c.apply_deployment(Deployment(CALICO_NAMESPACE, "calico-kube-controllers", 1,
                                  {"k8s-app": "calico-kube-controllers"}))
    # with operator v1.44 the API server runs in calico-system (ground truth §1; labkit.cnis)
    c.apply_deployment(Deployment(CALICO_NAMESPACE, "calico-apiserver", 2,
                                  {"apiserver": "true"}))
    report.add("installation", "done",
               f"pool {pool['cidr']}, {pool.get('encapsulation')}, /{pool.get('blockSize')} "
               "blocks (created Installation default, APIServer default) [simulated]")


def restart_workloads(backend: SimBackend, report: MigrationReport) -> list[str]:
    """Delete the pods that kept Flannel addresses; their controllers recreate them."""
    c = backend.cluster
    cut = no_network(c)
    stale = [k for k in list(cut) if k in c.pods]
    deployments: dict[str, str] = {}
    bare = []
    for key in stale:
        sp = c.pods[key]
        if sp.owner.startswith("Deployment "):
            deployments.setdefault(sp.owner.split(" ", 1)[1], sp.pin_node)
            c.delete_pod(key)
        elif sp.owner:
            c.delete_pod(key)  # DaemonSet pods: recreated below by the DaemonSet
        else:
            bare.append(key)
            continue
        cut.pop(key, None)
    for dkey, pin in deployments.items():
        deploy = c.deployments[dkey][0]
        c.apply_deployment(deploy, pin_node=pin)
    for key in bare:
        report.notes.append(f"pod {key} has no controller: delete and recreate it yourself to "
                            "give it a Calico address")
    c.reconcile()
    moved = len(stale) - len(bare)
    namespaces = sorted({k.split("/")[0] for k in stale if k not in bare})
    if moved:
        report.add("restart-workloads", "done",
                   f"deleted {moved} pods with Flannel addresses in {', '.join(namespaces)}; "
                   "their controllers recreate them [simulated]")
    else:
        report.add("restart-workloads", "skipped", "every pod has a Calico address")
    return namespaces


def _live(backend: SimBackend, c: SimCluster, report: MigrationReport) -> None:
    """Calico's migration controller, as its net effect: node by node, pods recreated."""
    if c.cni is not None and c.cni.name == "calico":
        report.add("apply-migration", "skipped", "already applied")
        report.add("wait-job", "skipped", "job kube-system/flannel-migration already complete")
        return
    if c.cni is None or c.cni.name != "flannel" or not _flannel_pods(c):
        raise _other_cni(c.cni.name if c.cni else "no CNI", live=True)
    report.add("check-flannel", "done", "Flannel DaemonSet with VXLAN backend [simulated]")
    pool = backend.stage.pod_subnet  # the controller keeps Flannel's CIDR and VXLAN settings
    ipam = CalicoIpam(pool)
    for node in c.nodes:
        ipam.ensure_tunnel(node)
    for key in _flannel_pods(c):
        c.delete_pod(key)
    c.namespaces.pop("kube-flannel", None)
    old = [k for k, sp in c.pods.items() if sp.phase == "Running" and not sp.pod.host_network]
    c.cni = None
    # the controller keeps Flannel's VXLAN port and VNI (ground truth §4.4)
    settings = {"encapsulation": "VXLAN", "live_migration": True}
    c.install_cni(CniRecord("calico", ipam, "kube-system", "calico-node", settings))
    report.add("apply-migration", "done", "created the flannel-migration manifests [simulated]")
    deployments: dict[str, str] = {}
    for key in old:  # drained and deleted node by node; controllers recreate them
        sp = c.pods[key]
        if sp.owner.startswith("Deployment "):
            deployments.setdefault(sp.owner.split(" ", 1)[1], sp.pin_node)
        c.delete_pod(key)
    for dkey, pin in deployments.items():
        c.apply_deployment(c.deployments[dkey][0], pin_node=pin)
    c.reconcile()
    report.add("wait-job", "done", f"job kube-system/flannel-migration 1/1; {len(c.nodes)} "
               "nodes drained, migrated and uncordoned one by one [simulated]")


def _other_cni(name: str, *, live: bool = False) -> Exception:
    if live:
        return ClusterError(f"the live migration needs a running Flannel, found {name} "
                            "[simulated]", hint="run lab 01 first, or use mode='reinstall'")
    return ClusterError(f"{name} is installed: this lab migrates from Flannel [simulated]",
                        hint="run lab 01 first, or recreate the cluster")


def verify(backend: SimBackend) -> Sequence[VerificationCheck]:
    c = backend.cluster
    out = []
    calico_nodes = [sp for sp in c.pods.values() if sp.owner.endswith("/calico-node")]
    out.append(VerificationCheck(
        "calico-node pods Running",
        bool(calico_nodes) and all(sp.phase == "Running" for sp in calico_nodes),
        f"{len(calico_nodes)} Running [simulated]"))
    ipam = c.cni.ipam if c.cni is not None else None
    pods = [sp.pod for sp in c.pods.values() if sp.phase == "Running" and not sp.pod.host_network]
    wrong = []
    for pod in pods:
        found = ipam.block_of(pod.ip) if isinstance(ipam, CalicoIpam) else None
        if found is None or found[1] != pod.node:
            wrong.append(f"{pod.key} {pod.ip} on {pod.node}")
    out.append(VerificationCheck(
        "pods addressed from their node's Calico blocks", not wrong and bool(pods),
        f"{len(pods)} pods checked [simulated]" if not wrong
        else "not from a block of their node: " + "; ".join(wrong[:5])))
    return out
