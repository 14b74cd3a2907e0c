"""``labkit doctor``: can this machine run the course on real kind clusters?

Each check returns a :class:`Check` with a status (ok / warn / fail / skip) and,
when it is not ok, the fix. Nothing here changes the machine. External programs
run only through :mod:`labkit.tools.process`; ``/proc`` and ``/sys`` are read as
files. The machine is reached through a :class:`Host`, so tests can hand in a
fake one built from recorded outputs.

Requirements come from ../shared/reference/cni-ground-truth.md: inotify limits
(kind known issues), WireGuard in the host kernel (Cilium removed its userspace
fallback in 1.17), Docker Desktop hiding LoadBalancer IPs from the host.
"""

from __future__ import annotations

import json
import os
import platform
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from labkit.display import Table, escape
from labkit.display.render import Rendered
from labkit.environments import load_versions as stage_versions
from labkit.errors import ToolError, ToolNotFound
from labkit.tools import process

GIB = 1024**3
MIN_MEMORY_GIB = 4  # below this even one small kind cluster struggles
# An unsourced estimate for a 3-4 node Cilium cluster with Hubble (ground truth §2).
GOOD_MEMORY_GIB = 8
INOTIFY_LIMITS = {"max_user_watches": 524288, "max_user_instances": 512}
STATUSES = ("ok", "warn", "fail", "skip", "info")


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown check status {self.status!r}")


@dataclass
class Host:
    """How doctor sees the machine; every field can be replaced in tests."""

    run: Callable[..., process.Result] = process.run
    which: Callable[[str], str | None] = process.which
    read_text: Callable[[str], str | None] = field(default=lambda p: _read(p))
    exists: Callable[[str], bool] = os.path.exists
    system: str = field(default_factory=platform.system)
    machine: str = field(default_factory=platform.machine)
    node: str = field(default_factory=platform.node)  # names the laptop in a room summary
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def load_versions() -> dict[str, Any]:
    """environments/versions.yaml, read where every other part of labkit reads it."""
    return stage_versions()


# -- helpers ----------------------------------------------------------------------------------
_VERSION = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?")


def parse_version(text: str) -> tuple[int, int, int] | None:
    m = _VERSION.search(text or "")
    if not m:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def _fmt(v: tuple[int, int, int]) -> str:
    return "v{}.{}.{}".format(*v)


def _try(host: Host, argv: list[str], timeout: float = 20) -> tuple[process.Result | None, str]:
    """Run a probe command; return (result, error text) instead of raising."""
    try:
        return host.run(argv, timeout=timeout, check=False), ""
    except ToolNotFound as exc:
        return None, exc.message
    except ToolError as exc:
        return None, exc.message


# -- Docker -----------------------------------------------------------------------------------
def docker_info(host: Host) -> tuple[Check, dict[str, Any]]:
    """Is the Docker daemon reachable? Returns the check and ``docker info`` as a dict."""
    fix_start = (
        "start Docker: `sudo systemctl start docker` (Linux Docker Engine) or open Docker "
        "Desktop; make sure your user may use it (`sudo usermod -aG docker $USER`, then log "
        "in again)"
    )
    if host.which("docker") is None:
        return Check(
            "docker", "fail", "the docker CLI is not installed",
            process.INSTALL_HINTS["docker"],
        ), {}
    res, err = _try(host, ["docker", "info", "--format", "{{json .}}"])
    if res is None:
        return Check("docker", "fail", f"docker info did not answer: {err}", fix_start), {}
    info: dict[str, Any] = {}
    try:
        parsed = json.loads(res.stdout.strip() or "{}")
        info = parsed if isinstance(parsed, dict) else {}
    except json.JSONDecodeError:
        info = {}
    errors = [str(e) for e in info.get("ServerErrors") or []]
    if res.returncode != 0 or errors or not info.get("ServerVersion"):
        why = "; ".join(errors) or res.stderr.strip().splitlines()[-1:] or ["no server answer"]
        text = why if isinstance(why, str) else why[0]
        return Check("docker", "fail", f"the Docker daemon is not reachable: {text}",
                     fix_start), {}
    detail = (
        f"Docker {info.get('ServerVersion')} on {info.get('OperatingSystem', '?')}, "
        f"{info.get('NCPU', '?')} CPUs, {info.get('MemTotal', 0) / GIB:.1f} GiB"
    )
    return Check("docker", "ok", detail), info


def docker_desktop(info: Mapping[str, Any]) -> Check:
    """Docker Desktop (macOS, Windows *and* Linux) runs containers in a VM: LB IPs stay inside."""
    if not info:
        return Check("docker-desktop", "skip", "Docker is not reachable, nothing to inspect")
    os_name = str(info.get("OperatingSystem", ""))
    kernel = str(info.get("KernelVersion", ""))
    name = str(info.get("Name", ""))
    if "Docker Desktop" in os_name or name == "docker-desktop" or "linuxkit" in kernel:
        return Check(
            "docker-desktop", "warn",
            f"Docker Desktop detected ({os_name or name}, kernel {kernel}): containers run in a "
            "VM, so this host cannot reach LoadBalancer IPs on the kind network",
            "nothing to install: lab 03 reaches LoadBalancer services from a container on the "
            "`kind` Docker network instead of from the host, and says so",
        )
    return Check("docker-desktop", "ok",
                 f"native Docker engine ({os_name}): LoadBalancer IPs are reachable from the host")


# -- CLIs -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ToolSpec:
    name: str
    argv: tuple[str, ...]
    pin_key: str  # key in versions.yaml, "" if not pinned
    needed_for: str
    missing_status: str  # "fail" when the kind backend cannot work without it


TOOLS = (
    ToolSpec("kind", ("kind", "version"), "kind", "the kind backend (every lab on real clusters)",
             "fail"),
    ToolSpec("kubectl", ("kubectl", "version", "--client", "-o", "json"), "kubernetes",
             "exploring clusters yourself (labkit uses the Python client)", "warn"),
    ToolSpec("helm", ("helm", "version", "--short"), "helm", "the Cilium labs (04 onwards)",
             "warn"),
    ToolSpec("cilium", ("cilium", "version", "--client"), "cilium_cli",
             "the Cilium labs (04 onwards)", "warn"),
    ToolSpec("hubble", ("hubble", "version"), "hubble", "the Hubble lab (07)", "warn"),
)


def tool_version(spec: ToolSpec, output: str) -> tuple[int, int, int] | None:
    if spec.name == "kubectl":
        try:
            return parse_version(json.loads(output)["clientVersion"]["gitVersion"])
        except (json.JSONDecodeError, KeyError, TypeError):
            return parse_version(output)
    if spec.name == "cilium":
        line = next((ln for ln in output.splitlines() if ln.startswith("cilium-cli")), output)
        return parse_version(line)
    return parse_version(output)


def install_hint(name: str, pinned_text: str) -> str:
    """How to install ``name`` at the pinned version, on every platform the course supports:
    ``labkit tools install``, which checks the download against the upstream SHA-256 pinned in
    versions.yaml (never an unverified ``curl``) and puts it where doctor and the kind backend
    look first."""
    pin = f" {pinned_text}" if pinned_text else ""
    extra = " (or set LABKIT_KIND to a kind binary you already have)" if name == "kind" else ""
    return (f"`labkit tools install {name}` (the pinned{pin}, checksum-verified, into "
            f"$LABKIT_HOME/bin){extra}")


def check_tool(host: Host, spec: ToolSpec, versions: Mapping[str, Any]) -> Check:
    pinned_text = str((versions.get(spec.pin_key) or {}).get("version", "")) if spec.pin_key else ""
    pinned = parse_version(pinned_text)
    hint = install_hint(spec.name, pinned_text if pinned else "")
    if host.which(spec.name) is None:
        return Check(spec.name, spec.missing_status,
                     f"not installed; needed for {spec.needed_for}", hint)
    res, err = _try(host, list(spec.argv))
    if res is None or res.returncode != 0:
        why = err or (res.stderr.strip() if res else "") or "no output"
        return Check(spec.name, "warn", f"installed but `{' '.join(spec.argv)}` failed: {why}",
                     hint)
    found = tool_version(spec, res.stdout)
    if found is None:
        return Check(spec.name, "warn", f"installed, version not recognised: "
                     f"{res.stdout.strip()[:80]!r}", hint)
    if pinned is None:
        return Check(spec.name, "ok", f"{_fmt(found)} (not pinned by the course)")
    if spec.name == "kubectl":
        # kubectl supports one minor version of skew either way (Kubernetes version-skew policy).
        if found[0] == pinned[0] and abs(found[1] - pinned[1]) <= 1:
            return Check(spec.name, "ok", f"{_fmt(found)}, within one minor of the "
                         f"cluster's {pinned_text}")
        return Check(spec.name, "warn", f"{_fmt(found)} is more than one minor away from "
                     f"the cluster's {pinned_text}", hint)
    if found == pinned:
        return Check(spec.name, "ok", f"{_fmt(found)} (pinned)")
    direction = "older" if found < pinned else "newer"
    return Check(spec.name, "warn", f"{_fmt(found)} is {direction} than the pinned "
                 f"{pinned_text}; the course is tested with the pinned one", hint)


# -- kernel and resources ---------------------------------------------------------------------
def memory(host: Host, info: Mapping[str, Any]) -> Check:
    total = 0
    source = ""
    if info.get("MemTotal"):
        total, source = int(info["MemTotal"]), "memory Docker can use"
    else:
        text = host.read_text("/proc/meminfo") or ""
        m = re.search(r"^MemTotal:\s+(\d+)\s+kB", text, re.M)
        if m:
            total, source = int(m.group(1)) * 1024, "host memory"
    if not total:
        return Check("memory", "skip", "could not read the memory size")
    gib = total / GIB
    fix = ("give Docker more memory (Docker Desktop: Settings > Resources), or close other "
           "programs; the sim backend needs none of it")
    if gib < MIN_MEMORY_GIB:
        return Check("memory", "fail", f"{gib:.1f} GiB {source}: too little for a kind cluster",
                     fix)
    if gib < GOOD_MEMORY_GIB:
        return Check("memory", "warn", f"{gib:.1f} GiB {source}: enough for labs 01-03; the "
                     f"Cilium labs want about {GOOD_MEMORY_GIB} GiB (an estimate)", fix)
    return Check("memory", "ok", f"{gib:.1f} GiB {source}")


def inotify(host: Host) -> Check:
    if host.system != "Linux":
        return Check("inotify", "skip", f"{host.system}: Docker's VM manages these limits")
    found: dict[str, int] = {}
    for key in INOTIFY_LIMITS:
        text = host.read_text(f"/proc/sys/fs/inotify/{key}")
        if text is None or not text.strip().isdigit():
            return Check("inotify", "skip", f"could not read fs.inotify.{key}")
        found[key] = int(text.strip())
    low = {k: v for k, v in found.items() if v < INOTIFY_LIMITS[k]}
    shown = ", ".join(f"{k}={v}" for k, v in found.items())
    if not low:
        return Check("inotify", "ok", shown)
    settings = " ".join(f"fs.inotify.{k}={INOTIFY_LIMITS[k]}" for k in low)
    return Check(
        "inotify", "fail",
        f"{shown}: too low, kind pods fail with 'too many open files' once several clusters run",
        f"sudo sysctl -w {settings}  (to keep it after a reboot, write "
        + " and ".join(f"`fs.inotify.{k} = {INOTIFY_LIMITS[k]}`" for k in low)
        + ", one per line, in /etc/sysctl.d/99-kind.conf)",
    )


def wireguard(host: Host, info: Mapping[str, Any]) -> Check:
    fix = ("load it with `sudo modprobe wireguard` (built into Linux >= 5.6; older kernels need "
           "the wireguard-dkms package); without it the encryption lab (06, planned) has to use "
           "IPsec instead of WireGuard")
    if info and ("linuxkit" in str(info.get("KernelVersion", ""))
                 or "Docker Desktop" in str(info.get("OperatingSystem", ""))):
        return Check("wireguard", "info", "kind nodes use Docker Desktop's VM kernel "
                     f"({info.get('KernelVersion', '?')}); lab 06 (planned) checks WireGuard there")
    if host.system != "Linux":
        return Check("wireguard", "skip", f"{host.system}: the kernel that matters is Docker's VM")
    if host.exists("/sys/module/wireguard"):
        return Check("wireguard", "ok", "the wireguard module is loaded")
    res, _ = _try(host, ["modinfo", "-F", "version", "wireguard"], timeout=10)
    if res is not None and res.returncode == 0:
        return Check("wireguard", "ok", "the wireguard module is available (loaded on demand)")
    return Check("wireguard", "warn", "no wireguard module found in this kernel "
                 f"({platform.release()})", fix)


# -- the report -------------------------------------------------------------------------------
@dataclass(repr=False)
class DoctorReport(Rendered):
    checks: list[Check]
    backend: str
    reason: str
    versions: dict[str, str] = field(default_factory=dict)
    host: str = ""

    @property
    def ok(self) -> bool:
        return not any(c.status == "fail" for c in self.checks)

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def table(self) -> Table:
        table = Table(("check", "status", "result"), title="labkit doctor")
        for c in self.checks:
            table.add(c.name, c.status, c.detail + (f"\nfix: {c.fix}" if c.fix else ""))
        table.notes.append(f"backend for BACKEND='auto': {self.backend} ({self.reason})")
        return table

    def to_text(self) -> str:
        return self.table().to_text()

    def _repr_html_(self) -> str:
        return self.table()._repr_html_() + (
            f"<p><b>backend:</b> {escape(self.backend)}</p>"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "ok": self.ok,
            "backend": self.backend,
            "reason": self.reason,
            "checks": [asdict(c) for c in self.checks],
            "versions": dict(self.versions),
        }


def choose_backend(checks: list[Check], env: Mapping[str, str]) -> tuple[str, str]:
    """What ``backend="auto"`` means on this machine, and why (mirrors the Lab's rule)."""
    forced = env.get("LABKIT_BACKEND", "").strip()
    if forced and forced != "auto":
        return forced, f"LABKIT_BACKEND={forced} is set"
    by_name = {c.name: c for c in checks}
    blockers = [n for n in ("docker", "kind") if by_name.get(n) and by_name[n].status == "fail"]
    if blockers:
        return "sim", (f"{' and '.join(blockers)} not usable, so results will be SIMULATED "
                       "by labkit's in-memory model")
    return "kind", "Docker answers and kind is installed: real kind clusters"


def pinned_versions(versions: Mapping[str, Any]) -> dict[str, str]:
    """Flat ``component -> version`` of versions.yaml, for display."""
    out: dict[str, str] = {}
    for key, value in versions.items():
        if isinstance(value, dict) and "version" in value:
            out[key] = str(value["version"])
        if isinstance(value, dict) and "node_image" in value:
            out[f"{key} node image"] = str(value["node_image"])
    return out


def run_doctor(host: Host | None = None, versions: Mapping[str, Any] | None = None
               ) -> DoctorReport:
    host = host or Host()
    versions = load_versions() if versions is None else versions
    docker, info = docker_info(host)
    checks = [docker, docker_desktop(info)]
    checks += [check_tool(host, spec, versions) for spec in TOOLS]
    checks += [memory(host, info), inotify(host), wireguard(host, info)]
    backend, reason = choose_backend(checks, host.env)
    return DoctorReport(checks, backend, reason, pinned_versions(versions), host.node)
