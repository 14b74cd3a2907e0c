"""Against a real Docker engine: after `labkit images load`, the Flannel recipe copies the
bundle's cni-plugins tarball into a node (`docker exec`, `docker cp`), and the
install-cni-plugins script, run in that node with no curl at all, installs `bridge` from it.

The node is a container like kind's (tests/docker/conftest.py), not a Kubernetes node: the
script runs with `docker exec` and the DaemonSet's environment, its hostPath folders being the
node's own /opt/labkit/offline and /opt/cni/bin, exactly the paths the DaemonSet mounts.
"""

from __future__ import annotations

import hashlib
import io
import os
import platform
import subprocess
import tarfile
from pathlib import Path

import pytest

from labkit.cni.flannel import NODE_OFFLINE_DIR, cni_plugins_daemonset, copy_offline_tarball
from labkit.environments import pinned

pytestmark = pytest.mark.docker


def _exec(node: str, *argv: str, env: dict[str, str] | None = None
          ) -> subprocess.CompletedProcess:
    flags = [f"--env={k}={v}" for k, v in (env or {}).items()]
    return subprocess.run(["docker", "exec", *flags, node, *argv], capture_output=True,
                          text=True, check=False, timeout=60)


def _release_tarball() -> bytes:
    """Shaped like the release: ./bridge and friends at the top, a LICENSE among them."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, mode in (("bridge", 0o755), ("host-local", 0o755), ("LICENSE", 0o644)):
            data = f"#!/bin/sh\necho {name}\n".encode()
            info = tarfile.TarInfo(f"./{name}")
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_bundled_tarball_reaches_the_node_and_installs_without_network(node_container):
    node, tools = node_container["name"], node_container["tools"]
    needed = {"uname", "sed", "tar", "gzip", "basename", "cp", "mv", "sha256sum", "cut"}
    if not needed <= set(tools):
        pytest.skip(f"this machine lacks {sorted(needed - set(tools))} for the node image")
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine())
    if arch is None:
        pytest.skip("the script supports amd64 and arm64 nodes only")
    url = pinned("cni_plugins", "tarball").format(arch=arch)
    data = _release_tarball()
    offline = Path(os.environ["LABKIT_HOME"]) / "offline"  # where `images load` puts it
    offline.mkdir(parents=True)
    (offline / url.rsplit("/", 1)[-1]).write_bytes(data)

    assert copy_offline_tarball([node]) == [node]  # real docker exec and docker cp
    copied = _exec(node, "sha256sum", f"{NODE_OFFLINE_DIR}/{url.rsplit('/', 1)[-1]}")
    assert copied.stdout.split()[0] == hashlib.sha256(data).hexdigest()

    ds = cni_plugins_daemonset(pinned("cni_plugins", "tarball"), "curl", "pause",
                               {arch: hashlib.sha256(data).hexdigest()})
    init = ds["spec"]["template"]["spec"]["initContainers"][0]
    env = {e["name"]: e["value"] for e in init["env"]}
    env.update(OFFLINE_DIR=NODE_OFFLINE_DIR, CNI_BIN_DIR="/opt/cni/bin")  # the mounts' sources
    assert _exec(node, "mkdir", "-p", "/opt/cni/bin").returncode == 0
    assert _exec(node, "sh", "-c", "command -v curl").returncode != 0  # no way to download
    out = _exec(node, "sh", "-c", init["command"][2], env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "using the offline bundle's" in out.stdout
    assert sorted(_exec(node, "ls", "/opt/cni/bin").stdout.split()) == ["bridge", "host-local"]
