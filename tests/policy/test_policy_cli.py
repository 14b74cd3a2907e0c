"""The `labkit policy` commands: output formats, exit codes and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labkit.cli import main
from tests.manifests import manifest, pod

MANIFEST = manifest(pod("x", "a", {"pod": "a"}), pod("x", "b", {"pod": "b"}), """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: only-a, namespace: x}
spec:
  podSelector: {matchLabels: {pod: b}}
  ingress: [{from: [{podSelector: {matchLabels: {pod: a}}}], ports: [{port: 80}]}]
""")
TRAFFIC = """
- {from: x/a, to: x/b, port: 80}
- {from: x/b, to: x/b, port: 80, protocol: TCP}
- {from: "ip:192.0.2.1", to: x/b, port: 80}
"""


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "m.yaml").write_text(MANIFEST)
    (tmp_path / "t.yaml").write_text(TRAFFIC)
    return tmp_path / "m.yaml", tmp_path / "t.yaml"


def test_check_json_keeps_input_order_and_fields(files, capsys) -> None:
    m, t = files
    assert main(["policy", "check", str(m), "--traffic", str(t), "--cni", "kindnet",
                 "--output", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["cni"] == "kindnet"
    got = [(r["from"], r["to"], r["allowed"], r["denial"]) for r in out["results"]]
    assert got == [("x/a", "x/b", True, None), ("x/b", "x/b", True, None),
                   ("ip:192.0.2.1", "x/b", False, "drop")]
    assert all(isinstance(r["reasons"], list) and r["reasons"] for r in out["results"])


def test_check_on_flannel_allows_everything(files, capsys) -> None:
    m, t = files
    assert main(["policy", "check", str(m), "--traffic", str(t), "--cni", "flannel",
                 "--output", "json"]) == 0
    assert all(r["allowed"] for r in json.loads(capsys.readouterr().out)["results"])


def test_matrix_text_and_html(files, capsys) -> None:
    m, _ = files
    assert main(["policy", "matrix", str(m), "--port", "81/tcp", "--cni", "kindnet"]) == 0
    text = capsys.readouterr().out
    assert "TCP/81" in text and "expected: 3 of 4 connections allowed" in text
    assert main(["policy", "matrix", str(m), "--output", "html", "--cni", "kindnet"]) == 0
    assert capsys.readouterr().out.count("<td") == 4


@pytest.mark.parametrize(("traffic", "needle"), [
    ("- {from: x/a, to: x/zz, port: 80}", "no pod x/zz"),
    ("- {from: x/a, to: x/b, port: 0}", "[0].port: 0 is out of range 1-65535"),
    ("- {from: x/a, to: x/b, prot: 80}", "unknown field 'prot'"),
    ("- {from: x/a, to: x/b, port: 80, protocol: ICMP}", "unsupported protocol 'ICMP'"),
    ("- [from", "invalid YAML"),
])
def test_bad_traffic_is_one_line_on_stderr(files, capsys, traffic, needle) -> None:
    m, t = files
    t.write_text(traffic)
    assert main(["policy", "check", str(m), "--traffic", str(t), "--cni", "kindnet"]) == 1
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and err.startswith("labkit policy: error: ")


def test_bad_manifest_names_file_object_and_field(files, capsys) -> None:
    m, t = files
    m.write_text(MANIFEST.replace("ingress:", "ingres:"))
    assert main(["policy", "check", str(m), "--traffic", str(t), "--cni", "kindnet"]) == 1
    err = capsys.readouterr().err
    assert f"{m}: NetworkPolicy x/only-a: spec.ingres: unknown field 'ingres'" in err


def test_the_readme_example_gives_the_three_outcomes(capsys) -> None:
    example = Path(__file__).resolve().parents[2] / "environments/examples/policy-check"
    assert main(["policy", "check", str(example / "cluster.yaml"), "--traffic",
                 str(example / "traffic.yaml"), "--output", "json"]) == 0
    results = json.loads(capsys.readouterr().out)["results"]
    assert [(r["allowed"], r["denial"]) for r in results] == [
        (True, None), (False, "http-403"), (False, "drop")]
    assert main(["policy", "check", str(example / "cluster.yaml"), "--traffic",
                 str(example / "traffic.yaml"), "--cni", "kindnet"]) == 1
    assert 'no matches for kind "CiliumNetworkPolicy"' in capsys.readouterr().err


def test_the_example_folders_own_header_command_works(capsys, monkeypatch) -> None:
    """The command in cluster.yaml's header comment, as written, from the repository root
    (the folder scan must skip the traffic file that sits in the folder)."""
    root = Path(__file__).resolve().parents[2]
    header = (root / "environments/examples/policy-check/cluster.yaml").read_text()
    lines = [ln.lstrip("# ").rstrip(" \\") for ln in header.splitlines()[1:3]]
    argv = " ".join(lines).split()
    assert argv[:3] == ["labkit", "policy", "check"]
    monkeypatch.chdir(root)
    assert main(argv[1:]) == 0
    out = capsys.readouterr().out
    assert out.count("ALLOW") == 1 and out.count("DENY") == 2


def test_matrix_json_and_explain(files, capsys) -> None:
    m, _ = files
    assert main(["policy", "matrix", str(m), "--output", "json", "--cni", "kindnet",
                 "--port", "81/TCP"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["cni"], data["format"], data["summary"]["allowed"]) == ("kindnet", "cells", 3)
    denied = [c for c in data["cells"] if not c["expected"]["allowed"]]
    assert [(c["from"], c["to"]) for c in denied] == [("x/a", "x/b")]
    assert denied[0]["expected"]["reasons"]
    assert main(["policy", "matrix", str(m), "--port", "81/TCP", "--cni", "kindnet",
                 "--explain"]) == 0
    text = capsys.readouterr().out
    assert "DENY (drop)      x/a -> x/b TCP/81" in text
    assert text.count("ALLOW") == 3 and "isolated" in text
