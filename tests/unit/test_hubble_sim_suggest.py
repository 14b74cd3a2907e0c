"""Simulated Hubble flows (labkit.hubble.emit) and policies suggested from flows.

The emitter's output must be valid against Cilium's GetFlowsResponse schema, read back by the
parser into the documented fields, and deterministic; ``policy suggest`` is proven by the engine:
with the suggested policies applied, every observed connection is still allowed and every other
pair of pods is denied.
"""

from __future__ import annotations

import json
from itertools import product
from pathlib import Path
from typing import Any

import pytest

from labkit.errors import LabkitError
from labkit.hubble.emit import Emitter
from labkit.hubble.log import parse_flows
from labkit.hubble.schema import validate
from labkit.hubble.suggest import suggest
from labkit.hubble.writers import compact_line, jsonpb_line
from labkit.model import Denial, HttpRequest, Traffic
from labkit.policy import Engine, build_state, parse_text
from labkit.policy.cilium.identity import IdentityAllocator, identity_labels
from labkit.policy.state import add_policy
from tests.manifests import manifest, namespace, pod

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hubble"

SHOP = manifest(
    namespace("web"), namespace("api"), namespace("kube-system"),
    pod("web", "frontend-1", {"app": "frontend", "pod-template-hash": "7d9f"},
        ip="10.244.1.10", node="kind-worker"),
    pod("api", "api-1", {"app": "api"}, ip="10.244.2.20", node="kind-worker2",
        ports={"http": 8080}),
    pod("api", "api-2", {"app": "api"}, ip="10.244.1.21", node="kind-worker",
        ports={"http": 8080}),
    pod("api", "db-1", {"app": "db"}, ip="10.244.2.30", node="kind-worker2",
        ports={"pg": 5432}),
    pod("kube-system", "coredns-1", {"k8s-app": "kube-dns"}, ip="10.244.0.3",
        node="kind-control-plane", ports={"dns": "53/UDP"}),
)
L7_POLICY = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: api-l7, namespace: api}
spec:
  endpointSelector: {matchLabels: {app: api}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: frontend, k8s:io.kubernetes.pod.namespace: web}}]
    toPorts:
    - ports: [{port: "8080", protocol: TCP}]
      rules: {http: [{method: GET, path: "/healthz"}]}
"""


def _state(*extra: str) -> Any:
    state = build_state(parse_text(SHOP))
    for text in extra:
        for obj in parse_text(text):
            add_policy(state, obj)
    return state


def _emit(state: Any, traffic: list[Traffic], **kw: Any) -> list[dict[str, Any]]:
    engine = Engine(state, "cilium")
    emitter = Emitter(engine, IdentityAllocator().for_pods(state))
    out: list[dict[str, Any]] = []
    for seq, t in enumerate(traffic):
        out += emitter.probe(engine.evaluate(t), seq, **kw)
    return out


GET = HttpRequest("GET", "/healthz", "api.api.svc.cluster.local")
ADMIN = HttpRequest("GET", "/admin", "api.api.svc.cluster.local")
TRAFFIC = [Traffic("web/frontend-1", "api/api-1", 8080, http=GET),
           Traffic("web/frontend-1", "api/api-1", 8080, http=ADMIN),
           Traffic("api/db-1", "api/api-2", 8080),
           Traffic("web/frontend-1", "api/db-1", 5432)]


def test_identities_are_cilium_like_stable_and_shared_by_replicas() -> None:
    state = _state()
    ids = IdentityAllocator().for_pods(state)
    assert ids["api/api-1"] == ids["api/api-2"]  # same labels, same identity
    assert len({ids["api/api-1"], ids["api/db-1"], ids["web/frontend-1"]}) == 3
    assert all(256 <= n <= 65535 for n in ids.values())
    assert IdentityAllocator().for_pods(_state()) == ids  # deterministic across runs
    labels = identity_labels(state.pods["web/frontend-1"], state)
    assert labels == ("k8s:app=frontend",
                      "k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=web",
                      "k8s:io.cilium.k8s.policy.cluster=default",
                      "k8s:io.cilium.k8s.policy.serviceaccount=default",
                      "k8s:io.kubernetes.pod.namespace=web")  # pod-template-hash filtered out


def test_emitted_lines_are_valid_getflowsresponses_and_parse_back() -> None:
    lines = [jsonpb_line(parse_flows([json.dumps(r)]).flows[0]) for r in
             _emit(_state(L7_POLICY, "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n"
                          "metadata: {name: db, namespace: api}\nspec:\n"
                          "  endpointSelector: {matchLabels: {app: db}}\n  ingress:\n"
                          "  - fromEndpoints: [{matchLabels: {app: api}}]\n"),
                   [*TRAFFIC, Traffic("api/api-1", "api/db-1", 5432)], dns_proxy=True)]
    assert lines
    for line in lines:
        assert validate(json.loads(line)) == []
    flows = parse_flows(lines).flows
    compact = [compact_line(f) for f in flows]
    # DNS through the proxy, then the allowed request and its 200
    assert any(" dns-request proxy FORWARDED (DNS Query api.api.svc.cluster.local. A)" in c
               for c in compact)
    ok = [f for f in flows if f.http and f.http.url and f.http.url.endswith("/healthz")]
    assert [(f.l7.type, f.verdict, f.http.code) for f in ok if f.l7 and f.http] == [
        ("REQUEST", "FORWARDED", None), ("RESPONSE", "FORWARDED", 200)]
    # /admin: the proxy drops the request and answers 403
    admin = [f for f in flows if f.http and f.http.url and f.http.url.endswith("/admin")]
    assert [(f.verdict, f.http.code) for f in admin if f.http] == [("DROPPED", None),
                                                                   ("FORWARDED", 403)]
    # frontend -> db is dropped by db's ingress policy, the SYN retransmitted once
    drops = [c for c in compact if "Policy denied DROPPED" in c and "<> api/db-1:5432" in c]
    assert len(drops) == 2 and all(c.endswith("(TCP Flags: SYN)") for c in drops)
    verdicts = [f for f in flows if f.record.get("event_type") == {"type": 5}]
    assert {(f.verdict, f.traffic_direction, f.drop_reason) for f in verdicts} == {
        ("DROPPED", "INGRESS", "POLICY_DENIED")}
    assert any("policy-verdict:none INGRESS DENIED" in c for c in compact)
    # allowed L3/L4: the handshake seen at the destination, the reply flipped
    assert any(c.endswith("to-endpoint FORWARDED (TCP Flags: SYN, ACK)") and " <- " in c
               for c in compact)
    assert _emit(_state(L7_POLICY), TRAFFIC) == _emit(_state(L7_POLICY), TRAFFIC)


def test_egress_denials_are_reported_at_the_source() -> None:
    deny_egress = ("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
                   "metadata: {name: no-egress, namespace: web}\n"
                   "spec: {podSelector: {}, policyTypes: [Egress]}\n")
    flows = parse_flows([json.dumps(r) for r in _emit(
        _state(deny_egress), [Traffic("web/frontend-1", "api/api-1", 8080, http=GET)])]).flows
    assert {(f.verdict, f.traffic_direction, f.node_name) for f in flows} == {
        ("DROPPED", "EGRESS", "kind-worker")}
    # the name's lookup is dropped first: default-deny egress without a DNS rule breaks DNS
    assert [(f.l4.protocol, f.l4.destination_port, f.destination.pod_name) for f in flows] == [
        ("UDP", 53, "coredns-1")] * 2 + [("TCP", 8080, "api-1")] * 4


def _observed(state: Any) -> set[tuple[str, str, int]]:
    engine = Engine(state, "cilium")
    return {(t.source, t.destination, t.port) for t in TRAFFIC if engine.evaluate(t).allowed}


@pytest.mark.parametrize("dialect", ["cilium", "kubernetes"])
def test_suggested_policies_allow_exactly_the_observed_flows(dialect: str) -> None:
    before = _state(L7_POLICY)
    flows = parse_flows([json.dumps(r) for r in _emit(before, TRAFFIC)]).flows
    observed = _observed(before)
    assert observed == {("web/frontend-1", "api/api-1", 8080), ("web/frontend-1", "api/db-1", 5432)}
    result = suggest(flows, dialect)
    text = result.to_yaml()
    after = _state(text)  # the suggestion parses as the API server would accept it
    engine = Engine(after, "cilium")
    pods = [p for p in after.pods if not p.startswith("kube-system/")]
    for src, dst, port in product(pods, pods, (8080, 5432)):
        if src == dst:
            continue
        allowed = engine.evaluate(Traffic(src, dst, port)).allowed
        same_workload = any((src, d, port) in observed for d in pods
                            if after.pods[d].labels == after.pods[dst].labels)
        assert allowed == same_workload, (src, dst, port)
    if dialect == "cilium":  # only the observed request; another path gets Envoy's 403
        ok = engine.evaluate(Traffic("web/frontend-1", "api/api-2", 8080, http=GET))
        other = engine.evaluate(Traffic("web/frontend-1", "api/api-2", 8080, http=ADMIN))
        assert ok.allowed and (other.allowed, other.denial) == (False, Denial.HTTP_403)
        assert "path: /healthz" in text
    else:
        assert any("no L7 rules" in n for n in result.notes)
    assert not any("no DNS lookup" in n for n in result.notes)  # the probes used names
    plain = suggest(parse_flows([json.dumps(r) for r in _emit(
        before, [Traffic("web/frontend-1", "api/db-1", 5432)])]).flows, dialect)
    assert any("no DNS lookup was observed" in n for n in plain.notes)
    assert plain.to_yaml().startswith("# no DNS lookup was observed")


def test_suggest_refuses_flows_it_cannot_learn_from() -> None:
    from labkit.hubble.log import read_flows

    masked = (FIXTURES / "exporter_json_dropped_kind_fieldmask.jsonl")
    with pytest.raises(LabkitError, match="no forwarded pod-to-pod flows"):
        suggest(read_flows(masked).flows)
    with pytest.raises(LabkitError, match="unknown dialect"):
        suggest([], "calico")


def test_engine_says_where_a_drop_happens_and_when_the_proxy_is_in_the_path() -> None:
    from labkit.policy.ir import Direction

    deny_egress = ("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
                   "metadata: {name: no-egress, namespace: api}\n"
                   "spec: {podSelector: {matchLabels: {app: db}}, policyTypes: [Egress]}\n")
    engine = Engine(_state(L7_POLICY, deny_egress), "cilium")
    front_api = Traffic("web/frontend-1", "api/api-1", 8080)
    assert engine.denied_in(front_api) is None and engine.proxied(front_api)
    assert engine.denied_in(Traffic("api/db-1", "api/api-1", 8080)) is Direction.EGRESS
    assert engine.denied_in(Traffic("api/api-2", "api/api-1", 8080)) is Direction.INGRESS
    assert not engine.proxied(Traffic("api/api-1", "api/db-1", 5432))
    assert not engine.proxied(Traffic("api/api-1", "api/api-1", 8080))  # to itself
    assert _emit(_state(), [Traffic("api/api-1", "api/api-1", 8080)]) == []  # loopback
    # a plain TCP probe to the L7 port: its SYN goes to the proxy, no HTTP flows follow
    flows = parse_flows([json.dumps(r) for r in _emit(_state(L7_POLICY), [front_api])]).flows
    assert {f.record.get("trace_observation_point") for f in flows} == {"TO_PROXY",
                                                                        "TO_OVERLAY"}
    assert all(f.l7 is None for f in flows)


def test_identity_labels_match_a_real_kind_capture() -> None:
    """The ratings pod of tests/fixtures/hubble/jsonpb_l3l4_udp_first3of400.jsonl: Hubble
    listed exactly these labels for it (pod-template-hash filtered out)."""
    from labkit.hubble.log import read_flows
    from labkit.model import ClusterState, Namespace, Pod

    path = (FIXTURES / "jsonpb_l3l4_udp_first3of400.jsonl")
    real = read_flows(path).flows[0].source.labels
    pod = Pod("bookinfo", "ratings-v1-b6994bb9-jgqxb",
              {"app": "ratings", "version": "v1", "pod-template-hash": "b6994bb9",
               "sidecar.opentelemetry.io/injected": "bookinfo.otelcol-bookinfo"},
              service_account="bookinfo-ratings")
    state = ClusterState(namespaces={"bookinfo": Namespace("bookinfo")},
                         pods={pod.key: pod})
    assert identity_labels(pod, state, cluster="kind-kind") == real


PODS = ["web/frontend-1", "api/api-1", "api/api-2", "api/db-1", "kube-system/coredns-1",
        "ip:10.244.9.9"]


def test_every_emitted_line_is_valid_whatever_the_probe() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    deny_egress = ("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
                   "metadata: {name: no-egress, namespace: api}\n"
                   "spec: {podSelector: {matchLabels: {app: db}}, policyTypes: [Egress]}\n")
    state = _state(L7_POLICY, deny_egress)
    requests = st.none() | st.builds(HttpRequest, st.sampled_from(["GET", "POST", "PUT"]),
                                     st.sampled_from(["/healthz", "/admin", "/a?b=<&>"]),
                                     st.sampled_from(["", "api.api", "10.244.2.20"]))
    traffic = st.builds(Traffic, st.sampled_from(PODS[:5]), st.sampled_from(PODS),
                        st.sampled_from([8080, 5432, 53]), st.sampled_from(["TCP", "UDP"]),
                        requests)

    @settings(max_examples=60, deadline=None)
    @given(st.lists(traffic, min_size=1, max_size=4), st.booleans())
    def check(probes: list[Traffic], dns_proxy: bool) -> None:
        probes = [t if t.protocol == "TCP" else Traffic(t.source, t.destination, t.port, "UDP")
                  for t in probes]
        for record in _emit(state, probes, dns_proxy=dns_proxy):
            assert validate(record) == []
            (flow,) = parse_flows([json.dumps(record)]).flows
            assert jsonpb_line(flow) == json.dumps(record, separators=(",", ":"),
                                                   ensure_ascii=False).replace(
                "<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            assert compact_line(flow)

    check()


def _shapes(lines: list[str]) -> list[tuple[str, str]]:
    """(arrow, "TYPE VERDICT (SUMMARY)") of compact lines: what remains once the addresses,
    names, identities and times are taken out."""
    import re

    line_re = re.compile(r"^\w{3} [ \d]\d \d\d:\d\d:\d\d\.\d{3}: \S+ \([^)]*\) (->|<-|<>) "
                         r"\S+ \([^)]*\) (.*)$")
    out = []
    for line in lines:
        match = line_re.match(line)
        assert match, line
        out.append((match[1], match[2]))
    return out


def test_simulated_flows_have_the_shape_of_a_real_kind_capture() -> None:
    """compact_kind_pod_tcp_flows_policy_denied_cilium_quickstart.txt (Cilium 1.14.5 on kind):
    a cross-node TCP handshake seen at the server's node, then a connection dropped by an
    ingress policy, SYN retransmitted a second later."""
    real = (FIXTURES / "compact_kind_pod_tcp_flows_policy_denied_cilium_quickstart.txt"
            ).read_text(encoding="utf-8").splitlines()
    deny_db = ("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
               "metadata: {name: db, namespace: api}\n"
               "spec: {podSelector: {matchLabels: {app: db}}, policyTypes: [Ingress]}\n")
    state = _state(deny_db)
    handshake = _emit(state, [Traffic("web/frontend-1", "api/api-1", 8080)])  # other node
    dropped = _emit(state, [Traffic("web/frontend-1", "api/db-1", 5432)])
    compact = [compact_line(f) for f in parse_flows([json.dumps(r) for r in
                                                      handshake + dropped]).flows]
    assert _shapes(compact) == _shapes(real[0:3] + real[16:20])
    other = (FIXTURES / "compact_policy_verdict_ingress_denied_issue30105.txt"
             ).read_text(encoding="utf-8").splitlines()
    assert _shapes(compact[3:5]) == _shapes(other[0:2])  # Cilium 1.14.6, another cluster
    # and the UDP lookup of a name (pr39860: to kube-dns, to-endpoint both ways)
    udp = (FIXTURES / "compact_policy_verdict_udp_dns_allowed_pr39860.txt"
           ).read_text(encoding="utf-8").splitlines()
    lookup = _emit(state, [Traffic("web/frontend-1", "api/api-1", 8080, http=GET)])[:2]
    assert _shapes([compact_line(f) for f in parse_flows([json.dumps(r) for r in lookup]).flows]
                   ) == _shapes(udp[1:3])  # the real capture's policy verdict line aside


@pytest.mark.parametrize("dialect", ["cilium", "kubernetes"])
def test_suggest_from_a_real_kind_capture(dialect: str) -> None:
    """bookinfo on kind (captures/otel_kind_tcp_l34_and_l7_http_selected.jsonl): the
    suggestion parses as the API server would take it, names are unique per namespace
    (reviews v1 and v2 are two identities), and the observed HTTP GETs become rules."""
    from labkit.hubble.log import read_flows
    from labkit.policy import served_kinds

    path = (FIXTURES / "captures"
            / "otel_kind_tcp_l34_and_l7_http_selected.jsonl")
    result = suggest(read_flows(path).flows, dialect)
    objects = parse_text(result.to_yaml(), "suggestion", served=served_kinds("cilium"))
    assert len(objects) == len(result.policies) >= 3
    keys = [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in result.policies]
    assert len(set(keys)) == len(keys)
    if dialect == "cilium":
        http = [r for p in result.policies for rule in p["spec"]["ingress"]
                for port in rule.get("toPorts", []) for r in port.get("rules", {}).get("http", [])]
        assert http and all(r["method"] == "GET" for r in http)
    assert any("left out" in n for n in result.notes)  # world, host and remote-node peers


def test_policy_names_stay_unique_when_apps_repeat() -> None:
    from labkit.hubble.suggest import _names

    a = ("ns", (("app", "reviews"), ("version", "v1")))
    b = ("ns", (("app", "reviews"), ("version", "v2")))
    c = ("other", (("app", "reviews"),))
    d = ("ns", (("app", "Reviews!"), ("version", "v1")))  # cleans to the same text as a
    names = _names([a, b, c, d])
    assert names[c] == "suggested-reviews"
    assert {names[a], names[b]} == {"suggested-reviews-v1", "suggested-reviews-v2"}
    assert names[d] == "suggested-reviews-v1-2"
