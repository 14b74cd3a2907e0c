"""What each CNI is, in one table: the one place the engine, backends, capture and images read.

Adding a CNI starts here: one :class:`CniProfile` row in :data:`CNIS`, then its recipe
package under ``labkit/cni/`` (registered in ``labkit.cni.registry``). Everything
else (which policy kinds a cluster enforces and serves, how ``lab.status()`` tells
which CNI runs, which namespaces are "system", which ports a capture filters on,
which images the offline bundle needs) is derived from the rows.

Pure data: this module imports nothing from labkit. Sources for each fact are cited
on the row (versions as pinned in ``environments/versions.yaml``; ground truth in
``cni-ground-truth.md``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Policy kinds as the engine names them (``Policy.kind``): the Calico namespaced policy is
# "Calico NetworkPolicy" so that it never collides with Kubernetes' NetworkPolicy.
NETWORK_POLICY = "NetworkPolicy"
CALICO_NETWORK_POLICY = "Calico NetworkPolicy"
GLOBAL_NETWORK_POLICY = "GlobalNetworkPolicy"
CILIUM_NETWORK_POLICY = "CiliumNetworkPolicy"
CILIUM_CLUSTERWIDE_NETWORK_POLICY = "CiliumClusterwideNetworkPolicy"


@dataclass(frozen=True)
class Workload:
    """A DaemonSet or Deployment a CNI runs: ``namespace/name``."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Datapath:
    """Ports a CNI uses between nodes (None: it has no such mode)."""

    vxlan_port: int | None = None
    vxlan_vni: int | None = None  # None with a port: the VNI varies (Cilium: source identity)
    wireguard_port: int | None = None


@dataclass(frozen=True)
class CniProfile:
    name: str
    #: Policy kinds it enforces (``Policy.kind`` names).
    enforces: frozenset[str] = frozenset()
    #: Whether it enforces L7 (HTTP) rules inside policies.
    l7: bool = False
    #: Whether it records flows that ``hubble observe`` reads (Cilium's Hubble, in the agent).
    hubble: bool = False
    #: Which policy semantics judge traffic: a key of ``labkit.policy.engine.SEMANTICS``.
    semantics: str | None = None
    #: API versions its CRDs add to the API server, and every API group it owns.
    crd_apis: tuple[str, ...] = ()
    crd_groups: tuple[str, ...] = ()
    #: The DaemonSets whose presence says the CNI is installed (the node agents), in the
    #: order a cluster is probed; other DaemonSets and Deployments it runs.
    agents: tuple[Workload, ...] = ()
    daemonsets: tuple[Workload, ...] = ()
    deployments: tuple[Workload, ...] = ()
    #: Namespaces its components run in at the pinned version, and namespaces older
    #: versions used (still system namespaces when a cluster has them).
    namespaces: tuple[str, ...] = ()
    former_namespaces: tuple[str, ...] = ()
    #: Namespaces its operator keeps while the CNI is installed (deleting one is refused in
    #: sim: on a real cluster it stays Terminating), and how to remove the CNI instead.
    operator_namespaces: tuple[str, ...] = ()
    uninstall: str = ""
    datapath: Datapath = field(default_factory=Datapath)
    #: Keys of ``environments/versions.yaml`` whose images it needs (the offline bundle).
    components: tuple[str, ...] = ()
    #: Comes with kind itself (present on every cluster whose config does not disable it),
    #: so it is probed after the CNIs labkit installs.
    builtin: bool = False

    @property
    def system_namespaces(self) -> tuple[str, ...]:
        return self.namespaces + self.former_namespaces


CNIS: dict[str, CniProfile] = {
    # Flannel v0.28.9, kube-flannel.yml: DaemonSet kube-flannel-ds in kube-flannel; VXLAN
    # UDP 8472, VNI 1 (Documentation/backends.md); it enforces no policy (ground truth §3).
    "flannel": CniProfile(
        "flannel",
        agents=(Workload("kube-flannel", "kube-flannel-ds"),),
        namespaces=("kube-flannel",),
        datapath=Datapath(vxlan_port=8472, vxlan_vni=1, wireguard_port=51820),
        components=("flannel",),
    ),
    # kind's own kindnetd: DaemonSet kindnet in kube-system; routes, no tunnel; enforces
    # Kubernetes NetworkPolicy since kind v0.24 (ground truth §3).
    "kindnet": CniProfile(
        "kindnet",
        enforces=frozenset({NETWORK_POLICY}),
        semantics="kubernetes",
        agents=(Workload("kube-system", "kindnet"),),
        builtin=True,
    ),
    # Calico v3.33 with tigera-operator: calico-node in calico-system (in kube-system during
    # the live migration from Flannel, ground truth §4.4), the API server in calico-system
    # with operator v1.44 (ground truth §1; older operators used calico-apiserver).
    # VXLAN UDP 4789, VNI 4096 (FelixConfiguration defaults); WireGuard UDP 51820.
    "calico": CniProfile(
        "calico",
        enforces=frozenset({NETWORK_POLICY, CALICO_NETWORK_POLICY, GLOBAL_NETWORK_POLICY}),
        semantics="calico",
        crd_apis=("projectcalico.org/v3",),
        crd_groups=("projectcalico.org", "crd.projectcalico.org"),
        agents=(Workload("calico-system", "calico-node"), Workload("kube-system", "calico-node")),
        deployments=(Workload("tigera-operator", "tigera-operator"),
                     Workload("calico-system", "calico-kube-controllers"),
                     Workload("calico-system", "calico-apiserver")),
        namespaces=("tigera-operator", "calico-system"),
        former_namespaces=("calico-apiserver",),
        # The operator's ServiceAccounts in calico-system carry the tigera.io/cni-protector
        # finalizer: a deleted calico-system stays Terminating while the Installation exists
        # (projectcalico/calico#6629, tigera/operator#3413).
        operator_namespaces=("calico-system",),
        uninstall="delete the Installation 'default' (the operator then removes Calico)",
        datapath=Datapath(vxlan_port=4789, vxlan_vni=4096, wireguard_port=51820),
        components=("calico",),
    ),
    # Cilium 1.20: agent DaemonSet cilium and Envoy DaemonSet cilium-envoy (l7Proxy on by
    # default), cilium-operator, all in kube-system; tunnel mode VXLAN UDP 8472 with the
    # source identity as VNI; WireGuard UDP 51871 (ground truth §6-§7).
    "cilium": CniProfile(
        "cilium",
        enforces=frozenset({NETWORK_POLICY, CILIUM_NETWORK_POLICY,
                            CILIUM_CLUSTERWIDE_NETWORK_POLICY}),
        l7=True,
        hubble=True,
        semantics="cilium",
        crd_apis=("cilium.io/v2",),
        crd_groups=("cilium.io",),
        agents=(Workload("kube-system", "cilium"),),
        daemonsets=(Workload("kube-system", "cilium-envoy"),),
        deployments=(Workload("kube-system", "cilium-operator"),),
        namespaces=("kube-system",),
        datapath=Datapath(vxlan_port=8472, vxlan_vni=None, wireguard_port=51871),
        components=("cilium",),
    ),
}

#: API groups of add-ons (not CNIs) whose kinds labkit recognises, for "comes with" hints.
ADDON_CRD_GROUPS = {"metallb.io": "metallb"}

#: Namespaces of Kubernetes and kind themselves.
KUBERNETES_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease", "local-path-storage")
#: Namespaces of the add-ons labs install (not workloads of the shop), and labkit's own probe
#: client (environments/workloads/probe).
ADDON_NAMESPACES = ("metallb-system", "labkit-probe")


def profile(name: str) -> CniProfile:
    """The row of ``name``; KeyError for a CNI labkit does not know."""
    return CNIS[name]


def system_namespaces() -> frozenset[str]:
    """Namespaces whose pods are infrastructure, not lab workloads."""
    return frozenset(KUBERNETES_NAMESPACES + ADDON_NAMESPACES).union(
        *(p.system_namespaces for p in CNIS.values()))


def agents() -> list[tuple[Workload, str]]:
    """(agent DaemonSet, CNI) in the order to probe a cluster: installed CNIs before kind's own."""
    rows = sorted(CNIS.values(), key=lambda p: p.builtin)
    return [(agent, p.name) for p in rows for agent in p.agents]


def crd_owners() -> dict[str, str]:
    """API group -> the CNI or add-on that brings it."""
    owners = {g: p.name for p in CNIS.values() for g in p.crd_groups}
    return {**owners, **ADDON_CRD_GROUPS}


def all_policy_kinds() -> frozenset[str]:
    return frozenset().union(*(p.enforces for p in CNIS.values()))
