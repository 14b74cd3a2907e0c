"""labkit doctor against fake machines built from recorded tool outputs.

Output shapes: `docker info` fields as printed by Docker Desktop (OperatingSystem
"Docker Desktop", a linuxkit kernel) and by a native engine; `kind version`
("kind vX go... os/arch"); `cilium version --client` (cilium/cilium-cli#1310).
"""

from __future__ import annotations

import json

import pytest

from labkit.course.doctor import (
    TOOLS,
    Host,
    check_tool,
    choose_backend,
    docker_desktop,
    docker_info,
    inotify,
    load_versions,
    memory,
    run_doctor,
    wireguard,
)
from labkit.errors import ToolError, ToolNotFound
from labkit.tools.process import Result

VERSIONS = {
    "kind": {"version": "v0.33.0"},
    "kubernetes": {"version": "v1.36.4"},
    "cilium_cli": {"version": "v0.20.0"},
    "hubble": {"version": "v1.19.4"},
}
NATIVE = {"ServerVersion": "28.2.2", "OperatingSystem": "Ubuntu 24.04 LTS", "NCPU": 8,
          "MemTotal": 16 * 1024**3, "KernelVersion": "6.8.0-45-generic", "Name": "box"}
DESKTOP = {"ServerVersion": "27.3.1", "OperatingSystem": "Docker Desktop", "NCPU": 4,
           "MemTotal": int(3.8 * 1024**3), "KernelVersion": "5.10.104-linuxkit",
           "Name": "docker-desktop"}
GOOD_PROC = {
    "/proc/sys/fs/inotify/max_user_watches": "524288\n",
    "/proc/sys/fs/inotify/max_user_instances": "512\n",
    "/proc/meminfo": "MemTotal:       32768000 kB\nMemFree: 1 kB\n",
}


def fake_host(outputs=None, installed=("docker", "kind", "kubectl", "helm", "cilium", "hubble"),
              files=None, paths=(), system="Linux", env=None):
    outputs = outputs or {}
    calls = []

    def run(argv, timeout=0, check=True):
        calls.append(list(argv))
        if argv[0] not in installed and argv[0] != "modinfo":
            raise ToolNotFound(f"'{argv[0]}' is not installed")
        out = outputs.get(argv[0])
        if isinstance(out, Exception):
            raise out
        if out is None:
            return Result(tuple(argv), 1, "", f"{argv[0]}: not available")
        rc, stdout, stderr = out
        return Result(tuple(argv), rc, stdout, stderr)

    host = Host(
        run=run,
        which=lambda t: f"/usr/bin/{t}" if t in installed else None,
        read_text=lambda p: (files if files is not None else GOOD_PROC).get(p),
        exists=lambda p: p in paths,
        system=system,
        env=env or {},
    )
    host.calls = calls  # type: ignore[attr-defined]
    return host


def good_outputs(info=NATIVE):
    return {
        "docker": (0, json.dumps(info), ""),
        "kind": (0, "kind v0.33.0 go1.25.1 linux/amd64\n", ""),
        "kubectl": (0, json.dumps({"clientVersion": {"gitVersion": "v1.35.2"}}), ""),
        "helm": (0, "v3.19.0+g3d8990f\n", ""),
        "cilium": (0, "cilium-cli: v0.20.0 compiled with go1.25.0 on linux/amd64\n"
                   "cilium image (default): v1.20.4\n", ""),
        # `hubble version` as Cilium's docs and examples print it
        "hubble": (0, "hubble v1.19.4@HEAD-6dbbd44 compiled with go1.25.0 on linux/amd64\n", ""),
    }


def test_everything_good_picks_kind():
    host = fake_host(good_outputs(), paths=("/sys/module/wireguard",))
    report = run_doctor(host, VERSIONS)
    assert report.ok, report.to_text()
    assert {c.status for c in report.checks} == {"ok"}
    assert report.backend == "kind"


def test_docker_daemon_down_fails_with_fix_and_falls_back_to_sim():
    outputs = good_outputs()
    outputs["docker"] = (1, "", "Cannot connect to the Docker daemon at "
                         "unix:///var/run/docker.sock. Is the docker daemon running?\n")
    report = run_doctor(fake_host(outputs), VERSIONS)
    docker = report.check("docker")
    assert docker.status == "fail"
    assert "Cannot connect to the Docker daemon" in docker.detail
    assert "systemctl start docker" in docker.fix
    assert report.check("docker-desktop").status == "skip"
    assert report.backend == "sim" and "SIMULATED" in report.reason
    assert not report.ok


def test_docker_timeout_is_a_failed_check_not_a_crash():
    outputs = good_outputs()
    outputs["docker"] = ToolError("'docker info' did not finish within 20s")
    check, info = docker_info(fake_host(outputs))
    assert check.status == "fail" and "did not finish" in check.detail and info == {}


def test_docker_desktop_is_detected_and_explained():
    check = docker_desktop(DESKTOP)
    assert check.status == "warn"
    assert "cannot reach LoadBalancer IPs" in check.detail
    assert "kind" in check.fix
    assert docker_desktop(NATIVE).status == "ok"


def test_desktop_memory_is_what_docker_gets_not_the_host():
    check = memory(fake_host(), DESKTOP)
    assert check.status == "fail" and "3.8 GiB" in check.detail
    assert "Resources" in check.fix
    assert memory(fake_host(), {**NATIVE, "MemTotal": 6 * 1024**3}).status == "warn"
    # without Docker, the host's /proc/meminfo is read
    assert "31.2 GiB host memory" in memory(fake_host(), {}).detail


@pytest.mark.parametrize(
    ("watches", "instances", "status"),
    [("524288", "512", "ok"), ("8192", "512", "fail"), ("524288", "128", "fail")],
)
def test_inotify_limits(watches, instances, status):
    files = {"/proc/sys/fs/inotify/max_user_watches": watches,
             "/proc/sys/fs/inotify/max_user_instances": instances}
    check = inotify(fake_host(files=files))
    assert check.status == status
    if status == "fail":
        assert "sysctl -w" in check.fix and "too many open files" in check.detail
        # only the low limit is in the fix
        assert ("max_user_watches=524288" in check.fix) == (watches == "8192")


def test_inotify_skipped_off_linux():
    assert inotify(fake_host(system="Darwin")).status == "skip"


def test_wireguard_loaded_available_missing():
    assert wireguard(fake_host(paths=("/sys/module/wireguard",)), NATIVE).status == "ok"
    available = fake_host({"modinfo": (0, "1.0.0\n", "")})
    assert "available" in wireguard(available, NATIVE).detail
    missing = wireguard(fake_host({"modinfo": (1, "", "modinfo: ERROR: Module wireguard "
                                                 "not found.\n")}), NATIVE)
    assert missing.status == "warn" and "modprobe wireguard" in missing.fix
    assert wireguard(fake_host(), DESKTOP).status == "info"


def _spec(name):
    return next(s for s in TOOLS if s.name == name)


def test_tool_versions_against_pins():
    outputs = good_outputs()
    host = fake_host(outputs)
    assert check_tool(host, _spec("kind"), VERSIONS).status == "ok"
    assert check_tool(host, _spec("cilium"), VERSIONS).detail == "v0.20.0 (pinned)"
    # kubectl may be one minor away from the cluster's Kubernetes
    assert check_tool(host, _spec("kubectl"), VERSIONS).status == "ok"
    assert check_tool(host, _spec("helm"), VERSIONS).detail.endswith("(not pinned by the course)")

    outputs["kind"] = (0, "kind v0.20.0 go1.20.4 linux/amd64\n", "")
    old = check_tool(fake_host(outputs), _spec("kind"), VERSIONS)
    assert old.status == "warn" and "older than the pinned v0.33.0" in old.detail
    outputs["kubectl"] = (0, json.dumps({"clientVersion": {"gitVersion": "v1.32.4"}}), "")
    skew = check_tool(fake_host(outputs), _spec("kubectl"), VERSIONS)
    assert skew.status == "warn" and "more than one minor" in skew.detail


def test_missing_tools_kind_fails_others_warn():
    host = fake_host(good_outputs(), installed=("docker",))
    assert check_tool(host, _spec("kind"), VERSIONS).status == "fail"
    cilium = check_tool(host, _spec("cilium"), VERSIONS)
    assert cilium.status == "warn" and "v0.20.0" in cilium.fix
    report = run_doctor(host, VERSIONS)
    assert report.backend == "sim" and report.reason.startswith("kind not usable")


def test_labkit_backend_env_wins():
    assert choose_backend([], {"LABKIT_BACKEND": "sim"})[0] == "sim"
    assert choose_backend([], {"LABKIT_BACKEND": "auto"})[0] == "kind"


def test_renderings_agree():
    outputs = good_outputs(DESKTOP)
    report = run_doctor(fake_host(outputs, files={}), VERSIONS)
    text, html, data = report.to_text(), report._repr_html_(), report.as_dict()
    assert "docker-desktop  WARN" in text and "fix: " in text
    assert "<table>" in html and "cannot reach LoadBalancer IPs" in html
    assert json.loads(report.to_json()) == data
    assert [c["name"] for c in data["checks"]] == [c.name for c in report.checks]
    assert data["versions"]["kind"] == "v0.33.0"


def test_all_commands_go_through_the_process_helper():
    host = fake_host(good_outputs())
    run_doctor(host, VERSIONS)
    assert {c[0] for c in host.calls} <= {"docker", "kind", "kubectl", "helm", "cilium", "hubble",
                                           "modinfo"}
    assert all(isinstance(c, list) for c in host.calls)  # argument lists, never a shell string


def test_repository_versions_file_is_read():
    versions = load_versions()
    assert versions["kind"]["version"].startswith("v")


def test_missing_tool_fix_is_the_verified_install_of_the_pin():
    host = fake_host(good_outputs(), installed=("docker",))
    kind = check_tool(host, _spec("kind"), VERSIONS)
    assert "`labkit tools install kind`" in kind.fix and "v0.33.0" in kind.fix
    cilium = check_tool(host, _spec("cilium"), VERSIONS)
    assert "`labkit tools install cilium`" in cilium.fix and "v0.20.0" in cilium.fix
    mac = fake_host(good_outputs(), installed=("docker",), system="Darwin")
    assert "curl" not in check_tool(mac, _spec("kind"), VERSIONS).fix
