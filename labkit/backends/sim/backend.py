"""The sim backend: the stage's cluster in memory, probes answered by the policy engine.

Observed = ``Engine(state, cni=<installed CNI>)``: only what that CNI enforces
(Flannel: nothing). Every observation is labelled simulated. A cluster outlives
the process, as a kind cluster does: it is saved to ``$LABKIT_HOME/sim/<cluster>.json``
after every change (:mod:`.store`, :mod:`.snapshot`) and loaded by the next
process that asks for it. Within a process, clusters are kept in a registry
keyed by cluster name, checked against their file on every access so that a
change made by another process (``labkit down``) is seen.
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import warnings
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit import cnis
from labkit.backends.base import Backend, NodeRow, PodRow, T
from labkit.backends.sim import capture as sim_capture
from labkit.backends.sim import snapshot, store
from labkit.backends.sim.cluster import CniRecord, SimCluster
from labkit.backends.sim.ipam import NodeRangeIpam
from labkit.environments import Stage
from labkit.errors import BackendUnsupported, ClusterError, LabkitError
from labkit.hubble.emit import Emitter
from labkit.hubble.log import FlowLog, parse_flows
from labkit.hubble.writers import response_line
from labkit.matrix import Observation, Observed
from labkit.model import (
    ClusterState,
    Denial,
    Deployment,
    Namespace,
    Pod,
    Secret,
    Service,
    Traffic,
    Verdict,
)
from labkit.policy import Engine, served_kinds
from labkit.policy.cilium.identity import IdentityAllocator
from labkit.policy.kinds import parse_one
from labkit.policy.state import add_policies, identity
from labkit.tools.process import Result

if TYPE_CHECKING:
    from labkit.backends.kind.backend import KindBackend
    from labkit.capture import Capture, CaptureSpec
    from labkit.matrix import Cell, ConnectivityMatrix
    from labkit.progress import Progress

#: Every simulated cluster this process has created or loaded, by cluster name.
CLUSTERS: dict[str, SimCluster] = {}


@dataclass(frozen=True)
class Saved:
    """The state file as this process last wrote or read it."""

    path: Path
    text: str
    signature: store.Signature


class SimBackend(Backend):
    name = "sim"
    simulated = True

    def __init__(self, stage: Stage) -> None:
        super().__init__(stage)

    # -- lifecycle ---------------------------------------------------------------------
    @property
    def state_file(self) -> Path:
        """Where this cluster is saved between processes."""
        return store.path_for(self.stage.cluster_name)

    @property
    def cluster(self) -> SimCluster:
        found = current(self.stage)
        if found is None:
            raise ClusterError(f"the (simulated) cluster '{self.stage.cluster_name}' "
                               "does not exist", hint="create it with lab.up()")
        return found

    def dispatch(self, *, sim: Callable[[SimBackend], T], kind: Callable[[KindBackend], T]) -> T:
        return sim(self)

    def exists(self) -> bool:
        """Whether the cluster is there: a state file (not read: it may be corrupt, and
        ``down`` must still work), or a cluster built in this process and never saved."""
        found = CLUSTERS.get(self.stage.cluster_name)
        if found is not None and found.saved is None:
            return True
        return store.signature(self.state_file) is not None

    def transaction(self) -> AbstractContextManager[None]:
        return store.locked(self.stage.cluster_name)

    def up(self, progress: Progress | None = None) -> None:
        with self.transaction():
            self._up()
        if progress is not None:
            progress.update(f"{len(self.stage.node_names())} nodes (simulated)", force=True)

    def _up(self) -> None:
        if current(self.stage) is None:
            store.flows_path_for(self.stage.cluster_name).unlink(missing_ok=True)  # stale
            cluster = SimCluster.create(self.stage)
            _register(cluster)
            with cluster.batch():  # saved once, at the end
                if not self.stage.default_cni_disabled:
                    # kind installs kindnetd unless disableDefaultCNI is set (kind docs).
                    self.install_kindnet()

    def install_kindnet(self) -> None:
        """What kind does at creation unless the config disables it: kindnetd, host-local
        over each node's podCIDR (labkit.cni.kindnet)."""
        cluster = self.cluster
        cluster.install_cni(CniRecord("kindnet", NodeRangeIpam(cluster.pod_cidrs), "kube-system",
                                      "kindnet"))

    def down(self) -> None:
        """Forget the cluster and delete its file (without reading it: works on a corrupt one)."""
        with self.transaction():
            CLUSTERS.pop(self.stage.cluster_name, None)
            store.remove(self.stage.cluster_name)

    # -- views -------------------------------------------------------------------------
    def node_rows(self) -> list[NodeRow]:
        return [n.row() for n in self.cluster.nodes.values()]

    def pod_rows(self, namespace: str | None = None) -> list[PodRow]:
        rows = [sp.row() for sp in self.cluster.pods.values()
                if namespace is None or sp.pod.namespace == namespace]
        return sorted(rows, key=lambda r: (r.namespace, r.name))

    def installed_cni(self) -> str | None:
        if not self.exists():
            return None
        record = self.cluster.cni
        return record.name if record else None

    def state(self) -> ClusterState:
        return self.cluster.state()

    def served(self) -> set[tuple[str, str]]:
        cni = self.installed_cni()
        return set(served_kinds(cni)) | self.cluster.extra_served

    # -- changes -----------------------------------------------------------------------
    def apply(self, docs: Sequence[dict[str, Any]], objects: Sequence[Any]) -> list[str]:
        with self.transaction():  # read (the latest file), modify, write: nobody in between
            c = self.cluster
            with c.batch():  # saved once, at the end
                return self._apply(c, docs, objects)

    def _apply(self, c: SimCluster, docs: Sequence[dict[str, Any]], objects: Sequence[Any]
               ) -> list[str]:
        manifests = _policy_manifests(docs)
        policies = []
        done = []
        for obj in objects:  # one at a time, like kubectl: the first refusal stops the rest
            ns = getattr(obj, "namespace", "")
            if ns and not isinstance(obj, Namespace) and ns not in c.namespaces:
                # NamespaceLifecycle admission: no object in a namespace that does not exist
                # (k8s.io/apiserver admission/plugin/namespace/lifecycle), answered NotFound.
                raise ClusterError(f'applying {_ref(obj)}: namespaces "{ns}" not found '
                                   "[simulated]",
                                   hint="create the namespace first (a Namespace earlier in "
                                   "the same file is created first)")
            if isinstance(obj, Namespace):
                c.namespaces[obj.name] = obj
            elif isinstance(obj, Deployment):
                c.apply_deployment(obj)
            elif isinstance(obj, Pod):
                c.apply_pod(obj)
            elif isinstance(obj, Service):
                c.apply_service(obj)
            elif isinstance(obj, Secret):
                c.secrets[f"{obj.namespace}/{obj.name}"] = obj
            else:
                policies.append(obj)
                doc = manifests.get(identity(obj))
                if doc is not None:
                    c.policy_docs[identity(obj)] = doc
            done.append(_ref(obj))
        _add_policies(c, policies)
        c.reconcile()
        return done

    def delete(self, docs: Sequence[dict[str, Any]], objects: Sequence[Any]) -> list[str]:
        with self.transaction():
            c = self.cluster
            with c.batch():  # saved once, at the end
                return self._delete(c, docs, objects)

    def _delete(self, c: SimCluster, docs: Sequence[dict[str, Any]], objects: Sequence[Any]
               ) -> list[str]:
        done = []
        for obj in objects:
            found = False
            if isinstance(obj, Namespace):
                _check_deletable(c, obj.name)
                found = c.namespaces.pop(obj.name, None) is not None
                for dkey in [k for k in c.deployments if k.startswith(f"{obj.name}/")]:
                    c.delete_deployment(dkey)
                for pkey in [k for k in c.pods if k.startswith(f"{obj.name}/")]:
                    c.delete_pod(pkey)
                for skey in [k for k in c.services if k.startswith(f"{obj.name}/")]:
                    del c.services[skey]
                c.policies[:] = [p for p in c.policies
                                 if getattr(p, "namespace", "") != obj.name]
            elif isinstance(obj, Deployment):
                found = c.delete_deployment(obj.key)
            elif isinstance(obj, Pod):
                found = c.delete_pod(obj.key)
            elif isinstance(obj, Service):
                found = c.services.pop(obj.key, None) is not None
            elif isinstance(obj, Secret):
                found = c.secrets.pop(f"{obj.namespace}/{obj.name}", None) is not None
            else:
                before = len(c.policies)
                c.policies[:] = [p for p in c.policies if identity(p) != identity(obj)]
                found = len(c.policies) != before
            if found:
                done.append(_ref(obj))
        kept = {identity(p) for p in c.policies}
        c.policy_docs = {k: d for k, d in c.policy_docs.items() if k in kept}
        c.reconcile()
        return done

    def annotated(self, key: str, kinds: Sequence[tuple[str, str]]
                  ) -> list[tuple[dict[str, Any], str]]:
        c = self.cluster
        wanted = set(kinds)
        out = []
        for doc in c.policy_docs.values():
            value = ((doc.get("metadata") or {}).get("annotations") or {}).get(key)
            if value is not None and (doc.get("apiVersion"), doc.get("kind")) in wanted:
                out.append((copy.deepcopy(doc), value))
        if ("v1", "Service") in wanted:
            for svc in c.services.values():
                if key in svc.annotations:
                    out.append(({"apiVersion": "v1", "kind": "Service",
                                 "metadata": {"name": svc.name, "namespace": svc.namespace},
                                 "spec": {"ports": [{"port": p.port, "protocol": p.protocol}
                                                    for p in svc.ports]}},
                                svc.annotations[key]))
        return out

    def wait_ready(self, *, nodes: bool = True, namespaces: Sequence[str] = (),
                   timeout: float = 300, progress: Progress | None = None) -> None:
        """Nothing to wait for in memory; but a wait that could never end fails the same way."""
        c = self.cluster
        if nodes and not all(n.ready for n in c.nodes.values()):
            raise ClusterError(
                "nodes are NotReady: the container runtime network is not ready "
                "(no CNI installed) [simulated]", hint="install a CNI: lab.install_cni(...)")
        pending = [sp.pod.key for sp in c.pods.values()
                   if sp.pod.namespace in namespaces and sp.phase != "Running"]
        if pending:
            raise ClusterError(f"pods still Pending: {', '.join(pending)} [simulated]",
                               hint="install a CNI so the pods can be scheduled")
        if progress is not None:
            progress.update("all Ready (simulated)", force=True)

    # -- traffic -----------------------------------------------------------------------
    def observe(self, traffic: Sequence[Traffic], expected: dict[Traffic, bool]
                ) -> dict[Traffic, Observation]:
        engine, state = self._observer()
        cut = self.cluster.no_network
        out = {t: _observation(engine, state, cut, t) for t in traffic}
        self._hubble(engine, state, traffic)
        return out

    def observe_matrix(self, expected: ConnectivityMatrix) -> ConnectivityMatrix:
        """Every cell at once, from the installed CNI's grid: what ``observe`` gives per cell,
        in bitset time; each cell's observation (its reasons) is built when read."""
        engine, state = self._observer()
        cut = self.cluster.no_network
        want = expected.grid
        grid = engine.grid(want.sources, want.destinations, want.ports, http=want.http)
        broken_columns = _positions(want.destinations, cut)
        full = (1 << len(want.destinations)) - 1
        for (port, protocol), layers in grid.layers.items():
            closed = _positions(want.destinations, [
                d for d in want.destinations if _refused(state, Traffic(d, d, port, protocol))])
            for i, src in enumerate(want.sources):
                own = _positions(want.destinations, [src])
                # no route at all, whatever the policies say (a pod still reaches itself)
                broken = (full if src in cut else broken_columns) & ~own
                allowed = layers.allowed[i] & ~broken
                layers.refused[i] = allowed & closed
                layers.allowed[i] = allowed & ~closed
                layers.forbidden[i] &= ~broken

        def lookup(key: tuple[str, str, int, str]) -> Observation:
            return _observation(engine, state, cut, want.traffic(key))

        self._hubble(engine, state, [want.traffic(k) for k in want.cell_keys()])
        return expected.with_observed(Observed(grid.layers, lookup, simulated=True))

    def _hubble(self, engine: Engine, state: ClusterState, traffic: Sequence[Traffic]) -> None:
        """Where the CNI runs Hubble, the flows of the connections that reached the policy
        engine (not cut off, not refused: the RST is not modelled), as Hubble records them.
        Each needs an explained verdict: a matrix on such a cluster costs one per cell."""
        if engine.cni is None or not cnis.CNIS[engine.cni].hubble:
            return
        cut = self.cluster.no_network
        judged: list[Verdict] = []
        for t in traffic:
            if t.source != t.destination and (cut.get(t.source) or cut.get(t.destination)):
                continue
            verdict = engine.evaluate(t)
            if not (verdict.allowed and _refused(state, t)):
                judged.append(verdict)
        self._record_flows(engine, judged)

    def _observer(self) -> tuple[Engine, ClusterState]:
        cni = self.installed_cni()
        if cni is None:
            raise ClusterError("no CNI is installed: pods have no network [simulated]",
                               hint="install a CNI first: lab.install_cni('flannel')")
        state = self.state()
        return Engine(state, cni=cni), state

    def _record_flows(self, engine: Engine, verdicts: Sequence[Verdict]) -> None:
        """Hubble's view of the probes just answered (labkit.hubble.emit), kept with the
        cluster like an agent's flow buffer: the last ``FLOW_BUFFER`` flows."""
        c = self.cluster
        allocator = IdentityAllocator.from_dict(c.identities)
        owners = {key: (owner.partition("/")[2], owner.partition(" ")[0])
                  for key, owner in ((k, sp.owner) for k, sp in c.pods.items()) if owner}
        emitter = Emitter(engine, allocator.for_pods(engine.state), owners)
        dns_proxy = _has_dns_rules(c.policy_docs.values())
        lines: list[str] = []
        with c.batch():
            for verdict in verdicts:
                lines += map(response_line, emitter.probe(verdict, c.probes,
                                                          dns_proxy=dns_proxy))
                c.probes += 1
            c.identities = allocator.as_dict()
        path = store.flows_path_for(c.stage.cluster_name)
        store.append_lines(path, lines)
        if c.probes // 256 != (c.probes - len(verdicts)) // 256:  # now and then: trim
            kept = store.read_lines(path)
            if len(kept) > 2 * FLOW_BUFFER:
                store.write(path, "".join(line + "\n" for line in kept[-FLOW_BUFFER:]))

    def hubble_flows(self, last: int | None = None) -> FlowLog:
        path = store.flows_path_for(self.cluster.stage.cluster_name)
        lines = store.read_lines(path)[-FLOW_BUFFER:]
        log = parse_flows(lines[-last:] if last else lines, source=str(path))
        return FlowLog(log.flows, log.skipped, simulated=True)

    def capture(self, spec: CaptureSpec, generate: Callable[[], Cell]) -> Capture:
        return sim_capture.capture(self, spec, generate)

    def exec(self, pod: str, argv: Sequence[str], *, container: str = "",
             timeout: float = 60) -> Result:
        sp = self.cluster.pods.get(pod)
        if sp is None:
            raise ClusterError(f"no pod {pod} [simulated]", hint="lab.pods() lists them")
        if list(argv) == ["hostname"]:
            return Result(tuple(argv), 0, sp.pod.name + "\n", "")
        raise BackendUnsupported(
            f"the sim backend cannot run {' '.join(argv)!r} inside a pod",
            hint="exec needs a real cluster (backend='kind'); probes work on sim: lab.probe()")


#: Namespaces the API server refuses to delete: NamespaceLifecycle's immortal namespaces
#: (k8s.io/apiserver/pkg/admission/plugin/namespace/lifecycle/admission.go, Register).
IMMORTAL_NAMESPACES = ("default", "kube-system", "kube-public")


def _check_deletable(c: SimCluster, name: str) -> None:
    if name in IMMORTAL_NAMESPACES:
        raise ClusterError(f'deleting Namespace {name}: namespaces "{name}" is forbidden: this '
                           "namespace may not be deleted [simulated]",
                           hint="the API server protects default, kube-system and kube-public")
    profile = cnis.CNIS.get(c.cni.name) if c.cni is not None else None
    if profile is not None and name in profile.operator_namespaces:
        raise ClusterError(f"deleting Namespace {name}: {profile.name}'s operator keeps it while "
                           f"{profile.name} is installed (a finalizer holds it: the namespace "
                           "would stay Terminating) [simulated]", hint=profile.uninstall)


#: Hubble keeps this many flows per node by default (hubble-event-buffer-capacity 4095).
FLOW_BUFFER = 4095


def _has_dns_rules(docs: Any) -> bool:
    """Whether a policy sends DNS through Cilium's DNS proxy (``toPorts[].rules.dns``)."""
    def walk(value: Any) -> bool:
        if isinstance(value, dict):
            rules = value.get("rules")
            if isinstance(rules, dict) and rules.get("dns"):
                return True
            return any(walk(v) for v in value.values())
        return isinstance(value, list) and any(walk(v) for v in value)

    return any(walk(doc.get("spec")) or walk(doc.get("specs")) for doc in docs)


def _add_policies(cluster: SimCluster, objects: Sequence[Any]) -> None:
    shim = ClusterState(policies=cluster.policies)
    add_policies(shim, objects)
    cluster.policies = shim.policies


def _ref(obj: Any) -> str:
    ref = getattr(obj, "ref", None)
    if isinstance(ref, str):
        return ref
    ns = getattr(obj, "namespace", "")
    return f"{type(obj).__name__} {ns + '/' if ns else ''}{obj.name}"


def _observation(engine: Engine, state: ClusterState, cut: dict[str, str], t: Traffic
                 ) -> Observation:
    """What one connection meets on the simulated data plane: no route (a pod cut off), a
    refusal (nothing listens), or what the installed CNI's policy engine says."""
    broken = "" if t.source == t.destination else cut.get(t.source) or cut.get(t.destination)
    if broken:
        return Observation(False, Denial.DROP, broken + " [simulated]", 1, True)
    verdict = engine.evaluate(t)
    refused = _refused(state, t) if verdict.allowed else ""
    if refused:
        return Observation(False, None, refused, 1, True)
    return Observation.from_verdict(verdict, simulated=True)


def _positions(items: Sequence[str], wanted: Iterable[str]) -> int:
    """The bitset of the positions in ``items`` that hold one of ``wanted``."""
    chosen = set(wanted)
    out = 0
    for j, item in enumerate(items):
        if item in chosen:
            out |= 1 << j
    return out


def _refused(state: ClusterState, t: Traffic) -> str:
    """A TCP connection to a port nothing listens on is refused (curl exit 7), whatever the
    policy says. Pods that declare no ports are assumed to listen everywhere."""
    pod = state.pods.get(t.destination)
    if pod is None or not pod.ports or pod.host_network:
        return ""
    if any(p.port == t.port and p.protocol == t.protocol for p in pod.ports):
        return ""
    return (f"connection refused: {t.destination} declares no {t.protocol} port {t.port} "
            "(nothing listens there) [simulated]")


def _policy_manifests(docs: Sequence[dict[str, Any]]) -> dict[tuple[str, str, str], Any]:
    """The manifest behind each policy in ``docs`` (already validated by the Lab), by identity:
    policies are saved as what was applied and parsed again on load."""
    model = (Namespace, Deployment, Pod, Service, Secret)
    return {identity(obj): copy.deepcopy(doc) for doc in docs
            for obj in parse_one(doc, "<applied>")
            if not isinstance(obj, model)}


# -- persistence ------------------------------------------------------------------------------

def current(stage: Stage) -> SimCluster | None:
    """The stage's cluster as it is now: this process's copy while its file is the one this
    process last wrote or read; loaded again when another process changed the file; None
    when there is no file (never created, ``labkit down`` elsewhere, or another LABKIT_HOME)."""
    name = stage.cluster_name
    path = store.path_for(name)
    sig = store.signature(path)
    found = CLUSTERS.get(name)
    if found is not None:
        saved: Saved | None = found.saved
        if saved is None or (saved.path == path and saved.signature == sig):
            return found  # saved is None: never persisted (built by hand): keep it
        CLUSTERS.pop(name, None)
    if sig is None:
        return None
    cluster = _load(stage, path)
    if cluster is not None:
        _register(cluster)
    return cluster


def _load(stage: Stage, path: Path) -> SimCluster | None:
    try:
        data, text, sig = store.read(path)
        cluster, policies = snapshot.load(data, str(path))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError,
            LabkitError) as exc:
        why = exc.message if isinstance(exc, LabkitError) else f"{type(exc).__name__}: {exc}"
        where = "" if why.startswith(str(path)) else f" from {path}"
        raise ClusterError(
            f"cannot read the simulated cluster '{stage.cluster_name}'{where}: {why}",
            hint=f"start over: `labkit down {stage.name} --backend sim` (or delete {path}), "
            "then lab.up()") from exc
    _add_policies(cluster, [obj for obj, _ in policies])
    for obj, doc in policies:
        cluster.policy_docs[identity(obj)] = doc
    cluster.saved = Saved(path, text, sig)
    return cluster


def _register(cluster: SimCluster) -> None:
    cluster.on_change = save
    CLUSTERS[cluster.stage.cluster_name] = cluster


def save(cluster: SimCluster) -> None:
    """Write the cluster to its state file if it changed (atomically; see store.write)."""
    docs: list[dict[str, Any]] = []
    for policy in cluster.policies:
        doc = cluster.policy_docs.get(identity(policy))
        if doc is None:
            warnings.warn(f"policy {identity(policy)} has no manifest: it is not saved with the "
                          "simulated cluster", stacklevel=2)
        elif not any(d is doc for d in docs):
            docs.append(doc)
    data = snapshot.dump(cluster, docs)
    path = store.path_for(cluster.stage.cluster_name)
    text = store.dumps(data)
    saved: Saved | None = cluster.saved
    if saved is not None and saved.path == path and saved.text == text \
            and saved.signature == store.signature(path):
        return
    cluster.saved = Saved(path, text, store.write(path, text))


@atexit.register
def _flush() -> None:
    """Save edits made without a change notice (a recipe writing the cluster's dicts directly),
    unless another process changed the file meanwhile."""
    for cluster in list(CLUSTERS.values()):
        saved: Saved | None = cluster.saved
        if saved is None or store.signature(saved.path) != saved.signature:
            continue
        with contextlib.suppress(Exception), store.locked(cluster.stage.cluster_name):
            if store.signature(saved.path) == saved.signature:  # never fail the exit
                save(cluster)
