"""The kind backend: real clusters in Docker, driven through kind and the Kubernetes API.

Every API call goes through :mod:`labkit.k8s` with the lab's own context, which
:mod:`~labkit.backends.kind.guard` checked first; every program runs through
:mod:`labkit.tools.process` (via tools.kind / tools.docker). Both seams are
injectable (``run``, ``kube_factory``) so tests can assert exactly what would
be run and sent.
"""

from __future__ import annotations

import datetime
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from labkit import cnis, inputs
from labkit.backends.base import Backend, NodeRow, PodRow, T
from labkit.backends.kind import capture as kind_capture
from labkit.backends.kind import probe
from labkit.backends.kind.guard import LabContext, check_context, load_kubeconfig
from labkit.course.images.pins import node_image_for_kind
from labkit.environments import Stage, pinned
from labkit.errors import BackendUnsupported, ClusterError, LabkitError, ToolError
from labkit.hubble.flow import Flow
from labkit.hubble.log import FlowLog, parse_flows, time_key
from labkit.matrix import Observation
from labkit.model import (
    LOCAL_CLUSTER,
    ClusterState,
    ContainerPort,
    Namespace,
    Pod,
    Service,
    ServicePort,
    Traffic,
)
from labkit.policy import served_kinds
from labkit.policy.kinds import parse_one
from labkit.policy.state import add_policies
from labkit.progress import Progress, wait_until
from labkit.tools import docker, process
from labkit.tools import kind as kind_tool
from labkit.tools.coredns import hosts_of as coredns_hosts
from labkit.tools.files import home, write_atomic
from labkit.tools.k8s import KubeApi, KubeClient, describe

if TYPE_CHECKING:
    from labkit.backends.sim.backend import SimBackend
    from labkit.capture import Capture, CaptureSpec
    from labkit.matrix import Cell, Observation

KubeFactory = Callable[[LabContext], KubeApi]

#: The container of the shop's pods that has curl (environments/workloads/shop).
PROBE_CONTAINER = "probe"
DEFAULT_HUBBLE_LAST = 20  # what `hubble observe` prints without --last
POLICY_KINDS = (("networking.k8s.io/v1", "NetworkPolicy"),)


#: Written beside the kind config when labkit creates a cluster: the proof that it did.
RECORD = "created-by-labkit.json"


def work_dir(cluster: str) -> Path:
    """Where labkit keeps a kind cluster's config and creation record (under LABKIT_HOME)."""
    return home() / "clusters" / cluster


class KindBackend(Backend):
    name = "kind"
    simulated = False

    def __init__(self, stage: Stage, *, run: Callable[..., process.Result] = process.run,
                 kube_factory: KubeFactory | None = None,
                 kubeconfig_loader: Callable[[], dict[str, Any]] = load_kubeconfig,
                 sleep: Callable[[float], None] = time.sleep,
                 workdir: Path | None = None) -> None:
        super().__init__(stage)
        self.run = run
        self.kube_factory: KubeFactory = kube_factory or (
            lambda ctx: KubeClient(ctx.name, ctx.client_config))
        self.kubeconfig_loader = kubeconfig_loader
        self.sleep = sleep
        self.workdir = workdir or work_dir(stage.cluster_name)
        self._kube: KubeApi | None = None
        self._containers: dict[str, list[str]] = {}

    # -- the guarded API client --------------------------------------------------------
    @property
    def kube(self) -> KubeApi:
        if self._kube is None:
            ctx = check_context(self.kubeconfig_loader(), self.stage.cluster_name,
                                requested=os.environ.get("LABKIT_CONTEXT"))
            self._kube = self.kube_factory(ctx)
        return self._kube

    # -- lifecycle ---------------------------------------------------------------------
    def dispatch(self, *, sim: Callable[[SimBackend], T], kind: Callable[[KindBackend], T]) -> T:
        return kind(self)

    def exists(self) -> bool:
        return self.stage.cluster_name in kind_tool.get_clusters(run=self.run)

    def config_path(self) -> Path:
        return self.workdir / "kind-config.yaml"

    def write_config(self, node_image: str | None = None) -> Path:
        """The stage's kind config with every node on ``node_image``: versions.yaml's pin, or
        the ``name:tag`` that :func:`labkit.course.images.pins.node_image_for_kind` proved."""
        config = self.stage.rendered_kind_config(node_image or pinned("kind", "node_image"))
        path = self.config_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("# written by labkit from environments/stages/"
                        f"{self.stage.name}/kind-config.yaml\n"
                        + yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        return path

    def record_path(self) -> Path:
        return self.workdir / RECORD

    def created_by_labkit(self) -> bool:
        """Whether labkit (with this LABKIT_HOME) created the cluster: a record names it."""
        try:
            record = inputs.json_value(inputs.read_text(self.record_path(), what="record"),
                                       str(self.record_path()), what="record")
        except LabkitError:
            return False
        return isinstance(record, dict) and record.get("cluster") == self.stage.cluster_name

    def _record(self, config: Path) -> None:
        record = {"cluster": self.stage.cluster_name, "stage": self.stage.name,
                  "kind_config": str(config),
                  "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
        write_atomic(self.record_path(), inputs.dumps(record, indent=1) + "\n")

    def up(self, progress: Progress | None = None) -> None:
        name = self.stage.cluster_name
        report = progress or Progress(f"cluster {name}")
        if self.exists():
            # Assumed running: `kind get clusters` also lists a cluster whose node containers
            # are stopped (after a host reboot, say); the guard's first API call then fails
            # with "cannot reach the API server" and a `docker ps` hint.
            report.update("exists, reusing it", force=True)
        else:
            image, note = node_image_for_kind(str(pinned("kind", "node_image")), run=self.run)
            if note:
                report.update(note, force=True)
            report.update("creating (kind create cluster, a minute or two)", force=True)
            config = self.write_config(image)
            self._record(config)  # before kind starts: a half-made cluster is ours to delete
            try:
                kind_tool.create_cluster(name, config, run=self.run, on_output=report.update)
            except BaseException:
                if not self.exists():
                    self.record_path().unlink(missing_ok=True)
                raise
        self._kube = None
        _ = self.kube  # the guard runs now, not at the first API call
        report.update(f"{len(self.node_rows())} nodes", force=True)
        if progress is None:
            report.finish("up")

    def down(self) -> None:
        """Delete the cluster, only if labkit created it (see :meth:`created_by_labkit`)."""
        name = self.stage.cluster_name
        if self.exists() and not self.created_by_labkit():
            raise ClusterError(
                f"the kind cluster '{name}' was not created by labkit (no record in "
                f"{self.workdir}); labkit leaves it alone",
                hint=f"if it is yours to delete: `kind delete cluster --name {name}`")
        docker.remove_lab_containers(name, runner=self.run)
        if self.exists():
            kind_tool.delete_cluster(name, run=self.run)
        self.record_path().unlink(missing_ok=True)
        self._kube = None

    # -- views -------------------------------------------------------------------------
    def node_rows(self) -> list[NodeRow]:
        return sorted((node_row(d) for d in self.kube.list("v1", "Node")), key=lambda n: n.name)

    def pod_rows(self, namespace: str | None = None) -> list[PodRow]:
        return sorted((pod_row(d) for d in self.kube.list("v1", "Pod", namespace)),
                      key=lambda r: (r.namespace, r.name))

    def installed_cni(self) -> str | None:
        for ds, cni in cnis.agents():
            if self.kube.get("apps/v1", "DaemonSet", ds.name, ds.namespace) is not None:
                return cni
        return None

    def served(self) -> set[tuple[str, str]]:
        return set(served_kinds(self.installed_cni()))

    def state(self) -> ClusterState:
        state = ClusterState(name=LOCAL_CLUSTER, pod_cidr=self.stage.pod_subnet,
                             service_cidr=self.stage.service_subnet)
        for d in self.kube.list("v1", "Namespace"):
            meta = d.get("metadata") or {}
            state.namespaces[meta["name"]] = Namespace(meta["name"], dict(meta.get("labels") or {}))
        self._containers = {}
        for d in self.kube.list("v1", "Pod"):
            pod = pod_model(d)
            if pod is not None:
                state.pods[pod.key] = pod
                self._containers[pod.key] = [c.get("name", "") for c in
                                             (d.get("spec") or {}).get("containers") or []]
        for d in self.kube.list("v1", "Service"):
            svc = service_model(d)
            state.services[svc.key] = svc
        for n in self.node_rows():
            state.nodes[n.name] = n.node()
        # Names the lab serves itself outside the cluster (labkit.tools.coredns), for toFQDNs.
        coredns = self.kube.get("v1", "ConfigMap", "coredns", "kube-system") or {}
        state.dns_names = {name: (ip,) for name, ip in coredns_hosts(
            str((coredns.get("data") or {}).get("Corefile", ""))).items()}
        kinds = list(POLICY_KINDS) + sorted(k for k in served_kinds(self.installed_cni())
                                            if "Policy" in k[1] or k[1] == "Tier")
        add_policies(state, (obj for api, kind in dict.fromkeys(kinds)
                             for d in self.kube.list(api, kind)
                             for obj in parse_one(clean(d), f"cluster:{kind}")))
        return state

    # -- changes -----------------------------------------------------------------------
    def apply_raw(self, docs: Sequence[dict[str, Any]]) -> list[str]:
        """Apply manifests labkit does not model (a CNI's DaemonSets, RBAC ...) as they are."""
        out = []
        for doc in docs:
            self.kube.apply(doc)
            out.append(describe(doc))
        return out

    def apply(self, docs: Sequence[dict[str, Any]], objects: Sequence[Any]) -> list[str]:
        return self.apply_raw(docs)

    def delete(self, docs: Sequence[dict[str, Any]], objects: Sequence[Any]) -> list[str]:
        return [describe(d) for d in reversed(list(docs)) if self.kube.delete(d)]

    def annotated(self, key: str, kinds: Sequence[tuple[str, str]]
                  ) -> list[tuple[dict[str, Any], str]]:
        out = []
        for api, kind in kinds:
            for d in self.kube.list(api, kind):
                value = ((d.get("metadata") or {}).get("annotations") or {}).get(key)
                if value is not None:
                    out.append((stub(d, api, kind), value))
        return out

    def wait_daemonset(self, namespace: str, name: str, *, timeout: float = 300,
                       progress: Progress | None = None) -> None:
        def check() -> tuple[bool, str]:
            ds = self.kube.get("apps/v1", "DaemonSet", name, namespace)
            if ds is None:
                return False, f"{namespace}/{name} not created yet"
            done, text = daemonset_progress(ds)
            return done, f"{namespace}/{name} {text}"

        self._wait(check, f"daemonset {namespace}/{name}", timeout, progress)

    def wait_ready(self, *, nodes: bool = True, namespaces: Sequence[str] = (),
                   timeout: float = 300, progress: Progress | None = None) -> None:
        def check() -> tuple[bool, str]:
            parts, done = [], True
            if nodes:
                rows = self.node_rows()
                ready = sum(1 for n in rows if n.ready)
                done = done and bool(rows) and ready == len(rows)
                parts.append(f"nodes {ready}/{len(rows)} Ready")
            for ns in namespaces:
                for d in self.kube.list("apps/v1", "Deployment", ns):
                    ok, text = deployment_progress(d)
                    if not ok:
                        done = False
                        parts.append(f"{ns}/{d['metadata']['name']} {text}")
            return done, ", ".join(parts) or "nothing to wait for"

        self._wait(check, "waiting for the cluster", timeout, progress)

    def _wait(self, check: Callable[[], tuple[bool, str]], title: str, timeout: float,
              progress: Progress | None) -> None:
        try:
            wait_until(check, title=title, timeout=timeout, progress=progress, sleep=self.sleep)
        except TimeoutError as exc:
            raise ClusterError(f"{title}: not ready after {timeout:.0f}s ({exc})",
                               hint="lab.status() shows what is pending; `kubectl describe` "
                               "the pending objects for events") from exc

    # -- traffic -----------------------------------------------------------------------
    def capture(self, spec: CaptureSpec, generate: Callable[[], Cell]) -> Capture:
        return kind_capture.capture(self, spec, generate)

    def exec(self, pod: str, argv: Sequence[str], *, container: str = "",
             timeout: float = 60) -> process.Result:
        ns, _, name = pod.partition("/")
        return self.kube.exec(ns, name, list(argv), container=container, timeout=timeout)

    def hubble_flows(self, last: int | None = None) -> FlowLog:
        """Each Cilium agent's recent flows, merged in time order; the equivalent of
        ``kubectl -n kube-system exec ds/cilium -c cilium-agent -- hubble observe -o jsonpb
        --last N`` on every node (ground truth 5.5), through the guarded API client."""
        agents = [p for p in self.pods("kube-system") if p.labels.get("k8s-app") == "cilium"]
        if not agents:
            raise ClusterError("no Cilium agent pods (k8s-app=cilium) in kube-system",
                               hint="Hubble comes with Cilium: install it first")
        argv = ["hubble", "observe", "-o", "jsonpb", "--last", str(last or DEFAULT_HUBBLE_LAST)]
        flows: list[Flow] = []
        skipped = 0
        for agent in agents:
            result = self.exec(agent.key, argv, container="cilium-agent", timeout=60)
            if result.returncode != 0:
                raise ToolError(f"hubble observe failed in {agent.key}", command=result.command,
                                stderr=result.stderr, returncode=result.returncode,
                                hint="is Hubble enabled (hubble.enabled=true)? "
                                "`cilium status` shows it")
            log = parse_flows(result.stdout.splitlines(), source=f"{agent.key} hubble observe")
            flows += log.flows
            skipped += log.skipped
        flows.sort(key=time_key)
        return FlowLog(tuple(flows[-last:] if last else flows), skipped)

    def observe(self, traffic: Sequence[Traffic], expected: dict[Traffic, bool]
                ) -> dict[Traffic, Observation]:
        state = self.state()
        jobs: dict[str, list[tuple[Traffic, probe.Target]]] = {}
        for i, t in enumerate(traffic):
            dns = t.protocol == "UDP" and t.port == 53
            if t.protocol != "TCP" and not dns:
                raise BackendUnsupported(f"{t.protocol}/{t.port} probes are not supported on "
                                         "kind (TCP, and DNS on UDP 53, are)",
                                         hint="probe TCP ports (the shop serves HTTP)")
            if t.source not in state.pods:
                raise ClusterError(f"no running pod {t.source}", hint="lab.pods() lists them")
            ip = t.destination[3:] if t.destination.startswith("ip:") else \
                getattr(state.pods.get(t.destination), "ip", "")
            if not ip:
                raise ClusterError(f"no running pod {t.destination}",
                                   hint="lab.pods() lists them")
            target = probe.Target(i, ip, dns=True) if dns else probe.Target(
                i, probe.url_for(ip, t.port, t.http), t.http.method if t.http else "GET",
                tuple(sorted(t.http.headers.items())) if t.http else ())
            jobs.setdefault(t.source, []).append((t, target))

        def exec_script(source: str, script: str) -> process.Result:
            containers = self._containers.get(source, [])
            container = PROBE_CONTAINER if PROBE_CONTAINER in containers else ""
            return self.exec(source, ["sh", "-c", script], container=container,
                             timeout=probe.MAX_TIME * 3 + 10)

        results = probe.run_probes(jobs, expected, exec_script,
                                   pause=lambda: self.sleep(1.0))
        return {t: Observation(r.outcome.allowed, r.outcome.denial, r.outcome.detail,
                               r.attempts, False) for t, r in results.items()}


# -- rollout progress, as `kubectl rollout status` judges it ---------------------------------
def _observed(obj: dict[str, Any]) -> bool:
    """The controller has seen the latest spec (else the status describes an older one)."""
    generation = (obj.get("metadata") or {}).get("generation") or 0
    return ((obj.get("status") or {}).get("observedGeneration") or 0) >= generation


def daemonset_progress(ds: dict[str, Any]) -> tuple[bool, str]:
    """(rolled out, why not): spec observed, every desired pod updated and ready."""
    st = ds.get("status") or {}
    want = st.get("desiredNumberScheduled") or 0
    updated, ready = st.get("updatedNumberScheduled") or 0, st.get("numberReady") or 0
    if not _observed(ds):
        return False, "spec update not observed yet"
    if not want:
        return False, "no pod scheduled yet"
    if updated < want:
        return False, f"{updated}/{want} pods updated"
    return ready >= want, f"{ready}/{want} ready"


def deployment_progress(d: dict[str, Any]) -> tuple[bool, str]:
    """(rolled out, why not): spec observed, every replica updated and available, no old
    replica left running."""
    st = d.get("status") or {}
    want = (d.get("spec") or {}).get("replicas", 1)
    updated, total = st.get("updatedReplicas") or 0, st.get("replicas") or 0
    available = st.get("availableReplicas") or 0
    if not _observed(d):
        return False, "spec update not observed yet"
    if updated < want:
        return False, f"{updated}/{want} updated"
    if total > updated:
        return False, f"{total - updated} old replicas terminating"
    return available >= updated, f"{available}/{want} available"


# -- API objects to rows and models ----------------------------------------------------------
def node_row(d: dict[str, Any]) -> NodeRow:
    meta, spec, status = d.get("metadata") or {}, d.get("spec") or {}, d.get("status") or {}
    ready: dict[str, Any] = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    roles = tuple(sorted(k.split("/", 1)[1] for k in (meta.get("labels") or {})
                         if k.startswith("node-role.kubernetes.io/")))
    ip = next((a.get("address", "") for a in status.get("addresses") or []
               if a.get("type") == "InternalIP"), "")
    is_ready = ready.get("status") == "True"
    return NodeRow(meta.get("name", ""), is_ready, roles, ip, spec.get("podCIDR", ""),
                   "" if is_ready else str(ready.get("message", "")))


def pod_row(d: dict[str, Any]) -> PodRow:
    meta, spec, status = d.get("metadata") or {}, d.get("spec") or {}, d.get("status") or {}
    phase = status.get("phase", "Unknown")
    ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                for c in status.get("conditions") or [])
    reason = next((c.get("message", "") for c in status.get("conditions") or []
                   if c.get("type") == "PodScheduled" and c.get("status") == "False"), "")
    return PodRow(meta.get("namespace", ""), meta.get("name", ""), phase, ready,
                  status.get("podIP", "") or "", spec.get("nodeName", "") or "", reason,
                  bool(spec.get("hostNetwork")))


def pod_model(d: dict[str, Any]) -> Pod | None:
    """A running pod as the engine sees it (None while it has no address)."""
    meta, spec, status = d.get("metadata") or {}, d.get("spec") or {}, d.get("status") or {}
    if status.get("phase") != "Running" or not status.get("podIP"):
        return None
    ports = tuple(ContainerPort(int(p["containerPort"]), p.get("protocol", "TCP"),
                                p.get("name", "") or "")
                  for c in spec.get("containers") or [] for p in c.get("ports") or [])
    return Pod(meta["namespace"], meta["name"], dict(meta.get("labels") or {}),
               status["podIP"], spec.get("nodeName", ""), ports,
               spec.get("serviceAccountName") or "default", bool(spec.get("hostNetwork")))


def service_model(d: dict[str, Any]) -> Service:
    meta, spec = d.get("metadata") or {}, d.get("spec") or {}
    ports = tuple(ServicePort(int(p["port"]), p.get("targetPort", p["port"]),
                              p.get("protocol", "TCP"), p.get("name", "") or "",
                              p.get("nodePort"))
                  for p in spec.get("ports") or [])
    ingress = ((d.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return Service(meta["namespace"], meta["name"], dict(spec.get("selector") or {}), ports,
                   spec.get("type", "ClusterIP"), spec.get("clusterIP", "") or "",
                   ingress[0].get("ip", "") if ingress else "",
                   dict(meta.get("annotations") or {}))


def stub(d: dict[str, Any], api: str, kind: str) -> dict[str, Any]:
    """Enough of an object to delete it (and to pass labkit's validation on the way)."""
    meta = d.get("metadata") or {}
    out = {"apiVersion": api, "kind": kind, "metadata": {k: meta[k] for k in ("name", "namespace")
                                                         if meta.get(k)}}
    if kind != "Service":
        out["spec"] = clean(d)["spec"]
    else:
        out["spec"] = {"ports": [{"port": p.get("port"), "protocol": p.get("protocol", "TCP")}
                                 for p in (d.get("spec") or {}).get("ports") or []]}
    return out


def clean(d: dict[str, Any]) -> dict[str, Any]:
    """An object read back from the API, reduced to what a manifest holds (for parsing)."""
    meta = d.get("metadata") or {}
    kept = {k: meta[k] for k in ("name", "namespace", "labels") if meta.get(k)}
    return {"apiVersion": d.get("apiVersion"), "kind": d.get("kind"), "metadata": kept,
            "spec": d.get("spec") or {}}
