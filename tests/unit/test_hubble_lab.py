"""Lab 07's checks (labkit.labs.hubble): the flows of lab 05's traffic, what they show, the
policies suggested from them proved by the matrix, and the DataFrame exercise judged by the
flows it selects. On sim end to end; the window of new flows on real kind flow times."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labkit.errors import CheckFailed
from labkit.hubble.log import FlowLog, read_flows, time_key
from labkit.hubble.suggest import suggest
from labkit.lab import Lab
from labkit.labs import hubble as h

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hubble"


@pytest.fixture(scope="module")
def _made(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, FlowLog]]:
    """Lab 05's traffic on one simulated cluster, made once for this module."""
    home = tmp_path_factory.mktemp("lab07-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LABKIT_HOME", str(home))
        yield home, h.make_traffic(Lab("cilium", backend="sim"))


@pytest.fixture
def traffic(_made: tuple[Path, FlowLog], monkeypatch: pytest.MonkeyPatch
            ) -> tuple[Lab, FlowLog]:
    home, log = _made
    monkeypatch.setenv("LABKIT_HOME", str(home))  # the conftest gives each test its own
    return Lab("cilium", backend="sim"), log


def test_the_flows_show_lab05s_drops_403s_and_dns(traffic: tuple[Lab, FlowLog]) -> None:
    lab, log = traffic
    result = h.find_drops_403s_dns(lab, log)
    assert result.passed
    assert "dropped: shop-api/db -> shop-api/api:8080" in result.details
    assert any(d.startswith("403: shop-web/frontend -> shop-api/api GET ")
               and d.endswith("/admin") for d in result.details)
    assert "DNS: ads.tracker.test., catalog.shop.test." in result.details
    # drops are L3/L4 with a reason; the refused HTTP requests are not among them
    drops = h.policy_drops(log)
    assert drops and all(f.l7 is None and f.drop_reason == "POLICY_DENIED" for f in drops)
    assert any(f.l7 is not None and f.verdict == "DROPPED" for f in log)


def test_a_log_without_403s_fails_and_says_what_is_missing(
        traffic: tuple[Lab, FlowLog]) -> None:
    lab, log = traffic
    no_http = FlowLog(tuple(f for f in log if f.http is None), 0)
    with pytest.raises(CheckFailed, match="no a 403"):
        h.find_drops_403s_dns(lab, no_http)


def test_suggested_policies_keep_exactly_the_observed_traffic(
        traffic: tuple[Lab, FlowLog]) -> None:
    lab, log = traffic
    suggestion = h.suggest_from_flows(log)
    assert {p["metadata"]["name"] for p in suggestion.policies} == {
        "suggested-api", "suggested-frontend"}
    result = h.prove_suggestion(lab, log, suggestion)
    assert result.passed and "every other pair is denied" in result.message
    # the same suggestion judged against fewer observations allows too much: it must fail
    without_frontend = FlowLog(tuple(f for f in log
                                     if f.source.namespace != "shop-web"
                                     and f.destination.namespace != "shop-web"), 0)
    with pytest.raises(CheckFailed, match="allowed, never observed"):
        h.prove_suggestion(lab, without_frontend, suggestion)
    # and a suggestion learned from fewer flows denies what was observed
    with pytest.raises(CheckFailed, match="denied, observed"):
        h.prove_suggestion(lab, log, suggest(without_frontend, "cilium"))
    h.clean_slate(lab)


def test_the_exercise_is_judged_by_the_flows_selected(traffic: tuple[Lab, FlowLog]) -> None:
    lab, log = traffic
    df = log.to_dataframe()
    assert not h.exercise_policy_drops(lab, log, None).passed
    with pytest.raises(CheckFailed, match="HTTP requests the proxy refused"):
        h.exercise_policy_drops(lab, log, df[df.verdict == "DROPPED"])
    with pytest.raises(CheckFailed, match="you missed"):
        h.exercise_policy_drops(lab, log, df[(df.drop_reason == "POLICY_DENIED")
                                             & (df.traffic_direction == "INGRESS")])
    with pytest.raises(CheckFailed, match="not a DataFrame"):
        h.exercise_policy_drops(lab, log, ["DROPPED"])
    # the same meaning written another way passes
    other = df[df.drop_reason.notna() & df.l7_type.isna()]
    result = h.exercise_policy_drops(lab, log, other)
    assert result.passed and "exactly the policy drops" in result.message
    assert any(d.startswith("probed again under lab 05") and d.endswith(" dropped")
               for d in result.details)


def test_only_flows_after_the_mark_are_the_labs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real kind flows (Cilium's printer fixtures and captures): the window keeps exactly the
    flows recorded after the mark, whatever the agent returns before it."""
    log = read_flows(FIXTURES / "captures" / "otel_kind_icmpv4_health_18flows.jsonl")
    ordered = sorted(log, key=time_key)
    assert len({time_key(f) for f in ordered}) > 2  # distinct times to cut between
    mark = time_key(ordered[len(ordered) // 2])
    asked: list[Any] = []

    class FakeLab:
        def flows(self, last: int | None = None) -> FlowLog:
            asked.append(last)
            return FlowLog(tuple(ordered), 0)

    window = h._new_flows(FakeLab(), mark)  # type: ignore[arg-type]
    assert asked == [h.LAST]
    assert [time_key(f) for f in window] == [time_key(f) for f in ordered
                                             if time_key(f) > mark]
    assert 0 < len(window) < len(ordered)


def test_the_ui_is_opened_as_the_pinned_cilium_does_it() -> None:
    commands = h.UI_COMMANDS
    assert commands["the UI, with the cilium CLI"].startswith("cilium hubble ui")
    assert commands["the UI, with kubectl"].startswith(
        "kubectl -n kube-system port-forward svc/hubble-ui 12000:80")
    assert "4245" in commands["what it does"]  # port-forward is the relay, for the CLI


def test_hubble_running_reads_the_values_and_the_pods(traffic: tuple[Lab, FlowLog],
                                                      tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    lab, _ = traffic
    result = h.hubble_running(lab)
    assert result.passed
    assert [d.split(":")[0] for d in result.details[:2]] == ["hubble-relay", "hubble-ui"]
    values = tmp_path / "values.yaml"
    values.write_text("hubble:\n  relay: {enabled: true}\n  ui: {enabled: false}\n")
    monkeypatch.setattr(h, "VALUES", values)
    with pytest.raises(CheckFailed, match="hubble.ui.enabled is not true"):
        h.hubble_running(lab)
