"""Hubble's protobuf messages as data: field order for writing, and a validator.

``flow_schema.json`` beside this module was derived from Cilium's ``flow.proto``,
``observer.proto`` and ``relay.proto`` (its ``source`` key names the release and commit; the
script that made it is ``tests/data/hubble/derive_schema.py``). Hubble prints flows with
protojson and ``UseProtoNames`` (cilium ``api/v1/flow/flow.pb.json.go``): keys are the proto
field names, in declaration order, default values omitted, enums by name, 64-bit integers as
strings, ``Timestamp`` as RFC 3339 and wrapper types as their bare value
(https://protobuf.dev/programming-guides/json/).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import cache
from importlib.resources import files
from typing import Any

RESPONSE = "observer.GetFlowsResponse"
FLOW = "flow.Flow"

_INT32 = {"int32", "sint32", "sfixed32"}
_UINT32 = {"uint32", "fixed32"}
_INT64 = {"int64", "sint64", "sfixed64", "uint64", "fixed64"}
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3}|\.\d{6}|\.\d{9})?Z$")


@cache
def schema() -> dict[str, Any]:
    text = files("labkit.hubble").joinpath("flow_schema.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def fields(message: str) -> list[dict[str, Any]]:
    """The fields of ``message`` (e.g. ``flow.Flow``) in declaration order."""
    return list(schema()["messages"][message]["fields"])


def enum_values(enum: str) -> dict[str, int]:
    return dict(schema()["enums"][enum])


def canonical(obj: Mapping[str, Any], message: str) -> dict[str, Any]:
    """``obj`` with its keys (recursively) in protojson's order; unknown keys keep theirs, last."""
    out: dict[str, Any] = {}
    for f in fields(message):
        name = f["name"]
        if name not in obj:
            continue
        value = obj[name]
        if f["kind"] == "message":
            value = ([canonical(v, f["type"]) for v in value] if f["repeated"]
                     else canonical(value, f["type"]))
        out[name] = value
    for key, value in obj.items():
        out.setdefault(key, value)
    return out


def validate(obj: Any, message: str = RESPONSE) -> list[str]:
    """Every way ``obj`` differs from what protojson writes for ``message``; empty if none."""
    problems: list[str] = []
    _check_message(obj, message, message, problems)
    return problems


def _check_message(obj: Any, message: str, path: str, problems: list[str]) -> None:
    if not isinstance(obj, dict):
        problems.append(f"{path}: expected an object for {message}, got {type(obj).__name__}")
        return
    declared = fields(message)
    index = {f["name"]: i for i, f in enumerate(declared)}
    last = -1
    oneofs: dict[str, str] = {}
    for key, value in obj.items():
        where = f"{path}.{key}"
        if key not in index:
            problems.append(f"{where}: {message} has no field {key!r}")
            continue
        if index[key] < last:
            problems.append(f"{where}: out of declaration order (protojson writes it earlier)")
        last = max(last, index[key])
        f = declared[index[key]]
        if f["oneof"]:
            if f["oneof"] in oneofs:
                problems.append(f"{where}: oneof {f['oneof']} already set by {oneofs[f['oneof']]}")
            oneofs[f["oneof"]] = key
        if f["repeated"]:
            if not isinstance(value, list):
                problems.append(f"{where}: expected a list")
                continue
            if not value:
                problems.append(f"{where}: empty repeated field (protojson omits it)")
            for i, item in enumerate(value):
                _check_value(item, f, f"{where}[{i}]", problems, in_list=True)
        else:
            _check_value(value, f, where, problems, in_list=False)


def _check_value(value: Any, f: dict[str, Any], where: str, problems: list[str],
                 *, in_list: bool) -> None:
    kind, ftype = f["kind"], f["type"]
    if kind == "message":
        _check_message(value, ftype, where, problems)
    elif kind == "enum":
        names = enum_values(ftype)
        if not isinstance(value, str) or value not in names:
            problems.append(f"{where}: {value!r} is not a value of enum {ftype}")
        elif names[value] == 0 and not in_list and not f["oneof"]:
            problems.append(f"{where}: default enum value {value} (protojson omits it)")
    elif kind == "wkt":
        _check_wkt(value, ftype, where, problems)
    else:
        error = _scalar_error(value, ftype)
        if error:
            problems.append(f"{where}: {error}")
        elif not in_list and not f["oneof"] and value == _default(ftype):
            problems.append(f"{where}: default value {value!r} (protojson omits it)")


def _default(ftype: str) -> Any:
    if ftype in ("string", "bytes"):
        return ""
    if ftype == "bool":
        return False
    return "0" if ftype in _INT64 else 0


def _scalar_error(value: Any, ftype: str) -> str:
    if ftype == "string" or ftype == "bytes":
        return "" if isinstance(value, str) else f"expected a string for {ftype}"
    if ftype == "bool":
        return "" if isinstance(value, bool) else "expected true or false"
    if ftype in _INT32 | _UINT32:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"expected a JSON number for {ftype}"
        low, high = (0, 2**32 - 1) if ftype in _UINT32 else (-(2**31), 2**31 - 1)
        return "" if low <= value <= high else f"{value} out of range for {ftype}"
    if ftype in _INT64:
        ok = isinstance(value, str) and re.fullmatch(r"-?\d+", value) is not None
        return "" if ok else f"expected a decimal string for {ftype} (protojson quotes 64-bit)"
    if ftype in ("double", "float"):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return "" if ok else f"expected a number for {ftype}"
    return f"unknown scalar type {ftype}"


def _check_wkt(value: Any, ftype: str, where: str, problems: list[str]) -> None:
    name = ftype.removeprefix("google.protobuf.")
    if name == "Timestamp":
        if not isinstance(value, str) or not _TIMESTAMP.match(value):
            problems.append(f"{where}: {value!r} is not an RFC 3339 UTC timestamp as protojson "
                            "writes it (0, 3, 6 or 9 fractional digits, Z)")
    elif name == "BoolValue":
        if not isinstance(value, bool):
            problems.append(f"{where}: expected true or false for BoolValue")
    elif name in ("Int32Value", "UInt32Value"):
        error = _scalar_error(value, "int32" if name == "Int32Value" else "uint32")
        if error:
            problems.append(f"{where}: {error}")
    elif name in ("Int64Value", "UInt64Value"):
        error = _scalar_error(value, "int64")
        if error:
            problems.append(f"{where}: {error}")
    elif name == "StringValue":
        if not isinstance(value, str):
            problems.append(f"{where}: expected a string for StringValue")
    elif name == "Any":
        if not isinstance(value, dict) or "@type" not in value:
            problems.append(f"{where}: expected an object with @type for Any")
    elif not isinstance(value, str | dict):
        problems.append(f"{where}: unexpected JSON for {ftype}")
