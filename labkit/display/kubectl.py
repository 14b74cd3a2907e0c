"""kubectl's text output, rebuilt: tables, ages, label selectors, timestamps, YAML and JSON.

Pure functions, written against kubectl's documented behaviour and the real outputs in
``shared/reference/samples/`` (kubectl-nodes-pods/, metallb/, calico/):

- tables go through Go's ``text/tabwriter`` as kubectl configures it (cli-runtime
  ``printers/tabwriter.go``: minwidth 6, padding 3, pad char ' '): every column but the
  last is as wide as its widest cell plus 3 spaces, and at least 6; the last is not padded;
- AGE is apimachinery's ``duration.HumanDuration`` (``6m21s``, ``41m``, ``24h``, ``3d4h``);
- ``-o yaml`` has its keys sorted (sigs.k8s.io/yaml goes through JSON and a sorted map);
  ``-o json`` keeps the API's field order, indented by 4 spaces;
- a list is ``kind: List`` with ``items`` and an empty ``resourceVersion``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import yaml

MIN_WIDTH = 6
PADDING = 3


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], *, padding: int = PADDING,
          min_width: int = MIN_WIDTH) -> str:
    """``kubectl get``'s table: tabwriter columns, the last one unpadded, newline-terminated.

    ``kubectl describe`` writes its tables with padding 2 and no minimum width (and a space
    after each data cell): :func:`describe_table`.
    """
    lines = [list(map(str, header)), *[list(map(str, r)) for r in rows]]
    widths = [max(min_width, max(len(line[i]) for line in lines) + padding)
              for i in range(len(header) - 1)]
    out = []
    for line in lines:
        cells = [c.ljust(w) for c, w in zip(line, widths, strict=False)] + line[len(widths):]
        out.append("".join(cells))
    return "\n".join(out) + "\n"


def describe_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    """A table inside ``kubectl describe`` output, indented by 2: a dashed line under the
    header, and each data cell but the last followed by a space (describe.go writes rows as
    ``"%v \t%v \t..."`` into a tabwriter with padding 2)."""
    dashes = ["-" * len(h) for h in header]
    data = [[f"{c} " for c in r[:-1]] + [str(r[-1])] for r in rows]
    text = table(header, [dashes, *data], padding=2, min_width=0)
    return ["  " + line for line in text.splitlines()]


def human_duration(seconds: float) -> str:
    """apimachinery ``duration.HumanDuration``: what kubectl prints under AGE."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    years, days = hours // 24 // 365, hours // 24 % 365
    if hours < 24 * 365 * 8:
        return f"{years}y{days}d" if days else f"{years}y"
    return f"{years}y"


def age(created: float | None, now: float) -> str:
    """The AGE cell: ``<unknown>`` when the object has no creation time (as kubectl prints)."""
    return "<unknown>" if created is None else human_duration(now - created)


def timestamp(created: float) -> str:
    """``metadata.creationTimestamp`` as the API serialises it (RFC 3339, UTC, seconds)."""
    return datetime.fromtimestamp(int(created), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def describe_time(created: float) -> str:
    """A time as ``kubectl describe`` prints it (Go's RFC1123Z): ``Wed, 08 May 2024 ...``."""
    return datetime.fromtimestamp(int(created), UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")


def label_selector(selector: Mapping[str, Any] | None) -> str:
    """metav1.FormatLabelSelector: ``app=db,tier in (a,b)``; the empty selector is ``<none>``."""
    if not selector:
        return "<none>"
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        op, key, values = expr.get("operator", ""), expr.get("key", ""), expr.get("values") or []
        if op in ("In", "NotIn"):
            parts.append(f"{key} {op.lower()} ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts) or "<none>"


def labels(values: Mapping[str, str]) -> str:
    """A LABELS / SELECTOR cell: ``k=v,k2=v2`` sorted, or ``<none>``."""
    return ",".join(f"{k}={v}" for k, v in sorted(values.items())) or "<none>"


def as_list(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """What ``kubectl get KIND -o yaml|json`` returns for a listing."""
    return {"apiVersion": "v1", "items": list(items), "kind": "List",
            "metadata": {"resourceVersion": ""}}


class _GoYamlDumper(yaml.SafeDumper):
    """Quotes like go-yaml (which kubectl uses): double quotes where PyYAML picks single."""

    def choose_scalar_style(self) -> str:
        style = super().choose_scalar_style()
        return '"' if style == "'" else style


def to_yaml(obj: Mapping[str, Any]) -> str:
    return yaml.dump(dict(obj), Dumper=_GoYamlDumper, sort_keys=True, default_flow_style=False)


def to_json(obj: Mapping[str, Any]) -> str:
    return json.dumps(obj, indent=4, ensure_ascii=False) + "\n"
