"""Hubble flows: the parser, the writers and the protobuf schema, on real upstream output.

Every file in tests/fixtures/hubble/ (copied from shared/reference/samples/hubble/, sources in
its README and captures/SOURCES.yaml) is parsed; each flow's documented fields are checked
against the raw JSON, and the writers must reproduce every line byte for byte.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from labkit.errors import FlowError
from labkit.hubble.log import parse_flows, read_flows
from labkit.hubble.schema import FLOW, RESPONSE, validate
from labkit.hubble.writers import compact_line, json_line, jsonpb_line

HERE = Path(__file__).resolve().parents[1] / "fixtures" / "hubble"
SAMPLES = sorted(p for p in [*HERE.glob("*.json*"), *HERE.glob("captures/*.json*")]
                 if "TRUNCATED" not in p.name)
GOLDEN_JSONPB = HERE / "GOLDEN_printer_jsonpb_dropped_cilium_printer_test.jsonl"
GOLDEN_JSON = HERE / "GOLDEN_printer_json_legacy_dropped_cilium_printer_test.json"
GOLDEN_COMPACT = HERE / "GOLDEN_printer_compact_variants_cilium_printer_test.txt"


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _dig(obj: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        if not isinstance(obj, dict) or key not in obj:
            return None
        obj = obj[key]
    return obj


def _expected(line: dict[str, Any]) -> dict[str, Any] | None:
    """The documented shape, read straight off the raw JSON by dotted paths."""
    if any(k in line for k in ("lost_events", "node_status")):
        return None
    f = line.get("flow", line)
    l4 = _dig(f, "l4") or {}
    proto = next(iter(l4), None)

    def ep(side: str) -> dict[str, Any]:
        labels = _dig(f, f"{side}.labels")
        return {"namespace": _dig(f, f"{side}.namespace"), "pod_name": _dig(f, f"{side}.pod_name"),
                "identity": _dig(f, f"{side}.identity"), "labels": labels,
                "ip": _dig(f, f"IP.{side}")}

    l7 = None
    if "l7" in f:
        http = dns = None
        if "http" in f["l7"]:
            http = {k: _dig(f, f"l7.http.{k}") for k in ("method", "url", "code", "protocol")}
        if "dns" in f["l7"]:
            rcode = _dig(f, "l7.dns.rcode")
            if rcode is None and f["l7"].get("type") == "RESPONSE":
                rcode = 0
            dns = {"query": _dig(f, "l7.dns.query"), "rcode": rcode}
        l7 = {"type": _dig(f, "l7.type"), "http": http, "dns": dns}
    return {
        "time": f.get("time", line.get("time") if "flow" in line else None),
        "verdict": f.get("verdict"), "drop_reason": f.get("drop_reason_desc"),
        "type": f.get("Type"), "traffic_direction": f.get("traffic_direction"),
        "is_reply": f.get("is_reply"), "source": ep("source"), "destination": ep("destination"),
        "l4": {"protocol": proto,
               "source_port": _dig(l4, f"{proto}.source_port") if proto else None,
               "destination_port": _dig(l4, f"{proto}.destination_port") if proto else None},
        "l7": l7,
        "node_name": f.get("node_name", line.get("node_name") if "flow" in line else None),
        "summary": f.get("Summary"),
    }


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_every_sample_parses_field_by_field(path: Path) -> None:
    log = read_flows(path)
    raw = [json.loads(line) for line in _lines(path)]
    expected = [e for e in map(_expected, raw) if e is not None]
    assert len(log.flows) == len(expected) and log.skipped == len(raw) - len(expected)
    for flow, want in zip(log.flows, expected, strict=True):
        assert flow.as_dict() == want


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_writers_reproduce_every_sample_byte_for_byte(path: Path) -> None:
    lines = [line for line in _lines(path) if "lost_events" not in line]
    log = read_flows(path)
    written = [jsonpb_line(f) if f.envelope is not None else json_line(f) for f in log.flows]
    assert written == lines


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_every_sample_is_valid_against_the_protobuf_schema(path: Path) -> None:
    for line in _lines(path):
        obj = json.loads(line)
        message = RESPONSE if any(k in obj for k in ("flow", "lost_events")) else FLOW
        assert validate(obj, message) == []


def test_documented_fields_of_real_flows() -> None:
    dropped = read_flows(HERE / "exporter_json_dropped_kind_fieldmask.jsonl").flows[1]
    assert dropped.as_dict() == {
        "time": "2023-08-21T12:12:18.510175415Z", "verdict": "DROPPED",
        "drop_reason": "POLICY_DENIED", "type": None, "traffic_direction": None,
        "is_reply": None,
        "source": {"namespace": "default", "pod_name": "xwing", "identity": None,
                   "labels": None, "ip": "10.244.1.60"},
        "destination": {"namespace": "default", "pod_name": "deathstar-7848d6c4d5-th9v2",
                        "identity": None, "labels": None, "ip": "10.244.1.5"},
        "l4": {"protocol": "TCP", "source_port": 44916, "destination_port": 80},
        "l7": None, "node_name": "kind-kind/kind-worker", "summary": None,
    }
    http = read_flows(HERE / "captures/otel_gke_l7_http_200_503_selected.jsonl").flows[2]
    assert http.l7 is not None and http.l7.type == "RESPONSE"
    assert http.http is not None and (http.http.code, http.http.method) == (503, "GET")
    assert http.destination.pod_name == "prometheus-6655946b9f-6xcpf"
    dns = read_flows(HERE / "captures/otel_gke_l7_dns_over_tcp_selected.jsonl").flows
    nx = next(f for f in dns if f.dns and f.dns.rcode == 3)
    assert nx.dns is not None
    assert nx.dns.query == "zipkin.istio-system.istio-system.svc.cluster.local."
    icmp = read_flows(HERE / "captures/otel_kind_icmpv4_health_18flows.jsonl").flows[0]
    assert icmp.l4.protocol == "ICMPv4" and icmp.l4.destination_port is None
    legacy = read_flows(HERE / "captures/legacy_json_gke_dpv2_remote_node_1flow.json").flows[0]
    assert legacy.envelope is None and legacy.destination.identity == 6
    assert legacy.destination.workload == "remote-node"


def test_lost_events_are_skipped_and_counted() -> None:
    log = read_flows(HERE / "captures/GOLDEN_cilium_printer_lost_events_3lines.jsonl")
    assert (len(log.flows), log.skipped) == (0, 3)
    assert log.as_dict() == {"flows": [], "skipped": 3}


def test_golden_jsonpb_and_json_lines() -> None:
    golden = _lines(GOLDEN_JSONPB)
    assert [jsonpb_line(f) for f in read_flows(GOLDEN_JSONPB).flows] == golden
    (legacy,) = read_flows(GOLDEN_JSON).flows
    assert json_line(legacy) == GOLDEN_JSON.read_text(encoding="utf-8").strip()


def _golden_inputs() -> list[tuple[dict[str, Any], dict[str, bool]]]:
    """The printer test's input flows (printer_test.go, TestPrinter_WriteProtoFlow), as JSON."""
    base = json.loads(_lines(GOLDEN_JSONPB)[0])["flow"]
    with_trace = json.loads(_lines(GOLDEN_JSONPB)[1])["flow"]

    def variant(**changes: Any) -> dict[str, Any]:
        f = copy.deepcopy(base)
        for key, value in changes.items():
            if value is None:
                f.pop(key, None)
            else:
                f[key] = value
        return f

    deny = [{"name": "my-policy", "namespace": "my-policy-namespace",
             "kind": "CiliumNetworkPolicy"}]
    verdict = {"type": 5}
    denied = variant(event_type=verdict, is_reply=None, traffic_direction="EGRESS",
                     egress_denied_by=deny)
    allowed = variant(event_type=verdict, verdict="FORWARDED", is_reply=None,
                      traffic_direction="INGRESS", policy_match_type=1,
                      ingress_allowed_by=[*deny, {"name": "my-policy-2",
                                                  "kind": "CiliumClusterwideNetworkPolicy"}])
    audited = variant(event_type=verdict, verdict="AUDIT", is_reply=None,
                      traffic_direction="EGRESS", egress_denied_by=deny)
    node = {"node_name": True}
    names = {"node_name": True, "policy_names": True}
    return [(base, {}), (base, node), (with_trace, node), (variant(is_reply=True), node),
            (denied, node), (denied, names), (allowed, names), (audited, names),
            (variant(is_reply=None), node)]


def test_compact_printer_matches_hubbles_golden_lines() -> None:
    golden = _lines(GOLDEN_COMPACT)
    inputs = _golden_inputs()
    assert len(inputs) == len(golden)
    for (record, options), want in zip(inputs, golden, strict=True):
        (flow,) = parse_flows([json.dumps({"flow": record})]).flows
        assert compact_line(flow, **options) == want


def test_compact_names_pods_services_and_ipv6() -> None:
    line = json.dumps({"flow": {
        "time": "2026-12-02T16:00:05.123456789Z", "verdict": "FORWARDED",
        "IP": {"source": "fd00::1", "destination": "10.96.0.10"},
        "l4": {"UDP": {"source_port": 40000, "destination_port": 53}},
        "source": {"identity": 4242, "namespace": "shop", "pod_name": "frontend-1"},
        "destination": {"identity": 2},
        "destination_service": {"name": "kube-dns", "namespace": "kube-system"},
        "event_type": {"type": 4}, "is_reply": False, "Summary": "UDP"}})
    (flow,) = parse_flows([line]).flows
    assert compact_line(flow) == ("Dec  2 16:00:05.123: shop/frontend-1:40000 (ID:4242) -> "
                                  "kube-system/kube-dns:53 (world) to-endpoint FORWARDED (UDP)")


@pytest.mark.parametrize("text, message", [
    ('{"flow": {"verdict": "DROPPED"', "not a JSON object"),
    ("[1, 2]", "expected a JSON object, got list"),
    ('{"hello": 1}', "neither a flow nor a Hubble event"),
    ('{"flow": "x"}', "field 'flow': expected an object"),
    ('{"flow": {"source": {"identity": "12"}}}', "field 'flow.source.identity': expected a number"),
    ('{"flow": {"is_reply": "yes"}}', "field 'flow.is_reply': expected true or false"),
    ('{"flow": {"l7": {"http": {"code": true}}}}', "field 'flow.l7.http.code'"),
])
def test_bad_lines_name_the_file_line_and_field(text: str, message: str) -> None:
    with pytest.raises(FlowError) as err:
        parse_flows(["", '{"lost_events": {}}', text], source="flows.jsonl")
    assert str(err.value).startswith("flows.jsonl:3: ") and message in str(err.value)
    assert err.value.hint


def test_a_truncated_real_paste_is_refused_at_its_first_line(tmp_path: Path) -> None:
    path = HERE / "jsonpb_kind_policy_denied_egress_world_TRUNCATED_pr40519.txt"
    with pytest.raises(FlowError, match=rf"^{path}:1: not a JSON object"):
        read_flows(path)
    with pytest.raises(FlowError, match="cannot read"):
        read_flows(tmp_path / "missing.jsonl")


@pytest.mark.parametrize("mutate, problem", [
    (lambda f: f.update(verdict="ALLOWED"), "is not a value of enum flow.Verdict"),
    (lambda f: f.update(bogus=1), "has no field 'bogus'"),
    (lambda f: f.update(policy_match_type=0), "default value 0"),
    (lambda f: f["l4"].update(UDP={"source_port": 1}), "oneof protocol already set"),
    (lambda f: f.update(time="2026-12-02 16:00:00"), "not an RFC 3339"),
    (lambda f: f["source"].update(identity="4"), "expected a JSON number for uint32"),
    (lambda f: f.update(Summary=f.pop("Summary"), time=f.pop("time")), "out of declaration order"),
])
def test_the_schema_validator_catches_what_protojson_would_never_write(mutate: Any,
                                                                      problem: str) -> None:
    obj = json.loads(_lines(GOLDEN_JSONPB)[0])
    mutate(obj["flow"])
    assert any(problem in p for p in validate(obj)), validate(obj)


def test_dataframe_has_one_typed_row_per_flow() -> None:
    log = read_flows(HERE / "captures/otel_gke_l7_http_200_503_selected.jsonl")
    df = log.to_dataframe()
    assert len(df) == len(log.flows) == 14
    assert str(df["time"].dtype) == "datetime64[ns, UTC]"
    assert log.flows[0].time == "2021-10-04T14:28:41.848669811Z"
    assert df["time"].iloc[0].isoformat() == "2021-10-04T14:28:41.848669811+00:00"
    assert str(df["http_code"].dtype) == "Int64" and str(df["is_reply"].dtype) == "boolean"
    row = df.iloc[2]
    assert (row["l7_type"], row["http_code"], row["http_method"]) == ("RESPONSE", 503, "GET")
    assert row["destination_pod"] == "prometheus-6655946b9f-6xcpf"
    assert df["dns_rcode"].isna().all()


def test_service_map_edges_are_workloads_coloured_by_verdict() -> None:
    from labkit.hubble.servicemap import VERDICT_COLOURS, ServiceMap

    flows = [*read_flows(HERE / "exporter_json_dropped_kind_fieldmask.jsonl").flows,
             *read_flows(HERE / "captures/otel_gke_l7_http_200_503_selected.jsonl").flows]
    m = ServiceMap.from_flows(flows)
    dropped = [e for e in m.edges if e.verdict == "DROPPED"]
    assert ("default/xwing", "default/deathstar-7848d6c4d5-th9v2") in \
        {(e.source, e.destination) for e in dropped}
    assert all(e.colour == VERDICT_COLOURS["DROPPED"] for e in dropped)
    assert all(e.verdict != "RESPONSE" for e in m.edges)
    assert set(m.graph().nodes) == set(m.nodes)
    svg = m._repr_svg_()
    assert svg.lstrip().startswith("<?xml") and VERDICT_COLOURS["DROPPED"] in svg
    assert "default/xwing -> default/deathstar-7848d6c4d5-th9v2  DROPPED x1 [80/TCP]" in \
        m.to_text()


@pytest.mark.parametrize("name, index, expected", [
    ("captures/aks_acns_exporter_cilium_reply_3flows.jsonl", 0, {
        "time": "2025-04-16T18:49:59.450463857Z", "verdict": "FORWARDED", "is_reply": True,
        "traffic_direction": "EGRESS", "type": "L3_L4",
        "source": {"namespace": "default", "pod_name": "kapinger-good-64cbf459c4-q4tr9",
                   "identity": 39459, "labels": ["k8s:app=kapinger", "k8s:server=good"],
                   "ip": "10.0.1.13"},
        "l4": {"protocol": "TCP", "source_port": 8080, "destination_port": 60778},
        "node_name": "longtestnetworkflowcni/aks-nodepool1-27013129-vmss000000",
        "summary": "TCP Flags: ACK, PSH"}),
    ("captures/kkamji_cilium1176_dynamic_exporter_fieldmask_5flows.jsonl", 0, {
        "time": "2025-07-26T18:46:58.596069996Z", "is_reply": False, "type": None,
        "destination": {"namespace": "kube-system", "pod_name": "coredns-675485d6df-xkf24",
                        "identity": None, "labels": None, "ip": None},
        "l4": {"protocol": "TCP", "source_port": 60482, "destination_port": 9153},
        "node_name": "k8s-w2", "summary": None}),
    ("captures/victorjo_cilium1176_dynamic_exporter_fieldmask_traced_10flows.jsonl", 0, {
        "time": None, "verdict": "TRACED", "node_name": None, "is_reply": None,
        "l4": {"protocol": None, "source_port": None, "destination_port": None}, "l7": None}),
    ("jsonpb_l3l4_udp_first3of400.jsonl", 0, {
        "verdict": "REDIRECTED", "traffic_direction": "EGRESS", "drop_reason": None,
        "destination": {"namespace": "kube-system", "pod_name": "coredns-558bd4d5db-w2m67",
                        "identity": 48342, "ip": "10.244.1.227", "labels": [
                            "k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name="
                            "kube-system", "k8s:io.cilium.k8s.policy.cluster=kind-kind",
                            "k8s:io.cilium.k8s.policy.serviceaccount=coredns",
                            "k8s:io.kubernetes.pod.namespace=kube-system",
                            "k8s:k8s-app=kube-dns"]},
        "l4": {"protocol": "UDP", "source_port": 54314, "destination_port": 53},
        "summary": "UDP"}),
    ("captures/tke_cilium1191_exporter_world_host_remote_node_3flows.jsonl", 0, {
        "source": {"namespace": None, "pod_name": None, "identity": 16777217,
                   "labels": ["reserved:kube-apiserver", "reserved:world"],
                   "ip": "169.254.128.9"},
        "node_name": "10.10.21.166", "is_reply": True}),
])
def test_selected_real_flows_field_by_field(name: str, index: int,
                                            expected: dict[str, Any]) -> None:
    got = read_flows(HERE / name).flows[index].as_dict()
    assert {k: got[k] for k in expected} == expected


@pytest.mark.parametrize("name, index, line", [
    ("jsonpb_l3l4_udp_first3of400.jsonl", 0,
     "Nov 10 10:40:56.871: bookinfo/ratings-v1-b6994bb9-jgqxb:54314 (ID:16370) -> "
     "kube-system/coredns-558bd4d5db-w2m67:53 (ID:48342) policy-verdict:L3-L4 EGRESS ALLOWED "
     "(UDP)"),
    ("captures/aks_acns_exporter_cilium_reply_3flows.jsonl", 0,
     "Apr 16 18:49:59.450: default/kapinger-bad-6b5b787dc9-ds4j4:60778 (ID:17221) <- "
     "default/kapinger-good-64cbf459c4-q4tr9:8080 (ID:39459) to-endpoint FORWARDED "
     "(TCP Flags: ACK, PSH)"),
    ("exporter_json_dropped_kind_fieldmask.jsonl", 0,
     "Aug 21 12:12:13.517: fe80::64d8:8aff:fe72:fc14 (unknown) <> ff02::2 (unknown) UNKNOWN "
     "DROPPED ()"),
])
def test_compact_lines_of_real_flows(name: str, index: int, line: str) -> None:
    assert compact_line(read_flows(HERE / name).flows[index]) == line


def test_a_flow_log_shows_as_hubbles_table() -> None:
    golden = (HERE / "GOLDEN_printer_tabular_dropped_cilium_printer_test.txt"
              ).read_text(encoding="utf-8").splitlines()
    log = parse_flows(_lines(GOLDEN_JSONPB)[:1])
    text = log.to_text().splitlines()
    assert text[0] == "1 Hubble flows, 0 other events skipped"
    assert text[1:] == golden  # hubble observe -o table, column for column
    html = log._repr_html_()
    assert ">TIMESTAMP</th>" in html and ">Policy denied</td>" in html
    many = parse_flows(_lines(GOLDEN_JSONPB) * 15)
    assert "10 earlier flows not shown" in repr(many) and len(repr(many).splitlines()) == 23
