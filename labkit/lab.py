"""The ``Lab`` facade: what notebooks and the CLI use, the same on both backends.

>>> lab = Lab("flannel", backend="sim")
>>> lab.up(); lab.install_cni("flannel"); lab.deploy_shop()
>>> lab.matrix(ports=[(8080, "TCP")]).diff()   # Flannel: nothing differs yet
[]

Input is validated by :mod:`labkit.policy` before any backend sees it, so a bad
manifest fails with the same error on kind and sim. *Expected* verdicts come
from ``Engine(state, cni=None)`` (what the policies mean); *observed* ones from
the backend (kind: real probes; sim: the engine restricted to the installed CNI).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit import cnis
from labkit.backends.base import Backend, ClusterStatus
from labkit.backends.kind import KindBackend
from labkit.backends.sim import SimBackend
from labkit.capture import Capture, CaptureSpec
from labkit.cni.registry import recipe
from labkit.display import Callout
from labkit.environments import Stage, environments_dir, render
from labkit.errors import BackendUnsupported, ClusterError, LabkitError, ManifestError
from labkit.inputs import quote
from labkit.matrix import ConnectivityMatrix, HttpMatrix
from labkit.model import HttpRequest, Node, Pod, short_names
from labkit.policy import Engine, served_kinds
from labkit.policy.kinds import parse_documents
from labkit.policy.parse import ParseContext, documents_of, read_documents
from labkit.progress import Progress
from labkit.tools import process
from labkit.tools.process import Result

if TYPE_CHECKING:
    from labkit.capture import Capture
    from labkit.cni import Verification
    from labkit.hubble.log import FlowLog
    from labkit.matrix import Cell, ConnectivityMatrix

BACKENDS = ("auto", "kind", "sim")
Manifests = str | Path | dict[str, Any] | Sequence[dict[str, Any]]
SYSTEM_NAMESPACES = cnis.system_namespaces()


def kind_available() -> tuple[bool, str]:
    """Whether Docker and kind both work here (what ``backend="auto"`` asks)."""
    for argv in (["docker", "info", "--format", "{{.ServerVersion}}"], ["kind", "version"]):
        try:
            process.run(argv, timeout=20)
        except LabkitError as exc:
            return False, exc.one_line()
    return True, "docker and kind work"


def choose_backend(requested: str = "auto") -> str:
    """``kind`` or ``sim``: explicit choices win; ``LABKIT_BACKEND`` overrides ``auto``."""
    if requested not in BACKENDS:
        raise BackendUnsupported(f"unknown backend {requested!r}",
                                 hint=f"use one of {', '.join(BACKENDS)}")
    if requested == "auto":
        requested = os.environ.get("LABKIT_BACKEND", "auto") or "auto"
        if requested not in BACKENDS:
            raise BackendUnsupported(f"LABKIT_BACKEND={requested!r} is not a backend",
                                     hint=f"use one of {', '.join(BACKENDS)}")
    if requested == "auto":
        return "kind" if kind_available()[0] else "sim"
    return requested


def make_backend(name: str, stage: Stage) -> Backend:
    if name == "kind":
        return KindBackend(stage)
    return SimBackend(stage)


_current: Lab | None = None


def current_lab() -> Lab:
    """The lab this session last created or opened: the one ``%kubectl`` and friends act on."""
    if _current is None:
        raise ClusterError("no lab is open in this session",
                           hint='open one first: lab = Lab("flannel", backend=BACKEND)')
    return _current


class Lab:
    """One stage's cluster, on kind or in the simulator."""

    def __init__(self, stage: str = "flannel", backend: str = "auto", *,
                 backend_impl: Backend | None = None) -> None:
        self.stage = Stage.load(stage) if backend_impl is None else backend_impl.stage
        self._backend = backend_impl or make_backend(choose_backend(backend), self.stage)
        #: Exercise checks run with this Lab: id -> passed (None: not attempted).
        self.exercises: dict[str, bool | None] = {}
        self._make_current()

    def _make_current(self) -> None:
        global _current
        _current = self

    # -- identity ------------------------------------------------------------------------
    @property
    def backend(self) -> str:
        return self._backend.name

    @property
    def impl(self) -> Backend:
        """The backend object (for recipes and add-ons that need backend-specific verbs)."""
        return self._backend

    @property
    def simulated(self) -> bool:
        return self._backend.simulated

    @property
    def cluster_name(self) -> str:
        return self.stage.cluster_name

    @property
    def context(self) -> str:
        return self.stage.context

    @property
    def cni(self) -> str | None:
        return self._backend.installed_cni() if self._backend.exists() else None

    def __repr__(self) -> str:
        label = ", simulated" if self.simulated else ""
        return f"Lab(stage={self.stage.name!r}, backend={self.backend!r}{label})"

    def banner(self) -> Callout:
        """The notebook's one note on where its results come from (shown once, at the top;
        each simulated result then only carries a small "simulated" tag)."""
        if self.simulated:
            return Callout("SIMULATED", f"{self!r}: every cluster result in this notebook comes "
                           "from labkit's in-memory model, driven by the policy engine; no real "
                           "cluster runs and no packet is sent. Each such result is tagged "
                           "`simulated`.", "simulated")
        return Callout("kind", f"{self!r}: results come from the real kind cluster "
                       f"{self.cluster_name} (context `{self.context}`).")

    # -- lifecycle -----------------------------------------------------------------------
    def up(self) -> ClusterStatus:
        with Progress(f"cluster {self.cluster_name}") as p, self._backend.transaction():
            self._backend.up(p)
        self._make_current()
        return self.status()

    def exists(self) -> bool:
        """Whether the stage's cluster is there (created and not deleted)."""
        return self._backend.exists()

    def down(self) -> None:
        self._backend.down()

    def status(self) -> ClusterStatus:
        if not self._backend.exists():
            return ClusterStatus(self.stage.name, self.cluster_name, self.backend, False)
        return ClusterStatus(self.stage.name, self.cluster_name, self.backend, True,
                             self._backend.installed_cni(), tuple(self._backend.node_rows()),
                             tuple(self._backend.pod_rows()))

    def nodes(self) -> list[Node]:
        return self._backend.nodes()

    def pods(self, namespace: str | None = None) -> list[Pod]:
        return self._backend.pods(namespace)

    def wait_ready(self, *, nodes: bool = True, namespaces: Sequence[str] = (),
                   timeout: float = 300) -> ClusterStatus:
        with Progress("waiting for the cluster") as p:
            self._backend.wait_ready(nodes=nodes, namespaces=namespaces, timeout=timeout,
                                     progress=p)
        return self.status()

    # -- CNI -----------------------------------------------------------------------------
    def install_cni(self, name: str = "flannel") -> Verification:
        r = recipe(name)
        current = self.cni
        if current != name:
            if current is not None:
                raise ClusterError(f"{current} is already installed in {self.cluster_name}",
                                   hint="recreate the cluster (lab.down(); lab.up()) or "
                                   "follow the migration lab")
            with Progress(f"installing {name}") as p, self._backend.transaction():
                r.install(self._backend, p)
        return r.verify(self._backend)

    def verify_cni(self) -> Verification:
        if self.cni is None:
            raise ClusterError("no CNI is installed", hint="lab.install_cni('flannel')")
        return recipe(self.cni).verify(self._backend)

    # -- manifests -----------------------------------------------------------------------
    def served(self) -> set[tuple[str, str]]:
        served = getattr(self._backend, "served", None)
        if served is not None:
            return set(served())
        return set(served_kinds(self.cni))

    def validate(self, manifests: Manifests, *, source: str = ""
                 ) -> tuple[list[dict[str, Any]], list[Any]]:
        """(documents, parsed objects), refused as the API server would refuse them; errors
        in YAML text name ``source`` (say, the notebook variable it came from)."""
        docs = documents(manifests, source=source)
        objects = parse_documents(docs, served=self.served())
        return [d for _, d in docs], objects

    def apply(self, manifests: Manifests) -> list[str]:
        """Apply a file, a folder, YAML text, or manifest dicts; returns what was applied."""
        docs, objects = self.validate(manifests)
        return self._backend.apply(docs, objects)

    def delete(self, manifests: Manifests) -> list[str]:
        docs, objects = self.validate(manifests)
        return self._backend.delete(docs, objects)

    def deploy_shop(self, *, wait: bool = True, timeout: float = 300) -> list[str]:
        """The course's workload: frontend, API and database in two namespaces."""
        return self.deploy_workload("shop", wait=wait, timeout=timeout)

    def probe_pod(self, *, timeout: float = 300) -> str:
        """labkit's own probe client (namespace labkit-probe, curl and a shell), deployed if
        needed: a source outside the shop's namespaces and labels. Returns its pod key."""
        self.deploy_workload("probe", timeout=timeout)
        return self.resolve("labkit-probe/probe")

    def deploy_workload(self, name: str, *, wait: bool = True, timeout: float = 300
                        ) -> list[str]:
        """Apply environments/workloads/NAME/ (rendered) and wait for its rollouts."""
        folder = environments_dir() / "workloads" / name
        docs = []
        for path in sorted(folder.glob("*.yaml")):
            docs.extend(documents_of(render(path.read_text(encoding="utf-8"), str(path)),
                                     str(path)))
        applied = self.apply([d for _, d in docs])
        if wait:
            namespaces = sorted({d["metadata"]["name"] for _, d in docs
                                 if d.get("kind") == "Namespace"})
            self.wait_ready(nodes=True, namespaces=namespaces, timeout=timeout)
        return applied

    # -- traffic -------------------------------------------------------------------------
    def resolve(self, name: str) -> str:
        """A pod key from ``ns/pod`` or ``ns/<app label>`` (the first such pod), or ``ip:...``."""
        if name.startswith("ip:"):
            return name
        pods = {p.key: p for p in self.pods()}
        if name in pods:
            return name
        ns, _, app = name.partition("/")
        matches = sorted(k for k, p in pods.items()
                         if p.namespace == ns and p.labels.get("app") == app)
        if not matches:
            raise ClusterError(f"no running pod {name!r}",
                               hint="lab.pods() lists the running pods; is a CNI installed "
                               "and the workload deployed?")
        return matches[0]

    def workload_pods(self) -> list[str]:
        """Running pods on the pod network outside system namespaces: the default matrix."""
        return [p.key for p in self.pods()
                if p.namespace not in SYSTEM_NAMESPACES and not p.host_network]

    def matrix(self, sources: Iterable[str] | None = None,
               destinations: Iterable[str] | None = None,
               ports: Iterable[tuple[int, str]] = ((8080, "TCP"),), *,
               http: HttpRequest | None = None, title: str = "") -> ConnectivityMatrix:
        """Expected (what the policies mean) against observed (what the data plane does)."""
        ports = checked_ports(ports)
        if self.cni is None:
            raise ClusterError("no CNI is installed: pods are Pending and have no address",
                               hint="lab.install_cni('flannel') first")
        srcs = [self.resolve(s) for s in sources] if sources is not None else \
            self.workload_pods()
        dsts = [self.resolve(d) for d in destinations] if destinations is not None else \
            self.workload_pods()
        if not srcs or not dsts:
            raise ClusterError("no pods to probe", hint="lab.deploy_shop() first")
        state = self._backend.state()
        expected = ConnectivityMatrix.expected(Engine(state, cni=None), srcs, dsts, ports,
                                               http=http, title=title,
                                               labels=short_names([*srcs, *dsts], state.pods))
        return self._backend.observe_matrix(expected)

    def http_matrix(self, sources: Iterable[str], destination: str,
                    requests: Iterable[HttpRequest], port: int = 8080, *,
                    title: str = "") -> HttpMatrix:
        """Sources x HTTP requests to one destination: allowed, 403 (the L7 proxy answers) or
        dropped (L3/L4: the client times out), expected against observed."""
        if self.cni is None:
            raise ClusterError("no CNI is installed: pods are Pending and have no address",
                               hint="lab.install_cni('cilium') first")
        srcs = [self.resolve(s) for s in sources]
        dst = self.resolve(destination)
        reqs = list(requests)
        if not srcs or not reqs:
            raise ClusterError("an HTTP matrix needs sources and requests",
                               hint="e.g. requests=[HttpRequest('GET', '/healthz')]")
        state = self._backend.state()
        expected = HttpMatrix.build(Engine(state, cni=None), dst, port, srcs, reqs, title=title,
                                    names=short_names([*srcs, dst], state.pods))
        traffic = expected.traffic()
        wanted = {t: expected.cell(t.source, t.http).expected.allowed
                  for t in traffic if t.http is not None}
        return expected.with_observed(self._backend.observe(traffic, wanted))

    def probe(self, source: str, destination: str, port: int = 8080, protocol: str = "TCP",
              http: HttpRequest | None = None) -> Cell:
        """One connection, expected and observed."""
        ctx = ParseContext("lab.probe()")
        port = ctx.port_number(port, "port")
        protocol = ctx.protocol(protocol, "protocol")
        m = self.matrix([source], [destination], [(port, protocol)], http=http)
        return next(iter(m.cells.values()))

    def capture(self, source: str, destination: str, port: int = 8080, *,
                node: str | None = None, filter: str | None = None,
                http: HttpRequest | None = None, count: int = 40, interface: str = "eth0",
                seconds: float = 20.0) -> Capture:
        """Capture packets on a node (default: the source pod's) while one probe runs.

        ``filter`` is tcpdump's (default: the installed CNI's tunnel, e.g. ``udp port 8472``
        for Flannel); ``node="bridge"`` captures on the kind bridge. See labkit.capture.
        """
        if self.cni is None:
            return Capture((), node or "", interface, filter or "", self.backend,
                           notes=("no CNI is installed: pods have no network, so nothing is "
                                  "sent (install one: lab.install_cni('flannel'))",))
        src, dst = self.resolve(source), self.resolve(destination)
        spec = CaptureSpec(src, dst, port, http, node or "", interface, filter, count, seconds)
        return self._backend.capture(spec, lambda: self.probe(src, dst, port, http=http))

    def flows(self, last: int | None = None) -> FlowLog:
        """Hubble's flows (kind: from every Cilium agent; sim: the simulated flows of the
        probes answered so far), as typed data: ``.to_dataframe()``, ``.service_map()``."""
        cni = self.cni
        if cni is None or not cnis.CNIS[cni].hubble:
            raise BackendUnsupported(
                f"Hubble needs Cilium; this cluster runs {cni or 'no CNI'}",
                hint="use the stage 'cilium' and install Cilium first")
        return self.impl.hubble_flows(last)

    def exec(self, pod: str, argv: Sequence[str], *, container: str = "",
             timeout: float = 60) -> Result:
        return self._backend.exec(self.resolve(pod), argv, container=container,
                                  timeout=timeout)


def checked_ports(ports: Iterable[tuple[int, str]]) -> list[tuple[int, str]]:
    """``ports`` as (number 1-65535, TCP/UDP/SCTP) pairs, or ManifestError naming the item."""
    ctx = ParseContext("lab.matrix()")
    if isinstance(ports, (str, bytes)) or not isinstance(ports, Iterable):
        raise ctx.error("ports", f"expected a list of (port, protocol) pairs, got {quote(ports)}",
                        hint="e.g. ports=[(8080, 'TCP')]")
    out = []
    for i, item in enumerate(ports):
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise ctx.error(f"ports[{i}]", f"{quote(item)} is not a (port, protocol) pair",
                            hint="e.g. ports=[(8080, 'TCP')]")
        out.append((ctx.port_number(item[0], f"ports[{i}][0]"),
                    ctx.protocol(item[1], f"ports[{i}][1]")))
    return out


def documents(manifests: Manifests, *, source: str = "") -> list[tuple[str, dict[str, Any]]]:
    """(source, document) pairs from a path, YAML text, a dict or a list of dicts."""
    if isinstance(manifests, Path):
        return read_documents([manifests])
    if isinstance(manifests, str):
        if "\n" not in manifests and ":" not in manifests.split("/")[0]:
            return read_documents([manifests])  # a path; a missing file is reported there
        return documents_of(manifests, source or "<text>")
    if isinstance(manifests, dict):
        return [("<object>", dict(manifests))]
    if isinstance(manifests, Sequence):
        out = []
        for i, doc in enumerate(manifests):
            if not isinstance(doc, dict):
                raise ManifestError(f"item {i} is {type(doc).__name__}, not a manifest dict",
                                    hint="pass dicts as kubectl would read them from YAML")
            out.append((f"<object {i}>", dict(doc)))
        return out
    raise ManifestError(f"cannot apply a {type(manifests).__name__}",
                        hint="pass a path, YAML text, a dict or a list of dicts")
