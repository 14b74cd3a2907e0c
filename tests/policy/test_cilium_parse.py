"""Parsing CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy: accepted forms and errors."""

from __future__ import annotations

import pytest

from labkit.errors import ManifestError
from labkit.policy import parse_text
from labkit.policy.cilium.l7 import HttpRule
from labkit.policy.cilium.policies import CiliumPolicy
from labkit.policy.ir import Action

HEAD = """apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: p, namespace: shop}
"""


def cnp(spec: str) -> CiliumPolicy:
    objs = parse_text(HEAD + spec, "p.yaml")
    assert len(objs) == 1 and isinstance(objs[0], CiliumPolicy)
    return objs[0]


def error(spec: str, head: str = HEAD) -> ManifestError:
    with pytest.raises(ManifestError) as exc:
        parse_text(head + spec, "p.yaml")
    assert exc.value.source == "p.yaml"
    return exc.value


def test_kinds_and_default_deny_per_direction() -> None:
    p = cnp("spec:\n  endpointSelector: {}\n  ingress: [{}]\n")
    assert p.kind == "CiliumNetworkPolicy" and p.namespace == "shop"
    assert p.ingress is not None and p.egress is None
    assert p.default_deny == (True, False)
    ccnp = parse_text("""apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: c}
spec:
  endpointSelector: {}
  egressDeny: [{toEntities: [world]}]
""")[0]
    assert ccnp.kind == "CiliumClusterwideNetworkPolicy" and ccnp.namespace == ""
    assert ccnp.ref == "CiliumClusterwideNetworkPolicy c"
    assert ccnp.default_deny == (False, True)  # a deny-only rule isolates too
    assert [r.action for r in ccnp.egress] == [Action.DENY]


def test_enable_default_deny_false_and_empty_list_do_not_isolate() -> None:
    p = cnp("spec:\n  endpointSelector: {}\n  enableDefaultDeny: {ingress: false}\n"
            "  ingress: [{fromEntities: [world]}]\n  egress: []\n")
    assert p.default_deny == (False, False)
    assert p.egress is None


def test_specs_list_keeps_each_spec_subject_and_default_deny() -> None:
    p = cnp("""specs:
- endpointSelector: {matchLabels: {app: a}}
  ingress: [{fromEntities: [world]}]
- endpointSelector: {matchLabels: {app: b}}
  enableDefaultDeny: {ingress: false}
  ingress: [{fromEntities: [cluster]}]
""")
    assert [s.isolates for s in p.specs] == [(True, False), (False, False)]
    assert all(r.local is not None for r in p.ingress)
    assert "(specs[1])" in p.ingress[1].origin


def test_to_ports_entries_split_into_rules_with_their_own_l7() -> None:
    p = cnp("""spec:
  endpointSelector: {}
  ingress:
  - toPorts:
    - ports: [{port: "80", protocol: TCP}]
      rules: {http: [{method: GET, path: /public}, {method: POST}]}
    - ports: [{port: "8080"}, {port: http-alt, protocol: TCP}, {port: "9000", endPort: 9010}]
""")
    first, second = p.ingress
    assert first.http is not None and len(first.http) == 2
    assert isinstance(first.http[0], HttpRule)
    assert second.http is None
    specs = second.ports
    assert specs[0].protocol is None and specs[0].first == 8080  # no protocol: ANY
    assert specs[1].name == "http-alt"
    assert (specs[2].first, specs[2].last) == (9000, 9010)


@pytest.mark.parametrize(("spec", "field", "needle"), [
    ("spec:\n  endpointSelector: {}\n  ingress: [{fromEndpoint: [{}]}]\n",
     "spec.ingress[0].fromEndpoint", "unknown field"),
    ("spec:\n  endpointSelector: {}\n  bogus: 1\n", "spec.bogus", "unknown field"),
    ("spec:\n  ingress: [{}]\n", "spec.endpointSelector", "is required"),
    ("spec:\n  endpointSelector: {}\n  ingress: [{fromEntities: [internet]}]\n",
     "spec.ingress[0].fromEntities[0]", "unknown entity"),
    ("spec:\n  endpointSelector: {}\n  egress: [{toCIDR: [10.0.0.0/33]}]\n",
     "spec.egress[0].toCIDR[0]", "invalid CIDR"),
    ("spec:\n  endpointSelector: {}\n  egress: [{toCIDRSet: [{cidr: 10.0.0.0/8, "
     "except: [192.168.0.0/16]}]}]\n", "spec.egress[0].toCIDRSet[0].except[0]", "not inside"),
    ("spec:\n  endpointSelector: {}\n  ingress: [{toPorts: [{ports: [{port: \"70000\"}]}]}]\n",
     "spec.ingress[0].toPorts[0].ports[0].port", "out of range"),
    ("spec:\n  endpointSelector: {}\n  ingress: [{toPorts: [{ports: [{port: 80}]}]}]\n",
     "spec.ingress[0].toPorts[0].ports[0].port", "must be a string"),
    ("spec:\n  endpointSelector: {}\n  ingress: [{toPorts: [{ports: [{port: \"90\", "
     "endPort: 80}]}]}]\n", "spec.ingress[0].toPorts[0].ports[0].endPort", "endPort"),
    ("spec:\n  endpointSelector: {}\n  ingress: [{toPorts: [{ports: [{port: \"80\", "
     "protocol: ICMP}]}]}]\n", "spec.ingress[0].toPorts[0].ports[0].protocol", "protocol"),
    ("spec:\n  endpointSelector: {}\n  ingress: [{toPorts: [{ports: [{port: \"80\"}], "
     "rules: {http: [{path: \"/v1/(\"}]}}]}]\n",
     "spec.ingress[0].toPorts[0].rules.http[0].path", "invalid regular expression"),
    ("spec:\n  endpointSelector: {}\n  ingress: [{toPorts: [{ports: [{port: \"80\"}], "
     "rules: {http: [{path: \"/(?!admin).*\"}]}}]}]\n",
     "spec.ingress[0].toPorts[0].rules.http[0].path", "RE2"),
    ("spec:\n  endpointSelector: {}\n  ingress: [{toPorts: [{ports: [{port: \"53\", "
     "protocol: UDP}], rules: {http: [{}]}}]}]\n",
     "spec.ingress[0].toPorts[0].rules.http", "need TCP"),
    ("spec:\n  endpointSelector: {}\n  ingress: [{toPorts: [{ports: [{port: \"80\"}], "
     "rules: {http: [{headerMatches: [{name: X, mismatch: DROP}]}]}}]}]\n",
     "spec.ingress[0].toPorts[0].rules.http[0].headerMatches[0].mismatch", "mismatch"),
    ("spec:\n  endpointSelector: {matchExpressions: [{key: a, operator: Has}]}\n",
     "spec.endpointSelector.matchExpressions[0].operator", "invalid operator"),
    ("spec:\n  nodeSelector: {}\n  ingress: [{}]\n", "spec.nodeSelector", "not supported"),
    ("spec:\n  endpointSelector: {}\n  ingress: [{fromRequires: [{}]}]\n",
     "spec.ingress[0].fromRequires", "not supported"),
    ("spec:\n  endpointSelector: {}\n  egress: [{toServices: [{k8sService: {}}]}]\n",
     "spec.egress[0].toServices", "not supported"),
    ("spec:\n  endpointSelector: {}\n  ingress: [{toPorts: [{ports: [{port: \"80\"}], "
     "terminatingTLS: {}}]}]\n", "spec.ingress[0].toPorts[0].terminatingTLS", "not supported"),
    ("spec:\n  endpointSelector: {}\n  ingressDeny: [{toPorts: [{ports: [{port: \"80\"}], "
     "rules: {http: [{}]}}]}]\n", "spec.ingressDeny[0].toPorts[0].rules", "unknown field"),
])
def test_bad_input_names_file_object_and_field(spec: str, field: str, needle: str) -> None:
    err = error(spec)
    assert err.field == field, str(err)
    assert needle in str(err)
    assert err.obj == "CiliumNetworkPolicy shop/p"
    assert err.hint, str(err)


def test_policy_without_spec_is_refused() -> None:
    err = error("")
    assert err.field == "spec" and "specs" in err.hint


def test_l7_types_removed_in_1_20_are_refused_with_the_change_cited() -> None:
    for key, body in (("kafka", "[{role: produce, topic: t}]"), ("l7proto", "x"),
                      ("l7", "[{}]")):
        err = error("spec:\n  endpointSelector: {}\n  ingress: [{toPorts: [{ports: "
                    f"[{{port: \"9092\"}}], rules: {{{key}: {body}}}}}]}}]\n")
        assert err.field == f"spec.ingress[0].toPorts[0].rules.{key}"
        assert "1.20" in str(err) and "43557" in err.hint


def test_node_selector_in_namespaced_policy_says_where_it_belongs() -> None:
    err = error("spec:\n  nodeSelector: {}\n")
    assert "Clusterwide" in err.hint


def test_fqdn_and_dns_are_parsed_authentication_is_warned() -> None:
    p = cnp("""spec:
  endpointSelector: {}
  egress:
  - toEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: kube-system}}]
    toPorts:
    - ports: [{port: "53", protocol: ANY}]
      rules: {dns: [{matchPattern: "*"}]}
  - toFQDNs: [{matchName: api.example.com}]
    authentication: {mode: required}
""")
    text = "\n".join(p.warnings)
    assert "toFQDNs" not in text and "dns" not in text  # both are modelled now
    assert "authentication is ignored" in text
    assert all(r.http is None for r in p.egress)
    assert [f.match_pattern for f in p.egress[0].dns] == ["*"]
    assert [f.match_name for f in p.egress[1].peer.fqdns] == ["api.example.com"]


def test_fqdn_entry_needs_a_name_or_pattern() -> None:
    err = error("""spec:
  endpointSelector: {}
  egress:
  - toFQDNs: [{}]
""")
    assert err.field == "spec.egress[0].toFQDNs[0]" and "matchName" in str(err)
