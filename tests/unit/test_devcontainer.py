"""The dev container (GitHub Codespaces): its file's shape, and every command it runs exists
in this project (scripts, make targets, labkit subcommands), with the doctor's own numbers."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from labkit.cli import build_parser
from labkit.course.doctor import INOTIFY_LIMITS

ROOT = Path(__file__).resolve().parents[2]
DEVCONTAINER = ROOT / ".devcontainer" / "devcontainer.json"
LIFECYCLE = ("onCreateCommand", "postCreateCommand", "postStartCommand", "postAttachCommand")


@pytest.fixture(scope="module")
def config() -> dict:
    return json.loads(DEVCONTAINER.read_text())  # plain JSON: no comments to strip


def _commands(config: dict) -> list[str]:
    """Every shell line the dev container runs: its lifecycle commands and their scripts."""
    lines = []
    for key in LIFECYCLE:
        if key in config:
            value = config[key]
            assert isinstance(value, str), key
            lines.append(value)
            words = shlex.split(value)
            if words[0] == "bash":
                script = ROOT / words[1]
                assert script.is_file(), f"{key} runs {script}, which does not exist"
                lines += [ln.strip() for ln in script.read_text().splitlines()
                          if ln.strip() and not ln.lstrip().startswith("#")]
    return lines


def _make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M))


def test_shape(config) -> None:
    assert set(config) >= {"name", "image", "features", "hostRequirements", "forwardPorts"}
    assert "ghcr.io/devcontainers/features/docker-in-docker:2" in config["features"]
    assert config["image"].startswith("mcr.microsoft.com/devcontainers/python:3.1")
    req = config["hostRequirements"]
    # the ClusterMesh lab runs two clusters: about 12-16 GB (ground truth §2, an estimate)
    assert req["cpus"] >= 4 and int(req["memory"].removesuffix("gb")) >= 16
    make_port = re.search(r"^LAB_PORT \?= (\d+)$", (ROOT / "Makefile").read_text(), re.M)
    assert make_port and config["forwardPorts"] == [int(make_port.group(1))]
    assert config["portsAttributes"][make_port.group(1)]["label"] == "JupyterLab"
    path = config["remoteEnv"]["PATH"]
    assert "${containerWorkspaceFolder}/.venv/bin" in path and "/.cache/labkit/bin" in path


def test_every_command_exists_in_the_project(config) -> None:
    targets, parser = _make_targets(), build_parser()
    seen = {"make": 0, "labkit": 0}
    for line in _commands(config):
        words = shlex.split(line.split("||")[0].split("&&")[0].rstrip(" \\"))
        if not words:
            continue
        if words[0] == "make":
            seen["make"] += 1
            assert set(w for w in words[1:] if "=" not in w) <= targets, line
        if words[0].endswith("labkit"):
            seen["labkit"] += 1
            assert words[0] in (".venv/bin/labkit", "labkit"), line
            parser.parse_args(words[1:])  # exits (SystemExit) on an unknown subcommand
        if words[0] == "bash" and len(words) > 1:
            assert (ROOT / words[1]).is_file(), line
    assert seen["make"] >= 2 and seen["labkit"] >= 2  # setup + lab; tools install + doctor


def test_scripts_parse_and_raise_the_doctors_inotify_limits(config) -> None:
    for script in (ROOT / ".devcontainer").glob("*.sh"):
        subprocess.run(["bash", "-n", str(script)], check=True, timeout=30)
    sysctl = next(ln for ln in _commands(config) if "sysctl" in ln)
    for key, value in INOTIFY_LIMITS.items():
        assert f"fs.inotify.{key}={value}" in sysctl
