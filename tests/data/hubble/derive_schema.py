"""Derive labkit/hubble/flow_schema.json from Cilium's protobuf definitions.

Not run by the tests: it documents how the committed schema was made. Usage:

    python tests/data/hubble/derive_schema.py DIR SOURCE > labkit/hubble/flow_schema.json

DIR holds ``flow.proto``, ``observer.proto`` and ``relay.proto`` from cilium/cilium
``api/v1/{flow,observer,relay}/`` (the upstream files are not committed here); SOURCE is the
text recorded as their origin. The output keeps, per message, its fields in declaration order
(the order protojson writes them in), each with its proto name, type, whether it is repeated
and which oneof it belongs to; per enum, its value names and numbers.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

_TOKEN = re.compile(r'"[^"]*"|[A-Za-z_][\w.]*|\d+|[{}\[\]=;<>,()-]')


def _tokens(text: str) -> list[str]:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    return _TOKEN.findall(text)


def _skip_statement(toks: list[str], i: int) -> int:
    while toks[i] != ";":
        i += 1
    return i + 1


def _parse_block(toks: list[str], i: int, scope: str, pkg: str, out: dict) -> int:
    """Parse a message body starting after '{'; returns the index after its '}'."""
    fields: list[dict] = []
    oneof: str | None = None
    depth_oneof = False
    while True:
        t = toks[i]
        if t == "}":
            if depth_oneof:
                depth_oneof, oneof = False, None
                i += 1
                continue
            out["messages"][scope] = {"fields": fields}
            return i + 1
        if t == "message":
            name = toks[i + 1]
            i = _parse_block(toks, i + 3, f"{scope}.{name}", pkg, out)
        elif t == "enum":
            i = _parse_enum(toks, i, f"{scope}.{toks[i + 1]}", out)
        elif t == "oneof":
            oneof, depth_oneof = toks[i + 1], True
            i += 3
        elif t in ("reserved", "option"):
            i = _skip_statement(toks, i)
        else:
            repeated = t == "repeated"
            if repeated:
                i += 1
            if toks[i] == "map":  # map<K, V> name = N;
                ftype = f"map<{toks[i + 2]},{toks[i + 4]}>"
                i += 6
            else:
                ftype = toks[i]
                i += 1
            name, number = toks[i], int(toks[i + 2])
            i = _skip_statement(toks, i)
            fields.append({"name": name, "number": number, "type": ftype,
                           "repeated": repeated, "oneof": oneof, "scope": scope})


def _parse_enum(toks: list[str], i: int, full: str, out: dict) -> int:
    i += 3
    values: dict[str, int] = {}
    while toks[i] != "}":
        if toks[i] in ("reserved", "option"):
            i = _skip_statement(toks, i)
            continue
        name = toks[i]
        neg = toks[i + 2] == "-"
        values[name] = -int(toks[i + 3]) if neg else int(toks[i + 2])
        i = _skip_statement(toks, i)
    out["enums"][full] = values
    return i + 1


def parse(path: Path, out: dict) -> None:
    toks = _tokens(path.read_text(encoding="utf-8"))
    pkg = ""
    i = 0
    while i < len(toks):
        t = toks[i]
        if t == "package":
            pkg = toks[i + 1]
            i = _skip_statement(toks, i)
        elif t in ("syntax", "import", "option"):
            i = _skip_statement(toks, i)
        elif t == "message":
            i = _parse_block(toks, i + 3, f"{pkg}.{toks[i + 1]}", pkg, out)
        elif t == "enum":
            i = _parse_enum(toks, i, f"{pkg}.{toks[i + 1]}", out)
        elif t == "service":
            depth = 0
            while True:
                depth += toks[i] == "{"
                depth -= toks[i] == "}"
                i += 1
                if toks[i - 1] == "}" and depth == 0:
                    break
        else:
            raise SystemExit(f"{path}: unexpected token {t!r}")


SCALARS = {"double", "float", "int32", "int64", "uint32", "uint64", "sint32", "sint64",
           "fixed32", "fixed64", "sfixed32", "sfixed64", "bool", "string", "bytes"}


def _resolve(name: str, scope: str, known: set[str]) -> str:
    if name in SCALARS or name.startswith("google.protobuf.") or name.startswith("map<"):
        return name
    parts = scope.split(".")
    while parts:  # innermost scope first, as protoc resolves names
        candidate = ".".join([*parts, name])
        if candidate in known:
            return candidate
        parts.pop()
    if name in known:
        return name
    raise SystemExit(f"cannot resolve type {name!r} in {scope}")


def main() -> None:
    folder, source = Path(sys.argv[1]), sys.argv[2]
    out: dict = {"messages": {}, "enums": {}}
    for name in ("flow.proto", "relay.proto", "observer.proto"):
        parse(folder / name, out)
    known = set(out["messages"]) | set(out["enums"])
    for msg in out["messages"].values():
        for f in msg["fields"]:
            f["type"] = _resolve(f["type"], f.pop("scope"), known)
            f["kind"] = ("scalar" if f["type"] in SCALARS else "wkt"
                         if f["type"].startswith("google.protobuf.") else "enum"
                         if f["type"] in out["enums"] else "message")
    doc = {"source": source, **out}
    json.dump(doc, sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
