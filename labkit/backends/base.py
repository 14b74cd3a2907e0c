"""The one backend interface, and the status objects both backends return.

A backend owns one cluster (a stage's kind cluster, real or simulated). The
:class:`~labkit.lab.Lab` facade validates input, computes *expected* verdicts
with the policy engine, and asks the backend for the rest: lifecycle, objects,
and *observed* probe results.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from labkit.display.render import Rendered, html_report, html_table, text_report, text_table
from labkit.model import ClusterState, Node, Pod, Traffic
from labkit.tools.process import Result

if TYPE_CHECKING:
    from collections.abc import Callable

    from labkit.backends.kind.backend import KindBackend
    from labkit.backends.sim.backend import SimBackend
    from labkit.capture import Capture, CaptureSpec
    from labkit.environments import Stage
    from labkit.hubble.log import FlowLog
    from labkit.matrix import Cell, ConnectivityMatrix, Observation
    from labkit.progress import Progress

T = TypeVar("T")

SIMULATED_NOTE = "simulated: these results come from labkit's model, not a real cluster"


@dataclass(frozen=True)
class NodeRow:
    """A node as ``kubectl get nodes -o wide`` shows it, plus the Ready condition's message."""

    name: str
    ready: bool
    roles: tuple[str, ...] = ()
    ip: str = ""
    pod_cidr: str = ""
    message: str = ""

    @property
    def status(self) -> str:
        return "Ready" if self.ready else "NotReady"

    def node(self) -> Node:
        return Node(self.name, self.ip, self.pod_cidr, self.ready, self.roles)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "roles": list(self.roles),
                "ip": self.ip, "pod_cidr": self.pod_cidr, "message": self.message}


@dataclass(frozen=True)
class PodRow:
    """A pod as ``kubectl get pods -A -o wide`` shows it."""

    namespace: str
    name: str
    phase: str  # Pending | Running | ...
    ready: bool = False
    ip: str = ""
    node: str = ""
    reason: str = ""
    host_network: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "name": self.name, "phase": self.phase,
                "ready": self.ready, "ip": self.ip, "node": self.node, "reason": self.reason}


@dataclass(frozen=True, repr=False)
class ClusterStatus(Rendered):
    """What ``lab.status()`` returns: renders as text and HTML, serialises to JSON."""

    stage: str
    cluster: str
    backend: str
    exists: bool
    cni: str | None = None
    nodes: tuple[NodeRow, ...] = ()
    pods: tuple[PodRow, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def simulated(self) -> bool:
        return self.backend == "sim"

    @property
    def ready(self) -> bool:
        return self.exists and bool(self.nodes) and all(n.ready for n in self.nodes)

    def as_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "cluster": self.cluster, "backend": self.backend,
                "simulated": self.simulated, "exists": self.exists, "cni": self.cni,
                "ready": self.ready, "nodes": [n.as_dict() for n in self.nodes],
                "pods": [p.as_dict() for p in self.pods], "notes": list(self.notes)}

    def _headline(self) -> str:
        state = "absent" if not self.exists else ("Ready" if self.ready else "not ready")
        label = " [simulated]" if self.simulated else ""
        return (f"cluster {self.cluster} (stage {self.stage}, backend {self.backend}{label}): "
                f"{state}, CNI: {self.cni or 'none'}")

    def to_text(self) -> str:
        body = []
        if self.nodes:
            body.append(text_table(["NAME", "STATUS", "ROLES", "INTERNAL-IP", "POD-CIDR"],
                                   [[n.name, n.status, ",".join(n.roles) or "<none>", n.ip,
                                     n.pod_cidr or "<none>"] for n in self.nodes], gap="   "))
            body += [f"  {n.name}: {n.message}" for n in self.nodes if n.message]
        if self.pods:
            body.append(text_table(["NAMESPACE", "NAME", "STATUS", "IP", "NODE"],
                                   [[p.namespace, p.name, p.phase, p.ip or "<none>",
                                     p.node or "<none>"] for p in self.pods], gap="   "))
        return text_report(self._headline(), body, self.notes, self._simulated_note())

    def _repr_html_(self) -> str:
        body = []
        if self.nodes:
            body.append(html_table(["NAME", "STATUS", "ROLES", "INTERNAL-IP", "POD-CIDR",
                                    "MESSAGE"],
                                   [[n.name, n.status, ",".join(n.roles), n.ip, n.pod_cidr,
                                     n.message] for n in self.nodes]))
        if self.pods:
            body.append(html_table(["NAMESPACE", "NAME", "STATUS", "IP", "NODE"],
                                   [[p.namespace, p.name, p.phase, p.ip, p.node]
                                    for p in self.pods]))
        return html_report(self._headline(), body, self.notes, self._simulated_note())

    def _simulated_note(self) -> str:
        return SIMULATED_NOTE if self.simulated else ""


class Backend(ABC):
    """One cluster, real (kind) or simulated (sim). Input is already validated by the Lab."""

    name: str = ""
    simulated: bool = False

    def __init__(self, stage: Stage) -> None:
        self.stage = stage

    # -- operations with one half per backend (recipes, add-ons) ------------------------
    @abstractmethod
    def dispatch(self, *, sim: Callable[[SimBackend], T], kind: Callable[[KindBackend], T]) -> T:
        """Run the half of an operation written for this backend, typed to it.

        A recipe writes ``backend.dispatch(sim=self.install_sim, kind=self.install_kind)``:
        each half gets the concrete backend it serves, and nothing outside
        ``labkit.backends`` looks at a backend's name.
        """

    # -- lifecycle ---------------------------------------------------------------------
    @abstractmethod
    def exists(self) -> bool: ...

    def transaction(self) -> AbstractContextManager[None]:
        """Several changes as one: nobody else changes the cluster meanwhile (sim: the state
        file's lock; kind: the API server orders writes itself, so nothing to hold)."""
        return nullcontext()

    @abstractmethod
    def up(self, progress: Progress | None = None) -> None:
        """Create the cluster, or reuse it when it exists (idempotent)."""

    @abstractmethod
    def down(self) -> None: ...

    # -- what is in the cluster ----------------------------------------------------------
    @abstractmethod
    def node_rows(self) -> list[NodeRow]: ...

    @abstractmethod
    def pod_rows(self, namespace: str | None = None) -> list[PodRow]: ...

    @abstractmethod
    def installed_cni(self) -> str | None: ...

    @abstractmethod
    def state(self) -> ClusterState:
        """Everything the policy engine needs: namespaces, running pods, services, policies."""

    def nodes(self) -> list[Node]:
        return [row.node() for row in self.node_rows()]

    def pods(self, namespace: str | None = None) -> list[Pod]:
        state = self.state()
        return sorted((p for p in state.pods.values()
                       if namespace is None or p.namespace == namespace), key=lambda p: p.key)

    # -- changing it -----------------------------------------------------------------------
    @abstractmethod
    def apply(self, docs: Sequence[dict[str, Any]], objects: Sequence[Any]) -> list[str]:
        """Apply validated manifests (``docs``) whose parsed form is ``objects``."""

    @abstractmethod
    def delete(self, docs: Sequence[dict[str, Any]], objects: Sequence[Any]) -> list[str]: ...

    @abstractmethod
    def annotated(self, key: str, kinds: Sequence[tuple[str, str]]
                  ) -> list[tuple[dict[str, Any], str]]:
        """(stub, value) for every object of ``kinds`` that carries annotation ``key``; a stub
        (apiVersion, kind, metadata name and namespace) is enough to delete the object."""

    @abstractmethod
    def wait_ready(self, *, nodes: bool = True, namespaces: Sequence[str] = (),
                   timeout: float = 300, progress: Progress | None = None) -> None:
        """Wait for every node to be Ready and the rollouts in ``namespaces`` to finish."""

    # -- traffic ---------------------------------------------------------------------------
    @abstractmethod
    def observe(self, traffic: Sequence[Traffic], expected: dict[Traffic, bool]
                ) -> dict[Traffic, Observation]:
        """What the data plane does with each connection (``expected`` guides retries)."""

    def observe_matrix(self, expected: ConnectivityMatrix) -> ConnectivityMatrix:
        """``expected`` with every cell observed; here, one probe per cell (``observe``)."""
        grid = expected.grid
        traffic = [grid.traffic(k) for k in grid.cell_keys()]
        wanted = {t: grid.allowed(t.source, t.destination, t.port, t.protocol) for t in traffic}
        observed = self.observe(traffic, wanted)
        return expected.with_observed(
            {(t.source, t.destination, t.port, t.protocol): o for t, o in observed.items()})

    @abstractmethod
    def exec(self, pod: str, argv: Sequence[str], *, container: str = "",
             timeout: float = 60) -> Result: ...

    @abstractmethod
    def hubble_flows(self, last: int | None = None) -> FlowLog:
        """The last ``last`` flows Hubble recorded (all it holds when None); the Lab calls it
        only on a cluster that runs Cilium."""

    @abstractmethod
    def capture(self, spec: CaptureSpec, generate: Callable[[], Cell]) -> Capture:
        """Packets seen on a node while ``generate()`` makes traffic (labkit.capture)."""
