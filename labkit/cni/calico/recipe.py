"""Calico: migrate the lab's Flannel cluster to Calico in place, on kind and on sim.

The recommended path (``mode="reinstall"``), as steps that each look at the
cluster first and do only what is missing, so a notebook re-run after a dead
kernel continues where it stopped:

1. ``remove-flannel``: delete Flannel's namespace and cluster-wide RBAC.
2. ``clean-nodes``: remove what Flannel left on every node (its CNI config,
   ``flannel.1``/``cni0``, ``FLANNEL-*`` chains; ground truth §5.2) with
   ``docker exec`` (labkit.cni.leftovers). The config file matters most: the
   container runtime uses the first file in ``/etc/cni/net.d``.
3. ``install-operator``: the pinned ``operator-crds.yaml`` (since v3.30 the CRDs
   ship apart), then ``tigera-operator.yaml``, both with *create* semantics, as
   Calico's kind guide says (``kubectl create``: its CRDs are too big for
   client-side apply's last-applied annotation); objects that already exist are
   left alone.
4. ``installation``: an Installation that keeps the cluster's pod CIDR, /26
   blocks and ``VXLAN`` encapsulation (``VXLANCrossSubnet``, the upstream
   default, never encapsulates between kind nodes: they share one subnet), and
   the APIServer that serves ``projectcalico.org/v3``.
5. ``wait-available``: TigeraStatus ``calico`` and ``apiserver`` Available.
6. ``restart-workloads``: pods that Calico did not wire (no
   ``cni.projectcalico.org/podIP`` annotation) still hold Flannel addresses on
   a data path that is gone; deleting them lets their controllers recreate
   them with Calico addresses.

``mode="live"`` is Calico's own flannel-migration controller (ground truth
§4.4), an advanced variant with caveats (environments/calico/flannel-migration.yaml).
The sim side lives in labkit.cni.calico_sim.

The kind steps live in labkit.cni.calico_kind, the live variant in
labkit.cni.calico_live, the objects and pure helpers in labkit.cni.calico_resources,
and the report in labkit.cni.calico_report; their public names are importable
from here too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from labkit.cni import Recipe, Verification, VerificationCheck, node_checks
from labkit.cni.calico import sim as calico_sim
from labkit.cni.calico.kind import KindMigration
from labkit.cni.calico.live import LiveMigration
from labkit.cni.calico.report import MigrationReport, Step
from labkit.cni.calico.resources import (
    CALICO_NAMESPACE,
    CALICO_NAMESPACES,
    ENCAPSULATIONS,
    FLANNEL_OBJECTS,
    INSTALLATION_CRD,
    MODES,
    OPERATOR_API,
    OPERATOR_NAMESPACE,
    POD_IP_ANNOTATION,
    TIGERA_COMPONENTS,
    Fetch,
    controller_of,
    custom_resources,
    manifest_urls,
    migration_spec,
    pods_predating_calico,
    pool_of,
    tigera_available,
)
from labkit.cni.calico.sim import no_network
from labkit.errors import ClusterError, ManifestError, UnknownKindError
from labkit.tools.files import fetch_url

if TYPE_CHECKING:
    from labkit.backends.base import Backend
    from labkit.backends.kind.backend import KindBackend
    from labkit.backends.sim.backend import SimBackend
    from labkit.progress import Progress

__all__ = [
    "CALICO_NAMESPACE", "CALICO_NAMESPACES", "ENCAPSULATIONS", "FLANNEL_OBJECTS",
    "INSTALLATION_CRD", "MODES", "OPERATOR_API", "OPERATOR_NAMESPACE", "POD_IP_ANNOTATION",
    "RECIPE", "TIGERA_COMPONENTS", "Calico", "Fetch", "KindMigration", "LiveMigration",
    "MigrationReport", "Step", "controller_of", "custom_resources", "manifest_urls",
    "migration_spec", "pool_of", "pods_predating_calico", "tigera_available",
]


class Calico(Recipe):
    name = "calico"

    def __init__(self, fetch: Fetch | None = None) -> None:
        self._fetch = fetch
        self.last_report: MigrationReport | None = None

    @property
    def fetch(self) -> Fetch:
        if self._fetch is not None:
            return self._fetch
        return fetch_url

    def install(self, backend: Backend, progress: Progress | None = None, *,
                mode: str = "reinstall") -> None:
        self.migrate(backend, progress, mode=mode)

    def migrate(self, target: Any, progress: Progress | None = None, *,
                mode: str = "reinstall", restart: bool = True) -> MigrationReport:
        """Migrate the cluster of a Lab (or backend) to Calico; returns what each step did.

        ``restart=False`` stops before restarting the workloads, so their stale
        Flannel addresses can be seen; :meth:`restart_workloads` finishes the job.
        """
        backend: Backend = getattr(target, "impl", target)
        if mode not in MODES:
            raise ManifestError(f"unknown migration mode {mode!r}",
                                hint=f"one of {', '.join(MODES)}")
        report = backend.dispatch(
            sim=lambda b: calico_sim.migrate(b, mode=mode, restart=restart),
            kind=lambda b: self._migrate_kind(b, progress, mode, restart))
        self.last_report = report
        return report

    def restart_workloads(self, target: Any, progress: Progress | None = None
                          ) -> MigrationReport:
        """Delete every pod that still has a Flannel address, wait for its replacement."""
        backend: Backend = getattr(target, "impl", target)
        report = MigrationReport("reinstall", simulated=backend.simulated)
        backend.dispatch(sim=lambda b: calico_sim.restart_workloads(b, report),
                         kind=lambda b: self._restart_kind(b, report, progress))
        return report

    def _restart_kind(self, backend: KindBackend, report: MigrationReport,
                      progress: Progress | None) -> None:
        migration = KindMigration(backend.kube, [], backend.stage.pod_subnet,
                                  fetch=self.fetch, progress=progress)
        migration.report = report
        self._restart_and_wait(backend, migration, progress)

    @staticmethod
    def _restart_and_wait(backend: KindBackend, migration: KindMigration,
                          progress: Progress | None) -> None:
        """Delete the pods left on Flannel addresses, then wait for their replacements."""
        namespaces = migration.restart_workloads()
        if namespaces:
            backend.wait_ready(nodes=True, namespaces=namespaces, timeout=300,
                               progress=progress)

    def _migrate_kind(self, backend: KindBackend, progress: Progress | None,
                      mode: str, restart: bool) -> MigrationReport:
        current = backend.installed_cni()
        if current not in (None, "flannel", "calico"):
            raise ClusterError(f"{current} is installed: this lab migrates from Flannel",
                               hint="run lab 01 first, or recreate the cluster")
        nodes = [n.name for n in backend.node_rows()]
        cls = LiveMigration if mode == "live" else KindMigration
        migration = cls(backend.kube, nodes, backend.stage.pod_subnet, fetch=self.fetch,
                         progress=progress)
        report = migration.run()
        if mode == "reinstall" and restart:
            self._restart_and_wait(backend, migration, progress)
        return report

    def stale_pod_keys(self, backend: Backend) -> list[str]:
        """``namespace/name`` of every pod still holding a pre-Calico address."""
        return backend.dispatch(
            sim=lambda b: sorted(no_network(b.cluster)),
            kind=lambda b: sorted(f"{p['metadata']['namespace']}/{p['metadata']['name']}"
                                  for p in pods_predating_calico(b.kube.list("v1", "Pod"))))

    def verify(self, backend: Backend) -> Verification:
        checks = [c for c in node_checks(backend) if c.name == "nodes Ready"]
        checks.extend(backend.dispatch(sim=self.verify_sim, kind=self.verify_kind))
        return Verification(self.name, tuple(checks), backend.simulated)

    def verify_sim(self, backend: SimBackend) -> Sequence[VerificationCheck]:
        return calico_sim.verify(backend)

    def verify_kind(self, backend: KindBackend) -> Sequence[VerificationCheck]:
        api = backend.kube
        out = []
        try:
            statuses = {c: api.get(OPERATOR_API, "TigeraStatus", c) for c in TIGERA_COMPONENTS}
        except UnknownKindError:  # the live migration's manifest install has no operator
            ds = api.get("apps/v1", "DaemonSet", "calico-node", "kube-system") or {}
            st = ds.get("status") or {}
            want, ready = st.get("desiredNumberScheduled", 0), st.get("numberReady", 0)
            out.append(VerificationCheck("calico-node pods Ready (manifest install, no operator)",
                                         bool(want) and ready == want, f"{ready}/{want} Ready"))
            statuses = {}
        for comp, status in statuses.items():
            ok, msg = tigera_available(status)
            out.append(VerificationCheck(f"TigeraStatus {comp} Available", ok, msg))
        stale = pods_predating_calico(api.list("v1", "Pod"))
        names = [f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in stale[:5]]
        out.append(VerificationCheck(
            "every pod has a Calico address", not stale,
            "yes" if not stale else "still on Flannel addresses: " + ", ".join(names)))
        return out


RECIPE = Calico()
