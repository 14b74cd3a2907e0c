"""The simulated cluster's state file: locked read-modify-write, validated on load, and
``down`` that works on a corrupt file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from labkit import Lab
from labkit.backends.sim import store
from labkit.backends.sim.backend import CLUSTERS
from labkit.cli import main as cli
from labkit.errors import ClusterError

ROOT = Path(__file__).resolve().parents[2]

WRITER = """
import sys
from labkit import Lab
lab = Lab("flannel", backend="sim")
for i in range(int(sys.argv[2])):
    lab.apply({"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": f"{sys.argv[1]}-{i}"}})
"""


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABKIT_PROGRESS", "off")
    CLUSTERS.clear()


def test_two_processes_applying_to_one_cluster_lose_no_write() -> None:
    Lab("flannel", backend="sim").up()
    env = {**os.environ, "LABKIT_PROGRESS": "off"}
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, name, "40"], env=env, cwd=ROOT,
                                stderr=subprocess.PIPE, text=True) for name in ("a", "b")]
    for w in writers:
        assert w.wait(timeout=120) == 0, w.stderr.read() if w.stderr else ""
        if w.stderr:
            w.stderr.close()
    CLUSTERS.clear()
    names = set(Lab("flannel", backend="sim").impl.state().namespaces)  # type: ignore[attr-defined]
    assert {f"{w}-{i}" for w in "ab" for i in range(40)} <= names


def test_a_change_waits_for_another_process_holding_the_lock() -> None:
    lab = Lab("flannel", backend="sim")
    lab.up()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom labkit.backends.sim import store\n"
         "with store.locked('cni-lab'):\n    print('held', flush=True)\n    time.sleep(1.5)"],
        env=os.environ.copy(), cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    import time

    started = time.monotonic()
    lab.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "late"}})
    assert time.monotonic() - started > 0.5  # it waited for the other process
    holder.wait(timeout=30)
    holder.stdout.close()


@pytest.mark.parametrize(("content", "why"), [
    ("[" * 100_000 + "]" * 100_000, "nests too deeply"),
    ('{"format": "labkit-sim-cluster/v1", "x": Infinity}', "Infinity is not JSON"),
    (b"\xff\xfe binary", "not UTF-8 text"),
    ('{"format": "labkit-sim-cluster/v2"}', "this labkit reads 'labkit-sim-cluster/v1'"),
])
def test_a_corrupt_state_file_is_one_clear_error_and_down_removes_it(
        content: str | bytes, why: str, capsys: pytest.CaptureFixture[str]) -> None:
    Lab("flannel", backend="sim").up()
    CLUSTERS.clear()
    path = store.path_for("cni-lab")
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(ClusterError, match=why) as err:
        Lab("flannel", backend="sim").status()
    assert "labkit down flannel --backend sim" in err.value.hint
    assert cli(["down", "flannel", "--backend", "sim"]) == 0
    assert "cluster 'cni-lab' deleted (sim)" in capsys.readouterr().out
    assert not path.exists()


@pytest.mark.parametrize(("edit", "why"), [
    (lambda d: d["pods"][0]["pod"].update(ip=12), r"pods\[0\]\.pod\.ip: expected str, got int"),
    (lambda d: d["nodes"][0].update(ready="yes"), r"nodes\[0\]\.ready: expected bool"),
    (lambda d: d.update(namespaces={"a": 1}), "namespaces: expected a list"),
    (lambda d: d["namespaces"][0].update(labels=[1]), r"namespaces\[0\]\.labels: expected"),
    (lambda d: d.update(generation=True), "generation: expected int"),
    (lambda d: d["nodes"].append("node"), r"nodes\[3\]: expected an object, got str"),
])
def test_wrong_types_in_the_state_file_are_refused_on_load(edit, why) -> None:  # type: ignore[no-untyped-def]
    Lab("flannel", backend="sim").up()
    CLUSTERS.clear()
    path = store.path_for("cni-lab")
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    with pytest.raises(ClusterError, match=why):
        Lab("flannel", backend="sim").status()


def test_a_fifo_in_place_of_the_state_file_does_not_hang(
        capsys: pytest.CaptureFixture[str]) -> None:
    path = store.path_for("cni-lab")
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    with pytest.raises(ClusterError, match="is not a regular file"):
        Lab("flannel", backend="sim").status()
    assert cli(["down", "flannel", "--backend", "sim"]) == 0
    assert not path.exists()
