"""`make lab` started for a test: JupyterLab on a free loopback port, over a copy of the
notebooks (runs save outputs; the repository's notebooks stay clean), on the sim backend."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
URL = re.compile(r"(http://127\.0\.0\.1:\d+/lab\?token=[0-9a-f]+)")


@dataclass
class RunningLab:
    url: str  # with its token, as Jupyter prints it
    base: str
    token: str
    root: Path
    output: list[str]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def make_lab(tmp: Path, timeout: float = 90) -> Iterator[RunningLab]:
    root = tmp / "notebooks"
    shutil.copytree(ROOT / "notebooks", root)
    port = free_port()
    env = {**os.environ, "LABKIT_BACKEND": "sim", "LABKIT_HOME": str(tmp / "labkit-home"),
           "JUPYTER_CONFIG_DIR": str(tmp / "jupyter-config"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp / "lab-settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "lab-workspaces")}
    for name in ("LABKIT_PROGRESS", "DISPLAY", "WAYLAND_DISPLAY"):
        env.pop(name, None)  # widgets in the kernel; a headless machine, like CI
    # JupyterLab 4 renders only the cells in view ("windowing"): render them all, so the
    # test sees every output.
    settings = tmp / "lab-settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    log = tmp / "make-lab.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(["make", "-s", "lab", f"LAB_PORT={port}", f"LAB_DIR={root}"],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while True:
            text = log.read_text(errors="replace")
            found = URL.search(text)
            if found:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"make lab printed no URL:\n{text[-3000:]}")
            time.sleep(0.3)
        url = found.group(1)
        base, token = url.split("/lab?token=")
        with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=10) as r:
            assert r.status == 200
        yield RunningLab(url, base, token, root, text.splitlines())
    finally:
        os.killpg(proc.pid, 15)  # make and the Jupyter server it started, only those
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(timeout=10)
