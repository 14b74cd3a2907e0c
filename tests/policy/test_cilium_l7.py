"""Cilium HTTP rule matching: whole-value regexes, headers, headerMatches, Secrets."""

from __future__ import annotations

import pytest

from labkit.model import ClusterState, HttpRequest, Secret
from labkit.policy.cilium.l7 import HeaderMatch, HttpRule, parse_http_rules
from labkit.policy.parse import ParseContext

STATE = ClusterState()


def req(method: str = "GET", path: str = "/", host: str = "", **headers: str) -> HttpRequest:
    return HttpRequest(method, path, host, {k.replace("_", "-"): v for k, v in headers.items()})


@pytest.mark.parametrize(("rule", "request_", "expected"), [
    (HttpRule(path="/public"), req(path="/public"), True),
    (HttpRule(path="/public"), req(path="/public/x"), False),  # whole value, not a prefix
    (HttpRule(path="/public"), req(path="/x/public"), False),
    (HttpRule(path="/v1/.*"), req(path="/v1/request-landing"), True),
    (HttpRule(method="GET|HEAD"), req("HEAD"), True),
    (HttpRule(method="GET"), req("GETX"), False),
    (HttpRule(method="POST", path="/v1/request-landing"), req("PUT", "/v1/exhaust-port"), False),
    (HttpRule(host="api\\.example\\.com"), req(host="api.example.com"), True),
    (HttpRule(host="api\\.example\\.com"), req(host="evil.api.example.com"), False),
    (HttpRule(), req("DELETE", "/anything"), True),
])
def test_method_path_host_are_whole_value_regexes(rule: HttpRule, request_: HttpRequest,
                                                   expected: bool) -> None:
    assert rule.matches(request_, STATE) is expected


def test_headers_presence_and_exact_value_case_insensitive_names() -> None:
    presence = HttpRule(headers=(("X-My-Header", None),))
    exact = HttpRule(headers=(("X-My-Header", "true"),))
    assert presence.matches(req(x_my_header="anything"), STATE)
    assert not presence.matches(req(), STATE)
    assert exact.matches(req(**{"x_my_header": "true"}), STATE)
    assert not exact.matches(req(x_my_header="TRUE"), STATE)


def test_parsed_header_forms() -> None:
    ctx = ParseContext("h.yaml", "CiliumNetworkPolicy ns/p")
    rules = parse_http_rules(ctx, [{"headers": ["X-My-Header: true", "X-Other"]}], "http", "ns")
    assert rules[0].headers == (("X-My-Header", "true"), ("X-Other", None))


def test_header_match_inline_value_and_presence() -> None:
    rule = HttpRule(header_matches=(HeaderMatch("X-Token", "abc"),))
    assert rule.matches(req(x_token="abc"), STATE)
    assert not rule.matches(req(x_token="abd"), STATE)
    assert not rule.matches(req(), STATE)
    present = HttpRule(header_matches=(HeaderMatch("X-Token"),))
    assert present.matches(req(x_token="x"), STATE) and not present.matches(req(), STATE)


def test_header_match_reads_a_one_item_secret() -> None:
    state = ClusterState(secrets={"app/token": Secret("app", "token", {"value": "s3cret"})})
    rule = HttpRule(header_matches=(HeaderMatch("X-Token", secret=("app", "token")),))
    assert rule.matches(req(x_token="s3cret"), state)
    assert not rule.matches(req(x_token="wrong"), state)
    # Missing Secret and no fallback value: the rule never matches.
    assert not rule.matches(req(x_token="s3cret"), STATE)
    # Missing Secret with a value: the value is used.
    fallback = HttpRule(header_matches=(HeaderMatch("X-Token", "dflt", ("app", "nope")),))
    assert fallback.matches(req(x_token="dflt"), state)
    # A Secret with two items cannot be read.
    two = ClusterState(secrets={"app/token": Secret("app", "token", {"a": "1", "b": "2"})})
    assert not rule.matches(req(x_token="1"), two)


def test_mismatch_actions_rewrite_or_log_instead_of_rejecting() -> None:
    for action in ("LOG", "ADD", "DELETE", "REPLACE"):
        rule = HttpRule(header_matches=(HeaderMatch("User-Agent", "dummy-agent",
                                                    mismatch=action),))
        assert rule.matches(req(user_agent="curl/8"), STATE)
        assert rule.matches(req(), STATE)
    replace = HttpRule(header_matches=(HeaderMatch("User-Agent", "dummy-agent",
                                                   mismatch="REPLACE"),))
    assert replace.rewrites(req(user_agent="curl/8"), STATE) == [
        "replaces header User-Agent with the policy's value"]
    assert replace.rewrites(req(user_agent="dummy-agent"), STATE) == []
    assert "REPLACE" in replace.describe()


def test_secret_namespace_defaults_to_the_policy_namespace() -> None:
    ctx = ParseContext("h.yaml", "CiliumNetworkPolicy app/p")
    rules = parse_http_rules(ctx, [{"headerMatches": [{"name": "X-Token",
                                                       "secret": {"name": "token"}}]}],
                             "http", "app")
    assert rules[0].header_matches[0].secret == ("app", "token")


def test_alternatives_any_one_is_enough() -> None:
    alts = (HttpRule(method="GET", path="/path1"),
            HttpRule(method="PUT", path="/path2", headers=(("X-My-Header", "true"),)))
    assert any(m.matches(req("GET", "/path1"), STATE) for m in alts)
    assert any(m.matches(req("PUT", "/path2", x_my_header="true"), STATE) for m in alts)
    assert not any(m.matches(req("PUT", "/path2"), STATE) for m in alts)
    assert not any(m.matches(req("GET", "/path2"), STATE) for m in alts)
