"""Hubble flows as typed, frozen data, read from ``hubble observe -o jsonpb`` or ``-o json``.

``hubble observe -o jsonpb`` writes one ``observer.GetFlowsResponse`` a line:
``{"flow": {...}, "node_name": ..., "time": ...}``; Hubble's exporters write the same shape,
sometimes field-masked and without the top-level keys. Legacy ``-o json`` writes the bare
``flow.Flow`` (cilium ``hubble/pkg/printer/printer.go``, ``WriteProtoFlow``). Responses that are
not flows (``lost_events``, ``node_status``, agent and debug events) are skipped and counted.

A :class:`Flow` keeps the protojson object it came from (``record``) so writers reproduce it
byte for byte; the typed fields are the ones ``labkit hubble parse --output json`` documents.
Absent fields are ``None``. Files and lists of lines are read by :mod:`labkit.hubble.log`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from labkit.errors import FlowError

#: Keys of a GetFlowsResponse that carry something other than a flow.
NOT_FLOWS = ("lost_events", "node_status", "agent_event", "debug_event")
#: Layer4 oneof members, as Hubble names them (flow.proto ``Layer4``).
L4_PROTOCOLS = ("TCP", "UDP", "ICMPv4", "ICMPv6", "SCTP")
_FLOW_KEYS = frozenset({"time", "uuid", "verdict", "IP", "l4", "source", "destination", "Type",
                        "node_name", "l7", "event_type", "drop_reason_desc", "is_reply",
                        "Summary", "ethernet", "traffic_direction"})


@dataclass(frozen=True)
class Endpoint:
    namespace: str | None = None
    pod_name: str | None = None
    identity: int | None = None
    labels: tuple[str, ...] | None = None
    ip: str | None = None

    @property
    def workload(self) -> str:
        """A short name for maps and tables: ``ns/pod``, a reserved label, or the IP."""
        if self.pod_name:
            return f"{self.namespace}/{self.pod_name}" if self.namespace else self.pod_name
        reserved = [lb.removeprefix("reserved:") for lb in self.labels or ()
                    if lb.startswith("reserved:")]
        if reserved:
            return reserved[0]
        return self.ip or "unknown"

    def as_dict(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "pod_name": self.pod_name,
                "identity": self.identity,
                "labels": list(self.labels) if self.labels is not None else None,
                "ip": self.ip}


@dataclass(frozen=True)
class L4:
    protocol: str | None = None
    source_port: int | None = None
    destination_port: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"protocol": self.protocol, "source_port": self.source_port,
                "destination_port": self.destination_port}


@dataclass(frozen=True)
class HTTP:
    method: str | None = None
    url: str | None = None
    code: int | None = None
    protocol: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "url": self.url, "code": self.code,
                "protocol": self.protocol}


@dataclass(frozen=True)
class DNS:
    query: str | None = None
    rcode: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"query": self.query, "rcode": self.rcode}


@dataclass(frozen=True)
class L7:
    type: str | None = None
    http: HTTP | None = None
    dns: DNS | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, "http": self.http.as_dict() if self.http else None,
                "dns": self.dns.as_dict() if self.dns else None}


@dataclass(frozen=True)
class Flow:
    """One Hubble flow. ``record`` is the protojson ``flow.Flow`` object as read or made."""

    time: str | None
    verdict: str | None
    drop_reason: str | None
    type: str | None
    traffic_direction: str | None
    is_reply: bool | None
    source: Endpoint
    destination: Endpoint
    l4: L4
    l7: L7 | None
    node_name: str | None
    summary: str | None
    record: Mapping[str, Any] = field(default_factory=dict, repr=False, hash=False,
                                      compare=False)
    #: The response's own ``node_name`` and ``time`` when the line had them (jsonpb).
    envelope: Mapping[str, Any] | None = field(default=None, repr=False, hash=False,
                                               compare=False)

    @classmethod
    def from_record(cls, record: Mapping[str, Any],
                    envelope: Mapping[str, Any] | None = None) -> Flow:
        """The typed view of a protojson ``flow.Flow`` (raises FlowError on a wrong type)."""
        r = _Reader(record, "flow")
        ip = r.mapping("IP")
        env = envelope or {}
        l7 = None
        if "l7" in record:
            rl7 = _Reader(r.mapping("l7"), "flow.l7")
            http = dns = None
            if "http" in rl7.obj:
                h = _Reader(rl7.mapping("http"), "flow.l7.http")
                http = HTTP(h.text("method"), h.text("url"), h.number("code"),
                            h.text("protocol"))
            if "dns" in rl7.obj:
                d = _Reader(rl7.mapping("dns"), "flow.l7.dns")
                # proto3 omits rcode 0 (NOERROR): a response without one answered NOERROR.
                rcode = d.number("rcode")
                if rcode is None and rl7.text("type") == "RESPONSE":
                    rcode = 0
                dns = DNS(d.text("query"), rcode)
            l7 = L7(rl7.text("type"), http, dns)
        return cls(
            time=r.text("time") or _str_or_none(env.get("time")),
            verdict=r.text("verdict"),
            drop_reason=r.text("drop_reason_desc"),
            type=r.text("Type"),
            traffic_direction=r.text("traffic_direction"),
            is_reply=r.flag("is_reply"),
            source=_endpoint(r, "source", ip.get("source")),
            destination=_endpoint(r, "destination", ip.get("destination")),
            l4=_l4(r),
            l7=l7,
            node_name=r.text("node_name") or _str_or_none(env.get("node_name")),
            summary=r.text("Summary"),
            record=record,
            envelope=envelope,
        )

    def as_dict(self) -> dict[str, Any]:
        """The documented JSON shape of ``labkit hubble parse --output json``."""
        return {
            "time": self.time, "verdict": self.verdict, "drop_reason": self.drop_reason,
            "type": self.type, "traffic_direction": self.traffic_direction,
            "is_reply": self.is_reply, "source": self.source.as_dict(),
            "destination": self.destination.as_dict(), "l4": self.l4.as_dict(),
            "l7": self.l7.as_dict() if self.l7 else None, "node_name": self.node_name,
            "summary": self.summary,
        }

    @property
    def http(self) -> HTTP | None:
        return self.l7.http if self.l7 else None

    @property
    def dns(self) -> DNS | None:
        return self.l7.dns if self.l7 else None


def parse_response(obj: Any, where: str = "<flow>") -> Flow | None:
    """One decoded line: a Flow, or None for a response that is not a flow."""
    if not isinstance(obj, dict):
        raise FlowError(f"{where}: expected a JSON object, got {type(obj).__name__}",
                        hint="expected one `hubble observe -o jsonpb` response a line")
    try:
        if "flow" in obj:
            record = obj["flow"]
            if not isinstance(record, dict):
                raise FlowError(f"field 'flow': expected an object, got {_kind(record)}")
            envelope = {k: obj[k] for k in ("node_name", "time") if k in obj}
            return Flow.from_record(record, envelope)
        if any(k in obj for k in NOT_FLOWS):
            return None
        if _FLOW_KEYS & obj.keys():  # legacy `-o json`: a bare flow.Flow
            return Flow.from_record(obj)
    except FlowError as exc:
        raise FlowError(f"{where}: {exc.message}",
                        hint="each line must be a Hubble flow as `hubble observe -o jsonpb` "
                        "writes it") from exc
    raise FlowError(f"{where}: neither a flow nor a Hubble event (keys: "
                    f"{', '.join(sorted(obj)) or 'none'})",
                    hint="expected `{\"flow\": {...}}` (jsonpb) or a bare flow (legacy json)")


# -- helpers ------------------------------------------------------------------------------------
class _Reader:
    """Typed access to a protojson object; a wrong type names the field."""

    def __init__(self, obj: Mapping[str, Any], path: str) -> None:
        self.obj, self.path = obj, path

    def _get(self, key: str, kind: type, what: str) -> Any:
        value = self.obj.get(key)
        if value is None:
            return None
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise FlowError(f"field '{self.path}.{key}': expected {what}, got {_kind(value)}")
        return value

    def text(self, key: str) -> str | None:
        value: str | None = self._get(key, str, "a string")
        return value

    def number(self, key: str) -> int | None:
        value: int | None = self._get(key, int, "a number")
        return value

    def flag(self, key: str) -> bool | None:
        value: bool | None = self._get(key, bool, "true or false")
        return value

    def mapping(self, key: str) -> Mapping[str, Any]:
        value: Mapping[str, Any] | None = self._get(key, dict, "an object")
        return value or {}

    def strings(self, key: str) -> tuple[str, ...] | None:
        value = self._get(key, list, "a list of strings")
        if value is None:
            return None
        if not all(isinstance(v, str) for v in value):
            raise FlowError(f"field '{self.path}.{key}': expected a list of strings")
        return tuple(value)


def _endpoint(r: _Reader, key: str, ip: Any) -> Endpoint:
    e = _Reader(r.mapping(key), f"flow.{key}")
    return Endpoint(e.text("namespace"), e.text("pod_name"), e.number("identity"),
                    e.strings("labels"), ip if isinstance(ip, str) else None)


def _l4(r: _Reader) -> L4:
    l4 = r.mapping("l4")
    for proto in L4_PROTOCOLS:
        if proto in l4:
            p = _Reader(_Reader(l4, "flow.l4").mapping(proto), f"flow.l4.{proto}")
            if proto in ("ICMPv4", "ICMPv6"):
                return L4(proto)
            return L4(proto, p.number("source_port"), p.number("destination_port"))
    return L4()


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number", type(None): "null"}.get(type(value), "a value")


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None
