"""Captures on kind: tcpdump inside a node's network namespace, from a throwaway container.

kind nodes are Docker containers named after the nodes; ``--network container:<node>``
puts a short-lived container (the pinned ``images.netshoot``, which ships tcpdump)
into that node's network namespace, so ``-i eth0`` is the node's own interface on
the ``kind`` bridge, where the tunnel packets between nodes travel. tcpdump needs
NET_ADMIN and NET_RAW for that. ``node="bridge"`` instead runs it in the host's
namespace on the bridge itself (``br-`` + the first 12 characters of the network
ID, Docker's naming), which sees every node's traffic.

Order: the capture starts, labkit waits for tcpdump's ``listening on`` line, the
traffic is generated through the usual probe path (curl in the source pod), then
tcpdump gets SIGINT (``docker kill --signal INT``) so it prints what it has and exits.
"""

from __future__ import annotations

import itertools
import os
import shlex
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from labkit.capture.datapath import datapath_for
from labkit.capture.result import Capture
from labkit.capture.spec import BRIDGE, CaptureSpec, tcpdump_argv, traffic_text
from labkit.capture.tcpdump import parse
from labkit.environments import pinned
from labkit.errors import ClusterError, LabkitError, ToolError
from labkit.tools import process

if TYPE_CHECKING:
    from labkit.matrix import Cell

POLL = 0.25  # seconds between looks at tcpdump's stderr while it starts
SETTLE = 1.0  # seconds for the last packets to arrive after the traffic
KIND_NETWORK = "kind"
_serial = itertools.count(1)

Start = Callable[[list[str]], Any]  # process.background, or a fake in tests


def container_name() -> str:
    return f"labkit-capture-{os.getpid()}-{next(_serial)}"


def capture_argv(node: str, image: str, spec: CaptureSpec, flt: str, name: str, *,
                 bridge_interface: str = "") -> list[str]:
    """The ``docker run`` that captures on ``node``'s eth0 (or on the bridge)."""
    network = "host" if node == BRIDGE else f"container:{node}"
    interface = bridge_interface if node == BRIDGE else spec.interface
    return ["docker", "run", "--rm", "--name", name, "--network", network,
            "--cap-add", "NET_ADMIN", "--cap-add", "NET_RAW", image,
            *tcpdump_argv(interface, spec.count, flt)]


def capture(backend: Any, spec: CaptureSpec, generate: Callable[[], Cell], *,
            start: Start | None = None, name: str = "") -> Capture:
    run, sleep = backend.run, backend.sleep
    state = backend.state()
    src, dst = state.pods.get(spec.source), state.pods.get(spec.destination)
    if src is None or dst is None:
        raise ClusterError(f"no running pod {spec.source if src is None else spec.destination}",
                           hint="lab.pods() lists them")
    cni = backend.installed_cni() or ""
    path = datapath_for(cni, kind_settings(backend, cni))
    flt = spec.filter if spec.filter is not None else path.default_filter()
    node = spec.node or src.node
    if node != BRIDGE and node not in state.nodes:
        raise ClusterError(f"no node {node!r}", hint=f"capture on one of "
                           f"{', '.join(sorted(state.nodes))} or 'bridge'")
    image = str(pinned("images", "netshoot"))
    ensure_image(run, image)
    bridge = bridge_interface(run) if node == BRIDGE else ""
    name = name or container_name()
    argv = capture_argv(node, image, spec, flt, name, bridge_interface=bridge)
    job = (start or process.background)(argv)
    try:
        _wait_listening(job, sleep, spec.seconds)
        cell = generate()
        sleep(SETTLE)
        if job.running():
            run(["docker", "kill", "--signal", "INT", name], check=False, timeout=30)
        result = job.wait(timeout=15)
    finally:
        if job.running():
            job.stop()
            run(["docker", "rm", "-f", name], check=False, timeout=30)
    parsed = parse(result.stdout)
    stats = parse(result.stderr)
    notes = []
    if src.node == dst.node:
        notes.append(f"both pods run on {src.node}: pod-to-pod traffic on one node does not "
                     "leave it, so the node's eth0 shows none of it")
    if result.returncode not in (0, 130) and not parsed.packets:
        notes.append(f"tcpdump exited with {result.returncode}: {result.stderr.strip()[-300:]}")
    return Capture(tuple(parsed.packets), node, bridge or spec.interface, flt, "kind",
                   traffic_text(spec, src.ip, dst.ip), shlex.join(argv), path.describe(),
                   tuple(notes), cell.as_dict(),
                   stats.reported if stats.reported is not None else parsed.reported,
                   result.stdout)


def ensure_image(run: Callable[..., process.Result], image: str) -> None:
    """Pull the capture image once (it is not part of the cluster's preloaded images)."""
    found = run(["docker", "image", "inspect", "--format", "{{.Id}}", image], check=False,
                timeout=30)
    if found.returncode != 0:
        run(["docker", "pull", image], timeout=600,
            hint=f"the capture needs {image}; pull it while online (workshop bundles "
            "should include it)")


def bridge_interface(run: Callable[..., process.Result]) -> str:
    """The host interface of the ``kind`` network: ``br-`` + the network ID's first 12."""
    out = run(["docker", "network", "inspect", "--format", "{{.Id}}", KIND_NETWORK],
              timeout=30).stdout.strip()
    if len(out) < 12:
        raise ToolError(f"unexpected network ID {out!r} for the {KIND_NETWORK} network",
                        hint="is the kind cluster up? `docker network ls` should list 'kind'")
    return f"br-{out[:12]}"


def _wait_listening(job: Any, sleep: Callable[[float], None], seconds: float) -> None:
    for _ in range(max(1, int(seconds / POLL))):
        if "listening on" in job.output()[1]:
            return
        if not job.running():
            result = job.wait(timeout=5)
            raise ToolError(f"the capture did not start: {result.stderr.strip()[-500:]}",
                            command=job.command, stderr=result.stderr[-2000:],
                            hint="is the node container running (`docker ps`)? tcpdump "
                            "needs --cap-add NET_ADMIN/NET_RAW, which rootless Docker may deny")
        sleep(POLL)
    job.stop()
    raise ToolError(f"tcpdump did not report 'listening on' within {seconds:g}s",
                    command=job.command, hint="docker may be slow to start the container; "
                    "retry, or raise seconds=")


def kind_settings(backend: Any, cni: str) -> dict[str, Any]:
    """What the installed CNI was configured with, read from the cluster (best effort)."""
    values = backend.stage.values.get(cni)
    out: dict[str, Any] = dict(values) if isinstance(values, dict) else {}
    try:
        if cni == "cilium":
            cm = backend.kube.get("v1", "ConfigMap", "cilium-config", "kube-system") or {}
            data = cm.get("data") or {}
            out["tunnel"] = "none" if data.get("routing-mode") == "native" else \
                data.get("tunnel-protocol", "vxlan")
            out["wireguard"] = data.get("enable-wireguard") == "true"
        elif cni == "calico":
            out["live_migration"] = backend.kube.get(
                "apps/v1", "DaemonSet", "calico-node", "kube-system") is not None
            pool = backend.kube.get("projectcalico.org/v3", "IPPool",
                                    "default-ipv4-ippool") or {}
            spec = pool.get("spec") or {}
            if spec.get("vxlanMode") == "CrossSubnet":
                out["encapsulation"] = "VXLANCrossSubnet"
            elif spec.get("ipipMode") == "Always":
                out["encapsulation"] = "IPIP"
            felix = backend.kube.get("projectcalico.org/v3", "FelixConfiguration",
                                     "default") or {}
            out["wireguard"] = bool((felix.get("spec") or {}).get("wireguardEnabled"))
    except LabkitError:
        pass  # an API the cluster does not serve: keep the defaults (only the filter differs)
    return out
