"""Captures on the sim backend: the packets the installed CNI's datapath would put on a wire.

The conversation is one curl request (what the probe path sends): TCP handshake,
the HTTP request and response, the close. Each packet is rendered as a
``tcpdump -n`` line and read back with the same parser the kind backend uses,
then kept if the capture point would see it and the filter matches. What is
modelled (the datapaths themselves are cited in :mod:`labkit.capture.datapath`):

- **Same node, no wire.** Two pods on one node talk through the node's bridge
  (``cni0`` for Flannel, host routes for Calico/Cilium): nothing reaches ``eth0``,
  so a capture there is empty (cni-ground-truth.md §5.4: same-node traffic is
  not even encrypted by WireGuard, because it never leaves the node).
- **Who sees what.** A node's ``eth0`` sees the packets it sends and receives; a
  capture on the kind bridge (``node="bridge"``) sees every packet between nodes.
- **Outer UDP source port.** The kernel derives it from a hash of the inner flow
  (entropy for ECMP, RFC 7348 §5), so each direction of a connection has its own,
  as in the VXLAN fixture tests/fixtures/tcpdump/tcpdump_golden_vxlan_port_8472_e.out.
- **Outcomes.** Allowed: the whole exchange. Dropped (curl exit 28): only the
  client's SYN and its retransmissions after 1 s and 3 s (Linux doubles the 1 s
  initial RTO; curl gives up after ``--connect-timeout 3``); where the policy drops
  them (egress at the source, ingress at the destination) is not modelled: the sim
  shows them crossing. Refused: SYN answered by RST. Cilium L7 denial: a full
  exchange whose answer is Envoy's ``403 Forbidden``.
- **Deterministic.** Ports, sequence numbers and timestamps come from hashes and a
  fixed clock, so the same run prints the same packets.
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from labkit.capture.bpf import compile_filter
from labkit.capture.datapath import VXLAN_OVERHEAD, Datapath, datapath_for, wireguard_length
from labkit.capture.result import Capture
from labkit.capture.spec import BRIDGE, CaptureSpec, tcpdump_argv, traffic_text
from labkit.capture.tcpdump import parse
from labkit.environments import pinned
from labkit.errors import ClusterError
from labkit.model import Denial, HttpRequest

if TYPE_CHECKING:
    from labkit.matrix import Cell

EPHEMERAL = (32768, 60999)  # Linux's default ip_local_port_range
START_SECONDS = 10 * 3600  # the sim's clock starts at 10:00:00.000000


@dataclass(frozen=True)
class End:
    ip: str
    node: str
    node_ip: str
    port: int


def capture(backend: Any, spec: CaptureSpec, generate: Callable[[], Cell]) -> Capture:
    cluster = backend.cluster
    state = backend.state()
    src, dst = state.pods.get(spec.source), state.pods.get(spec.destination)
    if src is None or dst is None:
        raise ClusterError(f"no running pod {spec.source if src is None else spec.destination}"
                           " [simulated]", hint="lab.pods() lists them")
    path = datapath_for(backend.installed_cni() or "", sim_settings(backend))
    node = spec.node or src.node
    if node != BRIDGE and node not in cluster.nodes:
        raise ClusterError(f"no node {node!r} [simulated]",
                           hint=f"capture on one of {', '.join(cluster.nodes)} or 'bridge'")
    cell = generate()
    flt = spec.filter if spec.filter is not None else path.default_filter()
    http = spec.http or HttpRequest()
    client = End(src.ip, src.node, cluster.nodes[src.node].ip,
                 _pick(EPHEMERAL, f"{src.key}>{dst.key}:{spec.port}"))
    server = End(dst.ip, dst.node, cluster.nodes[dst.node].ip, spec.port)
    notes: list[str] = []
    if client.node == server.node:
        text = ""
        notes.append(f"both pods run on {client.node}: their packets go through the node's "
                     "bridge and never reach a wire, so there is nothing to capture between "
                     "nodes (pick pods on different nodes)")
    else:
        text = render(path, client, server, conversation(cell, http, server, backend))
    match = compile_filter(flt)
    # Every rendered packet travels between the two pods' nodes: those two and the bridge
    # see it (whatever the outer addresses: node IPs in a tunnel, pod IPs when routed).
    visible = node in (BRIDGE, client.node, server.node)
    seen = [p for p in parse(text).packets if visible and match(p)][:spec.count]
    if text and not seen:
        notes.append(f"packets crossed between {client.node} and {server.node}, but none "
                     f"matched '{flt}' on {node}" + ("" if node in (BRIDGE, client.node,
                                                              server.node)
                                                     else f" ({node} is neither end)"))
    return Capture(tuple(seen), node, spec.interface if node != BRIDGE else "", flt,
                   "sim", traffic_text(spec, src.ip, dst.ip), tcpdump_argv_text(spec, flt),
                   path.describe(), tuple(notes), cell.as_dict(), len(seen),
                   "\n".join(line for p in seen for line in p.lines))


def tcpdump_argv_text(spec: CaptureSpec, flt: str) -> str:
    return shlex.join(tcpdump_argv(spec.interface, spec.count, flt))


def sim_settings(backend: Any) -> dict[str, Any]:
    """What the sim's CNI install chose: stage values, then what the recipe recorded."""
    cni = backend.installed_cni() or ""
    record = backend.cluster.cni
    values = backend.stage.values.get(cni)
    settings: dict[str, Any] = dict(values) if isinstance(values, dict) else {}
    settings.update(record.settings if record is not None else {})
    return settings


# -- the conversation -------------------------------------------------------------------------
@dataclass(frozen=True)
class Segment:
    to_server: bool
    flags: str
    seq: str = ""
    ack: str = ""
    length: int = 0
    http: str = ""
    after: float = 0.0002  # seconds since the previous segment


def conversation(cell: Cell, http: HttpRequest, server: End, backend: Any) -> list[Segment]:
    observed = cell.observed
    if observed is not None and not observed.allowed and observed.denial != Denial.HTTP_403:
        if observed.denial == Denial.DROP:
            isn = str(_pick((1, 2**32 - 2), f"c{server.ip}"))
            return [Segment(True, "S", isn), Segment(True, "S", isn, after=1.0),
                    Segment(True, "S", isn, after=2.0)]
        return [Segment(True, "S", "1"), Segment(False, "R.", "0", "2")]
    request = _request(http, server, backend)
    if observed is not None and observed.denial == Denial.HTTP_403:
        response = ("HTTP/1.1 403 Forbidden\r\ncontent-length: 15\r\ncontent-type: text/plain"
                    "\r\nserver: envoy\r\n\r\nAccess denied\r\n")
    else:
        response = ("HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
                    "Content-Length: 2\r\n\r\nok")
    n, m = len(request), len(response)
    isn_c, isn_s = _pick((1, 2**32 - 2), f"c{server.ip}{request}"), _pick((1, 2**32 - 2),
                                                                         f"s{server.ip}")
    return [
        Segment(True, "S", str(isn_c)), Segment(False, "S.", str(isn_s), str(isn_c + 1)),
        Segment(True, ".", "", "1"),
        Segment(True, "P.", f"1:{n + 1}", "1", n, request.split("\r\n")[0]),
        Segment(False, ".", "", str(n + 1)),
        Segment(False, "P.", f"1:{m + 1}", str(n + 1), m, response.split("\r\n")[0],
                after=0.0011),
        Segment(True, ".", "", str(m + 1)), Segment(True, "F.", str(n + 1), str(m + 1)),
        Segment(False, "F.", str(m + 1), str(n + 2)), Segment(True, ".", "", str(m + 2)),
    ]


def _request(http: HttpRequest, server: End, backend: Any) -> str:
    agent = str(pinned("images", "curl")).rsplit(":", 1)[-1]
    host = http.host or f"{server.ip}:{server.port}"
    return (f"{http.method} {http.path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: curl/{agent}"
            "\r\nAccept: */*\r\n\r\n")


# -- rendering as tcpdump prints it -----------------------------------------------------------
def render(path: Datapath, client: End, server: End, segments: list[Segment]) -> str:
    lines: list[str] = []
    clock = START_SECONDS + _pick((0, 3599), f"{client.ip}>{server.ip}") + 0.1
    for seg in segments:
        clock += seg.after
        a, b = (client, server) if seg.to_server else (server, client)
        inner = f"{a.ip}.{a.port} > {b.ip}.{b.port}: {_tcp_info(seg, path)}"
        lines.append(_wrap(path, _ts(clock), a, b, inner, _ip_length(seg)))
    return "\n".join(lines) + "\n"


def _tcp_info(seg: Segment, path: Datapath) -> str:
    parts = [f"Flags [{seg.flags}]"]
    if seg.seq:
        parts.append(f"seq {seg.seq}")
    if seg.ack:
        parts.append(f"ack {seg.ack}")
    parts.append("win 0" if seg.flags == "R." else "win 502")
    if seg.flags.startswith("S"):
        parts.append(f"options [mss {_mtu(path) - 40},sackOK,nop,wscale 7]")
    text = ", ".join(parts) + f", length {seg.length}"
    return text + (f": HTTP: {seg.http}" if seg.http else "")


def _wrap(path: Datapath, ts: str, a: End, b: End, inner: str, ip_length: int) -> str:
    if path.encryption:
        plain = ip_length + (VXLAN_OVERHEAD if path.tunnel == "vxlan" else 0)
        port = path.encryption_port
        return (f"{ts} IP {a.node_ip}.{port} > {b.node_ip}.{port}: UDP, length "
                f"{wireguard_length(plain)}")
    if path.tunnel == "vxlan":
        vni = path.vni if path.vni is not None else _identity(a)
        sport = _pick(EPHEMERAL, inner.split(":", 1)[0])
        return (f"{ts} IP {a.node_ip}.{sport} > {b.node_ip}.{path.port}: VXLAN, flags [I] "
                f"(0x08), vni {vni}\nIP {inner}")
    if path.tunnel == "ipip":
        return f"{ts} IP {a.node_ip} > {b.node_ip}: IP {inner}"
    return f"{ts} IP {inner}"


def _identity(end: End) -> int:
    """Stand-in for Cilium's source security identity (allocated from 256 up; the real
    number depends on the cluster): stable per pod address."""
    return _pick((256, 65535), end.ip)


def _ip_length(seg: Segment) -> int:
    return 20 + (32 if seg.flags.startswith("S") else 20) + seg.length


def _mtu(path: Datapath) -> int:
    return {"vxlan": 1450, "ipip": 1480}.get(path.tunnel, 1500)


def _ts(seconds: float) -> str:
    whole = int(seconds)
    micros = round((seconds - whole) * 1_000_000)
    return f"{whole // 3600 % 24:02d}:{whole // 60 % 60:02d}:{whole % 60:02d}.{micros:06d}"


def _pick(bounds: tuple[int, int], key: str) -> int:
    low, high = bounds
    return low + int(hashlib.sha256(key.encode()).hexdigest(), 16) % (high - low + 1)
