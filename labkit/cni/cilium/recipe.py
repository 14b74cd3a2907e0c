"""Cilium with kube-proxy replacement: install and verify, on kind and on sim.

The cluster is a new one (stage ``cilium``: no default CNI, ``kubeProxyMode: none``), not
lab 02's migrated in place: both official migrations are fragile (cni-ground-truth.md
§0.5, §5.2). On kind (§5.1, the Cilium kind guide):

1. ``helm repo add cilium https://helm.cilium.io/`` (versions.yaml ``cilium.helm_repo``);
2. the chart rendered locally (``helm template``) to learn its images; each one already in
   the local Docker store is copied into the nodes with ``kind load docker-image``, and its
   ``useDigest`` turned off: a ``docker save`` archive does not carry the registry digest
   (moby#22011), so a digest-pinned reference would make the node pull anyway;
3. ``helm upgrade --install cilium cilium/cilium --version <pin> -n kube-system`` with
   ``environments/cilium/values.yaml`` and ``k8sServiceHost=<cluster>-control-plane``;
4. waits, with progress: the ``cilium`` and ``cilium-envoy`` DaemonSets, every Deployment
   in kube-system (operator, Hubble relay and UI, CoreDNS), every node Ready;
5. ``cilium status --wait`` parsed (labkit.cni.cilium.status), or, without the CLI,
   ``cilium-dbg status`` inside one agent pod.

The sim half installs the model: nodes Ready, pod addresses from each node's podCIDR (IPAM
``kubernetes``), Cilium's DaemonSets and Deployments, policies judged by the engine with
Cilium's semantics (NetworkPolicy, CNP, CCNP, L7), and ``cilium status`` answered as a
:class:`CliStatus` with ``simulated=True``.

Kube-proxy replacement is verified by behaviour (:meth:`Cilium.service_probes`): no
kube-proxy DaemonSet, and a ClusterIP and a NodePort Service both answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from labkit.backends.kind import probe
from labkit.backends.sim.cluster import CniRecord
from labkit.backends.sim.ipam import NodeRangeIpam
from labkit.cni import Recipe, VerificationCheck
from labkit.cni.cilium import identity as ids
from labkit.cni.cilium import served
from labkit.cni.cilium.status import (
    AgentStatus,
    CliStatus,
    Workload,
    parse_agent_status,
    parse_cli_status,
)
from labkit.display.render import Rendered, text_table
from labkit.environments import Stage, environments_dir, pinned
from labkit.errors import (
    BackendUnsupported,
    ClusterError,
    LabkitError,
    ManifestError,
    ToolError,
    ToolNotFound,
)
from labkit.model import Deployment, Service, ServicePort, Traffic
from labkit.policy import Engine
from labkit.policy.cilium.identity import IdentityAllocator, identity_labels
from labkit.tools import helm
from labkit.tools import kind as kind_tool

if TYPE_CHECKING:
    from labkit.backends.base import Backend
    from labkit.backends.kind.backend import KindBackend
    from labkit.backends.sim.backend import SimBackend
    from labkit.progress import Progress

NAMESPACE = "kube-system"
RELEASE = "cilium"
AGENT = "cilium"
AGENT_CONTAINER = "cilium-agent"
ENVOY = "cilium-envoy"
#: Deployments the chart creates with environments/cilium/values.yaml (operator.replicas
#: defaults to 2; Hubble relay and UI one each).
DEPLOYMENTS = (("cilium-operator", 2), ("hubble-relay", 1), ("hubble-ui", 1))
KUBE_PROXY = "kube-proxy"
API_SERVER_PORT = 6443
#: Chart values key of each image repository (the chart's values.yaml: ``image``,
#: ``operator.image``, ``envoy.image``, ``hubble.relay.image``, ``hubble.ui.*.image``).
IMAGE_KEYS = {
    "quay.io/cilium/cilium": "image",
    "quay.io/cilium/operator-generic": "operator.image",
    "quay.io/cilium/cilium-envoy": "envoy.image",
    "quay.io/cilium/hubble-relay": "hubble.relay.image",
    "quay.io/cilium/hubble-ui": "hubble.ui.frontend.image",
    "quay.io/cilium/hubble-ui-backend": "hubble.ui.backend.image",
}
#: The NodePort Service labkit adds to check kube-proxy replacement (an explicit nodePort in
#: the default 30000-32767 range, which the API server accepts as it is).
NODEPORT_SERVICE = "api-nodeport"
NODEPORT = 30080
#: Cilium's policy enforcement modes (security/policy/intro.rst).
ENFORCEMENT_MODES = ("default", "always", "never")


def values_file() -> Path:
    return environments_dir() / "cilium" / "values.yaml"


def helm_values(stage: Stage) -> dict[str, Any]:
    """The values file with the per-cluster k8sServiceHost: what the install sets, as data."""
    values = yaml.safe_load(values_file().read_text(encoding="utf-8")) or {}
    values["k8sServiceHost"] = f"{stage.cluster_name}-control-plane"
    return dict(values)


def repo() -> tuple[str, str]:
    """(repo name, URL): the chart ``cilium/cilium`` comes from the repo named ``cilium``."""
    return str(pinned("cilium", "chart")).split("/")[0], str(pinned("cilium", "helm_repo"))


def install_argv(stage: Stage, set_values: dict[str, str] | None = None) -> list[str]:
    """The exact ``helm upgrade --install`` labkit runs (waits are labkit's, with progress)."""
    return helm.upgrade_install_argv(
        RELEASE, str(pinned("cilium", "chart")), kube_context=stage.context,
        namespace=NAMESPACE, version=str(pinned("cilium", "version")), values=[values_file()],
        set_values={"k8sServiceHost": f"{stage.cluster_name}-control-plane",
                    **(set_values or {})}, wait=False)


def chart_images(manifest: str) -> list[str]:
    """Every container image in rendered manifests, in first-seen order."""
    images: dict[str, None] = {}
    for doc in yaml.safe_load_all(manifest):
        spec = ((doc or {}).get("spec") or {}).get("template", {}).get("spec") or {}
        for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
            if c.get("image"):
                images[str(c["image"])] = None
    return list(images)


def split_image(ref: str) -> tuple[str, str]:
    """(repository, name:tag without the digest)."""
    name = ref.split("@", 1)[0]
    repo_part = name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name
    return repo_part, name


@dataclass(frozen=True, repr=False)
class ServiceProbes(Rendered):
    """A ClusterIP and a NodePort service probed from a pod: kube-proxy replacement at work."""

    kube_proxy_daemonset: bool
    results: tuple[tuple[str, str, bool, str], ...]  # (what, url, answered, detail)
    simulated: bool = False

    @property
    def ok(self) -> bool:
        return not self.kube_proxy_daemonset and bool(self.results) and \
            all(r[2] for r in self.results)

    def to_text(self) -> str:
        head = ("kube-proxy DaemonSet: " + ("PRESENT (kube-proxy still runs)"
                                            if self.kube_proxy_daemonset else "none"))
        rows = [[w, u, "answers" if a else "NO ANSWER", d] for w, u, a, d in self.results]
        note = "\n(simulated)" if self.simulated else ""
        return head + "\n" + text_table(["SERVICE", "URL", "RESULT", "DETAIL"], rows) + note

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "simulated": self.simulated,
                "kube_proxy_daemonset": self.kube_proxy_daemonset,
                "results": [{"service": w, "url": u, "answered": a, "detail": d}
                            for w, u, a, d in self.results]}


def nodeport_service(namespace: str = "shop-api", app: str = "api") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": NODEPORT_SERVICE, "namespace": namespace,
                         "labels": {"app.kubernetes.io/managed-by": "labkit"}},
            "spec": {"type": "NodePort", "selector": {"app": app},
                     "ports": [{"name": "http", "port": 8080, "targetPort": "http",
                                "nodePort": NODEPORT}]}}


class Cilium(Recipe):
    name = "cilium"

    def __init__(self) -> None:
        self.last_status: CliStatus | AgentStatus | None = None

    # -- sim ---------------------------------------------------------------------------
    def install_sim(self, backend: SimBackend, progress: Progress | None = None) -> None:
        cluster = backend.cluster
        if cluster.cni is not None and cluster.cni.name == self.name:
            return
        if cluster.cni is not None:
            raise ClusterError(f"{cluster.cni.name} is already installed [simulated]",
                               hint="Cilium gets a new cluster (stage 'cilium'): lab.down(), "
                               "then Lab('cilium').up()")
        values = helm_values(backend.stage)
        # ipam.mode=kubernetes: the agent hands out addresses from node.spec.podCIDR, the /24
        # the controller-manager gave each node when it registered (Cilium docs,
        # "Kubernetes Host Scope").
        cidrs = cluster.pod_cidrs
        settings = {"kubeProxyReplacement": bool(values.get("kubeProxyReplacement")),
                    "ipam": (values.get("ipam") or {}).get("mode", "cluster-pool"),
                    "tunnel": "vxlan"}
        with cluster.batch():
            cluster.install_cni(CniRecord(self.name, NodeRangeIpam(cidrs, name="cilium/kubernetes"),
                                          NAMESPACE, AGENT, settings))
            cluster.add_daemonset(NAMESPACE, ENVOY, {"k8s-app": ENVOY})
            for name, replicas in DEPLOYMENTS:
                cluster.apply_deployment(Deployment(NAMESPACE, name, replicas,
                                                    {"app.kubernetes.io/name": name}))
            cluster.reconcile()
        if progress is not None:
            progress.update("cilium installed (simulated)", force=True)

    def verify_sim(self, backend: SimBackend) -> Sequence[VerificationCheck]:
        return self._status_checks(self.status(backend))

    # -- kind --------------------------------------------------------------------------
    def install_kind(self, backend: KindBackend, progress: Progress | None = None) -> None:
        if backend.stage.kube_proxy_mode != "none":
            raise ClusterError(f"stage {backend.stage.name} runs kube-proxy "
                               f"(kubeProxyMode {backend.stage.kube_proxy_mode})",
                               hint="kube-proxy replacement needs a cluster without it: "
                               "use stage 'cilium'")
        current = backend.installed_cni()
        if current not in (None, self.name):
            raise ClusterError(f"{current} is installed in {backend.stage.cluster_name}",
                               hint="Cilium gets a new cluster: Lab('cilium').up() (stage "
                               "cilium: no default CNI, no kube-proxy)")
        name, url = repo()
        _say(progress, f"helm repo add {name} {url}")
        helm.repo_add(name, url, run=backend.run)
        preloaded = self.preload_images(backend, progress)
        set_values = {f"{IMAGE_KEYS[r]}.useDigest": "false" for r in preloaded if r in IMAGE_KEYS}
        argv = install_argv(backend.stage, set_values)
        _say(progress, " ".join(argv[:4]) + " (chart " + str(pinned("cilium", "version")) + ")")
        backend.run(argv, timeout=900,
                    hint="`helm status cilium -n kube-system` and the pods' events tell why")
        for ds in (AGENT, ENVOY):
            backend.wait_daemonset(NAMESPACE, ds, timeout=900, progress=progress)
        backend.wait_ready(nodes=True, namespaces=(NAMESPACE,), timeout=900, progress=progress)
        self.last_status = self.status(backend)

    def preload_images(self, backend: KindBackend, progress: Progress | None = None
                       ) -> list[str]:
        """Copy the chart's images that the local Docker store has into the nodes.

        Returns the repositories loaded. Missing images are left to the nodes to pull.
        """
        stage = backend.stage
        argv = helm.template_argv(RELEASE, str(pinned("cilium", "chart")), namespace=NAMESPACE,
                                  version=str(pinned("cilium", "version")),
                                  values=[values_file()],
                                  set_values={"k8sServiceHost":
                                              f"{stage.cluster_name}-control-plane"})
        manifest = backend.run(argv, timeout=300).stdout
        loaded = []
        for ref in chart_images(manifest):
            repository, tagged = split_image(ref)
            present = backend.run(["docker", "image", "inspect", "--format", "{{.Id}}", tagged],
                                  timeout=30, check=False).returncode == 0
            if not present:
                _say(progress, f"{tagged}: not in the local Docker store, the nodes pull it")
                continue
            _say(progress, f"kind load docker-image {tagged}")
            kind_tool.load_image(stage.cluster_name, tagged, run=backend.run)
            loaded.append(repository)
        return loaded

    def verify_kind(self, backend: KindBackend) -> Sequence[VerificationCheck]:
        return self._status_checks(self.status(backend))

    # -- status --------------------------------------------------------------------------
    def status(self, target: Any) -> CliStatus | AgentStatus:
        """``cilium status --wait`` as data (kind: the CLI, else ``cilium-dbg status`` in
        an agent; sim: the model's answer, ``simulated=True``)."""
        backend: Backend = getattr(target, "impl", target)
        status = backend.dispatch(sim=sim_status, kind=kind_status)
        self.last_status = status
        return status

    @staticmethod
    def _status_checks(status: CliStatus | AgentStatus) -> list[VerificationCheck]:
        if isinstance(status, CliStatus):
            bad = [f"{k}: {v}" for k, v in status.summary.items()
                   if v != "OK" and not v.startswith("disabled")]
            bad += [f"{w.kind} {w.name} {w.text()}" for w in status.workloads if not w.ok]
            return [VerificationCheck("cilium status OK", status.ok,
                                      "; ".join(bad) or ", ".join(
                                          f"{k}: {v}" for k, v in status.summary.items()))]
        kpr = status.kube_proxy_replacement or ""
        agent = status.fields.get("Cilium", "")
        return [VerificationCheck("cilium-dbg status OK", agent.startswith("Ok"),
                                  agent or "no Cilium line"),
                # "True" since 1.16; "Strict" meant the same full replacement before.
                VerificationCheck("KubeProxyReplacement True", kpr in ("True", "Strict"),
                                  kpr or "absent")]

    # -- policyEnforcementMode -----------------------------------------------------------
    def set_policy_enforcement(self, target: Any, mode: str) -> str:
        """Switch Cilium's ``policyEnforcementMode`` (default | always | never); returns the
        previous mode. Only on sim: lab 05 demonstrates ``always`` there and reverts it."""
        if mode not in ENFORCEMENT_MODES:
            raise ManifestError(f"unknown policyEnforcementMode {mode!r}",
                                hint=f"one of {', '.join(ENFORCEMENT_MODES)}")
        backend: Backend = getattr(target, "impl", target)
        return backend.dispatch(sim=lambda b: _sim_set_enforcement(b, mode),
                                kind=lambda b: _kind_set_enforcement(mode))

    # -- names the lab serves itself (DNS-aware policy) ----------------------------------
    def serve_name(self, target: Any, name: str) -> str:
        """Serve ``name`` from outside the cluster and make the cluster's DNS answer it;
        returns its address (labkit.cni.cilium.served)."""
        backend: Backend = getattr(target, "impl", target)
        return backend.dispatch(sim=lambda b: served.serve_sim(b, name),
                                kind=lambda b: served.serve_kind(b, name))

    # -- kube-proxy replacement, by behaviour -----------------------------------------
    def service_probes(self, target: Any, source: str) -> ServiceProbes:
        """Add a NodePort Service for the API, then probe it and the API's ClusterIP from
        ``source`` (a pod key): both must answer although no kube-proxy runs."""
        backend: Backend = getattr(target, "impl", target)
        return backend.dispatch(sim=lambda b: _sim_service_probes(b, source),
                                kind=lambda b: _kind_service_probes(b, source))

    def identities(self, target: Any, namespaces: Sequence[str] = ("shop-web", "shop-api")
                   ) -> ids.Identities:
        """The security identity of every pod in ``namespaces`` (kind: CiliumEndpoints)."""
        backend: Backend = getattr(target, "impl", target)
        return backend.dispatch(sim=lambda b: _sim_identities(b, namespaces),
                                kind=lambda b: _kind_identities(b, namespaces))


def _say(progress: Progress | None, text: str) -> None:
    if progress is not None:
        progress.update(text, force=True)


# -- the sim's answers -------------------------------------------------------------------------
def sim_status(backend: SimBackend) -> CliStatus:
    """What ``cilium status`` prints for the model: every component from the CNI table."""
    c = backend.cluster
    if c.cni is None or c.cni.name != "cilium":
        raise ClusterError("cilium is not installed [simulated]",
                           hint="lab.install_cni('cilium') on stage 'cilium'")
    workloads = []
    for ds in (AGENT, ENVOY):
        n = sum(1 for p in c.pods.values() if p.owner == f"DaemonSet {NAMESPACE}/{ds}"
                and p.phase == "Running")
        workloads.append(Workload("DaemonSet", ds, len(c.nodes), n, n))
    for name, replicas in DEPLOYMENTS:
        n = sum(1 for p in c.pods.values() if p.owner == f"Deployment {NAMESPACE}/{name}"
                and p.phase == "Running")
        workloads.append(Workload("Deployment", name, replicas, n, n))
    pods = [p for p in c.pods.values() if not p.pod.host_network]
    version = str(pinned("cilium", "version"))
    summary = {"Cilium": "OK", "Operator": "OK", "Envoy DaemonSet": "OK",
               "Hubble Relay": "OK", "ClusterMesh": "disabled"}
    containers = tuple((w.name, f"Running: {w.ready}") for w in workloads)
    images = ((AGENT, f"quay.io/cilium/cilium:v{version}", len(c.nodes)),
              ("cilium-operator", f"quay.io/cilium/operator-generic:v{version}",
               DEPLOYMENTS[0][1]),
              ("hubble-relay", f"quay.io/cilium/hubble-relay:v{version}", 1))
    return CliStatus(summary, tuple(workloads), containers,
                     (sum(1 for p in pods if p.phase == "Running"), len(pods)), version,
                     images, simulated=True)


def _sim_set_enforcement(backend: SimBackend, mode: str) -> str:
    c = backend.cluster
    if c.cni is None or c.cni.name != "cilium":
        raise ClusterError("cilium is not installed [simulated]",
                           hint="lab.install_cni('cilium') on stage 'cilium'")
    before = str(c.cni.settings.get("policyEnforcementMode", "default"))
    c.cni.settings["policyEnforcementMode"] = mode
    c.changed()
    return before


def _kind_set_enforcement(mode: str) -> str:
    raise BackendUnsupported(
        f"labkit does not switch a real cluster to policyEnforcementMode={mode}",
        hint="it would cut every pod off (DNS included) until reverted: the lab shows it on "
        "a simulated cluster; on kind it is `helm upgrade cilium cilium/cilium -n kube-system "
        f"--reuse-values --set policyEnforcementMode={mode}` and a restart of the agents")


def _sim_service_probes(backend: SimBackend, source: str) -> ServiceProbes:
    c = backend.cluster
    svc = nodeport_service()
    with c.batch():
        c.apply_service(Service("shop-api", NODEPORT_SERVICE, {"app": "api"},
                                (ServicePort(8080, "http", "TCP", "http", NODEPORT),),
                                type="NodePort"))
    kube_proxy = any(p.owner == f"DaemonSet {NAMESPACE}/{KUBE_PROXY}" for p in c.pods.values())
    replaced = bool(c.cni is not None and c.cni.settings.get("kubeProxyReplacement"))
    engine = Engine(c.state(), cni=c.cni.name if c.cni else None)
    results = []
    api = c.services["shop-api/api"]
    targets = [("ClusterIP shop-api/api", f"http://{api.cluster_ip}:8080/healthz", "shop-api/api")]
    targets += [(f"NodePort on {n.name}", f"http://{n.ip}:{NODEPORT}/healthz",
                 f"shop-api/{svc['metadata']['name']}") for n in c.nodes.values()]
    for what, url, key in targets:
        backends = c.endpoints(key)
        if not (kube_proxy or replaced):
            results.append((what, url, False, "nothing translates the service address: no "
                            "kube-proxy and no kube-proxy replacement [simulated]"))
            continue
        if not backends:
            results.append((what, url, False, "the Service has no ready endpoints [simulated]"))
            continue
        pod = next(k for k, p in c.pods.items() if f"{p.pod.ip}:8080" == backends[0])
        verdict = engine.evaluate(Traffic(source, pod, 8080))
        results.append((what, url, verdict.allowed,
                        f"translated to {backends[0]} ({pod}) by "
                        f"{'kube-proxy' if kube_proxy else 'Cilium eBPF'}; "
                        f"{'allowed' if verdict.allowed else 'denied by policy'} [simulated]"))
    return ServiceProbes(kube_proxy, tuple(results), simulated=True)


def _sim_identities(backend: SimBackend, namespaces: Sequence[str]) -> ids.Identities:
    """The model's identities: the same allocator (and saved numbers) as the sim's Hubble
    flows, so a pod shows the same identity in both."""
    c = backend.cluster
    state = c.state()
    allocator = IdentityAllocator.from_dict(c.identities)
    numbers = allocator.for_pods(state)
    with c.batch():
        c.identities = allocator.as_dict()
    triples = [(key, number, identity_labels(state.pods[key], state))
               for key, number in numbers.items()
               if state.pods[key].namespace in namespaces]
    return ids.group(triples, simulated=True)


# -- the real cluster's answers -------------------------------------------------------------
def agent_pod(backend: KindBackend) -> str:
    pods = [p for p in backend.pod_rows(NAMESPACE)
            if p.name.startswith(f"{AGENT}-") and not p.name.startswith(f"{ENVOY}-")
            and p.phase == "Running"]
    if not pods:
        raise ClusterError("no running cilium agent pod in kube-system",
                           hint="`kubectl -n kube-system get pods -l k8s-app=cilium`")
    return pods[0].name


def kind_status(backend: KindBackend) -> CliStatus | AgentStatus:
    argv = ["cilium", "status", "--wait", "--wait-duration", "10m", "--context",
            backend.stage.context]
    try:
        result = backend.run(argv, timeout=660, check=False)
    except ToolNotFound:
        pod = agent_pod(backend)
        out = backend.kube.exec(NAMESPACE, pod, ["cilium-dbg", "status"],
                                container=AGENT_CONTAINER, timeout=60)
        return parse_agent_status(out.stdout, source=f"kube-system/{pod} cilium-dbg status")
    if not result.stdout.strip():
        raise ToolError("`cilium status --wait` printed nothing", command=" ".join(argv),
                        stderr=result.stderr, hint="run it by hand to see why")
    return parse_cli_status(result.stdout)


def _kind_service_probes(backend: KindBackend, source: str) -> ServiceProbes:
    backend.apply_raw([nodeport_service()])
    kube_proxy = backend.kube.get("apps/v1", "DaemonSet", KUBE_PROXY, NAMESPACE) is not None
    api = backend.kube.get("v1", "Service", "api", "shop-api")
    if api is None:
        raise ClusterError("no Service shop-api/api", hint="lab.deploy_shop() first")
    targets = [("ClusterIP shop-api/api",
                f"http://{api['spec']['clusterIP']}:8080/healthz")]
    targets += [(f"NodePort on {n.name}", f"http://{n.ip}:{NODEPORT}/healthz")
                for n in backend.node_rows()]
    script = probe.build_script([probe.Target(i, url) for i, (_, url) in enumerate(targets)])
    result = backend.exec(source, ["sh", "-c", script], container="probe",
                          timeout=probe.MAX_TIME * 3 + 10)
    outcomes = probe.parse_output(result.stdout)
    rows = []
    for i, (what, url) in enumerate(targets):
        o = outcomes.get(i)
        rows.append((what, url, bool(o and o.allowed),
                     o.detail if o else f"no result ({result.stderr.strip()[:120]})"))
    return ServiceProbes(kube_proxy, tuple(rows))


def _kind_identities(backend: KindBackend, namespaces: Sequence[str]) -> ids.Identities:
    triples = []
    for ns in namespaces:
        try:
            endpoints = backend.kube.list("cilium.io/v2", "CiliumEndpoint", ns)
        except LabkitError as exc:
            raise ClusterError(f"cannot list CiliumEndpoints: {exc.one_line()}",
                               hint="is Cilium installed? lab.install_cni('cilium')") from exc
        for ep in endpoints:
            ident = ((ep.get("status") or {}).get("identity") or {})
            if "id" not in ident:
                continue
            triples.append((f"{ns}/{ep['metadata']['name']}", int(ident["id"]),
                            tuple(ident.get("labels") or ())))
    return ids.group(triples, simulated=False)


RECIPE = Cilium()

__all__ = ["AGENT", "DEPLOYMENTS", "ENVOY", "IMAGE_KEYS", "NAMESPACE", "NODEPORT", "RECIPE",
           "Cilium", "ServiceProbes", "chart_images", "helm_values", "install_argv",
           "nodeport_service", "repo", "sim_status", "split_image", "values_file"]
