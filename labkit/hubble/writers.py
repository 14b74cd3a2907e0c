"""Write flows the way the ``hubble`` CLI prints them: ``jsonpb``, legacy ``json``, ``compact``.

Behaviour follows Hubble's printer (cilium ``hubble/pkg/printer/printer.go``, ``WriteProtoFlow``)
and the names it prints come from cilium ``pkg/monitor/api`` (``types.go``, ``drop.go``) and
``pkg/identity/numericidentity.go``; the tests hold the output to the printer's golden strings
(``printer_test.go``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

from labkit.hubble.flow import Flow
from labkit.hubble.schema import FLOW, RESPONSE, canonical
from labkit.policy.cilium.identity import RESERVED_NAMES

OUTPUTS = ("jsonpb", "json", "compact")

# cilium pkg/monitor/api/types.go: MessageType* and TraceObservationPoints.
_MSG_DROP, _MSG_CAPTURE, _MSG_TRACE, _MSG_POLICY_VERDICT, _MSG_TRACE_SOCK = 1, 3, 4, 5, 7
TRACE_POINTS = {
    0: "to-endpoint", 1: "to-proxy", 2: "to-host", 3: "to-stack", 4: "to-overlay",
    5: "from-endpoint", 6: "from-proxy", 7: "from-host", 8: "from-stack", 9: "from-overlay",
    10: "from-network", 11: "to-network", 12: "from-crypto", 13: "to-crypto",
}
POLICY_MATCH = {0: "none", 1: "L3-Only", 2: "L3-L4", 3: "L4-Only", 4: "all", 5: "L3-Proto",
                6: "Proto-Only"}
# cilium pkg/monitor/api/drop.go (v1.19): the reason strings the printer shows.
DROP_REASONS = {
    130: "Invalid source mac", 131: "Invalid destination mac", 132: "Invalid source ip",
    133: "Policy denied", 134: "Invalid packet", 135: "CT: Truncated or invalid header",
    136: "Fragmentation needed", 137: "CT: Unknown L4 protocol",
    138: "CT: Can't create entry from packet", 139: "Unsupported L3 protocol",
    140: "Missed tail call", 141: "Error writing to packet", 142: "Unknown L4 protocol",
    143: "Unknown ICMPv4 code", 144: "Unknown ICMPv4 type", 145: "Unknown ICMPv6 code",
    146: "Unknown ICMPv6 type", 147: "Error retrieving tunnel key",
    148: "Error retrieving tunnel options", 149: "Invalid Geneve option",
    150: "Unknown L3 target address", 151: "Stale or unroutable IP",
    152: "No matching local container found", 153: "Error while correcting L3 checksum",
    154: "Error while correcting L4 checksum", 155: "CT: Map insertion failed",
    156: "Invalid IPv6 extension header", 157: "IP fragmentation not supported",
    158: "Service backend not found", 160: "No tunnel/encapsulation endpoint (datapath BUG!)",
    161: "NAT 46/64 not enabled", 162: "Reached EDT rate-limiting drop horizon",
    163: "Unknown connection tracking state", 164: "Local host is unreachable",
    165: "No configuration available to perform policy decision", 166: "Unsupported L2 protocol",
    167: "No mapping for NAT masquerade", 168: "Unsupported protocol for NAT masquerade",
    169: "FIB lookup failed", 170: "Encapsulation traffic is prohibited",
    171: "Invalid identity", 172: "Unknown sender", 173: "NAT not needed", 174: "Is a ClusterIP",
    175: "First logical datagram fragment not found", 176: "Forbidden ICMPv6 message",
    177: "Denied by LB src range check", 178: "Socket lookup failed",
    179: "Socket assign failed", 180: "Proxy redirection not supported for protocol",
    181: "Policy denied by denylist", 182: "VLAN traffic disallowed by VLAN filter",
    183: "Incorrect VNI from VTEP", 184: "Failed to update or lookup TC buffer",
    185: "No SID was found for the IP address", 186: "SRv6 state was removed during tail call",
    187: "L3 translation from IPv4 to IPv6 failed (NAT46)",
    188: "L3 translation from IPv6 to IPv4 failed (NAT64)", 189: "Authentication required",
    190: "No conntrack map found", 191: "No nat map found", 192: "Invalid ClusterID",
    193: "Unsupported packet protocol for DSR encapsulation", 194: "No egress gateway found",
    195: "Traffic is unencrypted", 196: "TTL exceeded", 197: "No node ID found",
    198: "Rate limited", 199: "IGMP handled", 200: "IGMP subscribed", 201: "Multicast handled",
    202: "Host datapath not ready", 203: "Endpoint policy program not available",
    204: "No Egress IP configured", 205: "Punt to proxy",
}
_XLATE = {"SOCK_XLATE_POINT_POST_DIRECTION_FWD": "post-xlate-fwd",
          "SOCK_XLATE_POINT_POST_DIRECTION_REV": "post-xlate-rev",
          "SOCK_XLATE_POINT_PRE_DIRECTION_FWD": "pre-xlate-fwd",
          "SOCK_XLATE_POINT_PRE_DIRECTION_REV": "pre-xlate-rev"}
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


# -- JSON ---------------------------------------------------------------------------------------
def _go_json(obj: Any) -> str:
    """Compact JSON as Go's json.Encoder writes protojson output (HTML characters escaped)."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    for char, escaped in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


def response(flow: Flow) -> dict[str, Any]:
    """The ``observer.GetFlowsResponse`` a flow came in (or would come in)."""
    envelope = flow.envelope if flow.envelope is not None else {}
    return canonical({"flow": dict(flow.record), **envelope}, RESPONSE)


def response_line(obj: Mapping[str, Any]) -> str:
    """A GetFlowsResponse object as one line of ``hubble observe -o jsonpb``."""
    return _go_json(canonical(obj, RESPONSE))


def jsonpb_line(flow: Flow) -> str:
    """One line of ``hubble observe -o jsonpb``."""
    return _go_json(response(flow))


def json_line(flow: Flow) -> str:
    """One line of legacy ``hubble observe -o json`` (the bare flow)."""
    return _go_json(canonical(flow.record, FLOW))


# -- compact ------------------------------------------------------------------------------------
def compact_line(flow: Flow, *, node_name: bool = False, policy_names: bool = False) -> str:
    """One line of ``hubble observe -o compact`` (colour off, IP translation on)."""
    f = flow.record
    src, dst = _hostnames(f)
    src_id = _identity(_get(f, "source", "identity", default=0))
    dst_id = _identity(_get(f, "destination", "identity", default=0))
    is_reply = f.get("is_reply")
    arrow = "->"
    if is_reply is None:
        arrow = "<>"
    elif is_reply:
        src, dst, src_id, dst_id, arrow = dst, src, dst_id, src_id, "<-"
    node = f" [{f.get('node_name', '')}]" if node_name else ""
    return (f"{stamp_milli(f.get('time'))}{node}: {src} {src_id} {arrow} {dst} {dst_id} "
            f"{flow_type(f)} {_verdict(f, policy_names)} ({_summary(f)})")


def legacy_json() -> bool:
    """``HUBBLE_COMPAT=legacy-json-output``: the switch that makes hubble's ``-o json`` print
    bare flows (CLI v0.10 and older); otherwise ``json`` is an alias for ``jsonpb``
    (cilium ``hubble/cmd/common/config/compat.go``, ``hubble/cmd/observe/flows.go``)."""
    options = os.environ.get("HUBBLE_COMPAT", "").lower().split(",")
    return "legacy-json-output" in options


#: The columns of ``hubble observe -o table``.
TABLE_HEADER = ("TIMESTAMP", "SOURCE", "DESTINATION", "TYPE", "VERDICT", "SUMMARY")


def table_row(flow: Flow) -> list[str]:
    """One row of ``hubble observe -o table`` (hostnames with ports, no identities)."""
    f = flow.record
    src, dst = _hostnames(f)
    return [stamp_milli(f.get("time")), src, dst, flow_type(f), _verdict(f, False), _summary(f)]


def write(flows: Iterable[Flow], output: str, **compact: bool) -> str:
    """Every flow in ``output`` format (``jsonpb``, ``json``, ``compact``), one line each,
    as ``hubble observe -o OUTPUT`` prints it."""
    json_writer = json_line if legacy_json() else jsonpb_line
    make = {"jsonpb": jsonpb_line, "json": json_writer}.get(output)
    lines = [make(f) if make else compact_line(f, **compact) for f in flows]
    return "".join(line + "\n" for line in lines)


def stamp_milli(ts: Any) -> str:
    """Go's ``time.StampMilli`` (``Jan _2 15:04:05.000``) of an RFC 3339 UTC timestamp."""
    if not isinstance(ts, str) or len(ts) < 20:
        return "N/A"
    date, _, clock = ts.rstrip("Z").partition("T")
    _, month, day = date.split("-")
    hms, _, frac = clock.partition(".")
    return f"{_MONTHS[int(month) - 1]} {int(day):>2} {hms}.{(frac + '000')[:3]}"


def flow_type(f: Mapping[str, Any]) -> str:
    """The TYPE column: ``http-request``, ``to-endpoint``, ``Policy denied``, ..."""
    l7 = f.get("l7")
    if l7 is not None:
        kind = str(l7.get("type", "UNKNOWN_L7_TYPE")).lower()
        protocol = "l7"
        if "http" in l7:
            protocol = "http"
        elif "dns" in l7:
            protocol = "dns"
            kind += " " + str(l7["dns"].get("observation_source", ""))
        elif "kafka" in l7:
            protocol = "kafka"
        return f"{protocol}-{kind}"
    event = f.get("event_type", {})
    etype, sub = event.get("type", 0), event.get("sub_type", 0)
    if etype == _MSG_TRACE:
        return TRACE_POINTS.get(sub, str(sub))
    if etype == _MSG_DROP:
        return DROP_REASONS.get(sub, f"{sub}, 0")
    if etype == _MSG_POLICY_VERDICT:
        match = POLICY_MATCH.get(f.get("policy_match_type", 0), "unknown")
        return f"policy-verdict:{match} {f.get('traffic_direction', 'TRAFFIC_DIRECTION_UNKNOWN')}"
    if etype == _MSG_CAPTURE:
        return str(f.get("debug_capture_point", "DBG_CAPTURE_POINT_UNKNOWN"))
    if etype == _MSG_TRACE_SOCK:
        point = str(f.get("sock_xlate_point", "SOCK_XLATE_POINT_UNKNOWN"))
        return _XLATE.get(point, point)
    return "UNKNOWN"


def _get(f: Mapping[str, Any], *keys: str, default: Any = None) -> Any:
    for key in keys:
        if not isinstance(f, Mapping) or key not in f:
            return default
        f = f[key]
    return f


def _identity(number: int) -> str:
    name = RESERVED_NAMES.get(number)
    return f"({name})" if name else f"(ID:{number})"


def _ports(f: Mapping[str, Any]) -> tuple[str, str]:
    l4 = f.get("l4", {})
    for proto in ("TCP", "UDP", "SCTP"):
        if proto in l4:
            return (str(l4[proto].get("source_port", 0)),
                    str(l4[proto].get("destination_port", 0)))
    return "", ""


def _hostnames(f: Mapping[str, Any]) -> tuple[str, str]:
    if "IP" not in f:
        eth = f.get("ethernet")
        return (eth.get("source", ""), eth.get("destination", "")) if eth else ("", "")
    src_port, dst_port = _ports(f)
    out = []
    for side, port in (("source", src_port), ("destination", dst_port)):
        ep, svc = f.get(side, {}), f.get(f"{side}_service")
        ns, pod, name = ep.get("namespace", ""), ep.get("pod_name", ""), ""
        if svc:
            ns, name = svc.get("namespace", ""), svc.get("name", "")
        out.append(_hostname(f["IP"].get(side, ""), port, ns, pod, name,
                             f.get(f"{side}_names", [])))
    return out[0], out[1]


def _hostname(ip: str, port: str, ns: str, pod: str, svc: str, names: list[str]) -> str:
    host = ip
    if pod:
        host = f"{ns}/{pod}" if ns else pod
    elif svc:
        host = f"{ns}/{svc}" if ns else svc
    elif names:
        host = ",".join(names)
    if port and port != "0":
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"  # net.JoinHostPort
    return host


def _verdict(f: Mapping[str, Any], policy_names: bool) -> str:
    verdict = f.get("verdict", "VERDICT_UNKNOWN")
    is_policy = _get(f, "event_type", "type", default=0) == _MSG_POLICY_VERDICT
    direction = f.get("traffic_direction", "")
    by = {"EGRESS": "egress", "INGRESS": "ingress"}.get(direction)
    if verdict in ("FORWARDED", "REDIRECTED") and is_policy:
        names = _policy_names(f.get(f"{by}_allowed_by", [])) if policy_names and by else ""
        return "ALLOWED" + names
    if verdict in ("DROPPED", "ERROR") and is_policy:
        names = _policy_names(f.get(f"{by}_denied_by", [])) if policy_names and by else ""
        return "DENIED" + names
    if verdict == "AUDIT" and is_policy:  # cilium main names the would-be denying policies
        names = _policy_names(f.get(f"{by}_denied_by", [])) if policy_names and by else ""
        return "AUDITED" + names
    return str(verdict)


def _policy_names(policies: list[Mapping[str, Any]]) -> str:
    named = [f"{p['name']} ({p['kind']})" for p in policies if p.get("kind") and p.get("name")]
    return " BY " + ", ".join(named) if named else ""


def _summary(f: Mapping[str, Any]) -> str:
    out = ""
    trace_id = int(_get(f, "ip_trace_id", "trace_id", default="0"))
    if trace_id > 0:
        out = f"IP Trace ID: {trace_id}; "
    out += str(f.get("Summary", ""))
    auth = f.get("auth_type", "DISABLED")
    if auth != "DISABLED":
        out += f"; Auth: {auth}"
    return out
