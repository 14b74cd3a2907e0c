"""cilium status / cilium-dbg status parsed from real outputs, and printed back in their layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from labkit.cni.cilium.status import (
    CliStatus,
    Workload,
    parse_agent_status,
    parse_cli_status,
    tabwrite,
)
from labkit.errors import ToolError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cilium-status"
CLI_SAMPLES = sorted(p.name for p in FIXTURES.glob("cilium_cli_status_*.txt"))
# A truncated sample lost rows that set its columns' widths: it cannot round-trip.
WHOLE_CLI_SAMPLES = [n for n in CLI_SAMPLES if "TRUNCATED" not in n]


def read(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def test_kind_status_wait_parsed_field_by_field() -> None:
    status = parse_cli_status(read("cilium_cli_status_wait_kind_v1.14.5_cilium_quickstart.txt"))
    assert status.summary == {"Cilium": "OK", "Operator": "OK",
                              "Envoy DaemonSet": "disabled (using embedded mode)",
                              "Hubble Relay": "disabled", "ClusterMesh": "disabled"}
    assert status.workloads == (Workload("Deployment", "cilium-operator", 1, 1, 1),
                                Workload("DaemonSet", "cilium", 4, 4, 4))
    assert status.containers == (("cilium", "Running: 4"), ("cilium-operator", "Running: 1"))
    assert status.cluster_pods == (3, 3)
    assert status.helm_chart_version == "1.14.5"
    assert status.images[1] == (
        "cilium-operator", "quay.io/cilium/operator-generic:v1.14.5@sha256:303f9076bdc73b3fc32aa"
        "edee64a14f6f44c8bb08ee9e3956d443021103ebe7a", 1)
    assert status.ok


def test_errors_and_warnings_make_it_not_ok() -> None:
    status = parse_cli_status(read("cilium_cli_status_no_cluster_errors_cilium_quickstart.txt"))
    assert status.summary["Cilium"] == "1 errors"
    assert [p.component for p in status.errors] == ["cilium", "cilium-operator", "cilium-envoy"]
    assert status.errors[0].message.startswith('Get "http://localhost:8080/apis/apps/v1/')
    assert status.errors[0].message.endswith("connect: connection refused")
    assert [p.message for p in status.warnings][-1] == "clustermesh is not deployed"
    assert status.cluster_pods == (0, 0) and status.helm_chart_version == ""
    assert not status.ok


def test_older_layout_and_empty_helm_version() -> None:
    old = parse_cli_status(read("cilium_cli_status_issue477_v1.10.3.txt"))
    assert list(old.summary) == ["Cilium", "Operator", "Hubble", "ClusterMesh"]
    assert old.workload("hubble-relay") == Workload("Deployment", "hubble-relay", 1, 1, 1)
    assert old.cluster_pods is None and old.helm_chart_version is None
    new = parse_cli_status(read("cilium_cli_status_v1.16.0_TRUNCATED_issue34747.txt"))
    assert new.helm_chart_version == "" and new.workload("cilium-envoy") is not None


def test_a_workload_not_ready_is_not_ok() -> None:
    text = read("cilium_cli_status_wait_kind_v1.14.5_cilium_quickstart.txt").replace(
        "Desired: 4, Ready: 4/4, Available: 4/4",
        "Desired: 4, Ready: 3/4, Available: 3/4, Unavailable: 1/4")
    status = parse_cli_status(text)
    assert status.workload("cilium") == Workload("DaemonSet", "cilium", 4, 3, 3, 1)
    assert not status.ok


@pytest.mark.parametrize("name", WHOLE_CLI_SAMPLES)
def test_printed_back_exactly_as_cilium_cli_prints(name: str) -> None:
    """The sim answers `cilium status` with to_text(); every real sample round-trips."""
    text = read(name).rstrip("\n")
    assert parse_cli_status(text).to_text() == text


def test_tabwriter_blocks_align_per_run_of_lines() -> None:
    rows = [["a", "xx", "last"], ["bbbb", "y", "z"], ["c", "free text"], ["d", "wwwwww", "q"]]
    assert tabwrite(rows) == ["a       xx    last", "bbbb    y     z", "c       free text",
                              "d       wwwwww    q"]


def test_simulated_output_is_labelled() -> None:
    status = CliStatus({"Cilium": "OK"}, simulated=True)
    assert status.to_text().endswith("(simulated: labkit's model of cilium status, not a real "
                                     "cluster)")
    assert status.as_dict()["simulated"] is True


def test_not_a_cilium_status_is_a_tool_error() -> None:
    with pytest.raises(ToolError, match="no component summary"):
        parse_cli_status("Error: Unable to connect\n", source="cilium status --wait")


def test_agent_wireguard_line_forms() -> None:
    docs = parse_agent_status(read("cilium_dbg_status_grep_encryption_wireguard_docs.txt"))
    enc = docs.encryption
    assert enc is not None
    assert (enc.mode, enc.interface, enc.port, enc.peers, enc.node_encryption) == (
        "Wireguard", "cilium_wg0", 51871, 2, None)
    real = parse_agent_status(read("cilium_agent_status_encryption_line_issue24239.txt"))
    assert real.encryption is not None and real.encryption.public_key == (
        "UzRSJUmRqsxl82xvFG0joBheaiqOnM3BCgpByYjVtCE=")
    node = parse_agent_status(read("cilium_agent_status_encryption_nodeencryption_pr24399.txt"))
    assert node.encryption is not None and node.encryption.node_encryption is True
    assert node.encryption.peers == 3


def test_agent_kube_proxy_replacement_and_no_encryption_line() -> None:
    status = parse_agent_status(read("cilium_agent_status_kpr_pr10059.txt"))
    assert status.kube_proxy_replacement == "Strict"
    assert status.fields["Controller Status"] == "17/17 healthy"
    assert status.encryption is None and status.clustermesh is None
    assert status.details["Cluster health"][0].strip().startswith("Name")


def test_agent_clustermesh_block() -> None:
    status = parse_agent_status(
        read("cilium_agent_status_verbose_kind_clustermesh_TRUNCATED_issue20729.txt"))
    mesh = status.clustermesh
    assert mesh is not None and mesh.ok
    assert (mesh.ready, mesh.total, mesh.global_services) == (1, 1, 10)
    assert [(c.name, c.ready, c.nodes, c.identities) for c in mesh.clusters] == [
        ("mesh-1", True, 2, 10)]
    assert status.fields["Allocated addresses"] == ""
    assert "10.2.0.55 (health)" in status.details["Allocated addresses"][-1]


def test_a_remote_cluster_not_ready() -> None:
    text = read("kvstoremesh_dbg_status_TRUNCATED_cilium_pr32156.txt").replace(
        "KVStoreMesh:", "ClusterMesh:")
    mesh = parse_agent_status(text).clustermesh
    assert mesh is not None and not mesh.ok
    assert [c.name for c in mesh.clusters if not c.ready] == ["cluster-013"]
    assert mesh.global_services is None


def test_agent_status_without_fields_is_a_tool_error() -> None:
    with pytest.raises(ToolError, match="cilium-dbg status"):
        parse_agent_status("   \n")
