"""``mode="live"``: Calico's own flannel-migration controller (ground truth §4.4).

An advanced variant with caveats (environments/calico/flannel-migration.yaml): it
migrates node by node from a running Flannel with the VXLAN backend.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from labkit.cni.calico.kind import KindMigration
from labkit.cni.calico.report import MigrationReport
from labkit.cni.calico.resources import manifest_urls, migration_spec
from labkit.errors import ClusterError


class LiveMigration(KindMigration):
    """Calico's flannel-migration controller (ground truth §4.4): optional, advanced."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.report = MigrationReport("live", simulated=False,
                                      notes=list(migration_spec()["caveats"]))

    def check_flannel(self) -> None:
        cm = self.api.get("v1", "ConfigMap", "kube-flannel-cfg", "kube-flannel")
        if cm is None:
            if self.api.get("batch/v1", "Job", "flannel-migration", "kube-system") is not None:
                self.report.add("check-flannel", "skipped", "migration already started")
                return
            raise ClusterError("Flannel's ConfigMap kube-flannel/kube-flannel-cfg is missing",
                               hint="the live migration starts from a working Flannel cluster "
                               "(lab 01); use mode='reinstall' otherwise")
        backend = json.loads((cm.get("data") or {}).get("net-conf.json", "{}")).get(
            "Backend") or {}
        if str(backend.get("Type", "")).lower() != "vxlan" or backend.get("DirectRouting"):
            raise ClusterError(f"Flannel's backend is {backend}: the migration needs VXLAN "
                               "without DirectRouting", hint="use mode='reinstall'")
        self.report.add("check-flannel", "done", "Flannel DaemonSet with VXLAN backend")

    def apply_migration(self) -> None:
        made: list[str] = []
        for url in manifest_urls("live"):
            made += self.create_missing([d for d in yaml.safe_load_all(self.fetch(url)) if d])
        self.report.add("apply-migration", "done" if made else "skipped",
                        f"created {len(made)} objects" if made else "already applied")

    def wait_job(self, timeout: float = 1800) -> None:
        job = migration_spec()["job"]

        def check() -> tuple[bool, str]:
            found = self.api.get("batch/v1", "Job", job["name"], job["namespace"]) or {}
            status = found.get("status") or {}
            # A Job ends with a Complete or Failed condition. status.failed only counts
            # failed pods, which the Job retries (the upstream Job has backoffLimit: 10).
            conds = {c.get("type"): c for c in status.get("conditions") or []
                     if str(c.get("status")) == "True"}
            if "Failed" in conds:
                why = conds["Failed"].get("message") or conds["Failed"].get("reason") or ""
                raise ClusterError(f"the {job['name']} job failed: {why}".rstrip(": "),
                                   hint=f"kubectl -n {job['namespace']} logs job/{job['name']}")
            done = "Complete" in conds or bool(status.get("succeeded"))
            retries = f", {status['failed']} failed attempts" if status.get("failed") else ""
            return done, f"{status.get('succeeded') or 0}/1{retries}"

        detail = self._wait(f"job {job['namespace']}/{job['name']}", check, timeout,
                            f"kubectl -n {job['namespace']} logs job/{job['name']} -f")
        self.report.add("wait-job", "done", f"completions {detail}")

    def run(self) -> MigrationReport:
        for step in (self.check_flannel, self.apply_migration, self.wait_job):
            self._say(step.__name__.replace("_", "-"))
            step()
        return self.report
