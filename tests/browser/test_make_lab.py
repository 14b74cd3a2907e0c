"""`make lab` as a learner (or a container, as root) starts it: the URL is printed, the server
answers, and no browser is opened on a machine without a display."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.browser.jupyterlab import ROOT, make_lab

pytestmark = pytest.mark.browser


def _dry_run(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    return subprocess.run(["make", "-n", "lab"], cwd=ROOT, env={**clean, **env}, text=True,
                          capture_output=True, check=True, timeout=60).stdout


def test_make_lab_prints_the_url_and_serves_it(tmp_path) -> None:
    with make_lab(tmp_path) as lab:  # on this machine: as root when the tests run as root
        banner = next(line for line in lab.output if line.startswith("make lab: JupyterLab on"))
        assert f"{lab.base}/lab" in banner
        assert any(line.strip().endswith(lab.url) for line in lab.output)  # Jupyter's own line
        assert f"Serving notebooks from local directory: {lab.root}" in "\n".join(lab.output)


def test_make_lab_flags_follow_the_user_and_the_display() -> None:
    headless = _dry_run()
    assert "--ServerApp.ip=127.0.0.1" in headless and "--ServerApp.port_retries=0" in headless
    assert ("--allow-root" in headless) == (os.getuid() == 0)
    if os.uname().sysname == "Linux":
        assert "--no-browser" in headless
        assert "--no-browser" not in _dry_run(DISPLAY=":0")  # a desktop session opens a tab
