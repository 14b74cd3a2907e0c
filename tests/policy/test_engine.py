"""Engine behaviour that every CNI shares: capabilities, errors, L7 outcomes, fast path."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from labkit.errors import ManifestError, UnknownKindError
from labkit.model import ClusterState, Denial, HttpRequest, Traffic
from labkit.policy import Engine, build_state, parse_text, served_kinds
from labkit.policy.decision import DecideInput, Decision
from labkit.policy.ir import AnyEndpoint, Direction, Policy, Rule
from labkit.policy.selectors import EVERYTHING, PodsInNamespace
from tests.manifests import manifest, namespace, pod

SHOP = manifest(
    namespace("shop", {"team": "shop"}),
    pod("shop", "frontend", {"app": "frontend"}),
    pod("shop", "api", {"app": "api"}, ports={"http": 8080}),
    pod("shop", "db", {"app": "db"}),
)

ONLY_FRONTEND = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api-from-frontend, namespace: shop}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: frontend}}}]
    ports: [{port: http}]
"""


def engine(cni: str | None, extra: str = ONLY_FRONTEND) -> Engine:
    return Engine(build_state(parse_text(SHOP + "\n---\n" + extra)), cni)


def test_flannel_allows_what_kindnet_denies() -> None:
    t = Traffic("shop/db", "shop/api", 8080)
    denied = engine("kindnet").evaluate(t)
    assert (denied.allowed, denied.denial) == (False, Denial.DROP)
    assert any("api-from-frontend" in r for r in denied.reasons)
    ignored = engine("flannel").evaluate(t)
    assert ignored.allowed and ignored.denial is None
    assert "flannel does not enforce network policy; 1 applied policies have no effect" \
        in ignored.reasons


def test_expected_side_uses_what_policies_mean() -> None:
    assert not engine(None).evaluate(Traffic("shop/db", "shop/api", 8080)).allowed
    assert engine(None).evaluate(Traffic("shop/frontend", "shop/api", 8080)).allowed


def test_named_port_resolves_on_destination_and_other_ports_stay_closed() -> None:
    e = engine("kindnet")
    assert e.evaluate(Traffic("shop/frontend", "shop/api", 8080)).allowed
    assert not e.evaluate(Traffic("shop/frontend", "shop/api", 80)).allowed
    assert not e.evaluate(Traffic("shop/frontend", "shop/api", 8080, "UDP")).allowed


def test_unknown_named_port_is_a_warning_not_an_error() -> None:
    e = engine("kindnet", ONLY_FRONTEND.replace("port: http", "port: grpc"))
    v = e.evaluate(Traffic("shop/frontend", "shop/api", 8080))
    assert not v.allowed
    assert any("no pod has a port named 'grpc'" in w for w in v.warnings)


def test_loopback_is_never_blocked() -> None:
    deny_all = ONLY_FRONTEND.replace(
        "  ingress:\n  - from: [{podSelector: {matchLabels: {app: frontend}}}]\n"
        "    ports: [{port: http}]\n", "  policyTypes: [Ingress, Egress]\n")
    v = engine("kindnet", deny_all).evaluate(Traffic("shop/api", "shop/api", 8080))
    assert v.allowed


def test_external_address_is_world_and_pod_address_resolves_to_the_pod() -> None:
    e = engine("kindnet")
    api_ip = e.state.pods["shop/frontend"].ip
    assert e.evaluate(Traffic(f"ip:{api_ip}", "shop/api", 8080)).allowed  # it *is* frontend
    assert not e.evaluate(Traffic("ip:203.0.113.9", "shop/api", 8080)).allowed


def test_unknown_pod_and_bad_endpoint_name_the_field() -> None:
    e = engine("kindnet")
    with pytest.raises(ManifestError, match="no pod shop/nope") as exc:
        e.evaluate(Traffic("shop/nope", "shop/api", 80))
    assert exc.value.field == "from"
    with pytest.raises(ManifestError, match="neither 'namespace/pod' nor 'ip:ADDRESS'"):
        e.evaluate(Traffic("shop", "shop/api", 80))


def test_crd_the_cni_lacks_is_refused_like_the_api_server() -> None:
    cnp = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: x, namespace: shop}
spec: {endpointSelector: {}}
"""
    with pytest.raises(UnknownKindError, match='no matches for kind "CiliumNetworkPolicy"') as e:
        parse_text(cnp, "cnp.yaml", served=served_kinds("flannel"))
    assert "cilium" in e.value.hint and e.value.source == "cnp.yaml"


def test_unknown_cni_is_an_error_with_the_choices() -> None:
    with pytest.raises(ManifestError, match="unknown CNI 'weave'") as exc:
        Engine(ClusterState(), "weave")
    assert "flannel" in exc.value.hint


@dataclass(frozen=True)
class PathIs:
    path: str

    def matches(self, request: HttpRequest, state: ClusterState) -> bool:
        return request.path == self.path

    def describe(self) -> str:
        return f"path {self.path}"


def test_l7_denial_is_403_and_l4_denial_is_drop(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine's two failure modes, driven through a stand-in semantics."""
    import labkit.policy.kubernetes as k8s

    def decide(inp: DecideInput) -> Decision:
        dec = k8s.decide(inp)
        if inp.direction is Direction.INGRESS and inp.local.key == "shop/api":
            return Decision(dec.allowed, dec.reasons, lambda i: (PathIs("/healthz"),))
        return dec

    monkeypatch.setattr("labkit.policy.engine._semantics", lambda name: decide)
    e = engine("kindnet")
    ok = e.evaluate(Traffic("shop/frontend", "shop/api", 8080, http=HttpRequest("GET",
                                                                               "/healthz")))
    assert ok.allowed
    forbidden = e.evaluate(Traffic("shop/frontend", "shop/api", 8080,
                                   http=HttpRequest("GET", "/admin")))
    assert (forbidden.allowed, forbidden.denial) == (False, Denial.HTTP_403)
    assert "403 Access denied" in forbidden.reasons[-1]
    dropped = e.evaluate(Traffic("shop/db", "shop/api", 8080, http=HttpRequest("GET", "/")))
    assert dropped.denial is Denial.DROP


def test_policy_reapplied_under_same_name_replaces_it() -> None:
    allow_db = ONLY_FRONTEND.replace("app: frontend", "app: db")
    state = build_state(parse_text(SHOP + "\n---\n" + ONLY_FRONTEND + "\n---\n" + allow_db))
    assert len(state.policies) == 1
    e = Engine(state, "kindnet")
    assert e.evaluate(Traffic("shop/db", "shop/api", 8080)).allowed
    assert not e.evaluate(Traffic("shop/frontend", "shop/api", 8080)).allowed


def test_reachability_matches_evaluate_for_subsets_in_any_order() -> None:
    e = engine("kindnet")
    pods = sorted(e.state.pods)
    srcs, dsts = pods[::-1], [pods[1], "ip:198.51.100.7", pods[0]]
    grid = e.reachability(srcs, dsts, 8080)
    for s in srcs:
        for d in dsts:
            assert grid[(s, d)] == e.evaluate(Traffic(s, d, 8080)).allowed, (s, d)


def test_policy_selecting_nothing_changes_nothing() -> None:
    base = engine("kindnet")
    state = build_state(parse_text(SHOP + "\n---\n" + ONLY_FRONTEND))
    state.policies.append(Policy("NetworkPolicy", "nobody", "shop",
                                 PodsInNamespace("other", EVERYTHING),
                                 ingress=(), egress=(Rule("x", peer=AnyEndpoint()),)))
    other = Engine(state, "kindnet")
    pods = sorted(state.pods)
    assert base.reachability(pods, pods, 8080) == other.reachability(pods, pods, 8080)


def test_nodes_and_clustermesh_pods_come_from_manifests() -> None:
    objs = parse_text("""
apiVersion: v1
kind: Node
metadata:
  name: lab-control-plane
  labels: {node-role.kubernetes.io/control-plane: ""}
spec: {podCIDR: 10.244.0.0/24}
status:
  addresses: [{type: Hostname, address: lab-control-plane}, {type: InternalIP, address: 172.18.0.2}]
  conditions: [{type: Ready, status: "True"}]
---
apiVersion: v1
kind: Pod
metadata: {name: remote, namespace: x, labels: {io.cilium.k8s.policy.cluster: cluster2}}
""")
    state = build_state(objs)
    node = state.nodes["lab-control-plane"]
    assert (node.ip, node.pod_cidr, node.ready, node.roles) == (
        "172.18.0.2", "10.244.0.0/24", True, ("control-plane",))
    assert state.pods["x/remote"].cluster == "cluster2"
    # a node address is a host endpoint, not the world
    assert Engine(state, "kindnet").u.by_key["ip:172.18.0.2"] == \
        Engine(state, "kindnet").u.by_key["node:lab-control-plane"]


def test_add_policies_replaces_in_place_and_keeps_the_last_of_a_batch() -> None:
    from labkit.model import ClusterState
    from labkit.policy.state import add_policies

    a, b, c = (parse_text(ONLY_FRONTEND.replace("name: api-from-frontend", f"name: {n}"))[0]
               for n in ("a", "b", "c"))
    b2 = parse_text(ONLY_FRONTEND.replace("name: api-from-frontend", "name: b")
                    .replace("app: frontend", "app: db"))[0]
    state = ClusterState()
    add_policies(state, [a, b, c])
    add_policies(state, [b2, a, b2])
    assert [p.name for p in state.policies] == ["a", "b", "c"]
    assert state.policies[1] is b2
