"""Typed access to Gateway API fields: the patterns and bounds of the v1.6.1 CRDs.

The patterns are the OpenAPI ``pattern`` values of config/crd/standard (gateway-api
v1.6.1); the helpers raise ManifestError naming the field, through ParseContext.
"""

from __future__ import annotations

import re
from typing import Any

from labkit.policy.parse import ParseContext

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
HOSTNAME = re.compile(rf"^(\*\.)?{_LABEL}(\.{_LABEL})*$")
PRECISE_HOSTNAME = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
SECTION_NAME = PRECISE_HOSTNAME
NAMESPACE = re.compile(rf"^{_LABEL}$")
GROUP_NAME = re.compile(rf"^$|^{_LABEL}(\.{_LABEL})*$")
KIND = re.compile(r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$")
CONTROLLER = re.compile(rf"^{_LABEL}(\.{_LABEL})*/[A-Za-z0-9/\-._~%!$&'()*+,;=:]+$")
PROTOCOL = re.compile(r"^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$|"
                      rf"{_LABEL}(\.{_LABEL})*/[A-Za-z0-9]+$")


def string_field(ctx: ParseContext, value: Any, field: str,
                 pattern: re.Pattern[str] | None = None, *, required: bool = False,
                 max_len: int = 253, what: str = "value") -> str:
    text = ctx.string(value, field, required=required)
    if value is None:
        return text
    if not text or len(text) > max_len:
        raise ctx.error(field, f"must be 1 to {max_len} characters long")
    if pattern is not None and not pattern.match(text):
        raise ctx.error(field, f"{text!r} is not a valid {what}",
                        hint=f"it must match {pattern.pattern}")
    return text


def enum_field(ctx: ParseContext, value: Any, field: str, allowed: tuple[str, ...], default: str
               ) -> str:
    if value is None:
        return default
    text = ctx.string(value, field)
    if text not in allowed:
        raise ctx.error(field, f"unsupported value {text!r}",
                        hint=f"supported values: {', '.join(allowed)}")
    return text


def list_field(ctx: ParseContext, value: Any, field: str, *, max_items: int, min_items: int = 0
               ) -> list[Any]:
    items = ctx.sequence(value, field)
    if not min_items <= len(items) <= max_items:
        raise ctx.error(field, f"has {len(items)} items; allowed: {min_items} to {max_items}")
    return items


def unique_names(ctx: ParseContext, names: list[str], field: str, what: str) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise ctx.error(f"{field}[{i}]", f"duplicate {what} {name!r}",
                            hint=f"each {what} may appear once in this list")
        seen.add(name)


def optional_port(ctx: ParseContext, value: Any, field: str) -> int | None:
    return None if value is None else ctx.port_number(value, field)


def api_group(ctx: ParseContext, value: Any, field: str) -> str:
    text = ctx.string(value, field)
    if len(text) > 253 or not GROUP_NAME.match(text):
        raise ctx.error(field, f"{text!r} is not a valid API group")
    return text


#: A nested shape of allowed keys: a key maps to the shape of its value (None: any value;
#: a one-item list: a list whose items have that shape).
Shape = dict[str, "Shape | list[Shape] | None"]


def check_keys(ctx: ParseContext, value: Any, field: str, shape: Shape) -> None:
    """Refuse unknown fields anywhere in ``value``, as strict field validation does."""
    raw = ctx.mapping(value, field, allowed=shape)
    for key, inner in shape.items():
        if inner is None or raw.get(key) is None:
            continue
        if isinstance(inner, list):
            for i, item in enumerate(ctx.sequence(raw[key], f"{field}.{key}")):
                check_keys(ctx, item, f"{field}.{key}[{i}]", inner[0])
        else:
            check_keys(ctx, raw[key], f"{field}.{key}", inner)

