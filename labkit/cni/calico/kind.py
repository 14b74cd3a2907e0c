"""The reinstall migration's steps on a real kind cluster (see labkit.cni.calico).

Each step looks at the cluster first and does only what is missing, so a re-run
after a dead kernel continues where it stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import yaml

from labkit.cni.calico import leftovers as lo
from labkit.cni.calico.report import MigrationReport
from labkit.cni.calico.resources import (
    FLANNEL_OBJECTS,
    OPERATOR_API,
    TIGERA_COMPONENTS,
    Fetch,
    controller_of,
    custom_resources,
    manifest_urls,
    pods_predating_calico,
    pool_of,
    tigera_available,
)
from labkit.errors import ClusterError, UnknownKindError

if TYPE_CHECKING:
    from labkit.progress import Progress


class KindMigration:
    """The kind steps over an API (labkit.k8s.KubeApi) and ``docker exec`` into nodes."""

    def __init__(self, api: Any, nodes: Sequence[str], pod_cidr: str, *, fetch: Fetch,
                 exec_fn: lo.NodeExec | None = None, progress: Progress | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.api, self.nodes, self.pod_cidr = api, list(nodes), pod_cidr
        self.fetch, self.exec_fn, self.progress = fetch, exec_fn, progress
        self.sleep, self.clock = sleep, clock
        self.report = MigrationReport("reinstall", simulated=False)

    # helpers
    def _say(self, text: str) -> None:
        if self.progress is not None:
            self.progress.update(text, force=True)

    def _wait(self, what: str, done: Callable[[], tuple[bool, str]], timeout: float,
              hint: str) -> str:
        deadline = self.clock() + timeout
        while True:
            ok, detail = done()
            if ok:
                return detail
            if self.clock() >= deadline:
                raise ClusterError(f"timed out after {timeout:g}s waiting for {what}: {detail}",
                                   hint=hint)
            self._say(f"waiting for {what}: {detail}")
            self.sleep(2.0)

    def _exists(self, doc: dict[str, Any]) -> bool:
        meta = doc.get("metadata") or {}
        try:
            return self.api.get(doc["apiVersion"], doc["kind"], meta["name"],
                                meta.get("namespace")) is not None
        except UnknownKindError:
            return False

    def create_missing(self, docs: Sequence[dict[str, Any]]) -> list[str]:
        """``kubectl create`` semantics, made idempotent: create only what does not exist.

        Uses the client's create when it has one, else a server-side apply, which
        (unlike client-side apply) stores no last-applied annotation either.
        """
        made = []
        for doc in docs:
            if self._exists(doc):
                continue
            create = getattr(self.api, "create", None)
            (create or self.api.apply)(doc)
            meta = doc.get("metadata") or {}
            ns = meta.get("namespace")
            made.append(f"{doc['kind']} {ns + '/' if ns else ''}{meta.get('name')}")
        return made

    # steps
    def remove_flannel(self) -> None:
        present = [d for d in FLANNEL_OBJECTS if self._exists(d)]
        if not present:
            self.report.add("remove-flannel", "skipped", "Flannel is not installed")
            return
        for doc in present:
            self.api.delete(doc)
        self._wait("the kube-flannel namespace to go",
                   lambda: (not self._exists(FLANNEL_OBJECTS[0]), "terminating"), 180,
                   "`kubectl get ns kube-flannel -o yaml` shows what blocks its deletion")
        self.report.add("remove-flannel", "done",
                        "deleted " + ", ".join(f"{d['kind']} {d['metadata']['name']}"
                                               for d in present))

    def clean_nodes(self) -> None:
        results = [lo.clean_node(n, lo.FLANNEL, exec_fn=self.exec_fn) for n in self.nodes]
        changed = [r for r in results if not r.noop]
        for r in results:
            self.report.notes.extend(f"{r.node}: {n}" for n in r.found.notes)
        if not changed:
            self.report.add("clean-nodes", "skipped", "no Flannel leftovers on any node")
        else:
            self.report.add("clean-nodes", "done", "; ".join(r.to_text() for r in changed))

    def install_operator(self) -> None:
        made: list[str] = []
        urls = manifest_urls("reinstall")  # operator-crds.yaml, then tigera-operator.yaml
        for url in urls:
            made += self.create_missing([d for d in yaml.safe_load_all(self.fetch(url)) if d])
        if made:
            names = " and ".join(url.rsplit("/", 1)[-1] for url in urls)
            self.report.add("install-operator", "done", f"created {len(made)} objects from {names}")
        else:
            self.report.add("install-operator", "skipped", "tigera-operator already installed")

    def installation(self) -> None:
        docs = custom_resources(self.pod_cidr)
        want = pool_of(docs[0])
        # Every kind to create (Installation *and* APIServer): each CRD becomes Established
        # on its own, so one being served says nothing about the other.
        self._wait("the operator's CRDs", lambda: (self._installation_served(docs),
                                                   "not served"),
                   120, "is the tigera-operator Deployment running? "
                   "`kubectl -n tigera-operator get pods`")
        current = self.api.get(OPERATOR_API, "Installation", "default")
        if current is not None:
            have = pool_of(current)
            for key in ("cidr", "encapsulation", "blockSize"):
                if key in have and have.get(key) != want.get(key):
                    raise ClusterError(
                        f"the existing Installation has ipPools[0].{key}={have.get(key)!r}, "
                        f"this lab needs {want.get(key)!r}",
                        hint="IP pools are not changed after install: delete the cluster and "
                        "redo labs 01-02 (lab.down()), or edit environments/calico/")
        made = self.create_missing(docs)
        self.report.add("installation", "done" if made else "skipped",
                        f"pool {want.get('cidr')}, {want.get('encapsulation')}, "
                        f"/{want.get('blockSize')} blocks"
                        + (f" (created {', '.join(made)})" if made else " (already there)"))

    def _installation_served(self, docs: Sequence[dict[str, Any]] = ()) -> bool:
        kinds = {(d["apiVersion"], d["kind"]) for d in docs} or {(OPERATOR_API, "Installation")}
        try:
            for api, kind in sorted(kinds):
                self.api.list(api, kind)
        except UnknownKindError:
            return False
        return True

    def wait_available(self, timeout: float = 1200) -> None:
        # Every kind node pulls calico-node, cni, csi ... itself (several hundred MB per
        # node) on the learner's link; the wait ends as soon as both report Available.
        def check() -> tuple[bool, str]:
            states = {c: tigera_available(self._tigerastatus(c)) for c in TIGERA_COMPONENTS}
            return (all(ok for ok, _ in states.values()),
                    ", ".join(f"{c}: {msg}" for c, (_, msg) in states.items()))

        detail = self._wait("TigeraStatus Available", check, timeout,
                            "`kubectl get tigerastatus` and `kubectl -n calico-system get pods` "
                            "show which component is not ready")
        self.report.add("wait-available", "done", detail)

    def _tigerastatus(self, name: str) -> dict[str, Any] | None:
        try:
            return self.api.get(OPERATOR_API, "TigeraStatus", name)
        except UnknownKindError:
            return None

    def restart_workloads(self) -> list[str]:
        stale = pods_predating_calico(self.api.list("v1", "Pod"))
        owned = [p for p in stale if controller_of(p)]
        bare = [p for p in stale if not controller_of(p)]
        for pod in owned:
            self.api.delete({"apiVersion": "v1", "kind": "Pod", "metadata": {
                "name": pod["metadata"]["name"], "namespace": pod["metadata"]["namespace"]}})
        for pod in bare:
            self.report.notes.append(
                f"pod {pod['metadata']['namespace']}/{pod['metadata']['name']} has no controller: "
                "delete and recreate it yourself to give it a Calico address")
        namespaces = sorted({p["metadata"]["namespace"] for p in owned})
        if owned:
            self.report.add("restart-workloads", "done",
                            f"deleted {len(owned)} pods with Flannel addresses in "
                            f"{', '.join(namespaces)}; their controllers recreate them")
        else:
            self.report.add("restart-workloads", "skipped", "every pod has a Calico address")
        return namespaces

    def run(self) -> MigrationReport:
        for step in (self.remove_flannel, self.clean_nodes, self.install_operator,
                     self.installation, self.wait_available):
            self._say(step.__name__.replace("_", "-"))
            step()
        return self.report
