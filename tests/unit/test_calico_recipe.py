"""The kind side of the Calico migration, on fakes: exactly what it sends and runs, and its
resumability. No kind cluster runs here; these tests never claim one did."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from labkit.backends.sim.ipam import CalicoIpam, fnv1_32
from labkit.cni.calico import leftovers as lo
from labkit.cni.calico import recipe as calico
from labkit.errors import ClusterError, ManifestError, UnknownKindError
from tests.unit.kindfakes import FakeKube

OPERATOR_YAML = """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: installations.operator.tigera.io}
---
apiVersion: v1
kind: Namespace
metadata: {name: tigera-operator}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: tigera-operator, namespace: tigera-operator}
"""


class CalicoKube(FakeKube):
    """FakeKube plus create and the operator's kinds (served once their CRD exists)."""

    def __init__(self) -> None:
        super().__init__()
        self.created: list[dict[str, Any]] = []
        self.served_kinds |= {"CustomResourceDefinition", "Job"}
        self.on_create: Any = None

    def create(self, doc: dict[str, Any]) -> dict[str, Any]:
        self._check(doc["apiVersion"], doc["kind"])
        self.created.append(doc)
        self.add(doc["kind"], json.loads(json.dumps(doc)), doc["apiVersion"])
        if doc["kind"] == "CustomResourceDefinition":
            self.served_kinds |= {"Installation", "APIServer", "TigeraStatus"}
        if self.on_create:
            self.on_create(doc)
        return doc

    def delete(self, doc: dict[str, Any]) -> bool:
        super().delete(doc)
        objs = self.objects.get(("", doc["kind"]), []) + self.objects.get(
            (doc["apiVersion"], doc["kind"]), [])
        for key in [("", doc["kind"]), (doc["apiVersion"], doc["kind"])]:
            self.objects[key] = [o for o in self.objects.get(key, [])
                                 if o["metadata"]["name"] != doc["metadata"]["name"]]
        return bool(objs)


def _status(available: bool) -> dict[str, Any]:
    return {"status": {"conditions": [
        {"type": "Available", "status": str(available), "message": "All objects available"
         if available else ""},
        {"type": "Degraded", "status": "False"}]}}


def _flannel_cluster() -> CalicoKube:
    kube = CalicoKube()
    for doc in calico.FLANNEL_OBJECTS:
        kube.add(doc["kind"], json.loads(json.dumps(doc)))
    for name, ip, owner in (("frontend-x", "10.244.1.2", "frontend-abc"),
                            ("bare", "10.244.2.5", None)):
        refs = [{"kind": "ReplicaSet", "name": owner, "controller": True}] if owner else []
        kube.add("Pod", {"metadata": {"namespace": "shop-web", "name": name,
                                      "ownerReferences": refs},
                         "spec": {}, "status": {"phase": "Running", "podIP": ip}})
    kube.add("Pod", {"metadata": {"namespace": "kube-system", "name": "kube-proxy-1"},
                     "spec": {"hostNetwork": True}, "status": {"phase": "Running"}})
    return kube


def _migration(kube: CalicoKube, nodes=("cni-lab-control-plane",), exec_fn=None) -> Any:
    fetched: list[str] = []

    def fetch(url: str) -> str:
        fetched.append(url)
        return OPERATOR_YAML

    def on_create(doc: dict[str, Any]) -> None:
        if doc["kind"] == "APIServer":  # the operator brings everything up
            kube.add("TigeraStatus", {"metadata": {"name": "calico"}, **_status(True)})
            kube.add("TigeraStatus", {"metadata": {"name": "apiserver"}, **_status(True)})

    kube.on_create = on_create
    clock = iter(range(0, 100000, 2))
    m = calico.KindMigration(kube, list(nodes), "10.244.0.0/16", fetch=fetch,
                             exec_fn=exec_fn or (lambda n, argv, check=True, **k: _ok(argv)),
                             sleep=lambda s: None, clock=lambda: next(clock))
    m.fetched = fetched
    return m


def _ok(argv):
    from labkit.tools.process import Result

    return Result(tuple(argv), 0, "", "")


def test_installation_cr_is_exactly_the_lab_one():
    docs = calico.custom_resources("10.244.0.0/16")
    assert docs == [
        {"apiVersion": "operator.tigera.io/v1", "kind": "Installation",
         "metadata": {"name": "default"},
         "spec": {"calicoNetwork": {"ipPools": [{
             "name": "default-ipv4-ippool", "blockSize": 26, "cidr": "10.244.0.0/16",
             "encapsulation": "VXLAN", "natOutgoing": "Enabled", "nodeSelector": "all()"}]}}},
        {"apiVersion": "operator.tigera.io/v1", "kind": "APIServer",
         "metadata": {"name": "default"}, "spec": {}},
    ]
    # the cluster's own CIDR goes in, whatever the file says
    assert calico.pool_of(calico.custom_resources("10.250.0.0/16")[0])["cidr"] == "10.250.0.0/16"


def test_bad_encapsulation_in_the_data_file_is_a_manifest_error(tmp_path):
    bad = tmp_path / "cr.yaml"
    bad.write_text(yaml.safe_dump({"apiVersion": "operator.tigera.io/v1", "kind": "Installation",
                                   "metadata": {"name": "default"},
                                   "spec": {"calicoNetwork": {"ipPools": [
                                       {"cidr": "x", "encapsulation": "GRE"}]}}}))
    with pytest.raises(ManifestError) as err:
        calico.custom_resources("10.244.0.0/16", path=bad)
    assert err.value.field == "spec.calicoNetwork.ipPools[0].encapsulation"
    assert "VXLAN" in err.value.hint


def test_full_migration_sends_exactly_these_objects_and_commands():
    kube = _flannel_cluster()
    runs: list[tuple[str, list[str]]] = []
    node = lo_fake = _FlannelNode()

    def exec_fn(n, argv, check=True, **kw):
        runs.append((n, list(argv)))
        return lo_fake.exec(n, argv, check=check)

    m = _migration(kube, exec_fn=exec_fn)
    report = m.run()
    assert [s.name for s in report.steps] == ["remove-flannel", "clean-nodes",
                                              "install-operator", "installation",
                                              "wait-available"]
    assert all(s.status == "done" for s in report.steps), report.to_text()
    # 1. Flannel's namespace and RBAC were deleted
    assert [(d["kind"], d["metadata"]["name"]) for d in kube.deleted] == [
        ("Namespace", "kube-flannel"), ("ClusterRoleBinding", "flannel"),
        ("ClusterRole", "flannel")]
    # 2. the node was surveyed and cleaned through docker exec
    assert ["rm", "-f", "--", *lo.FLANNEL.files] in [a for _, a in runs]
    assert node.files == set()
    # 3. the pinned operator manifest, created (not applied)
    # the CRDs first (tigera-operator.yaml no longer carries them), then the operator
    assert m.fetched == calico.manifest_urls("reinstall")
    assert [u.rsplit("/", 1)[-1] for u in m.fetched] == ["operator-crds.yaml",
                                                         "tigera-operator.yaml"]
    assert all("/v3.33.1/manifests/" in u for u in m.fetched)
    kinds = [d["kind"] for d in kube.created]
    assert kinds == ["CustomResourceDefinition", "Namespace", "Deployment", "Installation",
                     "APIServer"]
    assert kube.applied == []  # nothing went through apply
    assert kube.created[3] == calico.custom_resources("10.244.0.0/16")[0]
    # 6. restart: only the owned pod with a Flannel address is deleted; the bare pod is reported
    namespaces = m.restart_workloads()
    assert namespaces == ["shop-web"]
    pods_deleted = [d["metadata"]["name"] for d in kube.deleted if d["kind"] == "Pod"]
    assert pods_deleted == ["frontend-x"]
    assert any("bare" in n and "no controller" in n for n in m.report.notes)


def test_second_run_is_a_noop_and_resumes_after_an_interruption():
    kube = _flannel_cluster()
    node = _FlannelNode()
    first = _migration(kube, exec_fn=lambda n, a, check=True, **k: node.exec(n, a, check=check))
    first.remove_flannel()
    first.clean_nodes()
    # the kernel died here; a new run continues
    again = _migration(kube, exec_fn=lambda n, a, check=True, **k: node.exec(n, a, check=check))
    report = again.run()
    assert [(s.name, s.status) for s in report.steps] == [
        ("remove-flannel", "skipped"), ("clean-nodes", "skipped"),
        ("install-operator", "done"), ("installation", "done"), ("wait-available", "done")]
    created = len(kube.created)
    third = _migration(kube, exec_fn=lambda n, a, check=True, **k: node.exec(n, a, check=check))
    report = third.run()
    assert [s.status for s in report.steps[:4]] == ["skipped"] * 4
    assert len(kube.created) == created  # nothing created twice


def test_an_existing_installation_with_another_pool_is_refused():
    kube = _flannel_cluster()
    m = _migration(kube)
    m.install_operator()
    other = calico.custom_resources("192.168.0.0/16")[0]
    kube.add("Installation", other, calico.OPERATOR_API)
    with pytest.raises(ClusterError, match="cidr") as err:
        m.installation()
    assert "lab.down()" in err.value.hint


def test_wait_available_times_out_with_the_degraded_message():
    kube = _flannel_cluster()
    m = _migration(kube)
    kube.on_create = None
    m.install_operator()
    kube.add("TigeraStatus", {"metadata": {"name": "calico"}, "status": {"conditions": [
        {"type": "Available", "status": "False"},
        {"type": "Degraded", "status": "True", "reason": "ResourceNotReady",
         "message": "Unable to modify IP pools while Calico API server is unavailable"}]}})
    with pytest.raises(ClusterError, match="Degraded: ResourceNotReady") as err:
        m.wait_available(timeout=10)
    assert "tigerastatus" in err.value.hint


def test_tigera_available_reads_conditions():
    assert calico.tigera_available(_status(True)) == (True, "All objects available")
    assert calico.tigera_available(None) == (False, "not reported yet")
    assert calico.tigera_available({"status": {}})[0] is False


def test_live_mode_uses_the_migration_manifests_and_checks_flannel():
    urls = calico.manifest_urls("live")
    assert [u.rsplit("/", 2)[-2:] for u in urls] == [["flannel-migration", "calico.yaml"],
                                                      ["flannel-migration",
                                                       "migration-job.yaml"]]
    assert all("v3.33.1/manifests/" in u for u in urls)
    kube = _flannel_cluster()
    kube.add("ConfigMap", {"metadata": {"name": "kube-flannel-cfg", "namespace": "kube-flannel"},
                           "data": {"net-conf.json": json.dumps(
                               {"Network": "10.244.0.0/16",
                                "Backend": {"Type": "host-gw"}})}})
    live = calico.LiveMigration(kube, [], "10.244.0.0/16", fetch=lambda u: "",
                                sleep=lambda s: None)
    with pytest.raises(ClusterError, match="VXLAN"):
        live.check_flannel()
    assert any("manifest install" in c for c in live.report.notes)
    assert any("#9358" in c for c in live.report.notes)


def test_live_mode_waits_for_the_job_and_reports_its_failure():
    kube = CalicoKube()
    job = {"metadata": {"name": "flannel-migration", "namespace": "kube-system"},
           "status": {"failed": 1}}
    kube.add("Job", job, "batch/v1")
    polls = []

    def sleep(seconds: float) -> None:  # a failed pod is retried (backoffLimit: 10) ...
        polls.append(seconds)
        job["status"] = {"failed": 1, "succeeded": 1, "conditions": [
            {"type": "Complete", "status": "True"}]}

    live = calico.LiveMigration(kube, [], "10.244.0.0/16", fetch=lambda u: "", sleep=sleep)
    live.wait_job(timeout=60)
    assert len(polls) == 1 and live.report.steps[-1].status == "done"
    # ... the Job has failed only once its Failed condition says so
    job["status"] = {"failed": 11, "conditions": [
        {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
         "message": "Job has reached the specified backoff limit"}]}
    with pytest.raises(ClusterError, match="backoff limit") as err:
        live.wait_job(timeout=5)
    assert "logs job/flannel-migration" in err.value.hint


def test_unknown_mode_and_crd_not_served():
    with pytest.raises(ManifestError, match="unknown migration mode"):
        calico.RECIPE.migrate(object(), mode="fast")
    kube = CalicoKube()
    m = _migration(kube)
    assert m._installation_served() is False
    with pytest.raises(UnknownKindError):
        kube.list(calico.OPERATOR_API, "Installation")


def test_pods_predating_calico_ignores_host_network_calico_and_annotated_pods():
    pods = [
        {"metadata": {"namespace": "a", "name": "old"}, "spec": {},
         "status": {"phase": "Running"}},
        {"metadata": {"namespace": "a", "name": "new",
                      "annotations": {calico.POD_IP_ANNOTATION: "10.244.106.3/32"}},
         "spec": {}, "status": {"phase": "Running"}},
        {"metadata": {"namespace": "kube-system", "name": "proxy"},
         "spec": {"hostNetwork": True}, "status": {"phase": "Running"}},
        {"metadata": {"namespace": "calico-system", "name": "kc"}, "spec": {},
         "status": {"phase": "Running"}},
        {"metadata": {"namespace": "a", "name": "done"}, "spec": {},
         "status": {"phase": "Succeeded"}},
    ]
    assert [p["metadata"]["name"] for p in calico.pods_predating_calico(pods)] == ["old"]


def test_calico_ipam_blocks_tunnel_first_and_fifo_reuse():
    ipam = CalicoIpam("10.244.0.0/16")
    first = ipam.allocate("cni-lab-worker")
    block, owner = ipam.block_of(first)
    assert block.endswith("/26") and owner == "cni-lab-worker"
    assert ipam.tunnel["cni-lab-worker"].endswith(block.split("/")[0].rsplit(".", 1)[1])
    assert fnv1_32("a") == 0x050C5D7E  # Go's hash/fnv New32("a")
    more = [ipam.allocate("cni-lab-worker") for _ in range(62)]
    assert len(set(more + [first])) == 63 and len(ipam.affinity["cni-lab-worker"]) == 1
    overflow = ipam.allocate("cni-lab-worker")  # block full (64 incl. tunnel): a second block
    assert len(ipam.affinity["cni-lab-worker"]) == 2 and ipam.block_of(overflow)[0] != block
    other = CalicoIpam("10.244.0.0/16")
    a = other.allocate("n")
    other.release(a)
    assert other.allocate("n") != a  # released addresses go to the back of the block's queue
    ipam.release("10.244.1.2")  # a Flannel address: ignored


class _FlannelNode:
    """A kind node with Flannel's files only (no ip/iptables): enough for the recipe tests."""

    def __init__(self) -> None:
        self.files = set(lo.FLANNEL.files)

    def exec(self, node, argv, *, check=True, **kw):
        from labkit.tools.process import Result

        argv = list(argv)
        if argv[:2] == ["ls", "-1d"]:
            return Result(tuple(argv), 0, "\n".join(f for f in argv[3:] if f in self.files), "")
        if argv[0] == "rm":
            self.files -= set(argv[3:])
            return Result(tuple(argv), 0, "", "")
        if argv[:3] == ["ip", "-o", "link"]:
            return Result(tuple(argv), 0, "1: lo: <LOOPBACK>\n2: eth0@if5: <UP>\n", "")
        return Result(tuple(argv), 127, "", "not found")


def test_installation_waits_until_every_custom_resource_kind_is_served():
    # Each CRD becomes Established on its own: Installation served says nothing of APIServer.
    kube = _flannel_cluster()
    m = _migration(kube)
    m.install_operator()
    kube.served_kinds.discard("APIServer")
    polls = []

    def sleep(seconds: float) -> None:
        polls.append(seconds)
        kube.served_kinds.add("APIServer")

    m.sleep = sleep
    m.installation()
    assert len(polls) == 1
    assert [d["kind"] for d in kube.created][-2:] == ["Installation", "APIServer"]


def test_verify_after_the_live_migration_reads_calico_node_not_tigerastatus():
    # The live migration leaves a manifest install in kube-system: no operator, so the
    # TigeraStatus kind is not served at all (a get raises UnknownKindError).
    from types import SimpleNamespace

    kube = CalicoKube()
    kube.add("DaemonSet", {"metadata": {"name": "calico-node", "namespace": "kube-system"},
                           "status": {"desiredNumberScheduled": 3, "numberReady": 2}})
    checks = calico.RECIPE.verify_kind(SimpleNamespace(kube=kube))
    assert [(c.name, c.ok, c.detail) for c in checks][0] == (
        "calico-node pods Ready (manifest install, no operator)", False, "2/3 Ready")
    kube.served_kinds.add("TigeraStatus")
    kube.add("TigeraStatus", {"metadata": {"name": "calico"}, **_status(True)})
    names = [c.name for c in calico.RECIPE.verify_kind(SimpleNamespace(kube=kube))]
    assert names[:2] == ["TigeraStatus calico Available", "TigeraStatus apiserver Available"]


def test_the_sim_runs_the_calico_api_server_in_calico_system(monkeypatch):
    """Operator v1.44 puts the API server in calico-system (ground truth §1, labkit.cnis)."""
    from labkit import Lab
    from labkit.backends.sim.backend import CLUSTERS

    monkeypatch.setenv("LABKIT_PROGRESS", "off")
    CLUSTERS.clear()
    lab = Lab("flannel", backend="sim")
    lab.up()
    lab.install_cni("flannel")
    calico.RECIPE.migrate(lab)
    apiserver = [p for p in lab.pods() if p.name.startswith("calico-apiserver-")]
    assert len(apiserver) == 2 and {p.namespace for p in apiserver} == {"calico-system"}
    assert "calico-apiserver" not in lab.impl.state().namespaces
    assert not [p for p in lab.workload_pods() if p.startswith("calico-system/")]
