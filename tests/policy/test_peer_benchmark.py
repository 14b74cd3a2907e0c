"""benchmarks/peer.py reads both tools' answers the same way (parsing only: the peer
itself is installed and run by the script, never by the test suite)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from labkit.cli import main

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))
from peer import allows, labkit_pairs, nca_pairs  # noqa: E402


@pytest.mark.parametrize(("conns", "port", "protocol", "want"), [
    ("All connections", 80, "TCP", True),
    ("{protocols:TCP,dst_ports:5432}", 80, "TCP", False),
    ("{protocols:TCP,dst_ports:80,5432}", 80, "TCP", True),
    ("{protocols:TCP,dst_ports:70-90}", 80, "TCP", True),
    ("{protocols:UDP,dst_ports:80}", 80, "TCP", False),
    ("{protocols:UDP,dst_ports:53},{protocols:TCP,dst_ports:80}", 80, "TCP", True),
    ("{protocols:TCP,SCTP}", 80, "TCP", True),
])
def test_nca_connection_sets(conns: str, port: int, protocol: str, want: bool) -> None:
    assert allows(conns, port, protocol) is want


def test_both_readers_agree_on_labkit_output_in_either_json_form(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from policy_engine import emit_yaml

    emit_yaml(tmp_path, 40, 20, "kindnet", pod_ipblocks=False)
    assert main(["policy", "matrix", str(tmp_path), "--cni", "kindnet", "--output",
                 "json"]) == 0
    cells = capsys.readouterr().out
    pairs = labkit_pairs(cells)
    assert 0 < len(pairs) < 40 * 39 and all(s != d for s, d in pairs)
    from labkit.matrix import ConnectivityMatrix
    from labkit.policy import Engine, build_state, load_objects

    engine = Engine(build_state(load_objects([tmp_path])), "kindnet")
    pods = sorted(engine.state.pods)
    rows = ConnectivityMatrix.expected(engine, pods, pods)
    import labkit.matrix

    monkeypatch.setattr(labkit.matrix, "COMPACT_ABOVE", 0)  # the rows form, as at scale
    assert '"format": "rows"' in rows.to_json()
    assert labkit_pairs(rows.to_json()) == pairs
    nca_text = "\n".join(
        [f"{s} => {d} : {{protocols:TCP,dst_ports:80}}" for s, d in sorted(pairs)]
        + ["ns0/x => 0.0.0.0-255.255.255.255 : All connections", "a warning line"])
    assert nca_pairs(nca_text, set(pods)) == pairs
