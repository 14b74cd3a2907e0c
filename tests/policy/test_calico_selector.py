"""Calico selector expressions: grammar, label semantics, and the compiled bitset form.

Expected values come from Calico's selector reference (docs.tigera.io, "Selectors")
and the behaviour of libcalico-go's parser (lib/selector/parser).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.model import ClusterState, Namespace, Pod
from labkit.policy.calico.selector import (
    All,
    And,
    Eq,
    Has,
    In,
    Ne,
    Node,
    Not,
    NotIn,
    Or,
    SelectorError,
    StringTest,
    endpoint_labels,
    parse,
)
from labkit.policy.ir import Universe


def m(text: str, labels: dict[str, str]) -> bool:
    return parse(text).matches(labels)


# -- operators, as documented --------------------------------------------------------------
@pytest.mark.parametrize(("text", "labels", "expected"), [
    ("a == 'x'", {"a": "x"}, True),
    ("a == 'x'", {"a": "y"}, False),
    ("a == 'x'", {}, False),
    ('a == "x"', {"a": "x"}, True),
    ("a != 'x'", {}, True),  # != also matches resources without the label
    ("a != 'x'", {"a": "x"}, False),
    ("a != 'x'", {"a": "y"}, True),
    ("has(a)", {"a": ""}, True),
    ("has(a)", {"b": "1"}, False),
    ("!has(a)", {"b": "1"}, True),
    ("a in {'x', 'y'}", {"a": "y"}, True),
    ("a in {'x', 'y'}", {}, False),
    ("a in {}", {"a": "x"}, False),
    ("a not in {'x'}", {}, True),  # not in also matches resources without the label
    ("a not in {'x'}", {"a": "x"}, False),
    ("a not in {'x',}", {"a": "z"}, True),  # upstream accepts a trailing comma
    ("a contains 'ell'", {"a": "hello"}, True),
    ("a starts with 'he'", {"a": "hello"}, True),
    ("a ends with 'lo'", {"a": "hello"}, True),
    ("a ends with 'lo'", {}, False),
    ("all()", {}, True),
    ("!all()", {"a": "x"}, False),
    ("", {"a": "x"}, True),  # the empty selector selects everything
    ("global()", {}, True),
    ("projectcalico.org/name == 'kube-system'", {"projectcalico.org/name": "kube-system"}, True),
    ("k8s-app == 'kube-dns'", {"k8s-app": "kube-dns"}, True),
    ("a=='x'&&b=='y'", {"a": "x", "b": "y"}, True),
    ("has( a )", {"a": "1"}, True),
    ("all( )", {}, True),
    ("a not  in {'x'}", {"a": "y"}, True),
    ("a starts  with 'x'", {"a": "xy"}, True),
])
def test_operators(text: str, labels: dict[str, str], expected: bool) -> None:
    assert m(text, labels) is expected


def test_negation_binds_to_the_whole_comparison() -> None:
    # "!a == 'a1'" means "!(a == 'a1')", so it matches pods without label a.
    sel = parse("!a == 'a1'")
    assert sel.root == Not(Eq("a", "a1"))
    assert sel.matches({}) and sel.matches({"a": "a2"}) and not sel.matches({"a": "a1"})


def test_documented_precedence_example() -> None:
    # Calico docs: bracketed as (!has(my-label)) || ((starts with) && (in)).
    sel = parse("! has(my-label) || my-label starts with 'prod' && role in {'frontend','business'}")
    assert sel.root == Or((Not(Has("my-label")),
                           And((StringTest("my-label", "starts with", "prod"),
                                In("role", frozenset({"frontend", "business"}))))))
    assert sel.matches({})
    assert sel.matches({"my-label": "prod-1", "role": "business"})
    assert not sel.matches({"my-label": "prod-1", "role": "db"})
    assert not sel.matches({"my-label": "dev", "role": "frontend"})


def test_and_binds_tighter_than_or_and_parentheses_group() -> None:
    labels = {"a": "1"}
    assert m("a == '1' || b == '1' && c == '1'", labels)
    assert not m("(a == '1' || b == '1') && c == '1'", labels)


def test_repeated_negation_collapses() -> None:
    assert parse("!!has(a)").root == Has("a")
    assert parse("!!!has(a)").root == Not(Has("a"))
    assert parse("!(!has(a))").root == Not(Not(Has("a")))


@pytest.mark.parametrize(("text", "fragment"), [
    ("a = 'x'", "'=='"),
    ("a == x", "quoted string"),
    ("a == 'x", "unterminated string"),
    ("a & b", "'&&'"),
    ("a | b", "'||'"),
    ("has(a", "closing ')'"),
    ("has()", "no label name"),
    ("all(x)", "closing ')'"),
    ("(a == 'x'", "expected ')'"),
    ("a == 'x' b == 'y'", "after a complete expression"),
    ("a in 'x'", "set literal"),
    ("a in {'x' 'y'}", "expected '}'"),
    ("a", "expected an operator"),
    ("a foo 'x'", "expected an operator"),
    ("a not 'x'", "expected an operator"),
    ("a starts 'x'", "expected an operator"),
    ("a == 'x' &&", "unexpected end of the selector"),
    ("role == 'db'\n", "unexpected character"),  # upstream whitespace is space and tab only
    ("$x == 'y'", "unexpected character"),
    ("!", "unexpected end of the selector"),
])
def test_syntax_errors(text: str, fragment: str) -> None:
    with pytest.raises(SelectorError) as err:
        parse(text)
    assert fragment in str(err.value)


def test_error_names_the_position() -> None:
    with pytest.raises(SelectorError) as err:
        parse("a == 'x' && b = 'y'")
    assert err.value.position == 14


def test_canonical_text_round_trips() -> None:
    for text in ("a == 'x'", "!(a == 'x' || has(b))", "a not in {'x', \"y\"}",
                 "k contains \"it's\"", "a in {}", "global()"):
        sel = parse(text)
        assert parse(str(sel)).root == sel.root


# -- compiled form ---------------------------------------------------------------------------
def _universe(pods: list[dict[str, str]], namespaces: int = 2) -> Universe:
    state = ClusterState()
    for n in range(namespaces):
        state.namespaces[f"ns{n}"] = Namespace(f"ns{n}", {"team": f"t{n}"})
    for i, labels in enumerate(pods):
        pod = Pod(f"ns{i % namespaces}", f"p{i}", labels, ip=f"10.0.{i // 250}.{i % 250 + 1}",
                  service_account=f"sa{i % 3}")
        state.pods[pod.key] = pod
    state.pods["ns0/hostnet"] = Pod("ns0", "hostnet", {"a": "x"}, ip="172.18.0.2",
                                    host_network=True)
    return Universe(state, extra_ips=["8.8.8.8"])


def _by_evaluation(u: Universe, text: str) -> int:
    sel = parse(text)
    out = 0
    for e in u.endpoints:
        if e.pod is not None and not e.pod.host_network and sel.matches(endpoint_labels(e.pod)):
            out |= 1 << e.index
    return out


def test_compiled_bits_only_select_pods() -> None:
    u = _universe([{"a": "x"}, {"a": "y"}, {}])
    # The host-network pod and the external address never match, even for all() and !=.
    for text in ("all()", "a != 'z'", "!has(a)", "a not in {'q'}"):
        bits = parse(text).pod_bits(u)
        assert bits & ~u.pod_bits == 0
        assert bits == _by_evaluation(u, text)
    assert parse("a == 'x'").pod_bits(u) == 1 << u.by_key["ns0/p0"]


def test_calico_endpoint_labels_are_selectable() -> None:
    u = _universe([{"a": "x"}, {"a": "y"}, {}])
    assert parse("projectcalico.org/namespace == 'ns1'").pod_bits(u) == 1 << u.by_key["ns1/p1"]
    assert parse("projectcalico.org/serviceaccount == 'sa2'").pod_bits(u) == \
        1 << u.by_key["ns0/p2"]
    assert parse("projectcalico.org/orchestrator == 'k8s'").pod_bits(u) == u.pod_bits
    assert parse("has(projectcalico.org/namespace)").pod_bits(u) == u.pod_bits


def test_namespace_bits_see_the_projectcalico_name_label() -> None:
    u = _universe([{"a": "x"}, {"a": "y"}, {}, {}])
    ns1 = u.ns_index["ns1"]
    assert parse("projectcalico.org/name == 'ns1'").namespace_bits(u) == ns1
    assert parse("kubernetes.io/metadata.name == 'ns1'").namespace_bits(u) == ns1
    assert parse("team == 't1'").namespace_bits(u) == ns1
    assert parse("has(projectcalico.org/name) && projectcalico.org/name not in {'ns1'}"
                 ).namespace_bits(u) == u.ns_index["ns0"] & u.pod_bits


KEYS = ["a", "b", "c", "projectcalico.org/namespace", "projectcalico.org/serviceaccount"]
VALUES = ["x", "y", "ns0", "sa1", ""]
keys = st.sampled_from(KEYS)
values = st.sampled_from(VALUES)
leaves = st.one_of(
    st.builds(Eq, keys, values), st.builds(Ne, keys, values), st.builds(Has, keys),
    st.builds(In, keys, st.frozensets(values, max_size=3)),
    st.builds(NotIn, keys, st.frozensets(values, max_size=3)),
    st.builds(StringTest, keys, st.sampled_from(["contains", "starts with", "ends with"]),
              values),
    st.just(All()),
)
nodes: st.SearchStrategy[Node] = st.recursive(leaves, lambda inner: st.one_of(
    st.builds(Not, inner),
    st.builds(And, st.lists(inner, min_size=2, max_size=3).map(tuple)),
    st.builds(Or, st.lists(inner, min_size=2, max_size=3).map(tuple)),
), max_leaves=8)
label_sets = st.dictionaries(st.sampled_from(["a", "b", "c"]), st.sampled_from(["x", "y", ""]),
                             max_size=3)


@settings(max_examples=150, deadline=None)
@given(node=nodes, pods=st.lists(label_sets, min_size=1, max_size=12))
def test_compiled_bits_equal_per_endpoint_evaluation(node: Node, pods: list[dict[str, str]]
                                                     ) -> None:
    u = _universe(pods)
    text = str(node)
    assert parse(text).root == parse(str(parse(text).root)).root  # printing is stable
    assert parse(text).pod_bits(u) == _by_evaluation(u, text)


@settings(max_examples=150, deadline=None)
@given(node=nodes, labels=label_sets)
def test_double_negation_is_identity(node: Node, labels: dict[str, str]) -> None:
    assert Not(Not(node)).evaluate(labels) == node.evaluate(labels)
    assert parse(f"!(!({node}))").matches(labels) == parse(str(node)).matches(labels)


@settings(max_examples=150, deadline=None)
@given(x=nodes, y=nodes, labels=label_sets)
def test_de_morgan(x: Node, y: Node, labels: dict[str, str]) -> None:
    assert parse(f"!({x} && {y})").matches(labels) == parse(f"!{x} || !{y}").matches(labels)
    assert parse(f"!({x} || {y})").matches(labels) == parse(f"!{x} && !{y}").matches(labels)


@settings(max_examples=80, deadline=None)
@given(x=nodes, y=nodes, pods=st.lists(label_sets, min_size=1, max_size=8))
def test_de_morgan_on_bitsets(x: Node, y: Node, pods: list[dict[str, str]]) -> None:
    u = _universe(pods)
    assert parse(f"!({x} && {y})").pod_bits(u) == parse(f"!{x} || !{y}").pod_bits(u)
