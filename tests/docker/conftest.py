"""Fixtures for tests against a real Docker engine (skipped, with the reason, without one).

A bridge network created the way kind creates its ``kind`` network (IPv4 + IPv6,
masquerade) and node-like containers on it, labelled like kind's nodes. Nothing
is pulled: the image is built from this machine's binaries (below).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest

# -- a tiny image from this machine's binaries: no image is pulled -----------------------------
# A shell, a few coreutils, `ip` and `iptables` (when the host has them) with the shared
# libraries `ldd` reports, packed into a tar that `docker import` turns into an image.

CORE = ("sh", "rm", "ls", "cat", "mkdir", "touch", "sleep",
        # what the install-cni-plugins script needs (busybox has them in the real pod)
        "uname", "sed", "tar", "gzip", "basename", "cp", "mv", "sha256sum", "cut")
XTABLES_MULTI = ("xtables-nft-multi", "xtables-legacy-multi")
LIB_DIRS = "/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu:/lib64:/usr/lib64:/lib:/usr/lib"


def _libs(binary: str) -> dict[str, str]:
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=False).stdout
    found = {}
    for m in re.finditer(r"(/\S+)\s+\(0x", out):
        found[m.group(1)] = os.path.realpath(m.group(1))
    return found


def host_tools() -> dict[str, str]:
    """Tool name -> path on this machine, for the tools found."""
    tools = {}
    for name in (*CORE, "ip"):
        path = shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
        if path:
            tools[name] = path
    ipt = shutil.which("iptables", path="/usr/sbin:/usr/bin:/sbin:/bin")
    if ipt and os.path.basename(os.path.realpath(ipt)) in XTABLES_MULTI:
        tools["iptables"] = ipt
    return tools


def build_tar(tools: dict[str, str]) -> bytes:
    files: dict[str, str] = {}
    for name, path in tools.items():
        real = os.path.realpath(path)
        if name == "iptables":  # one multi-call binary; the names are symlinks to it
            files[f"/usr/sbin/{os.path.basename(real)}"] = real
        else:
            files[f"/usr/bin/{name}"] = real
        files.update(_libs(real))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in ("bin", "etc/cni/net.d", "run", "tmp", "usr/bin", "usr/sbin"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for name, real in sorted(files.items()):
            tar.add(real, arcname=name.lstrip("/"), recursive=False)
        if "iptables" in tools:
            multi = os.path.basename(os.path.realpath(tools["iptables"]))
            for link in ("iptables", "iptables-save", "iptables-restore"):
                info = tarfile.TarInfo(f"usr/sbin/{link}")
                info.type, info.linkname = tarfile.SYMTYPE, multi
                tar.addfile(info)
            xt = Path("/usr/lib/x86_64-linux-gnu/xtables")
            if xt.is_dir():
                tar.add(str(xt), arcname=str(xt).lstrip("/"))
        info = tarfile.TarInfo("bin/sh")
        info.type, info.linkname = tarfile.SYMTYPE, "/usr/bin/sh"
        tar.addfile(info)
    return buf.getvalue()


def import_image(repo: str = "labkit-test-node") -> tuple[str, dict[str, str]]:
    """Import the image (once per content) and return its tag and the tools it holds."""
    tools = host_tools()
    data = build_tar(tools)
    tag = f"{repo}:{hashlib.sha256(data).hexdigest()[:12]}"
    have = subprocess.run(["docker", "image", "inspect", tag], capture_output=True, check=False)
    if have.returncode != 0:
        subprocess.run(
            ["docker", "import",
             "-c", "ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin",
             "-c", f"ENV LD_LIBRARY_PATH={LIB_DIRS}",
             "-", tag],
            input=data, capture_output=True, check=True, timeout=120,
        )
    return tag, tools


def _docker(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check,
                          timeout=timeout)


@pytest.fixture(scope="session")
def docker_engine() -> None:
    if not shutil.which("docker"):
        pytest.skip("no docker CLI on this machine (CI installs docker.io in .ci/run)")
    try:
        info = _docker("info", "--format", "{{.ServerVersion}}", check=False, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.skip("the Docker engine did not answer `docker info` within 20s")
    if info.returncode != 0 or not info.stdout.strip():
        pytest.skip(f"no running Docker engine: {info.stderr.strip()[:200]}")


@pytest.fixture(scope="session")
def node_image(docker_engine) -> tuple[str, dict[str, str]]:
    if shutil.which("ldd") is None:
        pytest.skip("ldd is needed to build the local test image")
    try:
        return import_image()
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"could not import the local test image: {exc.stderr!r}")


@pytest.fixture(scope="session")
def kind_like_network(docker_engine):
    """A dual-stack bridge network like kind's; its IPv4 subnet is picked by Docker."""
    name = f"labkit-test-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    v6 = f"fc00:f853:ccd:{int(uuid.uuid4().hex[:4], 16):x}::/64"
    made = _docker("network", "create", "--driver", "bridge", "--ipv6", "--subnet", v6,
                   "-o", "com.docker.network.bridge.enable_ip_masquerade=true",
                   "-o", "com.docker.network.driver.mtu=1500", name, check=False)
    if made.returncode != 0:  # engines without IPv6 support: IPv4 only
        made = _docker("network", "create", "--driver", "bridge", name, check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot create a bridge network: {made.stderr.strip()[:200]}")
    yield name
    _docker("network", "rm", name, check=False)


@pytest.fixture
def node_container(node_image, kind_like_network, request):
    """A running node-like container on the kind-like network, removed afterwards.

    kind's nodes are privileged; NET_ADMIN is enough for ip and iptables, and works
    where the engine may not grant full privileges (nested or sandboxed engines).
    """
    image, tools = node_image
    cluster = f"labkit-{uuid.uuid4().hex[:6]}"
    name = f"{cluster}-worker"
    started = _docker("run", "-d", "--cap-add", "NET_ADMIN", "--name", name,
                      "--network", kind_like_network,
                      "--label", f"io.x-k8s.kind.cluster={cluster}",
                      image, "sleep", "600", check=False)
    if started.returncode != 0:
        pytest.skip(f"cannot start a container: {started.stderr.strip()[:200]}")
    yield {"name": name, "cluster": cluster, "tools": tools, "network": kind_like_network}
    _docker("rm", "-f", name, check=False)
