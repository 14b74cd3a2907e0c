"""Flows as a pandas DataFrame: one row a flow, one column a documented field (pandas lazy)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from labkit.hubble.flow import Endpoint, Flow

#: Column order of :func:`flows_dataframe`.
COLUMNS = (
    "time", "verdict", "drop_reason", "type", "traffic_direction", "is_reply",
    "source_namespace", "source_pod", "source_workload", "source_identity", "source_labels",
    "source_ip", "destination_namespace", "destination_pod", "destination_workload",
    "destination_identity", "destination_labels", "destination_ip",
    "protocol", "source_port", "destination_port",
    "l7_type", "http_method", "http_url", "http_code", "dns_query", "dns_rcode",
    "node_name", "summary",
)
_INTS = ("source_identity", "destination_identity", "source_port", "destination_port",
         "http_code", "dns_rcode")


def workload(flow: Flow, side: str) -> str:
    """The workload behind one end of a flow: ``ns/name`` of its controller (Hubble's
    ``workloads``), else its ``app`` label, else the pod; reserved identities by name; or the IP.
    """
    ep: Endpoint = getattr(flow, side)
    raw: Mapping[str, Any] = flow.record.get(side) or {}
    workloads = raw.get("workloads") or []
    name = workloads[0].get("name") if workloads and isinstance(workloads[0], dict) else None
    if not name and ep.pod_name:
        labels = dict(lb.removeprefix("k8s:").split("=", 1) for lb in ep.labels or ()
                      if "=" in lb)
        name = labels.get("app.kubernetes.io/name") or labels.get("app") or ep.pod_name
    if name:
        return f"{ep.namespace}/{name}" if ep.namespace else str(name)
    return ep.workload


def _row(flow: Flow) -> dict[str, Any]:
    row: dict[str, Any] = {
        "time": flow.time, "verdict": flow.verdict, "drop_reason": flow.drop_reason,
        "type": flow.type, "traffic_direction": flow.traffic_direction,
        "is_reply": flow.is_reply,
    }
    for side in ("source", "destination"):
        ep: Endpoint = getattr(flow, side)
        row.update({f"{side}_namespace": ep.namespace, f"{side}_pod": ep.pod_name,
                    f"{side}_workload": workload(flow, side),
                    f"{side}_identity": ep.identity,
                    f"{side}_labels": list(ep.labels) if ep.labels is not None else None,
                    f"{side}_ip": ep.ip})
    http, dns = flow.http, flow.dns
    row.update({
        "protocol": flow.l4.protocol, "source_port": flow.l4.source_port,
        "destination_port": flow.l4.destination_port,
        "l7_type": flow.l7.type if flow.l7 else None,
        "http_method": http.method if http else None, "http_url": http.url if http else None,
        "http_code": http.code if http else None,
        "dns_query": dns.query if dns else None, "dns_rcode": dns.rcode if dns else None,
        "node_name": flow.node_name, "summary": flow.summary,
    })
    return row


def flows_dataframe(flows: Iterable[Flow]) -> Any:
    """A DataFrame of flows: ``time`` as UTC datetimes (nanoseconds kept), nullable integers
    and booleans, ``None`` where Hubble left a field out."""
    import pandas as pd  # lazy: heavy, and only DataFrame users need it

    frame = pd.DataFrame([_row(f) for f in flows], columns=list(COLUMNS))
    frame["time"] = pd.to_datetime(frame["time"], utc=True, format="ISO8601")
    for column in _INTS:
        frame[column] = frame[column].astype("Int64")
    frame["is_reply"] = frame["is_reply"].astype("boolean")
    return frame
