"""What each CNI does with pod traffic between nodes: the model both backends share.

On kind it chooses the default capture filter and explains what the learner should
see; on sim it *is* what is "captured". Each case cites the documented behaviour:

- **Flannel, vxlan backend**: UDP to port 8472, VNI 1 ("On Linux, defaults to 1";
  port "defaults to kernel default, currently 8472"): Flannel v0.28.9
  Documentation/backends.md, https://github.com/flannel-io/flannel/blob/v0.28.9/Documentation/backends.md.
  No encryption: the inner pod packets, HTTP included, are readable.
- **Calico, VXLAN pool** (what lab 02 installs, environments/calico/custom-resources.yaml):
  UDP 4789, VNI 4096, the FelixConfiguration defaults ``vxlanPort`` / ``vxlanVNI``
  (https://docs.tigera.io/calico/latest/reference/resources/felixconfig).
  ``VXLANCrossSubnet`` / ``IPIPCrossSubnet`` never encapsulate between kind nodes,
  which share one subnet (cni-ground-truth.md §4.1): the pod packets cross as they
  are. ``IPIP``: IP-in-IP (IP protocol 4). Calico's **live migration** from Flannel
  keeps Flannel's VXLAN settings, port 8472 and VNI 1 (cni-ground-truth.md §4.4; the
  flannel-migration manifest sets Felix's VXLAN port and VNI to Flannel's values).
  WireGuard: UDP 51820 (cni-ground-truth.md §4.2).
- **Cilium**: tunnel mode with VXLAN on UDP 8472 by default; the VNI carries the
  source's security identity (Cilium docs, "Routing" / "Encapsulation"). With
  WireGuard, pod traffic between nodes is UDP 51871 and in tunnel mode the VXLAN
  packet travels inside WireGuard (cni-ground-truth.md §5.4; the skbdump trace in
  shared/reference/samples/tcpdump/skbdump_kind_cilium_vxlan_8472_then_wireguard_51871_pr23.txt
  shows a 110-byte VXLAN packet leaving as a 144-byte WireGuard payload).
- **kindnet**: plain routes between nodes, no tunnel.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from labkit.cnis import CNIS

_FLANNEL, _CALICO, _CILIUM = (CNIS[name].datapath for name in ("flannel", "calico", "cilium"))
FLANNEL_VXLAN = (_FLANNEL.vxlan_port, _FLANNEL.vxlan_vni)
CALICO_VXLAN = (_CALICO.vxlan_port, _CALICO.vxlan_vni)
CILIUM_VXLAN_PORT = _CILIUM.vxlan_port
CILIUM_WIREGUARD_PORT = _CILIUM.wireguard_port
CALICO_WIREGUARD_PORT = _CALICO.wireguard_port
#: WireGuard data message: 16-byte header + 16-byte tag, plaintext padded to 16 bytes.
WIREGUARD_OVERHEAD = 32
#: VXLAN adds outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14) bytes.
VXLAN_OVERHEAD = 50


@dataclass(frozen=True)
class Datapath:
    """How pod traffic crosses from one node to another."""

    cni: str
    tunnel: str = "none"  # vxlan | ipip | none
    port: int | None = None  # VXLAN's UDP port
    vni: int | None = None  # fixed VNI (Cilium: per source identity, so None)
    encryption: str = ""  # "" | wireguard
    encryption_port: int | None = None
    why: str = ""

    @property
    def encapsulation(self) -> str:
        """What a capture on the node's eth0 shows outermost."""
        if self.encryption:
            return self.encryption
        return "" if self.tunnel == "none" else self.tunnel

    def default_filter(self) -> str:
        if self.encryption:
            return f"udp port {self.encryption_port}"
        if self.tunnel == "vxlan":
            return f"udp port {self.port}"
        if self.tunnel == "ipip":
            return "ip proto 4"
        return "tcp"

    def describe(self) -> str:
        if self.encryption:
            inside = f" (VXLAN on {self.port} inside)" if self.tunnel == "vxlan" else ""
            return (f"{self.cni}: pod traffic between nodes is encrypted by WireGuard, UDP "
                    f"{self.encryption_port}{inside}; the payload is unreadable on the wire")
        if self.tunnel == "vxlan":
            vni = f"VNI {self.vni}" if self.vni is not None else "VNI = the source's identity"
            return (f"{self.cni}: VXLAN, outer UDP to port {self.port} between node IPs, "
                    f"{vni}; the pods' packets inside are not encrypted")
        if self.tunnel == "ipip":
            return f"{self.cni}: IP-in-IP between node IPs; the pods' packets inside are readable"
        return (f"{self.cni}: no tunnel; pod packets cross between nodes as they are "
                f"(routed){': ' + self.why if self.why else ''}")

    def as_dict(self) -> dict[str, Any]:
        return {"cni": self.cni, "tunnel": self.tunnel, "port": self.port, "vni": self.vni,
                "encryption": self.encryption or None, "encryption_port": self.encryption_port,
                "filter": self.default_filter(), "description": self.describe()}


def datapath_for(cni: str, settings: Mapping[str, Any] | None = None) -> Datapath:
    """The datapath of ``cni``; ``settings`` are what its install chose, e.g.
    ``{"backend": "vxlan"}`` (Flannel), ``{"encapsulation": "VXLAN", "live_migration":
    False, "wireguard": False}`` (Calico), ``{"tunnel": "vxlan", "wireguard": True}``
    (Cilium)."""
    s = dict(settings or {})
    if cni == "flannel":
        backend = str(s.get("backend", "vxlan")).lower()
        if backend == "vxlan":
            return Datapath("flannel", "vxlan", *FLANNEL_VXLAN)
        if backend == "wireguard":
            return Datapath("flannel", encryption="wireguard",
                            encryption_port=CALICO_WIREGUARD_PORT)
        return Datapath("flannel", why=f"Flannel backend {backend}")
    if cni == "calico":
        enc, port = _wireguard(s, CALICO_WIREGUARD_PORT)
        if s.get("live_migration"):
            return Datapath("calico", "vxlan", *FLANNEL_VXLAN, encryption=enc,
                            encryption_port=port)
        pool = str(s.get("encapsulation", "VXLAN"))
        if pool == "VXLAN":
            return Datapath("calico", "vxlan", *CALICO_VXLAN, encryption=enc,
                            encryption_port=port)
        if pool == "IPIP":
            return Datapath("calico", "ipip", encryption=enc, encryption_port=port)
        why = ("kind nodes share one subnet, so CrossSubnet never encapsulates"
               if pool.endswith("CrossSubnet") else f"pool encapsulation {pool}")
        return Datapath("calico", why=why, encryption=enc, encryption_port=port)
    if cni == "cilium":
        enc, port = _wireguard(s, CILIUM_WIREGUARD_PORT)
        if str(s.get("tunnel", "vxlan")) == "vxlan":
            return Datapath("cilium", "vxlan", CILIUM_VXLAN_PORT, None, encryption=enc,
                            encryption_port=port)
        return Datapath("cilium", why="native routing", encryption=enc, encryption_port=port)
    return Datapath(cni, why="kindnet installs routes to each node's pod range"
                    if cni == "kindnet" else "")


def _wireguard(settings: Mapping[str, Any], port: int | None) -> tuple[str, int | None]:
    return ("wireguard", port) if settings.get("wireguard") else ("", None)


def wireguard_length(plain: int) -> int:
    """The UDP payload length of a WireGuard data message carrying ``plain`` bytes."""
    return WIREGUARD_OVERHEAD + (plain + 15) // 16 * 16
