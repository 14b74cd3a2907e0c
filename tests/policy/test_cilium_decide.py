"""Cilium 1.20 semantics: isolation, deny precedence, NP interplay, entities, CIDRs, L7."""

from __future__ import annotations

import time

from labkit.model import ClusterState, Denial, HttpRequest, Namespace, Node, Pod, Traffic
from labkit.policy import Engine, build_state, parse_text
from labkit.policy.cilium.policies import decide
from labkit.policy.decision import DecideInput, has_bit
from labkit.policy.ir import Direction, Universe
from tests.manifests import manifest, namespace, pod

PODS = manifest(
    namespace("shop", {"team": "shop"}),
    namespace("ops", {"team": "ops"}),
    pod("shop", "web", {"app": "web"}, node="n1", ip="10.244.1.10", ports={"http": 8080}),
    pod("shop", "api", {"app": "api"}, node="n1", ip="10.244.1.11", ports={"http": 80}),
    pod("ops", "probe", {"app": "probe"}, node="n2", ip="10.244.2.10"),
    pod("ops", "agent-n1", {"app": "agent"}, node="n1", ip="172.18.0.2", host_network=True),
    pod("ops", "agent-n2", {"app": "agent"}, node="n2", ip="172.18.0.3", host_network=True),
)


def engine(policies: str, cni: str = "cilium") -> Engine:
    return Engine(build_state(parse_text(PODS + "\n---\n" + policies, "t.yaml")), cni)


def ok(e: Engine, src: str, dst: str, port: int = 80, proto: str = "TCP",
       http: HttpRequest | None = None) -> bool:
    return e.evaluate(Traffic(src, dst, port, proto, http)).allowed


def cnp(name: str, body: str, ns: str = "shop") -> str:
    return (f"apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n"
            f"metadata: {{name: {name}, namespace: {ns}}}\nspec:\n{body}\n---\n")


def test_empty_ingress_rule_selects_and_allows_nothing_unlike_networkpolicy() -> None:
    e = engine(cnp("deny", "  endpointSelector: {matchLabels: {app: api}}\n  ingress: [{}]"))
    assert not ok(e, "shop/web", "shop/api")
    assert not ok(e, "ip:203.0.113.5", "shop/api")
    assert ok(e, "shop/api", "shop/web")  # egress of api is not isolated


def test_ports_only_rule_admits_every_peer_world_included() -> None:
    e = engine(cnp("p", "  endpointSelector: {matchLabels: {app: api}}\n"
                        "  ingress: [{toPorts: [{ports: [{port: \"80\", protocol: TCP}]}]}]"))
    assert ok(e, "ip:203.0.113.5", "shop/api") and ok(e, "ops/probe", "shop/api")
    assert not ok(e, "shop/web", "shop/api", 81)
    assert not ok(e, "shop/web", "shop/api", 80, "UDP")


def test_selector_without_namespace_means_the_policy_namespace() -> None:
    e = engine(cnp("p", "  endpointSelector: {matchLabels: {app: api}}\n"
                        "  ingress: [{fromEndpoints: [{}]}]"))
    assert ok(e, "shop/web", "shop/api")
    assert not ok(e, "ops/probe", "shop/api")
    assert not ok(e, "ip:203.0.113.5", "shop/api")


def test_namespace_key_and_k8s_prefix_and_namespace_labels() -> None:
    e = engine(cnp("p", """  endpointSelector: {matchLabels: {app: api}}
  ingress:
  - fromEndpoints:
    - matchLabels: {k8s:io.kubernetes.pod.namespace: ops, k8s:app: probe}"""))
    assert ok(e, "ops/probe", "shop/api") and not ok(e, "shop/web", "shop/api")
    e = engine(cnp("p", """  endpointSelector: {matchLabels: {app: api}}
  ingress:
  - fromEndpoints: [{matchLabels: {io.cilium.k8s.namespace.labels.team: ops}}]"""))
    assert ok(e, "ops/probe", "shop/api") and not ok(e, "shop/web", "shop/api")


def test_clusterwide_empty_selector_is_every_pod_never_world() -> None:
    e = engine("""apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: pods-only}
spec:
  endpointSelector: {matchLabels: {app: api}}
  ingress: [{fromEndpoints: [{}]}]
""")
    assert ok(e, "ops/probe", "shop/api") and ok(e, "shop/web", "shop/api")
    assert not ok(e, "ip:203.0.113.5", "shop/api")
    assert not ok(e, "ops/agent-n2", "shop/api")  # a node is not a pod


def test_deny_beats_allow_from_any_kind_networkpolicy_included() -> None:
    e = engine("""apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-all, namespace: shop}
spec:
  podSelector: {}
  ingress: [{}]
---
""" + cnp("deny-ops", "  endpointSelector: {matchLabels: {app: api}}\n"
                      "  ingressDeny: [{fromEndpoints: [{matchLabels: "
                      "{io.kubernetes.pod.namespace: ops}}]}]"))
    v = e.evaluate(Traffic("ops/probe", "shop/api", 80))
    assert not v.allowed and v.denial is Denial.DROP
    assert any("denied by CiliumNetworkPolicy shop/deny-ops" in r for r in v.reasons)
    assert ok(e, "shop/web", "shop/api")


def test_deny_only_policy_isolates_but_relaxed_policy_does_not() -> None:
    deny = cnp("deny-world", "  endpointSelector: {}\n  ingressDeny: [{fromEntities: [world]}]")
    e = engine(deny)
    assert not ok(e, "shop/web", "shop/api")  # isolated, nothing allows it
    relaxed = cnp("deny-world", "  endpointSelector: {}\n  enableDefaultDeny: {ingress: false}\n"
                                "  ingressDeny: [{fromEntities: [world]}]")
    e = engine(relaxed)
    assert ok(e, "shop/web", "shop/api")
    assert not ok(e, "ip:203.0.113.5", "shop/api")  # its deny still applies


def test_relaxed_allows_still_count_once_another_policy_isolates() -> None:
    relaxed = cnp("dns", "  endpointSelector: {}\n  enableDefaultDeny: {ingress: false}\n"
                         "  ingress: [{fromEndpoints: [{matchLabels: {app: web}}]}]")
    iso = cnp("iso", "  endpointSelector: {matchLabels: {app: api}}\n  ingress: [{}]")
    e = engine(relaxed)
    assert ok(e, "ops/probe", "shop/api")
    e = engine(relaxed + iso)
    assert ok(e, "shop/web", "shop/api") and not ok(e, "ops/probe", "shop/api")


def test_networkpolicy_and_cilium_allows_add_up() -> None:
    e = engine("""apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-web, namespace: shop}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}]}]
---
""" + cnp("from-world", "  endpointSelector: {matchLabels: {app: api}}\n"
                        "  ingress: [{fromEntities: [world]}]"))
    assert ok(e, "shop/web", "shop/api") and ok(e, "ip:203.0.113.5", "shop/api")
    assert not ok(e, "ops/probe", "shop/api")


def test_ipblock_never_matches_pod_addresses_on_cilium() -> None:
    np = """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-block, namespace: shop}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress: [{from: [{ipBlock: {cidr: 10.244.0.0/16}}, {ipBlock: {cidr: 198.51.100.0/24}}]}]
"""
    assert ok(engine(np, "kindnet"), "shop/web", "shop/api")  # Kubernetes: pod IPs count
    e = engine(np)
    v = e.evaluate(Traffic("shop/web", "shop/api", 80))
    assert not v.allowed and any("does not match pod IPs" in r for r in v.reasons)
    assert ok(e, "ip:198.51.100.7", "shop/api")


def test_cidr_rules_match_world_only_with_excepts() -> None:
    e = engine(cnp("out", """  endpointSelector: {matchLabels: {app: web}}
  egress:
  - toCIDRSet: [{cidr: 10.0.0.0/8, except: [10.96.0.0/12]}]
  - toCIDR: [20.1.1.1/32]"""))
    assert ok(e, "shop/web", "ip:10.1.2.3") and ok(e, "shop/web", "ip:20.1.1.1")
    assert not ok(e, "shop/web", "ip:10.96.0.10")
    assert not ok(e, "shop/web", "shop/api")  # 10.244.1.11 is in 10/8 but is a pod


def test_entities_world_cluster_host_remote_node() -> None:
    def ingress(entity: str) -> Engine:
        return engine(cnp("e", "  endpointSelector: {matchLabels: {app: api}}\n"
                               f"  ingress: [{{fromEntities: [{entity}]}}]"))

    e = ingress("world")
    assert ok(e, "ip:203.0.113.5", "shop/api") and not ok(e, "shop/web", "shop/api")
    e = ingress("cluster")
    assert ok(e, "shop/web", "shop/api") and ok(e, "ops/agent-n2", "shop/api")
    assert not ok(e, "ip:203.0.113.5", "shop/api")
    e = ingress("remote-node")
    assert ok(e, "ops/agent-n2", "shop/api") and not ok(e, "shop/web", "shop/api")
    e = ingress("all")
    assert ok(e, "ip:203.0.113.5", "shop/api") and ok(e, "ops/probe", "shop/api")


def test_local_node_is_always_let_in_but_a_deny_still_wins() -> None:
    e = engine(cnp("iso", "  endpointSelector: {matchLabels: {app: api}}\n  ingress: [{}]"))
    v = e.evaluate(Traffic("ops/agent-n1", "shop/api", 80))
    assert v.allowed and any("allow-localhost" in r for r in v.reasons)
    assert not ok(e, "ops/agent-n2", "shop/api")  # a remote node is not
    e = engine(cnp("deny", "  endpointSelector: {matchLabels: {app: api}}\n"
                           "  ingressDeny: [{fromEntities: [host]}]"))
    assert not ok(e, "ops/agent-n1", "shop/api")


def test_named_ports_and_protocol_any() -> None:
    e = engine(cnp("named", "  endpointSelector: {matchLabels: {app: web}}\n"
                            "  egress: [{toPorts: [{ports: [{port: http}]}]}]"))
    assert ok(e, "shop/web", "shop/api", 80)  # api's "http" is 80
    assert not ok(e, "shop/web", "shop/api", 8080)
    e = engine(cnp("any", "  endpointSelector: {matchLabels: {app: api}}\n"
                          "  ingress: [{toPorts: [{ports: [{port: \"53\", protocol: ANY}]}]}]"))
    assert ok(e, "shop/web", "shop/api", 53, "UDP") and ok(e, "shop/web", "shop/api", 53)


def test_sctp_is_not_enforceable_on_an_isolated_endpoint() -> None:
    e = engine(cnp("sctp", "  endpointSelector: {matchLabels: {app: api}}\n"
                           "  ingress: [{toPorts: [{ports: [{port: \"80\", protocol: SCTP}]}]}]"))
    v = e.evaluate(Traffic("shop/web", "shop/api", 80, "SCTP"))
    assert not v.allowed and any("SCTP" in r for r in v.reasons)
    assert ok(e, "shop/api", "shop/web", 80, "SCTP")  # web is not isolated


def test_l4_only_rule_overrides_l7_for_the_same_peer_and_port() -> None:
    l7 = cnp("l7", """  endpointSelector: {matchLabels: {app: api}}
  ingress:
  - fromEndpoints: [{}]
    toPorts: [{ports: [{port: "80", protocol: TCP}], rules: {http: [{method: GET}]}}]""")
    l4 = cnp("l4", """  endpointSelector: {matchLabels: {app: api}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: web}}]
    toPorts: [{ports: [{port: "80", protocol: TCP}]}]""")
    e = engine(l7 + l4, "cilium")
    delete = HttpRequest("DELETE", "/x")
    assert ok(e, "shop/web", "shop/api", http=delete)  # L4-only rule covers web
    e2 = engine(l7)
    v = e2.evaluate(Traffic("shop/web", "shop/api", 80, "TCP", delete))
    assert not v.allowed and v.denial is Denial.HTTP_403


def test_l7_rules_from_two_policies_are_alternatives() -> None:
    a = cnp("a", """  endpointSelector: {matchLabels: {app: api}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: web}}]
    toPorts: [{ports: [{port: "80"}], rules: {http: [{method: GET, path: /a}]}}]""")
    b = cnp("b", """  endpointSelector: {matchLabels: {app: api}}
  ingress:
  - fromEndpoints: [{}]
    toPorts: [{ports: [{port: "80"}], rules: {http: [{method: PUT, path: /b/.*}]}}]""")
    e = engine(a + b)
    assert ok(e, "shop/web", "shop/api", http=HttpRequest("GET", "/a"))
    assert ok(e, "shop/web", "shop/api", http=HttpRequest("PUT", "/b/1"))
    assert not ok(e, "shop/web", "shop/api", http=HttpRequest("GET", "/b/1"))
    # the GET /a rule is for web only: probe gets only the PUT alternative
    assert not ok(e, "ops/probe", "shop/api", http=HttpRequest("GET", "/a"))
    dec = e.decision(e.u.by_key["shop/api"], Direction.INGRESS, 80, "TCP")
    alts = dec.l7(e.u.by_key["shop/web"])
    assert alts is not None and len(alts) == 2


def test_l7_applies_even_when_default_deny_is_off() -> None:
    e = engine(cnp("visible", """  endpointSelector: {matchLabels: {app: api}}
  enableDefaultDeny: {ingress: false}
  ingress:
  - fromEndpoints: [{matchLabels: {app: web}}]
    toPorts: [{ports: [{port: "80"}], rules: {http: [{method: GET}]}}]"""))
    assert not ok(e, "shop/web", "shop/api", http=HttpRequest("POST", "/"))
    assert ok(e, "ops/probe", "shop/api", http=HttpRequest("POST", "/"))


def test_clustermesh_selectors_default_to_the_local_cluster() -> None:
    state = ClusterState(name="cluster1", namespaces={"default": Namespace("default")})
    for name, cluster, ip in (("x-wing", "cluster1", "10.0.0.5"),
                              ("rebel-base", "cluster1", "10.0.0.6"),
                              ("rebel-base-c2", "cluster2", "10.2.0.6")):
        state.pods[f"default/{name}"] = Pod("default", name, {"name": name.split("-c2")[0]},
                                            ip=ip, cluster=cluster)
    state.nodes["n1"] = Node("n1", "172.18.0.2")
    local_pol = parse_text(cnp("local", "  endpointSelector: {matchLabels: {name: x-wing}}\n"
                                        "  egress: [{toEndpoints: [{matchLabels: "
                                        "{name: rebel-base}}]}]", "default"))[0]
    remote_pol = parse_text(cnp("remote", "  endpointSelector: {matchLabels: {name: x-wing}}\n"
                                          "  egress: [{toEndpoints: [{matchLabels: {name: "
                                          "rebel-base, io.cilium.k8s.policy.cluster: "
                                          "cluster2}}]}]", "default"))[0]
    u = Universe(state)
    xw = u.endpoints[u.by_key["default/x-wing"]]
    local, remote = u.by_key["default/rebel-base"], u.by_key["default/rebel-base-c2"]

    def allowed(policy: object) -> int:
        return decide(DecideInput(u, state, xw, Direction.EGRESS, 80, "TCP",
                                  [policy])).allowed  # type: ignore[list-item]

    bits = allowed(local_pol)
    assert has_bit(bits, local) and not has_bit(bits, remote)
    bits = allowed(remote_pol)
    assert has_bit(bits, remote) and not has_bit(bits, local)
    cluster = parse_text(cnp("c", "  endpointSelector: {}\n  egress: [{toEntities: [cluster]}]",
                             "default"))[0]
    bits = allowed(cluster)
    assert has_bit(bits, local) and not has_bit(bits, remote)
    assert has_bit(bits, u.by_key["node:n1"])


def test_reasons_name_the_rule_or_the_missing_one() -> None:
    e = engine(cnp("p", "  endpointSelector: {matchLabels: {app: api}}\n"
                        "  ingress: [{fromEndpoints: [{matchLabels: {app: web}}]}]"))
    yes = " ".join(e.evaluate(Traffic("shop/web", "shop/api", 80)).reasons)
    assert "allowed by CiliumNetworkPolicy shop/p ingress rule 1" in yes
    no = " ".join(e.evaluate(Traffic("ops/probe", "shop/api", 80)).reasons)
    assert "isolated by CiliumNetworkPolicy shop/p" in no and "no rule admits ops/probe" in no


def test_many_pods_and_policies_stay_fast() -> None:
    docs = []
    for i in range(300):
        docs.append(f"apiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}, namespace: ns{i % 10}, "
                    f"labels: {{app: a{i % 30}, tier: t{i % 3}}}}}\n"
                    "spec: {containers: [{name: c, image: x}]}\n")
    for i in range(150):
        docs.append(cnp(f"pol{i}", f"  endpointSelector: {{matchLabels: {{app: a{i % 30}}}}}\n"
                                   f"  ingress: [{{fromEndpoints: [{{matchLabels: "
                                   f"{{tier: t{i % 3}}}}}], toPorts: [{{ports: "
                                   f"[{{port: \"80\"}}]}}]}}]\n  egressDeny: [{{toEntities: "
                                   f"[world]}}]", f"ns{i % 10}"))
    e = Engine(build_state(parse_text("\n---\n".join(docs))), "cilium")
    pods = sorted(e.state.pods)
    start = time.perf_counter()
    grid = e.reachability(pods, pods, 80)
    assert time.perf_counter() - start < 5
    assert 0 < grid.allowed_count() < len(pods) ** 2
    src, dst = pods[0], pods[13]
    assert grid[(src, dst)] == e.evaluate(Traffic(src, dst, 80)).allowed
