"""The ``labkit`` command line: parsing, exit statuses, one-line errors, lifecycle verbs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import labkit.cli as cli
from labkit.course.doctor import Check, DoctorReport
from labkit.errors import ClusterError


class FakeLab:
    instances: list[FakeLab] = []

    def __init__(self, stage, backend="auto"):
        self.stage, self.backend = stage, "sim" if backend == "auto" else backend
        self.simulated = self.backend == "sim"
        self.cluster_name = "cni-lab" if stage != "mesh" else "cni-lab-2"
        self.calls: list[str] = []
        self.present = stage != "absent"
        FakeLab.instances.append(self)

    def exists(self):
        return self.present

    def up(self):
        self.calls.append("up")

    def down(self):
        self.calls.append("down")

    def status(self):
        class Status:
            def to_text(self):
                return "nodes: 3 NotReady"

            def to_json(self):
                return json.dumps({"nodes": 3})

        return Status()


@pytest.fixture
def fake_lab(monkeypatch):
    FakeLab.instances = []
    monkeypatch.setattr(cli, "_lab", lambda stage, backend: FakeLab(stage, backend))
    return FakeLab


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for command in ("doctor", "up", "down", "status", "run"):
        assert command in out


def test_bad_backend_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["run", "--backend", "minikube"])
    assert exit_.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize(("status", "code"), [("ok", 0), ("warn", 0), ("fail", 1)])
def test_doctor_exit_status_and_outputs(monkeypatch, capsys, status, code):
    report = DoctorReport([Check("docker", status, "detail", "the fix")], "sim", "why")
    monkeypatch.setattr("labkit.course.doctor.run_doctor", lambda: report)
    assert cli.main(["doctor"]) == code
    assert "docker" in capsys.readouterr().out
    assert cli.main(["doctor", "--output", "json"]) == code
    assert json.loads(capsys.readouterr().out)["checks"][0]["status"] == status
    cli.main(["doctor", "--output", "html"])
    assert capsys.readouterr().out.startswith("<h4>")


def test_up_status_down(fake_lab, capsys):
    assert cli.main(["up", "flannel", "--backend", "sim"]) == 0
    captured = capsys.readouterr()
    assert "cluster 'cni-lab' for stage 'flannel' is up (sim)" in captured.out
    assert "SIMULATED cluster, saved under" in captured.err  # say what sim means, and where
    assert cli.main(["status", "flannel", "--output", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"nodes": 3}
    assert cli.main(["down", "flannel", "--backend", "kind"]) == 0
    assert [lab.calls for lab in fake_lab.instances] == [["up"], [], ["down"]]


def test_down_of_a_missing_cluster_says_so(fake_lab, capsys):
    assert cli.main(["down", "absent", "--backend", "sim"]) == 0
    assert fake_lab.instances[0].calls == []
    assert "not found (sim): nothing to delete" in capsys.readouterr().out


def test_down_all_deletes_each_cluster_once(fake_lab, monkeypatch, capsys):
    monkeypatch.setattr(cli, "_all_stages", lambda: ["cilium", "flannel", "mesh"])
    assert cli.main(["down", "--all", "--backend", "kind"]) == 0
    downs = [lab.stage for lab in fake_lab.instances if lab.calls == ["down"]]
    assert downs == ["cilium", "mesh"]  # flannel shares cilium's cluster name: deleted once
    assert capsys.readouterr().out.count("deleted") == 2


def test_down_needs_a_stage_or_all(fake_lab, capsys):
    assert cli.main(["down"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("labkit down: error: which cluster?") and "--all" in err


def test_labkit_errors_are_one_line_with_hint(monkeypatch, capsys):
    def refuse(stage, backend):
        raise ClusterError("context 'prod-eu' is not a lab cluster", hint="switch context")

    monkeypatch.setattr(cli, "_lab", refuse)
    assert cli.main(["status"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == ("labkit status: error: context 'prod-eu' is not a lab cluster "
                           "(hint: switch context)")


def test_bad_run_parameter_is_reported(capsys):
    assert cli.main(["run", "--backend", "sim", "-p", "oops"]) == 1
    assert "bad parameter 'oops'" in capsys.readouterr().err


def test_console_entry_point_runs():
    proc = subprocess.run([sys.executable, "-m", "labkit.cli", "down"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr


def test_policy_commands_are_registered(capsys):
    with pytest.raises(SystemExit):
        cli.main(["policy", "--help"])
    out = capsys.readouterr().out
    assert "check" in out and "matrix" in out
