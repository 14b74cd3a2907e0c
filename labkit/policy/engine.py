"""The policy engine: verdicts with reasons for any traffic, and fast reachability grids.

``Engine(state, cni)`` judges traffic the way the named CNI would:

- ``flannel`` enforces no policy at all (applying one succeeds and does nothing);
- ``kindnet`` enforces Kubernetes NetworkPolicy (kind >= v0.24);
- ``calico`` enforces NetworkPolicy and projectcalico.org/v3 policies;
- ``cilium`` enforces NetworkPolicy and cilium.io/v2 policies, HTTP rules included;
- ``None`` is the *expected* side: what the applied policies mean, as if
  enforced by a CNI that supports every kind present.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from labkit import cnis
from labkit.errors import ManifestError
from labkit.model import (
    ClusterState,
    Denial,
    HttpRequest,
    Traffic,
    Verdict,
    parse_endpoint,
    split_cluster,
)
from labkit.policy import kubernetes
from labkit.policy.calico import tiers as calico
from labkit.policy.cilium import decide as cilium
from labkit.policy.decision import DecideInput, Decision, Semantics, has_bit
from labkit.policy.grid import Grid, Layers
from labkit.policy.ir import (
    Direction,
    EndpointKind,
    HttpMatcher,
    Policy,
    Universe,
    iter_bits,
)
from labkit.policy.kinds import KINDS

#: CNIs the engine can judge as (rows of labkit.cnis).
CNIS = tuple(cnis.CNIS)

#: Each policy flavour's combination rules (the ``semantics`` of a CNI row).
SEMANTICS: dict[str, Semantics] = {"kubernetes": kubernetes.decide, "calico": calico.decide,
                                   "cilium": cilium.decide}

#: Policy kinds each CNI enforces.
ENFORCES: dict[str, frozenset[str]] = {name: p.enforces for name, p in cnis.CNIS.items()}

_CORE_APIS = {"v1", "apps/v1", "networking.k8s.io/v1"}


def served_kinds(cni: str | None) -> frozenset[tuple[str, str]]:
    """(apiVersion, kind) pairs a cluster running ``cni`` serves (CRDs come with the CNI)."""
    apis = set(_CORE_APIS)
    if cni in cnis.CNIS:
        apis.update(cnis.CNIS[cni].crd_apis)
    return frozenset(k for k in KINDS if k[0] in apis)


def enforced_kinds(cni: str | None) -> frozenset[str]:
    return ENFORCES[_check_cni(cni)] if cni is not None else cnis.all_policy_kinds()


def _check_cni(cni: str) -> str:
    if cni not in CNIS:
        raise ManifestError(f"unknown CNI {cni!r}", hint=f"use one of {', '.join(CNIS)}")
    return cni


def _semantics(name: str) -> Semantics:
    return SEMANTICS[name]


def reference_cni(policies: Iterable[Policy]) -> str:
    """The CNI whose semantics give a set of policies their meaning (the *expected* side)."""
    found = {p.kind for p in policies}
    calico, cilium = (bool(found & (cnis.CNIS[name].enforces - {cnis.NETWORK_POLICY}))
                      for name in ("calico", "cilium"))
    if calico and cilium:
        raise ManifestError(
            "Calico and Cilium policies cannot be enforced together",
            hint="a cluster runs one CNI; apply one flavour's policies at a time")
    return "calico" if calico else "cilium" if cilium else "kindnet"


@dataclass(frozen=True)
class Reachability:
    """A boolean grid over sources x destinations for one port: the engine's fast path."""

    sources: tuple[str, ...]
    destinations: tuple[str, ...]
    port: int
    protocol: str
    rows: tuple[int, ...]  # per source, a bitset over destination positions

    def __getitem__(self, pair: tuple[str, str]) -> bool:
        src, dst = pair
        return has_bit(self.rows[self.sources.index(src)], self.destinations.index(dst))

    @property
    def pairs(self) -> int:
        return len(self.sources) * len(self.destinations)

    def allowed_count(self) -> int:
        return sum(row.bit_count() for row in self.rows)

    def grid(self) -> list[list[bool]]:
        n = len(self.destinations)
        return [[has_bit(row, j) for j in range(n)] for row in self.rows]


class Engine:
    """Judge traffic in ``state`` as ``cni`` would (None: what the policies mean)."""

    def __init__(self, state: ClusterState, cni: str | None = None) -> None:
        self.state = state
        policies = [p for p in state.policies if isinstance(p, Policy)]
        if cni is None:
            self.cni = None
            self.semantics_name = reference_cni(policies)
        else:
            self.cni = _check_cni(cni)
            self.semantics_name = cni
        enforced = enforced_kinds(self.semantics_name)
        self.policies = [p for p in policies if p.kind in enforced]
        self.ignored = [p for p in policies if p.kind not in enforced]
        semantics = cnis.CNIS[self.semantics_name].semantics
        self._decide = _semantics(semantics) if semantics is not None else None
        self.u = Universe(state)
        self._by_endpoint: dict[int, list[Policy]] = {}
        self._decisions: dict[tuple[int, Direction, int, str], Decision] = {}
        self._built_for = -1
        self._warning_cache: tuple[str, ...] | None = None

    # -- internals ---------------------------------------------------------------------
    def _refresh(self) -> None:
        """(Re)compute which policies select which endpoint when the universe changed."""
        size = len(self.u.endpoints)
        if self._built_for == size:
            return
        self._by_endpoint = {}
        for policy in self.policies:
            for i in iter_bits(policy.selects.bits(self.u) & self.u.pod_bits):
                self._by_endpoint.setdefault(i, []).append(policy)
        self._decisions = {}
        self._built_for = size

    def _selecting(self, index: int) -> list[Policy]:
        return self._by_endpoint.get(index, [])

    def decision(self, index: int, direction: Direction, port: int, protocol: str) -> Decision:
        """How endpoint ``index``'s policies treat every remote for one direction and port."""
        self._refresh()
        key = (index, direction, port, protocol)
        found = self._decisions.get(key)
        if found is None:
            assert self._decide is not None
            local = self.u.endpoints[index]
            found = self._decide(DecideInput(self.u, self.state, local, direction, port,
                                             protocol, self._selecting(index)))
            self._decisions[key] = found
        return found

    def _index(self, text: str, field: str) -> int:
        try:
            kind, key = parse_endpoint(text)
        except ValueError as exc:
            raise ManifestError(str(exc), field=field,
                                hint="write 'namespace/pod' or 'ip:ADDRESS'") from exc
        if kind == "pod":
            cluster, key = split_cluster(key)
            if cluster and cluster != self.state.name:
                raise ManifestError(
                    f"{text} is in cluster {cluster}; this engine judges cluster "
                    f"{self.state.name}", field=field,
                    hint="judge each cluster's traffic with its own state (labkit does not "
                    "model ClusterMesh across clusters yet)")
            text = key
        if kind == "pod" and key not in self.u.by_key:
            known = ", ".join(sorted(self.state.pods)[:8])
            raise ManifestError(f"no pod {key} in the cluster", field=field,
                                hint=f"known pods: {known}" if known else "no pods were loaded")
        index = self.u.index(text)
        if len(self.u.endpoints) != self._built_for:
            self._refresh()
        return index

    def prepare(self, traffic: Iterable[Traffic]) -> None:
        """Add every external address up front, so cached selector results stay valid."""
        for t in traffic:
            for end in (t.source, t.destination):
                if end.startswith("ip:"):
                    self._index(end, "traffic")

    # -- public ------------------------------------------------------------------------
    def evaluate(self, traffic: Traffic) -> Verdict:
        src = self._index(traffic.source, "from")
        dst = self._index(traffic.destination, "to")
        warnings = self._warnings()
        if src == dst:
            return Verdict(traffic, True, None, (
                "traffic from a pod to itself is not subject to network policy",), warnings)
        if self._decide is None:
            ignored = f"; {len(self.ignored)} applied policies have no effect" if self.ignored \
                else ""
            return Verdict(traffic, True, None, (
                f"{self.cni} does not enforce network policy{ignored}",), warnings)

        reasons: list[str] = []
        l7: list[tuple[HttpMatcher, ...]] = []
        allowed = True
        for _, dec, remote in self._sides(traffic):
            reasons.extend(dec.reasons(remote))
            if not has_bit(dec.allowed, remote):
                allowed = False
            else:
                rules = dec.l7(remote)
                if rules is not None:
                    l7.append(rules)
        reasons.extend(f"not enforced by {self.cni}: {p.ref}" for p in self._ignored_for(src, dst))
        if not allowed:
            return Verdict(traffic, False, Denial.DROP, tuple(reasons), warnings)
        if l7:
            return self._judge_http(traffic, l7, reasons, warnings)
        return Verdict(traffic, True, None, tuple(reasons), warnings)

    def denied_in(self, traffic: Traffic) -> Direction | None:
        """The direction whose policies drop ``traffic``: egress is judged first, at the source,
        as the packet leaves it before it reaches the destination; None when neither drops it."""
        for direction, decision, remote in self._sides(traffic):
            if not has_bit(decision.allowed, remote):
                return direction
        return None

    def proxied(self, traffic: Traffic) -> bool:
        """Whether an HTTP rule applies to ``traffic`` on an allowed side: Cilium then sends the
        connection through its L7 proxy (and Hubble sees L7 flows)."""
        return any(has_bit(d.allowed, remote) and d.l7(remote) is not None
                   for _, d, remote in self._sides(traffic))

    def _sides(self, traffic: Traffic) -> list[tuple[Direction, Decision, int]]:
        """(direction, decision, remote) for each end that carries policy (pods only), egress
        first: the packet leaves the source before it reaches the destination."""
        src = self._index(traffic.source, "from")
        dst = self._index(traffic.destination, "to")
        if src == dst or self._decide is None:
            return []
        return [(direction, self.decision(local, direction, traffic.port, traffic.protocol),
                 remote)
                for local, remote, direction in ((src, dst, Direction.EGRESS),
                                                 (dst, src, Direction.INGRESS))
                if self.u.endpoints[local].kind is EndpointKind.POD]

    def _judge_http(self, traffic: Traffic, l7: list[tuple[HttpMatcher, ...]],
                    reasons: list[str], warnings: tuple[str, ...]) -> Verdict:
        request = traffic.http
        if request is None:
            reasons.append("HTTP rules apply on this port: the connection opens, and each "
                           "request is checked by the L7 proxy")
            return Verdict(traffic, True, None, tuple(reasons), warnings)
        for alternatives in l7:
            if not any(m.matches(request, self.state) for m in alternatives):
                allowed_text = "; ".join(m.describe() for m in alternatives)
                reasons.append(f"{_request_text(request)} matches no HTTP rule "
                               f"({allowed_text}): the proxy answers 403 Access denied")
                return Verdict(traffic, False, Denial.HTTP_403, tuple(reasons), warnings)
        reasons.append(f"{_request_text(request)} matches an HTTP rule")
        for alternatives in l7:
            for m in alternatives:
                rewrites = getattr(m, "rewrites", None)  # Cilium headerMatches mismatch actions
                if rewrites is not None and m.matches(request, self.state):
                    reasons.extend(f"the proxy {r}" for r in rewrites(request, self.state))
        return Verdict(traffic, True, None, tuple(reasons), warnings)

    def evaluate_all(self, traffic: Sequence[Traffic]) -> list[Verdict]:
        self.prepare(traffic)
        return [self.evaluate(t) for t in traffic]

    def reachability(self, sources: Sequence[str], destinations: Sequence[str],
                     port: int, protocol: str = "TCP") -> Reachability:
        """Allowed/denied for every (source, destination) at L3/L4, in bitset time."""
        src_idx = [self._index(s, "sources") for s in sources]
        dst_idx = [self._index(d, "destinations") for d in destinations]
        rows, _ = self._rows(src_idx, dst_idx, port, protocol)
        return Reachability(tuple(sources), tuple(destinations), port, protocol, tuple(rows))

    def grid(self, sources: Sequence[str], destinations: Sequence[str],
             ports: Iterable[tuple[int, str]] = ((80, "TCP"),), *,
             http: HttpRequest | None = None) -> Grid:
        """Every (source, destination, port)'s outcome in bitset time; reasons on demand.

        With ``http``, TCP cells whose traffic an HTTP filter checks are judged one by one
        (an L7 proxy answers 403 to a request no rule matches); every other cell is a bit.
        """
        src_idx = [self._index(s, "sources") for s in sources]
        dst_idx = [self._index(d, "destinations") for d in destinations]
        ports = tuple(ports)
        layers: dict[tuple[int, str], Layers] = {}
        full = (1 << len(dst_idx)) - 1
        for port, protocol in ports:
            rows, l7_cells = self._rows(src_idx, dst_idx, port, protocol)
            forbidden = [0] * len(rows)
            request = http if protocol == "TCP" else None
            if request is not None:
                for i, j in l7_cells:
                    verdict = self.evaluate(Traffic(sources[i], destinations[j], port,
                                                    protocol, request))
                    if verdict.denial is Denial.HTTP_403:
                        rows[i] &= ~(1 << j)
                        forbidden[i] |= 1 << j
            layers[(port, protocol)] = Layers(rows, forbidden, [0] * len(rows),
                                              [full] * len(rows))

        grid = Grid(tuple(sources), tuple(destinations), ports, layers,
                    lambda key: self.evaluate(grid.traffic(key)), http)
        return grid

    def _rows(self, src_idx: Sequence[int], dst_idx: Sequence[int], port: int, protocol: str
              ) -> tuple[list[int], list[tuple[int, int]]]:
        """Per source, the bitset of destination positions it reaches at L3/L4; and the
        allowed (row, column) cells an HTTP filter checks.

        Destinations that share an ingress outcome are grouped, so a source's row
        costs one bitset operation per distinct outcome, not one per destination.
        """
        full = (1 << len(dst_idx)) - 1
        if self._decide is None:
            return [full for _ in src_idx], []
        pods = self.u.pod_bits
        # Which destination positions admit a given source: group by ingress outcome.
        groups: dict[int, int] = {}
        l7_in: list[tuple[int, int]] = []  # (destination position, sources it filters)
        for j, d in enumerate(dst_idx):
            if has_bit(pods, d):
                dec = self.decision(d, Direction.INGRESS, port, protocol)
                admits = dec.allowed
                if dec.l7_bits:
                    l7_in.append((j, dec.l7_bits))
            else:
                admits = -1
            groups[admits] = groups.get(admits, 0) | (1 << j)
        to_position = _position_map(dst_idx)
        self_positions: dict[int, int] = {}
        for j, d in enumerate(dst_idx):
            self_positions[d] = self_positions.get(d, 0) | (1 << j)
        rows: list[int] = []
        l7_out: list[int] = []  # per source, destination positions its egress filters
        for s in src_idx:
            admitted = 0
            for admits, where in groups.items():
                if has_bit(admits, s):
                    admitted |= where
            egress_l7 = 0
            if has_bit(pods, s):
                dec = self.decision(s, Direction.EGRESS, port, protocol)
                egress = to_position(dec.allowed)
                if dec.l7_bits:
                    egress_l7 = to_position(dec.l7_bits)
            else:
                egress = full
            # a pod's traffic to itself is not subject to policy
            own = self_positions.get(s, 0)
            rows.append((admitted & egress) | own)
            l7_out.append(egress_l7 & ~own)
        for j, sources_bits in l7_in:
            for i, s in enumerate(src_idx):
                if has_bit(sources_bits, s):
                    l7_out[i] |= 1 << j
        l7_cells = [(i, j) for i, bits in enumerate(l7_out)
                    for j in iter_bits(bits & rows[i] & ~self_positions.get(src_idx[i], 0))]
        return rows, l7_cells

    def _ignored_for(self, src: int, dst: int) -> list[Policy]:
        out = []
        for p in self.ignored:
            bits = p.selects.bits(self.u)
            if has_bit(bits, src) or has_bit(bits, dst):
                out.append(p)
        return out

    def _warnings(self) -> tuple[str, ...]:
        if self._warning_cache is None:
            self._warning_cache = self._collect_warnings()
        return self._warning_cache

    def _collect_warnings(self) -> tuple[str, ...]:
        out: list[str] = []
        for p in self.policies:
            out.extend(p.warnings)
            for direction in (Direction.INGRESS, Direction.EGRESS):
                for rule in p.rules(direction) or ():
                    for spec in (*rule.ports, *rule.not_ports):
                        if spec.name and not any(
                                n == spec.name and (spec.protocol in (None, proto))
                                for n, proto in self.u.named_port_index):
                            out.append(f"{rule.origin}: no pod has a port named "
                                       f"{spec.name!r}, so this entry matches nothing")
        return tuple(dict.fromkeys(out))


def _position_map(indexes: Sequence[int]) -> Callable[[int], int]:
    """Turns a universe bitset into a bitset over ``indexes``' positions."""
    n = len(indexes)
    full = (1 << n) - 1
    if list(indexes) == list(range(n)):  # the common case: every pod, in universe order
        return lambda bits: bits & full
    where = {index: j for j, index in enumerate(indexes)}

    def convert(bits: int) -> int:
        if bits == -1:
            return full
        out = 0
        for i in iter_bits(bits):
            j = where.get(i)
            if j is not None:
                out |= 1 << j
        return out

    return convert


def _request_text(request: HttpRequest) -> str:
    return f"HTTP {request.method} {request.path}"

