"""Captures on sim: what each CNI's datapath puts on the wire, cross-node vs same-node."""

from __future__ import annotations

import pytest

from labkit import Lab
from labkit.backends.sim.capture import End, Segment, render
from labkit.capture import Capture, datapath_for
from labkit.capture.datapath import wireguard_length
from labkit.capture.tcpdump import parse_packets
from labkit.cni.calico import recipe as calico
from labkit.errors import BackendUnsupported, ClusterError
from labkit.model import HttpRequest

POLICIES = "environments/policies/shop"


@pytest.fixture(autouse=True)
def _quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABKIT_PROGRESS", "off")


@pytest.fixture
def lab() -> Lab:
    lab = Lab("flannel", backend="sim")
    lab.down()
    lab.up()
    lab.install_cni("flannel")
    lab.deploy_shop()
    return lab


def pods_on(lab: Lab) -> tuple[str, str, str]:
    """(frontend, an api pod on another node, a pod on the frontend's node)."""
    pods = {p.key: p for p in lab.pods() if p.namespace.startswith("shop-")}
    front = next(p for p in pods.values() if p.labels.get("app") == "frontend")
    far = next(p for p in pods.values() if p.labels.get("app") == "api" and p.node != front.node)
    near = next(p for p in pods.values() if p.node == front.node and p.key != front.key)
    return front.key, far.key, near.key


def test_flannel_cross_node_is_vxlan_8472_vni_1_with_cleartext_http(lab: Lab) -> None:
    front, far, _ = pods_on(lab)
    cap = lab.capture(front, far, 8080, http=HttpRequest(path="/healthz"))
    nodes = {n.name: n.ip for n in lab.nodes()}
    pods = {p.key: p for p in lab.pods()}
    assert cap.simulated and cap.filter == "udp port 8472"
    assert cap.counts() == {"UDP/8472": 10}
    assert cap.encapsulations == ["vxlan"] and cap.vnis == [1]
    assert cap.http_lines == ["GET /healthz HTTP/1.1", "HTTP/1.1 200 OK"]
    assert cap.cleartext_http
    src_node, dst_node = nodes[pods[front].node], nodes[pods[far].node]
    assert {(p.src, p.dst) for p in cap.packets} == {(src_node, dst_node), (dst_node, src_node)}
    assert all(p.dport == 8472 for p in cap.packets)
    inner = cap.packets[0].inner
    assert inner is not None and (inner.src, inner.dst, inner.dport, inner.flags) == (
        pods[front].ip, pods[far].ip, 8080, "S")
    assert cap.probe is not None and cap.probe["observed"]["allowed"] is True
    assert "[simulated]" in cap.to_text()


def test_same_node_traffic_never_reaches_the_wire(lab: Lab) -> None:
    front, _, near = pods_on(lab)
    cap = lab.capture(front, near, 8080)
    assert cap.empty and cap.counts() == {}
    assert any("never reach a wire" in n for n in cap.notes)


def test_who_sees_what_node_ends_bridge_and_a_third_node(lab: Lab) -> None:
    front, far, _ = pods_on(lab)
    pods = {p.key: p for p in lab.pods()}
    sender = lab.capture(front, far, node=pods[front].node)
    receiver = lab.capture(front, far, node=pods[far].node)
    bridge = lab.capture(front, far, node="bridge")
    third = next(n.name for n in lab.nodes() if n.name not in (pods[front].node, pods[far].node))
    other = lab.capture(front, far, node=third)
    assert len(sender.packets) == len(receiver.packets) == len(bridge.packets) == 10
    assert other.empty and any("neither end" in n for n in other.notes)
    assert "kind bridge" in bridge.to_text()


def test_filter_and_count_apply_like_tcpdump(lab: Lab) -> None:
    front, far, _ = pods_on(lab)
    assert lab.capture(front, far, filter="tcp").empty  # the wire carries only UDP
    assert len(lab.capture(front, far, count=3).packets) == 3
    with pytest.raises(BackendUnsupported):
        lab.capture(front, far, filter="vlan 7")
    with pytest.raises(ClusterError):
        lab.capture(front, far, node="nope")


def test_captures_are_deterministic(lab: Lab) -> None:
    front, far, _ = pods_on(lab)
    assert lab.capture(front, far).as_dict() == lab.capture(front, far).as_dict()


def test_no_cni_sends_nothing() -> None:
    lab = Lab("flannel", backend="sim")
    lab.down()
    lab.up()
    cap = lab.capture("shop-web/frontend", "shop-api/api")
    assert cap.empty and "no CNI" in cap.notes[0]


def test_calico_vxlan_is_4789_vni_4096_and_its_policy_drop_leaves_only_syns(lab: Lab) -> None:
    calico.RECIPE.migrate(lab)
    front, far, _ = pods_on(lab)
    cap = lab.capture(front, far, 8080)
    assert cap.filter == "udp port 4789"
    assert cap.counts() == {"UDP/4789": 10} and cap.vnis == [4096]
    assert cap.cleartext_http
    db = next(p.key for p in lab.pods("shop-api") if p.labels.get("app") == "db")
    lab.apply(POLICIES)  # default-deny ingress in shop-api; frontend may reach api, not db
    denied = lab.capture(front, db, 8080)
    flags = [p.inner.flags for p in denied.packets if p.inner is not None]
    pods = {p.key: p for p in lab.pods()}
    assert pods[front].node != pods[db].node  # else nothing would cross a wire at all
    assert flags == ["S", "S", "S"]  # the SYN and two retransmissions, no answer
    assert not denied.cleartext_http
    assert denied.probe is not None and denied.probe["observed"]["allowed"] is False


def test_calico_live_migration_keeps_flannels_vxlan_settings(lab: Lab) -> None:
    calico.RECIPE.migrate(lab, mode="live")
    front, far, _ = pods_on(lab)
    cap = lab.capture(front, far)
    assert cap.filter == "udp port 8472" and cap.vnis == [1]


def test_calico_cross_subnet_puts_the_pod_packets_on_the_wire_as_they_are(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    calico.RECIPE.migrate(lab)
    monkeypatch.setattr("labkit.backends.sim.capture.sim_settings",
                        lambda backend: {"encapsulation": "VXLANCrossSubnet"})
    front, far, _ = pods_on(lab)
    pods = {p.key: p for p in lab.pods()}
    cap = lab.capture(front, far)
    assert cap.filter == "tcp" and cap.counts() == {"TCP/8080": 10}
    assert cap.encapsulations == [] and cap.cleartext_http
    assert (cap.packets[0].src, cap.packets[0].dst) == (pods[front].ip, pods[far].ip)
    assert lab.capture(front, far, filter="udp port 4789").empty


def test_datapaths_per_cni() -> None:
    assert datapath_for("flannel").default_filter() == "udp port 8472"
    assert datapath_for("calico", {"encapsulation": "VXLANCrossSubnet"}).encapsulation == ""
    assert datapath_for("calico", {"encapsulation": "IPIP"}).default_filter() == "ip proto 4"
    assert datapath_for("calico", {"wireguard": True}).default_filter() == "udp port 51820"
    cilium = datapath_for("cilium", {"wireguard": True})
    assert (cilium.tunnel, cilium.port, cilium.encryption_port) == ("vxlan", 8472, 51871)
    assert datapath_for("kindnet").encapsulation == ""


def test_wireguard_length_matches_the_kind_skbdump_trace() -> None:
    # skbdump on kind: a 110-byte VXLAN packet (82-byte UDP payload) left as 144 bytes of
    # WireGuard payload (shared/reference/samples/tcpdump/skbdump_..._pr23.txt).
    assert wireguard_length(20 + 8 + 82) == 144


def test_cilium_wireguard_hides_the_payload_and_vni() -> None:
    path = datapath_for("cilium", {"wireguard": True})
    a, b = End("10.244.1.2", "w1", "172.18.0.3", 40000), End("10.244.2.3", "w2", "172.18.0.4",
                                                                8080)
    text = render(path, a, b, [Segment(True, "S", "1"),
                               Segment(True, "P.", "1:81", "1", 80, "GET / HTTP/1.1")])
    packets = parse_packets(text)
    assert [p.key for p in packets] == ["UDP/51871", "UDP/51871"]
    assert {p.encapsulation for p in packets} == {"wireguard"}
    assert not any(p.cleartext_http or p.inner for p in packets)
    # SYN: IP 20 + TCP 32 -> +50 VXLAN = 102 -> padded 112 + 32
    assert packets[0].length == 144
    cap = Capture(tuple(packets), "w1")
    assert not cap.cleartext_http and "encrypted" in cap.to_text()
