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

from labkit.errors import ManifestError
from labkit.inputs import quote, read_text, yaml_documents
from labkit.policy.selectors import OPERATORS, LabelSelector, Requirement

YAML_SUFFIXES = (".yaml", ".yml", ".json")


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

    def value_string(self, value: Any, field: str) -> str:
        """A string item of a list: null, numbers and booleans are refused (quote them)."""
        if not isinstance(value, str):
            raise self.error(field, f"expected a string, got {_kind_of(value)}",
                             hint="quote values such as \"true\", \"1\" or \"null\"")
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

    def labels(self, value: Any, field: str, *, keys: bool = True, values: bool = True,
               noun: str = "label") -> dict[str, str]:
        """A string map; ``keys``/``values``: checked with the API server's label rules."""
        raw = self.mapping(value, field)
        out: dict[str, str] = {}
        for k, v in raw.items():
            # The API server decodes labels as strings and refuses numbers and booleans.
            if not isinstance(k, str) or not isinstance(v, str):
                raise self.error(f"{field}.{quote(k)}", f"{noun} values must be strings",
                                 hint="quote values such as \"true\" or \"1\"")
            problem = (keys and label_key_problem(k)) or (values and label_value_problem(v))
            if problem:
                raise self.error(field, problem, hint=LABEL_HINT)
            out[k] = v
        return out

    def label_selector(self, value: Any, field: str, *, keys: bool = True) -> LabelSelector:
        """A Kubernetes LabelSelector; ``None`` and ``{}`` both select everything.

        ``keys=False`` for selectors whose keys carry a source prefix (Cilium's ``k8s:app``),
        which the API server does not check as label keys.
        """
        raw = self.mapping(value, field, allowed=("matchLabels", "matchExpressions"))
        labels = self.labels(raw.get("matchLabels"), f"{field}.matchLabels", keys=keys)
        reqs: list[Requirement] = []
        for i, expr in enumerate(self.sequence(raw.get("matchExpressions"),
                                               f"{field}.matchExpressions")):
            where = f"{field}.matchExpressions[{i}]"
            e = self.mapping(expr, where, allowed=("key", "operator", "values"))
            key = self.string(e.get("key"), f"{where}.key", required=True)
            problem = keys and label_key_problem(key)
            if problem:
                raise self.error(f"{where}.key", problem, hint=LABEL_HINT)
            op = self.string(e.get("operator"), f"{where}.operator", required=True)
            if op not in OPERATORS:
                raise self.error(f"{where}.operator", f"invalid operator {op!r}",
                                 hint=f"use one of {', '.join(OPERATORS)}")
            values = tuple(self.value_string(v, f"{where}.values[{j}]") for j, v in
                           enumerate(self.sequence(e.get("values"), f"{where}.values")))
            if op in ("In", "NotIn") and not values:
                raise self.error(f"{where}.values", f"operator {op} needs at least one value")
            if op in ("Exists", "DoesNotExist") and values:
                raise self.error(f"{where}.values", f"operator {op} takes no values")
            for j, value in enumerate(values if keys else ()):
                # apimachinery's ValidateLabelSelectorRequirement checks each value as a label
                # value (unless an old object already held an invalid one).
                problem = label_value_problem(value)
                if problem:
                    raise self.error(f"{where}.values[{j}]", problem, hint=LABEL_HINT)
            reqs.append(Requirement(key, op, values))
        return LabelSelector(tuple(sorted(labels.items())), tuple(reqs))


# -- label syntax, as the API server checks it (apimachinery validation: IsQualifiedName,
# IsValidLabelValue, IsDNS1123Subdomain), with its wording ------------------------------------
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = re.compile(rf"^{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*$")
LABEL_HINT = ("label keys are [prefix/]name, values at most 63 characters of letters, digits, "
              "'-', '_' and '.', starting and ending with a letter or digit")
_NAME_RULE = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and "
              "end with an alphanumeric character")


def label_value_problem(value: str) -> str:
    """Why the API server refuses ``value`` as a label value ("" when it accepts it)."""
    if len(value) > 63:
        return f"Invalid value: {quote(value)}: must be no more than 63 characters"
    if value and not _LABEL_NAME.match(value):
        return (f"Invalid value: {quote(value)}: a valid label must be an empty string or "
                f"{_NAME_RULE[5:]}")
    return ""


def label_key_problem(key: str) -> str:
    """Why the API server refuses ``key`` as a label key, a qualified name ("" if fine)."""
    prefix, slash, name = key.rpartition("/")
    bad = f"Invalid value: {quote(key)}: "
    if slash and not prefix:
        return bad + "prefix part must be non-empty"
    if slash and (len(prefix) > 253 or not _DNS1123_SUBDOMAIN.match(prefix)):
        return bad + ("prefix part a lowercase RFC 1123 subdomain must consist of lower case "
                      "alphanumeric characters, '-' or '.', and must start and end with an "
                      "alphanumeric character")
    if not name:
        return bad + "name part must be non-empty"
    if len(name) > 63:
        return bad + "name part must be no more than 63 characters"
    if not _LABEL_NAME.match(name):
        return bad + f"name part {_NAME_RULE}"
    return ""


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
def read_documents(paths: Sequence[str | Path], *, exclude: Path | None = None
                   ) -> list[tuple[str, dict[str, Any]]]:
    """(source, document) pairs from files or directories, in a stable order.

    A directory contributes its regular ``*.yaml``/``*.yml``/``*.json`` files (a folder or a
    dangling symlink with such a name is an error that names it); every file is read with
    :func:`labkit.inputs.read_text` (regular, UTF-8, size-capped). ``exclude``: a file a
    folder scan skips (the traffic file next to the manifests it is checked against).
    """
    out: list[tuple[str, dict[str, Any]]] = []
    for raw in paths:
        path = Path(raw)
        if not str(raw).strip():
            raise ManifestError("an empty path names no manifest",
                                hint="name a .yaml file or a folder of them")
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix in YAML_SUFFIXES
                           and not (exclude is not None and _same_file(p, exclude)))
            if not files:
                raise ManifestError(f"no YAML files in directory {path}",
                                    hint="point at a .yaml file or a folder that holds some")
        elif path.exists() or path.is_symlink():
            files = [path]
        else:
            raise ManifestError(f"{path}: no such file or directory")
        for f in files:
            out.extend(documents_of(read_text(f, what="manifest"), str(f)))
    return out


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False


def documents_of(text: str, source: str = "<string>") -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for i, doc in enumerate(yaml_documents(text, source)):
        if doc is None:
            continue
        if not isinstance(doc, Mapping):
            raise ManifestError(f"document {i + 1} is {_kind_of(doc)}, not an object",
                                source=source, hint="each YAML document must be one object "
                                "(a traffic file is passed with --traffic, not as a manifest)")
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
