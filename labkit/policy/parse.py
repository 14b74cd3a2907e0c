"""Manifests to typed objects, with errors that name the file, the object and the field.

``read_documents(paths)`` reads YAML files (several documents each) or
directories of them; ``documents_of(text)`` reads a string. :class:`ParseContext`
is what every kind's parser uses to read fields; the parsers themselves are
registered in ``labkit.policy.kinds``, which turns documents into objects.
Decoding is strict, like ``kubectl apply`` with server-side field validation:
an unknown field is an error, not a silent no-op.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from labkit.errors import ManifestError
from labkit.policy.selectors import OPERATORS, LabelSelector, Requirement

YAML_SUFFIXES = (".yaml", ".yml", ".json")


class _StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe YAML (libyaml's parser when PyYAML has it) that refuses duplicate keys.

    kubectl's strict field validation refuses duplicate fields; a plain YAML
    loader would silently keep the last one (``ingress: []`` then ``ingress: [{}]``).
    """


def _mapping_without_duplicates(loader: Any, node: yaml.MappingNode, deep: bool = False) -> Any:
    """A mapping, each key constructed once (this runs for every object of every manifest)."""
    loader.flatten_mapping(node)
    out: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in out
        except TypeError:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark, "found unhashable key",
                key_node.start_mark) from None
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate field {key!r}", key_node.start_mark)
        out[key] = loader.construct_object(value_node, deep=deep)
    return out


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                              _mapping_without_duplicates)
_LOADER = _StrictLoader
METADATA_FIELDS = {"name", "namespace", "labels", "annotations", "uid", "resourceVersion",
                   "generation", "creationTimestamp", "managedFields", "ownerReferences",
                   "finalizers", "generateName"}
_PORT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
PORT_NAME_HINT = ("a port name is an IANA service name: at most 15 lowercase letters, digits "
                  "and '-', with at least one letter and no leading, trailing or double '-'")


def valid_port_name(name: str) -> bool:
    """Kubernetes' IANA_SVC_NAME rule, used for container ports and policy ports alike."""
    return (len(name) <= 15 and bool(_PORT_NAME.match(name)) and "--" not in name
            and any(c.isalpha() for c in name))


@dataclass
class ParseContext:
    """Where we are: the file and object, for error messages."""

    source: str
    obj: str = ""

    def error(self, field: str, message: str, hint: str = "") -> ManifestError:
        return ManifestError(message, source=self.source, obj=self.obj, field=field, hint=hint)

    # -- typed field access ------------------------------------------------------------
    def mapping(self, value: Any, field: str, *, allowed: Iterable[str] | None = None
                ) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.error(field, f"expected a mapping, got {_kind_of(value)}")
        if allowed is not None:
            known = set(allowed)
            for key in value:
                if key not in known:
                    raise self.error(
                        f"{field}.{key}" if field else str(key),
                        f"unknown field {key!r}",
                        hint=f"known fields here: {', '.join(sorted(known))}",
                    )
        return dict(value)

    def sequence(self, value: Any, field: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.error(field, f"expected a list, got {_kind_of(value)}")
        return value

    def string(self, value: Any, field: str, *, required: bool = False) -> str:
        if value is None:
            if required:
                raise self.error(field, "is required")
            return ""
        if not isinstance(value, str):
            raise self.error(field, f"expected a string, got {_kind_of(value)}")
        return value

    def integer(self, value: Any, field: str, *, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(field, f"expected an integer, got {_kind_of(value)}")
        if not low <= value <= high:
            raise self.error(field, f"{value} is out of range {low}-{high}",
                             hint=f"use a number from {low} to {high}")
        return value

    def port_number(self, value: Any, field: str) -> int:
        return self.integer(value, field, low=1, high=65535)

    def protocol(self, value: Any, field: str, *, allowed: Sequence[str] = ("TCP", "UDP", "SCTP")
                 ) -> str:
        text = self.string(value, field) or "TCP"
        if text not in allowed:
            raise self.error(field, f"unsupported protocol {text!r}",
                             hint=f"use one of {', '.join(allowed)}")
        return text

    def cidr(self, value: Any, field: str) -> str:
        text = self.string(value, field, required=True)
        try:
            if "/" not in text:  # the API server wants a prefix length, even for one host
                raise ValueError(text)
            return str(ipaddress.ip_network(text, strict=False))
        except ValueError as exc:
            raise self.error(field, f"invalid CIDR {text!r}",
                             hint="write an address and prefix length, e.g. 10.0.0.0/24") from exc

    def labels(self, value: Any, field: str) -> dict[str, str]:
        raw = self.mapping(value, field)
        out: dict[str, str] = {}
        for k, v in raw.items():
            # The API server decodes labels as strings and refuses numbers and booleans.
            if not isinstance(k, str) or not isinstance(v, str):
                raise self.error(f"{field}.{k}", "label values must be strings",
                                 hint="quote values such as \"true\" or \"1\"")
            out[k] = v
        return out

    def label_selector(self, value: Any, field: str) -> LabelSelector:
        """A Kubernetes LabelSelector; ``None`` and ``{}`` both select everything."""
        raw = self.mapping(value, field, allowed=("matchLabels", "matchExpressions"))
        labels = self.labels(raw.get("matchLabels"), f"{field}.matchLabels")
        reqs: list[Requirement] = []
        for i, expr in enumerate(self.sequence(raw.get("matchExpressions"),
                                               f"{field}.matchExpressions")):
            where = f"{field}.matchExpressions[{i}]"
            e = self.mapping(expr, where, allowed=("key", "operator", "values"))
            key = self.string(e.get("key"), f"{where}.key", required=True)
            op = self.string(e.get("operator"), f"{where}.operator", required=True)
            if op not in OPERATORS:
                raise self.error(f"{where}.operator", f"invalid operator {op!r}",
                                 hint=f"use one of {', '.join(OPERATORS)}")
            values = tuple(str(v) for v in self.sequence(e.get("values"), f"{where}.values"))
            if op in ("In", "NotIn") and not values:
                raise self.error(f"{where}.values", f"operator {op} needs at least one value")
            if op in ("Exists", "DoesNotExist") and values:
                raise self.error(f"{where}.values", f"operator {op} takes no values")
            reqs.append(Requirement(key, op, values))
        return LabelSelector(tuple(sorted(labels.items())), tuple(reqs))


def subnet_within(sub: str, net: str, *, strictly: bool = False) -> bool:
    """Whether CIDR ``sub`` lies inside ``net`` (same IP version; ``strictly``: not equal)."""
    inner, outer = ipaddress.ip_network(sub), ipaddress.ip_network(net)
    # Two branches on purpose: each narrows both networks to one IP version for the checker.
    if isinstance(inner, ipaddress.IPv4Network) and isinstance(outer, ipaddress.IPv4Network):  # noqa: SIM114
        inside = inner.subnet_of(outer)
    elif isinstance(inner, ipaddress.IPv6Network) and isinstance(outer, ipaddress.IPv6Network):
        inside = inner.subnet_of(outer)
    else:
        return False
    return inside and not (strictly and inner == outer)


def _kind_of(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", int: "a number",
            float: "a number", bool: "a boolean", type(None): "nothing"}.get(
        type(value), type(value).__name__)


Parser = Callable[[dict[str, Any], ParseContext], list[Any]]

# -- reading files -----------------------------------------------------------------------
def read_documents(paths: Sequence[str | Path]) -> list[tuple[str, dict[str, Any]]]:
    """(source, document) pairs from files or directories, in a stable order."""
    out: list[tuple[str, dict[str, Any]]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix in YAML_SUFFIXES)
            if not files:
                raise ManifestError(f"no YAML files in directory {path}",
                                    hint="point at a .yaml file or a folder that holds some")
        elif path.exists():
            files = [path]
        else:
            raise ManifestError(f"{path}: no such file or directory")
        for f in files:
            out.extend(documents_of(f.read_text(encoding="utf-8"), str(f)))
    return out


def documents_of(text: str, source: str = "<string>") -> list[tuple[str, dict[str, Any]]]:
    try:
        docs = list(yaml.load_all(text, Loader=_LOADER))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ManifestError(f"invalid YAML: {problem}", source=source, field=where,
                            hint="check indentation and quoting near that line") from exc
    out: list[tuple[str, dict[str, Any]]] = []
    for i, doc in enumerate(docs):
        if doc is None:
            continue
        if not isinstance(doc, Mapping):
            raise ManifestError(f"document {i + 1} is {_kind_of(doc)}, not an object",
                                source=source, hint="each YAML document must be one object")
        if doc.get("kind") == "List":
            ctx = ParseContext(source, f"List (document {i + 1})")
            for item in ctx.sequence(doc.get("items"), "items"):
                out.append((source, ctx.mapping(item, "items[]")))
        else:
            out.append((source, dict(doc)))
    return out


def namespace_of(doc: Mapping[str, Any], default: str = "default") -> str:
    ns = (doc.get("metadata") or {}).get("namespace")
    return ns if isinstance(ns, str) and ns else default


def name_of(doc: Mapping[str, Any]) -> str:
    return str(doc["metadata"]["name"])
