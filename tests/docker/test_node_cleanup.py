"""Against a real Docker engine: the kind network's subnet, exec into nodes, Flannel cleanup.

These run the same code paths the kind recipes use (labkit.tools.docker and
labkit.cni.leftovers with the default ``docker exec``), on containers that look
like kind nodes. They do not run Kubernetes: no kind cluster can run here.
"""

from __future__ import annotations

import ipaddress
import subprocess

import pytest

from labkit.cni.calico import leftovers
from labkit.tools import docker

pytestmark = pytest.mark.docker


def _exec(node: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", "exec", node, *argv], capture_output=True, text=True,
                          check=False, timeout=30)


def test_reads_the_ipv4_subnet_of_a_kind_like_network(kind_like_network):
    subnet = docker.network_ipv4_subnet(kind_like_network)
    assert isinstance(subnet, ipaddress.IPv4Network)
    # the Go-template form the kind docs use gives the same answer
    go = subprocess.run(["docker", "network", "inspect", "-f", "{{.IPAM.Config}}",
                         kind_like_network], capture_output=True, text=True, check=True)
    assert docker.ipv4_subnet(docker.parse_ipam_config(go.stdout)) == subnet


def test_node_exec_and_kind_label_lookup(node_container):
    name = node_container["name"]
    assert docker.kind_node_containers(node_container["cluster"]) == [name]
    res = docker.node_exec(name, ["cat", "/proc/self/status"])
    assert res.returncode == 0 and "Name:" in res.stdout
    res = docker.node_exec(name, ["cat", "/nonexistent"], check=False)
    assert res.returncode != 0


def test_throwaway_container_lands_on_the_network(node_image, kind_like_network):
    if "ip" not in node_image[1]:
        pytest.skip("no `ip` binary on this machine to put in the test image")
    subnet = docker.network_ipv4_subnet(kind_like_network)
    res = docker.run_on_network(node_image[0], ["ip", "-o", "-4", "addr", "show", "eth0"],
                                network=kind_like_network, timeout=60)
    addr = res.stdout.split("inet ")[1].split("/")[0]
    assert ipaddress.ip_address(addr) in subnet


def _seed_flannel_leftovers(node: str, tools: dict[str, str]) -> dict[str, bool]:
    """Make the node look like a Flannel node; returns which kinds of leftovers it could make."""
    made = {"files": False, "interfaces": False, "iptables": False}
    for cmd in (["mkdir", "-p", "/etc/cni/net.d", "/run/flannel"],
                ["touch", "/etc/cni/net.d/10-flannel.conflist", "/run/flannel/subnet.env",
                 "/etc/cni/net.d/10-kindnet.conflist"]):
        assert _exec(node, *cmd).returncode == 0
    made["files"] = True
    if "ip" in tools:
        vx = _exec(node, "ip", "link", "add", "flannel.1", "type", "vxlan", "id", "1",
                   "dev", "eth0", "dstport", "8472")
        br = _exec(node, "ip", "link", "add", "cni0", "type", "bridge")
        made["interfaces"] = vx.returncode == 0 and br.returncode == 0
    if "iptables" in tools:
        steps = [
            ["iptables", "-t", "nat", "-N", "FLANNEL-POSTRTG"],
            ["iptables", "-t", "nat", "-A", "POSTROUTING", "-m", "comment", "--comment",
             "flanneld masq", "-j", "FLANNEL-POSTRTG"],
            ["iptables", "-t", "nat", "-A", "FLANNEL-POSTRTG", "-s", "10.244.0.0/24", "-d",
             "10.244.0.0/16", "-m", "comment", "--comment", "flanneld masq", "-j", "RETURN"],
            ["iptables", "-N", "FLANNEL-FWD"],
            ["iptables", "-A", "FORWARD", "-m", "comment", "--comment", "flanneld forward",
             "-j", "FLANNEL-FWD"],
            ["iptables", "-A", "FLANNEL-FWD", "-s", "10.244.0.0/16", "-j", "ACCEPT"],
            ["iptables", "-N", "KUBE-FORWARD"],  # someone else's chain: must survive
            ["iptables", "-A", "FORWARD", "-j", "KUBE-FORWARD"],
        ]
        made["iptables"] = all(_exec(node, *s).returncode == 0 for s in steps)
    return made


def test_flannel_cleanup_removes_leftovers_and_is_idempotent(node_container):
    node, tools = node_container["name"], node_container["tools"]
    made = _seed_flannel_leftovers(node, tools)

    before = leftovers.survey_node(node, leftovers.FLANNEL)
    assert before.files == list(leftovers.FLANNEL.files)
    if made["interfaces"]:
        assert before.interfaces == ["flannel.1", "cni0"]
    if made["iptables"]:
        assert sorted(before.chains) == [("filter", "FLANNEL-FWD"), ("nat", "FLANNEL-POSTRTG")]

    first = leftovers.clean_node(node, leftovers.FLANNEL)
    assert not first.noop

    after = leftovers.survey_node(node, leftovers.FLANNEL)
    assert after.clean, after
    # the files are really gone, and what is not Flannel's is still there
    ls = _exec(node, "ls", "/etc/cni/net.d", "/run/flannel")
    assert "10-flannel.conflist" not in ls.stdout and "subnet.env" not in ls.stdout
    assert "10-kindnet.conflist" in ls.stdout
    if made["interfaces"]:
        links = _exec(node, "ip", "-o", "link", "show").stdout
        assert "flannel.1" not in links and "cni0" not in links and "eth0" in links
    if made["iptables"]:
        saved = _exec(node, "iptables-save").stdout
        assert "FLANNEL" not in saved and "flanneld" not in saved
        assert "-A FORWARD -j KUBE-FORWARD" in saved

    second = leftovers.clean_node(node, leftovers.FLANNEL)
    assert second.noop and second.commands == []
    missing = [k for k, v in made.items() if not v]
    if missing:
        pytest.skip(f"cleanup checked, except for {missing}: this engine or machine cannot "
                    "create them in a container")
