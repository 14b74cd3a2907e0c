"""Calico v3 policies: parsing/validation errors and the tiered decision.

Semantics pinned here come from the Calico docs (Tier, Rule, EntityRule, Ports,
"Get started with policy tiers") and libcalico-go's validator and rule conversion.
"""

from __future__ import annotations

import time

import pytest

from labkit.errors import ManifestError
from labkit.model import ClusterState, Namespace, Pod, Traffic
from labkit.policy import Engine, build_state, parse_text
from labkit.policy.calico.policies import Tier
from labkit.policy.calico.tiers import policy_key
from labkit.policy.decision import DecideInput
from labkit.policy.ir import Action, Direction, Policy, Universe
from tests.manifests import manifest, namespace, pod

PODS = manifest(
    namespace("prod", {"env": "prod"}),
    namespace("dev", {"env": "dev"}),
    pod("prod", "db", {"role": "db"}, ip="10.0.0.1", ports={"pg": 5432, "dns": "53/UDP"},
        service_account="db-sa"),
    pod("prod", "fe", {"role": "fe"}, ip="10.0.0.2"),
    pod("prod", "other", {"role": "other"}, ip="10.0.0.3"),
    pod("dev", "fe", {"role": "fe"}, ip="10.0.1.2"),
    pod("dev", "db", {"role": "db"}, ip="10.0.1.1", ports={"pg": 6000}),
)


def engine(policies: str, cni: str | None = "calico") -> Engine:
    return Engine(build_state(parse_text(PODS + "\n---\n" + policies, "test.yaml")), cni)


def allowed(e: Engine, src: str, dst: str, port: int = 5432, proto: str = "TCP") -> bool:
    return e.evaluate(Traffic(src, dst, port, proto)).allowed


def parse_error(text: str) -> ManifestError:
    with pytest.raises(ManifestError) as err:
        parse_text(text, "bad.yaml")
    return err.value


def np(spec: str, name: str = "p", ns: str = "prod") -> str:
    return f"""apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {{name: {name}, namespace: {ns}}}
spec:
{spec}"""


def gnp(spec: str, name: str = "g") -> str:
    return f"""apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {{name: {name}}}
spec:
{spec}"""


# -- parsing ---------------------------------------------------------------------------------
def test_parses_network_policy_into_ir() -> None:
    [p] = parse_text(np("""  order: 100
  tier: security
  selector: role == 'db'
  ingress:
  - action: Allow
    protocol: TCP
    source: {selector: role == 'fe'}
    destination: {ports: [5432, '8000:8080', pg], notPorts: [8001]}
"""))
    assert isinstance(p, Policy)
    assert (p.kind, p.namespace, p.name, p.tier, p.order) == \
        ("Calico NetworkPolicy", "prod", "p", "security", 100.0)
    assert p.egress is None and p.ingress is not None
    rule = p.ingress[0]
    assert rule.action is Action.ALLOW and rule.local is None
    assert [(s.protocol, s.first, s.last, s.name) for s in rule.ports] == [
        ("TCP", 5432, 5432, None), ("TCP", 8000, 8080, None), ("TCP", None, None, "pg")]
    assert [(s.first, s.last) for s in rule.not_ports] == [(8001, 8001)]


@pytest.mark.parametrize(("ingress", "egress", "types"), [
    (False, False, (True, False)), (True, False, (True, False)),
    (False, True, (False, True)), (True, True, (True, True)),
])
def test_types_default_from_the_rules_present(ingress: bool, egress: bool,
                                              types: tuple[bool, bool]) -> None:
    spec = "  selector: all()\n"
    if ingress:
        spec += "  ingress: [{action: Allow}]\n"
    if egress:
        spec += "  egress: [{action: Allow}]\n"
    [p] = parse_text(np(spec))
    assert (p.ingress is not None, p.egress is not None) == types


def test_tier_parses_with_defaults() -> None:
    [t] = parse_text("apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: security}\n"
                     "spec: {order: 300}")
    assert t == Tier("security", 300.0, "Deny")
    [t] = parse_text("apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: devops}\n"
                     "spec: {defaultAction: Pass}")
    assert t.order is None and t.default_action == "Pass"


@pytest.mark.parametrize(("text", "field", "fragment"), [
    (np("  selector: role = 'db'"), "spec.selector", "expected '=='"),
    (np("  selector: {matchLabels: {a: b}}"), "spec.selector", "string expression"),
    (np("  ingress: [{action: Allow, source: {selector: \"a == 'x' &&\"}}]"),
     "spec.ingress[0].source.selector", "invalid selector"),
    (np("  ingress: [{action: Allow, destination: {notSelector: 'has(a'}}]"),
     "spec.ingress[0].destination.notSelector", "closing ')'"),
    (np("  egress: [{action: Allow, destination: {namespaceSelector: 'x in'}}]"),
     "spec.egress[0].destination.namespaceSelector", "set literal"),
    (np("  podSelector: {}"), "spec.podSelector", "unknown field"),
    (np("  ingress: [{action: Allow, from: []}]"), "spec.ingress[0].from", "unknown field"),
    (np("  ingress: [{action: Allow, source: {podSelector: {}}}]"),
     "spec.ingress[0].source.podSelector", "unknown field"),
    (np("  ingress: [{action: Accept}]"), "spec.ingress[0].action", "invalid action"),
    (np("  ingress: [{protocol: TCP}]"), "spec.ingress[0].action", "is required"),
    (np("  ingress: [{action: Allow, destination: {ports: [80]}}]"),
     "spec.ingress[0].destination.ports[0]", "numeric port"),
    (np("  ingress: [{action: Allow, destination: {notPorts: ['80:90']}}]"),
     "spec.ingress[0].destination.notPorts[0]", "numeric port"),
    (np("  ingress: [{action: Allow, protocol: ICMP, destination: {ports: [80]}}]"),
     "spec.ingress[0].destination.ports", "TCP or UDP or SCTP"),
    (np("  ingress: [{action: Allow, protocol: TCP, destination: {ports: ['90:80']}}]"),
     "spec.ingress[0].destination.ports[0]", "invalid port range"),
    (np("  ingress: [{action: Allow, protocol: TCP, destination: {ports: [70000]}}]"),
     "spec.ingress[0].destination.ports[0]", "out of range"),
    (np("  ingress: [{action: Allow, protocol: TCP, destination: {ports: [Web_Port]}}]"),
     "spec.ingress[0].destination.ports[0]", "valid port name"),
    (np("  ingress: [{action: Allow, protocol: tcp}]"), "spec.ingress[0].protocol",
     "invalid protocol"),
    (np("  ingress: [{action: Allow, protocol: 0}]"), "spec.ingress[0].protocol", "1-255"),
    (np("  ingress: [{action: Allow, source: {nets: [10.0.0.0/33]}}]"),
     "spec.ingress[0].source.nets[0]", "invalid CIDR"),
    (np("  egress: [{action: Allow, destination: {notNets: [not-a-net]}}]"),
     "spec.egress[0].destination.notNets[0]", "invalid CIDR"),
    (np("  egress: [{action: Allow, destination: {notNets: [0.0.0.0/0]}}]"),
     "spec.egress[0].destination.notNets[0]", "catch-all"),
    (np("  egress: [{action: Allow, destination: {nets: [10.0.0.0/8, 'fd00::/8']}}]"),
     "spec.egress[0]", "both IPv4 and IPv6"),
    (np("  types: [Ingress, Sideways]"), "spec.types[1]", "unknown type"),
    (np("  types: [Ingress, Ingress]"), "spec.types[1]", "duplicate"),
    (np("  order: high"), "spec.order", "expected a number"),
    (np("  tier: my.tier"), "spec.tier", "not a valid tier name"),
    (np("  ingress: [{action: Allow, http: {methods: [GET]}}]"), "spec.ingress[0].http",
     "application layer policy"),
    (np("  ingress: [{action: Allow, source: {ports: [80]}, protocol: TCP}]"),
     "spec.ingress[0].source.ports", "source ports"),
    (np("  egress: [{action: Allow, destination: {services: {name: x}}}]"),
     "spec.egress[0].destination.services", "not modelled"),
    (np("  ingress: [{action: Allow, icmp: {type: 8}}]"), "spec.ingress[0].icmp",
     "protocol to ICMP"),
    (np("  ingress: [{action: Allow, source: {selector: 'global()'}}]"),
     "spec.ingress[0].source.selector", "global()"),
    (np("  ingress: [{action: Allow, source: {namespaceSelector: \"global() && a == 'b'\"}}]"),
     "spec.ingress[0].source.namespaceSelector", "global()"),
    (np("  ingress: [{action: Allow, ipVersion: 5}]"), "spec.ingress[0].ipVersion",
     "invalid ipVersion"),
    (np("  selector: all()", name="Bad_Name"), "metadata.name", "not a valid policy name"),
    (np("  selector: all()", name="a.b.c"), "metadata.name", "not a valid policy name"),
    (gnp("  namespaceSelector: 'a =='"), "spec.namespaceSelector", "invalid selector"),
    (gnp("  preDNAT: true"), "spec.applyOnForward", "applyOnForward"),
    (gnp("  preDNAT: true\n  applyOnForward: true\n  egress: [{action: Allow}]"), "spec.egress",
     "preDNAT"),
    ("apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: t}\n"
     "spec: {defaultAction: Allow}", "spec.defaultAction", "Deny (the default) or Pass"),
    ("apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: default}\n"
     "spec: {order: 5}", "spec.order", "fixed at 1000000"),
    ("apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: a.b}\n",
     "metadata.name", "not a valid tier name"),
    ("apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: t}\nspec: {tier: x}",
     "spec.tier", "unknown field"),
])
def test_parse_errors_name_file_object_and_field(text: str, field: str, fragment: str) -> None:
    err = parse_error(text)
    assert err.source == "bad.yaml"
    assert err.obj  # "NetworkPolicy prod/p", "GlobalNetworkPolicy g", "Tier t"
    assert err.field == field, str(err)
    assert fragment in str(err), str(err)
    assert err.hint or "catch-all" in fragment or err.field.startswith("spec")


def test_selector_error_hint_shows_the_syntax() -> None:
    err = parse_error(np("  selector: role = 'db'"))
    assert err.obj == "NetworkPolicy prod/p"
    assert "has(k)" in err.hint and "k in {'a', 'b'}" in err.hint


def test_valid_but_unusual_input_is_accepted() -> None:
    objs = parse_text(np("""  order: 10.5
  tier: security
  selector: ''
  ingress:
  - action: Log
    metadata: {annotations: {from: fe}}
    protocol: 17
    destination: {ports: ['53', dns]}
  - action: Pass
    protocol: ICMP
    icmp: {type: 8, code: 0}
  - action: Allow
    destination: {ports: [pg]}
    notProtocol: UDP
""", name="security.allow-dns") + "\n---\n" + gnp("""  doNotTrack: true
  applyOnForward: true
  selector: all()
"""))
    policy, host_only = objs
    assert policy.ingress[0].ports[0].protocol == "UDP"  # protocol number 17
    assert policy.ingress[2].ports[0].protocol is None  # named port without protocol
    assert host_only.warnings and "host endpoints" in host_only.warnings[0]


def test_rules_for_a_direction_left_out_of_types_warn() -> None:
    [p] = parse_text(np("  types: [Egress]\n  ingress: [{action: Deny}]\n"
                        "  egress: [{action: Allow}]"))
    assert p.ingress is None and "ingress rules are ignored" in p.warnings[0]


# -- decisions -------------------------------------------------------------------------------
def test_calico_policy_scoped_to_its_namespace() -> None:
    e = engine(np("""  selector: role == 'db'
  ingress:
  - action: Allow
    protocol: TCP
    source: {selector: role == 'fe'}
"""))
    assert allowed(e, "prod/fe", "prod/db")
    assert not allowed(e, "dev/fe", "prod/db")  # same labels, other namespace
    assert not allowed(e, "prod/other", "prod/db")
    assert allowed(e, "prod/fe", "dev/db", 6000)  # dev/db is not selected by a prod policy


def test_namespace_selector_replaces_the_namespace_scope() -> None:
    e = engine(np("""  selector: role == 'db'
  ingress:
  - action: Allow
    source: {selector: role == 'fe', namespaceSelector: projectcalico.org/name == 'dev'}
"""))
    assert allowed(e, "dev/fe", "prod/db")
    assert not allowed(e, "prod/fe", "prod/db")


def test_selectors_never_match_outside_the_cluster_but_nets_do() -> None:
    e = engine(gnp("""  selector: role == 'db'
  ingress:
  - action: Allow
    source: {selector: all()}
  - action: Allow
    source: {nets: [192.0.2.0/24]}
"""))
    assert allowed(e, "dev/fe", "prod/db")
    assert not allowed(e, "ip:8.8.8.8", "prod/db")
    assert allowed(e, "ip:192.0.2.7", "prod/db")


def test_not_selector_alone_matches_the_world_except_the_selected() -> None:
    e = engine(gnp("""  selector: role == 'db'
  ingress:
  - action: Allow
    source: {notSelector: role == 'fe'}
"""))
    assert allowed(e, "ip:8.8.8.8", "prod/db")
    assert allowed(e, "prod/other", "prod/db")
    assert not allowed(e, "prod/fe", "prod/db") and not allowed(e, "dev/fe", "prod/db")


def test_not_nets_and_destination_clause_narrow_the_local_endpoint() -> None:
    e = engine(gnp("""  selector: all()
  ingress:
  - action: Deny
    source: {notNets: [10.0.0.0/24]}
    destination: {selector: role == 'db'}
  - action: Allow
"""))
    assert not allowed(e, "dev/fe", "prod/db")  # 10.0.1.2 is outside 10.0.0.0/24
    assert allowed(e, "prod/fe", "prod/db")
    assert allowed(e, "dev/fe", "prod/other")  # destination clause: only db pods are denied


def test_egress_named_port_resolves_on_each_destination() -> None:
    e = engine(np("""  selector: role == 'fe'
  egress:
  - action: Allow
    destination: {ports: [pg]}
""", ns="prod") + "\n---\n" + np("""  selector: role == 'fe'
  egress:
  - action: Allow
    destination: {ports: [pg]}
""", ns="dev"))
    assert allowed(e, "prod/fe", "prod/db", 5432)
    assert allowed(e, "prod/fe", "dev/db", 6000)
    assert not allowed(e, "prod/fe", "dev/db", 5432)  # pg is 6000 on dev/db
    assert allowed(e, "dev/fe", "prod/db", 53, "UDP") is False  # dns is not pg
    # A named port without protocol matches the endpoint port's own protocol.
    e2 = engine(np("  selector: role == 'fe'\n  egress: [{action: Allow, destination: "
                   "{ports: [dns]}}]"))
    assert allowed(e2, "prod/fe", "prod/db", 53, "UDP")
    assert not allowed(e2, "prod/fe", "prod/db", 53, "TCP")


def test_protocol_not_protocol_and_port_ranges() -> None:
    e = engine(np("""  selector: role == 'db'
  ingress:
  - action: Allow
    protocol: TCP
    destination: {ports: ['5000:6000'], notPorts: [5500]}
  - action: Allow
    notProtocol: TCP
"""))
    assert allowed(e, "prod/fe", "prod/db", 5432)
    assert not allowed(e, "prod/fe", "prod/db", 5500)
    assert not allowed(e, "prod/fe", "prod/db", 6001)
    assert allowed(e, "prod/fe", "prod/db", 6001, "UDP")


def test_service_accounts() -> None:
    e = engine(gnp("""  selector: all()
  egress:
  - action: Deny
    source: {serviceAccounts: {names: [db-sa]}}
  - action: Allow
"""))
    assert not allowed(e, "prod/db", "prod/fe", 80)
    assert allowed(e, "dev/db", "prod/fe", 80)
    sel = engine(gnp("""  serviceAccountSelector: projectcalico.org/name == 'db-sa'
  egress: [{action: Deny}]
"""))
    assert not allowed(sel, "prod/db", "prod/fe", 80) and allowed(sel, "dev/db", "prod/fe", 80)


def test_gnp_namespace_selector_and_pod_labels_from_calico() -> None:
    e = engine(gnp("""  namespaceSelector: env == 'prod'
  selector: projectcalico.org/serviceaccount == 'default'
  types: [Ingress]
"""))
    assert not allowed(e, "dev/fe", "prod/fe", 80)  # selected: isolated, no rule
    assert allowed(e, "dev/fe", "prod/db")  # db runs as db-sa: not selected
    assert allowed(e, "prod/fe", "dev/fe", 80)  # dev is not selected


def test_policy_order_and_first_match() -> None:
    policies = np("""  order: 200
  selector: role == 'db'
  ingress: [{action: Allow}]""", name="allow") + "\n---\n" + np("""  order: 100
  selector: role == 'db'
  ingress: [{action: Deny, source: {selector: role == 'fe'}}]""", name="deny")
    e = engine(policies)
    assert not allowed(e, "prod/fe", "prod/db")
    assert allowed(e, "prod/other", "prod/db")
    v = e.evaluate(Traffic("prod/fe", "prod/db", 5432))
    assert any("denied by Calico NetworkPolicy prod/deny ingress rule 1 (order 100)" in r
               for r in v.reasons), v.reasons


def test_log_continues_and_deny_only_policy_still_isolates() -> None:
    e = engine(np("""  selector: role == 'db'
  ingress:
  - action: Log
  - action: Deny
    source: {selector: role == 'other'}
"""))
    assert not allowed(e, "prod/other", "prod/db")
    assert not allowed(e, "prod/fe", "prod/db")  # end-of-tier deny
    reasons = e.evaluate(Traffic("prod/fe", "prod/db", 5432)).reasons
    assert any("logs the packet" in r for r in reasons)
    assert any("end-of-tier deny" in r for r in reasons)


def test_kubernetes_policy_sits_at_order_1000() -> None:
    k8s = """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-fe, namespace: prod}
spec:
  podSelector: {matchLabels: {role: db}}
  ingress: [{from: [{podSelector: {matchLabels: {role: fe}}}]}]
"""

    def deny(order: int) -> str:
        return k8s + "---\n" + np(f"""  order: {order}
  selector: role == 'db'
  ingress: [{{action: Deny, source: {{selector: role == 'fe'}}}}]""", name="deny-fe")

    before, after = engine(deny(100)), engine(deny(2000))
    assert not allowed(before, "prod/fe", "prod/db")
    assert allowed(after, "prod/fe", "prod/db")
    assert not allowed(after, "prod/other", "prod/db")  # the K8s policy isolates db
    # kindnet does not enforce the Calico policy at all.
    assert allowed(engine(deny(100), cni="kindnet"), "prod/fe", "prod/db")


def _tier(name: str, order: str, action: str = "Deny") -> str:
    return (f"apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {{name: {name}}}\n"
            f"spec: {{order: {order}, defaultAction: {action}}}\n---\n")


def test_tiers_pass_and_end_of_tier_deny() -> None:
    policies = _tier("security", "100") + gnp("""  tier: security
  selector: role == 'db'
  ingress:
  - action: Deny
    source: {selector: role == 'other'}
  - action: Pass
    source: {selector: role == 'fe'}
""", name="sec") + "\n---\n" + np("""  selector: role == 'db'
  ingress: [{action: Allow}]""", name="app")
    e = engine(policies)
    assert not allowed(e, "prod/other", "prod/db")  # denied in security
    assert allowed(e, "prod/fe", "prod/db")  # passed, allowed in default
    assert not allowed(e, "ip:8.8.8.8", "prod/db")  # no rule in security: end-of-tier deny
    reasons = e.evaluate(Traffic("prod/fe", "prod/db", 5432)).reasons
    assert any("passes it to the next tier" in r for r in reasons)
    assert any("tier default" in r and "allowed by" in r for r in reasons)


def test_tier_default_action_pass_and_skipped_tiers() -> None:
    policies = _tier("security", "100", "Pass") + gnp("""  tier: security
  selector: role == 'db'
  ingress: [{action: Deny, source: {selector: role == 'other'}}]
""", name="sec") + "\n---\n" + _tier("platform", "200") + gnp("""  tier: platform
  selector: role == 'nothing'
  ingress: [{action: Deny}]
""", name="plat")
    e = engine(policies)
    assert not allowed(e, "prod/other", "prod/db")
    # Passed by defaultAction; platform selects nothing (skipped); no default-tier policy:
    # the namespace profile allows.
    assert allowed(e, "prod/fe", "prod/db")
    reasons = e.evaluate(Traffic("prod/fe", "prod/db", 5432)).reasons
    assert any("defaultAction Pass" in r for r in reasons)
    assert any("profile" in r for r in reasons)
    assert not any("platform" in r for r in reasons)


def test_end_of_tier_deny_is_per_direction() -> None:
    e = engine(_tier("security", "100") + gnp("""  tier: security
  selector: role == 'db'
  types: [Ingress]
  ingress: [{action: Pass}]
""", name="sec"))
    assert allowed(e, "prod/db", "prod/fe", 80)  # egress: security tier does not apply


def test_tier_order_and_untiered_tier_last() -> None:
    policies = _tier("b", "50") + _tier("a", "50") + gnp("""  tier: a
  selector: role == 'db'
  ingress: [{action: Allow}]
""", name="in-a") + "\n---\n" + gnp("""  tier: b
  selector: role == 'db'
  ingress: [{action: Deny}]
""", name="in-b")
    # Equal order: tier a runs first (ties by name).
    assert allowed(engine(policies), "prod/fe", "prod/db")
    late = ("apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: late}\n---\n"
            + gnp("  tier: late\n  selector: role == 'db'\n  ingress: [{action: Allow}]",
                  name="l") + "\n---\n"
            + np("  selector: role == 'db'\n  ingress: [{action: Deny}]", name="d"))
    # A tier without order comes after the default tier.
    assert not allowed(engine(late), "prod/fe", "prod/db")


def test_unordered_policies_sort_last_and_ties_break_by_name() -> None:
    ps = [Policy("GlobalNetworkPolicy", n, "", selects=None, order=o)  # type: ignore[arg-type]
          for n, o in (("z", None), ("b", 5.0), ("a", 5.0), ("c", None))]
    ps.append(Policy("NetworkPolicy", "k", "prod", selects=None))  # type: ignore[arg-type]
    assert [p.name for p in sorted(ps, key=policy_key)] == ["a", "b", "k", "c", "z"]


def test_default_deny_keeps_dns_working() -> None:
    dns = pod("kube-system", "coredns", {"k8s-app": "kube-dns"}, ip="10.0.9.10")
    text = manifest(PODS, dns) + "\n---\n" + gnp("""  namespaceSelector: has(projectcalico.org/name) && projectcalico.org/name not in {"kube-system", "calico-system", "calico-apiserver"}
  types: [Ingress, Egress]
  egress:
  - action: Allow
    protocol: UDP
    destination:
      selector: 'k8s-app == "kube-dns"'
      ports: [53]
""", name="deny-app-policy")  # noqa: E501
    e = Engine(build_state(parse_text(text, "t.yaml")), "calico")
    assert allowed(e, "prod/fe", "kube-system/coredns", 53, "UDP")
    assert not allowed(e, "prod/fe", "kube-system/coredns", 53, "TCP")
    assert not allowed(e, "prod/fe", "prod/db")
    assert allowed(e, "kube-system/coredns", "ip:8.8.8.8", 53, "UDP")


# -- performance -------------------------------------------------------------------------------
def test_full_matrix_is_fast() -> None:
    state = ClusterState()
    n_pods, n_policies = 300, 150
    for n in range(10):
        state.namespaces[f"ns{n}"] = Namespace(f"ns{n}", {"team": f"t{n % 3}"})
    for i in range(n_pods):
        p = Pod(f"ns{i % 10}", f"p{i}", {"app": f"a{i % 20}", "tier": f"t{i % 4}"},
                ip=f"10.1.{i // 200}.{i % 200 + 1}")
        state.pods[p.key] = p
    docs = []
    for j in range(n_policies):
        docs.append(gnp(f"""  order: {j}
  selector: app == 'a{j % 20}'
  ingress:
  - action: {"Deny" if j % 3 == 0 else "Allow"}
    source: {{selector: "tier in {{'t{j % 4}', 't{(j + 1) % 4}'}}", namespaceSelector: team == 't{j % 3}'}}
  - action: Pass
    source: {{notSelector: app == 'a{j % 7}'}}
  egress:
  - action: Allow
    destination: {{nets: [10.1.0.0/24]}}
""", name=f"g{j}"))  # noqa: E501
    state.policies.extend(parse_text("\n---\n".join(docs)))
    e = Engine(state, "calico")
    pods = sorted(state.pods)
    start = time.perf_counter()
    grid = e.reachability(pods, pods, 80)
    elapsed = time.perf_counter() - start
    assert grid.pairs == n_pods * n_pods
    assert 0 < grid.allowed_count() < grid.pairs
    assert elapsed < 5, elapsed
    # The fast path agrees with the explained path on a sample.
    for src in pods[::37]:
        for dst in pods[::41]:
            assert e.evaluate(Traffic(src, dst, 80)).allowed == grid[(src, dst)]


def test_decide_directly_with_hand_built_input() -> None:
    [p] = parse_text(gnp("  selector: all()\n  ingress: [{action: Deny}]"))
    state = ClusterState(pods={"prod/a": Pod("prod", "a", ip="10.0.0.1"),
                               "prod/b": Pod("prod", "b", ip="10.0.0.2")},
                         policies=[p])
    u = Universe(state)
    from labkit.policy.calico.policies import decide

    local = u.endpoints[u.by_key["prod/a"]]
    dec = decide(DecideInput(u, state, local, Direction.INGRESS, 80, "TCP", [p]))
    assert dec.allowed == 0
    assert "denied by GlobalNetworkPolicy g ingress rule 1" in dec.reasons(u.by_key["prod/b"])[0]


def test_policy_in_a_tier_that_does_not_exist_is_ordered_last_and_flagged() -> None:
    e = engine(gnp("  tier: ghost\n  selector: role == 'db'\n  ingress: [{action: Deny}]")
               + "\n---\n" + np("  selector: role == 'db'\n  ingress: [{action: Allow}]"))
    # The default tier (order 1000000) runs first and allows.
    v = e.evaluate(Traffic("prod/fe", "prod/db", 5432))
    assert v.allowed
    e2 = engine(gnp("  tier: ghost\n  selector: role == 'db'\n  ingress: [{action: Deny}]"))
    v2 = e2.evaluate(Traffic("prod/fe", "prod/db", 5432))
    assert not v2.allowed and any("no such Tier object" in r for r in v2.reasons)


def test_reference_semantics_use_calico_when_calico_policies_are_present() -> None:
    e = engine(gnp("  selector: role == 'db'\n  ingress: [{action: Deny}]"), cni=None)
    assert e.semantics_name == "calico"
    assert not allowed(e, "prod/fe", "prod/db")
    assert allowed(engine(gnp("  selector: role == 'db'\n  ingress: [{action: Deny}]"),
                          cni="flannel"), "prod/fe", "prod/db")
