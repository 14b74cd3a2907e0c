"""``labkit hubble parse|observe`` and ``labkit policy suggest``, and where flows come from:
the sim backend (its cluster keeps the simulated flows of the probes it answered) and the kind
backend (``hubble observe -o jsonpb`` in every Cilium agent, through the guarded client)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from labkit.backends.kind.backend import KindBackend
from labkit.cli import main
from labkit.environments import Stage
from labkit.errors import BackendUnsupported, ToolError
from labkit.hubble.log import parse_flows
from labkit.hubble.schema import validate
from labkit.lab import Lab
from tests.unit.kindfakes import FakeKube, FakeRunner
from tests.unit.kindfakes import pod as kind_pod
from tests.unit.test_kind_backend import kubeconfig  # noqa: F401  (fixture)

HERE = Path(__file__).resolve().parents[1] / "fixtures" / "hubble"
GOLDEN = HERE / "GOLDEN_printer_jsonpb_dropped_cilium_printer_test.jsonl"


def test_parse_json_prints_the_documented_object(capsys: Any) -> None:
    path = HERE / "captures" / "otel_gke_l7_http_200_503_selected.jsonl"
    assert main(["hubble", "parse", str(path), "--output", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["skipped"] == 0 and len(out["flows"]) == 14
    assert list(out["flows"][2]) == ["time", "verdict", "drop_reason", "type",
                                     "traffic_direction", "is_reply", "source", "destination",
                                     "l4", "l7", "node_name", "summary"]
    assert out["flows"][2]["l7"]["http"]["code"] == 503
    assert out["flows"][2]["l7"]["dns"] is None


def test_parse_text_prints_compact_lines_and_the_count(capsys: Any) -> None:
    assert main(["hubble", "parse", str(GOLDEN)]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0] == (
        "Jan  1 00:20:34.567: 1.1.1.1:31793 (health) -> 2.2.2.2:8080 (ID:12345) "
        "Policy denied DROPPED (TCP Flags: SYN)")
    assert "2 flows, 0 skipped" in captured.err


def test_parse_bad_file_is_one_line_naming_file_and_line(tmp_path: Path, capsys: Any) -> None:
    bad = tmp_path / "flows.jsonl"
    bad.write_text('{"flow": {}}\n{"flow": {"verdict": 2}}\n', encoding="utf-8")
    assert main(["hubble", "parse", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{bad}:2: field 'flow.verdict': expected a string" in err


def test_observe_refuses_a_missing_cluster_and_a_bad_last(capsys: Any) -> None:
    assert main(["hubble", "observe", "--backend", "sim"]) == 1
    assert "labkit up cilium --backend sim" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["hubble", "observe", "--last", "0"])


def _sim_cilium_lab() -> Lab:
    """A sim cluster of the cilium stage whose CNI record says Cilium (the Cilium recipe is
    another issue's: the record is what the sim backend reads to decide who enforces)."""
    lab = Lab("cilium", backend="sim")
    lab.up()
    lab.install_cni("flannel")
    cluster = lab.impl.cluster  # type: ignore[attr-defined]
    cluster.cni.name = "cilium"
    cluster.changed()
    lab.deploy_shop()
    return lab


def test_sim_records_flows_for_every_probe_and_observe_prints_them(capsys: Any) -> None:
    lab = _sim_cilium_lab()
    web = [p for p in lab.workload_pods() if p.startswith("shop-web/")][0]
    api = [p for p in lab.workload_pods() if p.startswith("shop-api/api")][0]
    lab.probe(web, api, 8080)
    log = lab.flows()
    assert log.simulated and log.service_map().simulated
    assert log.to_dataframe().attrs["simulated"] is True
    assert {f.record["emitter"]["name"] for f in log.flows} == {"labkit-sim"}
    assert len(log) == 3 and all(f.verdict == "FORWARDED" for f in log.flows)
    assert {f.destination.pod_name for f in log.flows if not f.is_reply} == {api.split("/")[1]}
    assert main(["hubble", "observe", "cilium", "--backend", "sim", "--output", "jsonpb",
                 "--last", "2"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 2 and all(validate(json.loads(line)) == [] for line in lines)
    assert "SIMULATED" in captured.err
    # the flows outlive the process, as the cluster does (saved with it, read back)
    from labkit.backends.sim.backend import CLUSTERS

    CLUSTERS.clear()
    again = Lab("cilium", backend="sim")
    assert [f.record for f in again.flows().flows] == [f.record for f in log.flows]
    again.probe(web, api, 8080)  # identities stay those allocated before the reload
    assert [f.source.identity for f in again.flows(last=3).flows if not f.is_reply] == \
        [f.source.identity for f in log.flows if not f.is_reply]
    assert main(["hubble", "observe", "cilium", "--backend", "sim"]) == 0
    assert "to-endpoint FORWARDED (TCP Flags: SYN)" in capsys.readouterr().out


def test_flows_need_cilium() -> None:
    lab = Lab("flannel", backend="sim")
    lab.up()
    lab.install_cni("flannel")
    with pytest.raises(BackendUnsupported, match="Hubble needs Cilium; this cluster runs "
                       "flannel"):
        lab.flows()


def test_suggest_cli_prints_policies_that_parse(tmp_path: Path, capsys: Any) -> None:
    lab = _sim_cilium_lab()
    web = [p for p in lab.workload_pods() if p.startswith("shop-web/")][0]
    api = [p for p in lab.workload_pods() if p.startswith("shop-api/api")][0]
    lab.probe(web, api, 8080)
    path = tmp_path / "flows.jsonl"
    assert main(["hubble", "observe", "cilium", "--backend", "sim", "--output", "jsonpb"]) == 0
    path.write_text(capsys.readouterr().out, encoding="utf-8")
    for dialect, kind in (("cilium", "CiliumNetworkPolicy"), ("kubernetes", "NetworkPolicy")):
        assert main(["policy", "suggest", "--from-flows", str(path), "--dialect", dialect]) == 0
        docs = list(yaml.safe_load_all(capsys.readouterr().out))
        assert {d["kind"] for d in docs} == {kind} and len(docs) == 2
    assert main(["policy", "suggest", "--from-flows", str(tmp_path / "none.jsonl")]) == 1
    assert "cannot read" in capsys.readouterr().err


def _kind(tmp_path: Path, config: dict[str, Any]) -> tuple[KindBackend, FakeKube]:
    kube = FakeKube()
    b = KindBackend(Stage.load("flannel"), run=FakeRunner(), kube_factory=lambda ctx: kube,
                    kubeconfig_loader=lambda: config, sleep=lambda s: None,
                    workdir=tmp_path / "work")
    return b, kube


def test_kind_reads_every_agent_and_merges_in_time_order(tmp_path: Path,
                                                         kubeconfig: Any) -> None:  # noqa: F811
    b, kube = _kind(tmp_path, kubeconfig)
    for name, node in (("cilium-a", "kind-worker"), ("cilium-b", "kind-worker2")):
        kube.add("Pod", kind_pod("kube-system", name, "172.18.0.3", node, {"k8s-app": "cilium"},
                                 containers=("cilium-agent",)))
    kube.add("Pod", kind_pod("kube-system", "cilium-operator-1", "172.18.0.2", "kind-worker",
                             {"name": "cilium-operator"}, containers=("cilium-operator",)))
    golden = GOLDEN.read_text(encoding="utf-8").splitlines()
    late = golden[1].replace("1970-01-01T00:20:34.567800Z", "1970-01-01T00:20:35Z")
    answers = {"cilium-a": late + "\n" + '{"lost_events": {"num_events_lost": "1"}}\n',
               "cilium-b": golden[0] + "\n"}
    kube.exec_answer = lambda ns, pod, argv: answers[pod]
    log = b.hubble_flows(last=5)
    assert [(ns, pod, argv, c) for ns, pod, argv, c in kube.execs] == [
        ("kube-system", name, ["hubble", "observe", "-o", "jsonpb", "--last", "5"],
         "cilium-agent") for name in ("cilium-a", "cilium-b")]
    assert [f.time for f in log.flows] == ["1970-01-01T00:20:34.567800Z",
                                           "1970-01-01T00:20:35Z"]
    assert log.skipped == 1
    assert len(b.hubble_flows(last=1)) == 1


def test_kind_without_hubble_fails_with_the_command(tmp_path: Path,
                                                   kubeconfig: Any) -> None:  # noqa: F811
    from labkit.tools.process import Result

    b, kube = _kind(tmp_path, kubeconfig)
    kube.add("Pod", kind_pod("kube-system", "cilium-a", "172.18.0.3", "kind-worker",
                             {"k8s-app": "cilium"}, containers=("cilium-agent",)))
    kube.exec = lambda *a, **k: Result(("hubble",), 1, "", "hubble: command not found")
    with pytest.raises(ToolError, match="hubble observe failed in kube-system/cilium-a"):
        b.hubble_flows(last=3)


def test_parse_flows_skips_blank_lines() -> None:
    assert len(parse_flows(["", GOLDEN.read_text(encoding="utf-8").splitlines()[0], " "])) == 1


def test_observe_json_is_jsonpb_unless_hubble_compat_asks_for_legacy(capsys: Any,
                                                                   monkeypatch: Any) -> None:
    lab = _sim_cilium_lab()
    pods = lab.workload_pods()
    lab.probe(pods[0], pods[-1], 8080)
    args = ["hubble", "observe", "cilium", "--backend", "sim", "--last", "1", "--output"]
    assert main([*args, "jsonpb"]) == 0
    jsonpb = capsys.readouterr().out
    assert main([*args, "json"]) == 0
    assert capsys.readouterr().out == jsonpb and jsonpb.startswith('{"flow":{')
    monkeypatch.setenv("HUBBLE_COMPAT", "foo,legacy-json-output")
    assert main([*args, "json"]) == 0
    legacy = json.loads(capsys.readouterr().out)
    assert legacy == json.loads(jsonpb)["flow"]


def test_sim_keeps_a_bounded_flow_buffer(monkeypatch: Any) -> None:
    from labkit.backends.sim import backend, store

    monkeypatch.setattr(backend, "FLOW_BUFFER", 10)
    lab = _sim_cilium_lab()
    pods = lab.workload_pods()
    path = store.flows_path_for(lab.cluster_name)
    for _ in range(300):
        lab.probe(pods[0], pods[-1], 8080)
    # trimmed to the last 10 when the 256th probe passed; 44 probes of 3 flows since
    assert len(store.read_lines(path)) == 10 + 44 * 3
    assert len(lab.flows()) == 10 and len(lab.flows(last=4)) == 4
    lab.down()
    assert not path.exists()
