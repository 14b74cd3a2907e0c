"""kind captures with fakes: the exact docker/tcpdump commands, the order, and real output parsed.

Nothing here runs Docker; the kind path has not been exercised against a real cluster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from labkit import Lab
from labkit.backends.kind import KindBackend
from labkit.backends.kind import capture as kind_capture
from labkit.backends.kind.guard import load_kubeconfig
from labkit.capture import CaptureSpec
from labkit.environments import Stage, pinned
from labkit.errors import ToolError
from labkit.tools.process import Result
from tests.unit.kindfakes import FakeKube, node, pod

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tcpdump"
OTV = (FIXTURES / "tcpdump_legacy_8472_decoded_as_OTV_libnetwork_issue358.txt").read_text()
WG = (FIXTURES / "tcpdump_udp_51871_cilium_wireguard_kind_TRUNCATED_issue35187.txt").read_text()
LISTENING = "tcpdump: verbose output suppressed, use -v or -vv for full protocol decode\n" \
            "listening on eth0, link-type EN10MB (Ethernet), snapshot length 262144 bytes\n"


class Runner:
    """Records argv; answers ``docker image inspect`` with ``image_rc``."""

    def __init__(self, image_rc: int = 0, network_id: str = "") -> None:
        self.calls: list[list[str]] = []
        self.image_rc, self.network_id = image_rc, network_id

    def __call__(self, argv: list[str], **kwargs: Any) -> Result:
        self.calls.append(list(argv))
        if argv[:3] == ["docker", "image", "inspect"]:
            return Result(tuple(argv), self.image_rc, "", "Error: No such image")
        if argv[:3] == ["docker", "network", "inspect"]:
            return Result(tuple(argv), 0, self.network_id + "\n", "")
        return Result(tuple(argv), 0, "", "")


class Job:
    """A fake background tcpdump: listening after ``starts`` polls, then prints ``stdout``."""

    def __init__(self, argv: list[str], stdout: str, starts: int = 1, exits: bool = False,
                 log: list[str] | None = None) -> None:
        self.argv, self.stdout, self.starts, self.exits = argv, stdout, starts, exits
        self.polls, self.alive, self.log = 0, True, log if log is not None else []
        self.command = " ".join(argv)

    def output(self) -> tuple[str, str]:
        self.polls += 1
        return "", LISTENING if self.polls > self.starts else ""

    def running(self) -> bool:
        if self.exits:
            self.alive = False
        return self.alive

    def wait(self, timeout: float) -> Result:
        self.log.append("wait")
        self.alive = False
        if self.exits:
            return Result(tuple(self.argv), 1, "", "tcpdump: eth0: No such device exists\n")
        n = sum(1 for line in self.stdout.splitlines() if line[:1].isdigit())
        return Result(tuple(self.argv), 0, self.stdout,
                      LISTENING + f"{n} packets captured\n{n} packets received by filter\n")

    def stop(self) -> Result:
        self.log.append("stop")
        return self.wait(1)


def backend(tmp_path: Path, run: Runner, kube: FakeKube) -> KindBackend:
    cfg = tmp_path / "config"
    cfg.write_text(yaml.safe_dump({
        "current-context": "kind-cni-lab",
        "contexts": [{"name": "kind-cni-lab", "context": {"cluster": "kind-cni-lab"}}],
        "clusters": [{"name": "kind-cni-lab", "cluster": {"server": "https://127.0.0.1:3"}}]}))
    config = load_kubeconfig([cfg])
    return KindBackend(Stage.load("flannel"), run=run, kube_factory=lambda ctx: kube,
                       kubeconfig_loader=lambda: config, sleep=lambda s: None,
                       workdir=tmp_path / "work")


def cluster(cni: str = "flannel") -> FakeKube:
    kube = FakeKube()
    ds = {"flannel": ("kube-flannel-ds", "kube-flannel"), "cilium": ("cilium", "kube-system")}
    name, ns = ds[cni]
    kube.add("DaemonSet", {"metadata": {"name": name, "namespace": ns}})
    for ns in ("shop-web", "shop-api"):
        kube.add("Namespace", {"metadata": {"name": ns, "labels": {}}})
    kube.add("Node", node("cni-lab-worker", True, "10.244.1.0/24", "172.18.0.3"))
    kube.add("Node", node("cni-lab-worker2", True, "10.244.2.0/24", "172.18.0.4"))
    kube.add("Pod", pod("shop-web", "frontend-abc-1", "10.244.1.2", "cni-lab-worker",
                        {"app": "frontend"}))
    kube.add("Pod", pod("shop-api", "api-abc-1", "10.244.2.3", "cni-lab-worker2",
                        {"app": "api"}))
    return kube


class Cell:
    def as_dict(self) -> dict[str, Any]:
        return {"observed": {"allowed": True}}


def test_argv_captures_in_the_node_namespace_with_the_pinned_image(tmp_path) -> None:
    run, log = Runner(), []
    jobs: list[Job] = []

    def start(argv: list[str]) -> Job:
        jobs.append(Job(argv, OTV, starts=2, log=log))
        return jobs[-1]

    def generate() -> Cell:
        assert jobs and jobs[0].polls >= 3  # traffic only once tcpdump listens
        log.append("traffic")
        return Cell()

    spec = CaptureSpec("shop-web/frontend-abc-1", "shop-api/api-abc-1", 8080)
    b = backend(tmp_path, run, cluster())
    cap = kind_capture.capture(b, spec, generate, start=start, name="labkit-capture-t")
    image = pinned("images", "netshoot")
    assert jobs[0].argv == [
        "docker", "run", "--rm", "--name", "labkit-capture-t",
        "--network", "container:cni-lab-worker", "--cap-add", "NET_ADMIN",
        "--cap-add", "NET_RAW", image,
        "tcpdump", "-n", "-l", "-A", "-i", "eth0", "-c", "40", "udp port 8472"]
    assert run.calls[0] == ["docker", "image", "inspect", "--format", "{{.Id}}", image]
    assert ["docker", "kill", "--signal", "INT", "labkit-capture-t"] in run.calls
    assert log == ["traffic", "wait"]
    assert not cap.simulated and cap.backend == "kind"
    assert cap.counts() == {"UDP/7946": 4, "UDP/8472": 2} and cap.vnis == [257]
    assert cap.reported == 6 and cap.command.startswith("docker run --rm")
    assert "flannel: VXLAN" in cap.datapath and cap.probe == {"observed": {"allowed": True}}
    assert "[simulated]" not in cap.to_text()


def test_missing_image_is_pulled_and_the_bridge_uses_the_host_namespace(tmp_path) -> None:
    run = Runner(image_rc=1, network_id="4a1e0a3c5b2d77e0f1a2b3c4")
    jobs: list[Job] = []
    b = backend(tmp_path, run, cluster())
    spec = CaptureSpec("shop-web/frontend-abc-1", "shop-api/api-abc-1", node="bridge",
                       filter="udp", count=5)
    cap = kind_capture.capture(b, spec, Cell, start=lambda a: jobs.append(Job(a, OTV))
                               or jobs[-1], name="c")
    image = pinned("images", "netshoot")
    assert ["docker", "pull", image] in run.calls
    assert jobs[0].argv[5:7] == ["--network", "host"]
    assert jobs[0].argv[-5:] == ["-i", "br-4a1e0a3c5b2d", "-c", "5", "udp"]
    assert ["docker", "network", "inspect", "--format", "{{.Id}}", "kind"] in run.calls
    assert cap.interface == "br-4a1e0a3c5b2d" and cap.node == "bridge"


def test_cilium_wireguard_config_makes_51871_the_default_filter(tmp_path) -> None:
    kube = cluster("cilium")
    kube.served_kinds |= {"CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy"}
    kube.add("ConfigMap", {"metadata": {"name": "cilium-config", "namespace": "kube-system"},
                           "data": {"routing-mode": "tunnel", "tunnel-protocol": "vxlan",
                                    "enable-wireguard": "true"}})
    jobs: list[Job] = []
    b = backend(tmp_path, Runner(), kube)
    spec = CaptureSpec("shop-web/frontend-abc-1", "shop-api/api-abc-1")
    cap = kind_capture.capture(b, spec, Cell, start=lambda a: jobs.append(Job(a, WG))
                               or jobs[-1], name="c")
    assert jobs[0].argv[-1] == "udp port 51871"
    assert cap.encapsulations == ["wireguard"] and not cap.cleartext_http
    assert "encrypted by WireGuard" in cap.datapath


def test_a_capture_that_cannot_start_says_why(tmp_path) -> None:
    b = backend(tmp_path, Runner(), cluster())
    spec = CaptureSpec("shop-web/frontend-abc-1", "shop-api/api-abc-1")
    with pytest.raises(ToolError, match="No such device") as err:
        kind_capture.capture(b, spec, Cell, start=lambda a: Job(a, "", exits=True), name="c")
    assert err.value.hint


def test_lab_capture_on_kind_probes_through_the_source_pod(tmp_path, monkeypatch) -> None:
    kube = cluster()
    kube.exec_answer = lambda ns, name, argv: "LABKIT\t0\t0\t200\tok\t\n"
    b = backend(tmp_path, Runner(), kube)
    monkeypatch.setattr(KindBackend, "exists", lambda self: True)  # no `kind` to ask here
    jobs: list[Job] = []
    monkeypatch.setattr(kind_capture.process, "background",
                        lambda argv: jobs.append(Job(argv, OTV)) or jobs[-1])
    cap = Lab(backend_impl=b).capture("shop-web/frontend", "shop-api/api")
    assert len(kube.execs) == 1 and kube.execs[0][3] == "probe"
    assert "http://10.244.2.3:8080/" in kube.execs[0][2][2]
    assert jobs[0].argv[-1] == "udp port 8472" and cap.probe is not None
    assert cap.probe["observed"]["allowed"] is True
