"""Docker verbs the course needs, as typed functions over :mod:`labkit.tools.process`.

kind nodes are Docker containers on a bridge network named ``kind``; node-level
work (cleaning a node of an old CNI, captures) is ``docker exec`` into them, and
"a client outside the cluster" is a throwaway container on that network.

The parsers are pure and tested against real outputs in
``shared/reference/samples/docker-network/``.
"""

from __future__ import annotations

import ipaddress
import json
import platform
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from labkit.errors import ClusterError, ToolError
from labkit.tools.process import Result, run

#: The bridge network kind puts every node container on.
KIND_NETWORK = "kind"
#: Label kind sets on every node container, valued with the cluster name.
KIND_CLUSTER_LABEL = "io.x-k8s.kind.cluster"
#: Label labkit sets on containers it runs for a lab cluster beside the nodes (servers outside
#: the cluster), valued with the cluster name: deleting the cluster removes them.
LAB_CLUSTER_LABEL = "io.labkit.cluster"

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class IpamConfig:
    """One entry of a network's ``IPAM.Config``: a subnet and its gateway."""

    subnet: IPNetwork
    gateway: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"subnet": str(self.subnet), "gateway": self.gateway}


# ``docker network inspect -f '{{.IPAM.Config}}'`` prints Go's %v of a slice of
# IPAMConfig structs: {Subnet IPRange Gateway AuxAddress}, empty fields as "".
_GO_ENTRY = re.compile(r"\{([^{}]*?)\s*map\[[^\]]*\]\s*\}")


def parse_ipam_config(text: str, *, network: str = KIND_NETWORK) -> list[IpamConfig]:
    """The IPAM entries of ``network`` from any of the three forms Docker prints.

    Accepts the full ``docker network inspect NAME`` JSON (a list of networks),
    the ``-f '{{json .IPAM.Config}}'`` JSON list, and the Go-template form
    ``-f '{{.IPAM.Config}}'`` (``[{172.20.0.0/16  172.20.0.1 map[]} ...]``).
    Raises ToolError when the text is none of them (a truncated paste, say).
    """
    stripped = text.strip()
    if not stripped:
        raise _unreadable(network, "the output is empty")
    try:
        data = json.loads(stripped)
    except json.JSONDecodeError:
        return _parse_go_form(stripped, network)
    return _parse_json_form(data, network)


def _parse_json_form(data: Any, network: str) -> list[IpamConfig]:
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise _unreadable(network, "expected a JSON list")
    if data and all(isinstance(d, dict) and "IPAM" in d for d in data):
        match = [d for d in data if d.get("Name") in (network, None)] or data[:1]
        entries = (match[0].get("IPAM") or {}).get("Config") or []
    else:  # already the IPAM.Config list
        entries = data
    out = []
    for entry in entries:
        if not isinstance(entry, dict) or not entry.get("Subnet"):
            continue
        out.append(_entry(entry["Subnet"], entry.get("Gateway", ""), network))
    return out


def _parse_go_form(text: str, network: str) -> list[IpamConfig]:
    if not (text.startswith("[") and text.endswith("]")):
        raise _unreadable(network, "neither JSON nor the {{.IPAM.Config}} form")
    out = []
    for m in _GO_ENTRY.finditer(text):
        fields = m.group(1).split(" ")  # Subnet, IPRange, Gateway (empty ones stay "")
        subnet = fields[0]
        gateway = fields[2] if len(fields) > 2 else ""
        if subnet:
            out.append(_entry(subnet, gateway, network))
    if not out and text != "[]":
        raise _unreadable(network, "no subnet found in the {{.IPAM.Config}} form")
    return out


def _entry(subnet: str, gateway: str, network: str) -> IpamConfig:
    try:
        return IpamConfig(ipaddress.ip_network(subnet, strict=False), gateway)
    except ValueError as exc:
        raise _unreadable(network, f"{subnet!r} is not a subnet") from exc


def _unreadable(network: str, why: str) -> ToolError:
    return ToolError(
        f"could not read the IPAM config of Docker network '{network}': {why}",
        command=f"docker network inspect {network}",
        hint="run `docker network inspect kind` yourself; if the output is truncated or "
        "empty, the network may be half-created: delete the cluster and create it again",
    )


def ipv4_subnet(configs: Sequence[IpamConfig], *, network: str = KIND_NETWORK) -> (
    ipaddress.IPv4Network
):
    """The first IPv4 subnet (kind's network is dual-stack: the IPv6 one is skipped)."""
    for c in configs:
        if isinstance(c.subnet, ipaddress.IPv4Network):
            return c.subnet
    raise ClusterError(
        f"Docker network '{network}' has no IPv4 subnet",
        hint="kind creates the network with an IPv4 and an IPv6 subnet; delete the network "
        "(`docker network rm kind`, after deleting all kind clusters) and let kind recreate it",
    )


def inspect_network(network: str = KIND_NETWORK, *, timeout: float = 30) -> list[IpamConfig]:
    """``docker network inspect NETWORK`` parsed into its IPAM entries."""
    result = run(
        ["docker", "network", "inspect", network], timeout=timeout,
        hint=f"the Docker network '{network}' is created by `kind create cluster`; "
        "create the lab cluster first (`labkit up STAGE`)",
    )
    return parse_ipam_config(result.stdout, network=network)


def network_ipv4_subnet(network: str = KIND_NETWORK) -> ipaddress.IPv4Network:
    """The IPv4 subnet of the ``kind`` (or another) Docker network."""
    return ipv4_subnet(inspect_network(network), network=network)


# -- exec into node containers ---------------------------------------------------------------

def exec_argv(container: str, argv: Sequence[str]) -> list[str]:
    """The exact command that runs ``argv`` inside ``container``."""
    if not argv:
        raise ValueError("exec_argv() needs a command to run in the container")
    return ["docker", "exec", container, *argv]


def node_exec(
    container: str, argv: Sequence[str], *, timeout: float = 60, check: bool = True,
    input: str | None = None,
) -> Result:
    """Run ``argv`` inside a node container (``docker exec``), as root like kind's nodes."""
    full = exec_argv(container, argv)
    if input is not None:
        full.insert(2, "-i")
    return run(
        full, timeout=timeout, check=check, input=input,
        hint=f"is the node container '{container}' running? (`docker ps`)",
    )


def run_on_network_argv(
    image: str, argv: Sequence[str], *, network: str = KIND_NETWORK, name: str = "",
) -> list[str]:
    """The exact ``docker run`` for a throwaway container on ``network``."""
    out = ["docker", "run", "--rm", "--network", network]
    if name:
        out += ["--name", name]
    return [*out, image, *argv]


def run_on_network(
    image: str, argv: Sequence[str], *, network: str = KIND_NETWORK, timeout: float = 120,
    check: bool = True, name: str = "",
) -> Result:
    """Run ``argv`` in a throwaway container attached to ``network`` (then remove it).

    This is a client "outside the cluster but on its network": the way to reach
    LoadBalancer IPs when the host cannot (Docker Desktop).
    """
    return run(
        run_on_network_argv(image, argv, network=network, name=name), timeout=timeout,
        check=check,
        hint=f"the image '{image}' must be present locally (pull it once, or load the "
        "course's offline image bundle)",
    )


def remove_lab_containers(cluster: str, *, runner: Any = run) -> list[str]:
    """Remove (``docker rm -f``) the containers labkit started for ``cluster``; their IDs."""
    found = runner(["docker", "ps", "-aq", "--filter", f"label={LAB_CLUSTER_LABEL}={cluster}"],
                   timeout=30, check=False)
    ids = found.stdout.split() if found.returncode == 0 else []
    if ids:
        runner(["docker", "rm", "-f", *ids], timeout=60, check=False)
    return ids


def kind_node_containers(cluster: str, *, timeout: float = 30) -> list[str]:
    """Names of the node containers of the kind cluster ``cluster``, sorted."""
    result = run(
        ["docker", "ps", "--filter", f"label={KIND_CLUSTER_LABEL}={cluster}",
         "--format", "{{.Names}}"],
        timeout=timeout,
    )
    return sorted(line.strip() for line in result.stdout.splitlines() if line.strip())


# -- Docker Desktop ---------------------------------------------------------------------------

def parse_info(text: str) -> dict[str, Any]:
    """``docker info --format '{{json .}}'`` as a dict (ToolError if it is not JSON)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ToolError(
            "could not read `docker info` output as JSON", command="docker info",
            hint="is the Docker daemon running? `docker info` should print server details",
        ) from exc
    if not isinstance(data, dict):
        raise ToolError("`docker info` did not print a JSON object", command="docker info")
    return data


def is_docker_desktop(info: dict[str, Any]) -> bool:
    """True when the engine is Docker Desktop (macOS, Windows, or Linux).

    Docker Desktop reports ``OperatingSystem: "Docker Desktop"`` and names its
    VM ``docker-desktop``; its labels carry ``com.docker.desktop.address``.
    """
    if "docker desktop" in str(info.get("OperatingSystem", "")).lower():
        return True
    if str(info.get("Name", "")).lower() == "docker-desktop":
        return True
    labels = info.get("Labels") or []
    return any(str(label).startswith("com.docker.desktop.") for label in labels)


def is_rootless(info: dict[str, Any]) -> bool:
    """True for a rootless engine: ``docker info`` lists ``name=rootless`` in SecurityOptions."""
    return any("name=rootless" in str(o) for o in info.get("SecurityOptions") or [])


@dataclass(frozen=True)
class HostReach:
    """Whether the host can reach IPs on the ``kind`` network, and why not."""

    reachable: bool
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"reachable": self.reachable, "reason": self.reason}


def host_reach(info: dict[str, Any], *, system: str | None = None) -> HostReach:
    """Can the host route to container IPs (and so to MetalLB LoadBalancer IPs)?

    Only a native, rootful Linux engine puts the ``kind`` bridge on the host itself.
    Docker Desktop, on every OS including Linux, runs the engine in a VM whose bridge
    the host cannot route to (kind's known issues); so does any engine on a macOS
    or Windows host; rootless Docker keeps its bridges in RootlessKit's namespace.
    """
    system = system or platform.system()
    if is_docker_desktop(info):
        return HostReach(False, "Docker Desktop runs the engine inside a VM: the `kind` bridge "
                         "network and its LoadBalancer IPs are not routable from the host")
    if system != "Linux":
        return HostReach(False, f"on {system} the Docker engine runs inside a VM: the `kind` "
                         "bridge network is not routable from the host")
    if is_rootless(info):
        return HostReach(False, "rootless Docker keeps its bridge networks in its own network "
                         "namespace: container IPs are not routable from the host "
                         "(moby/moby#43625)")
    return HostReach(True, "native Docker on Linux: the `kind` bridge is a host interface")


def engine_info(*, timeout: float = 20) -> dict[str, Any]:
    """``docker info`` of the running engine, as a dict."""
    result = run(
        ["docker", "info", "--format", "{{json .}}"], timeout=timeout,
        hint="start the Docker daemon (or Docker Desktop) and retry",
    )
    return parse_info(result.stdout)
