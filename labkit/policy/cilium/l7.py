"""Cilium L7 HTTP rules (``toPorts[].rules.http``): parsing and request matching.

Behaviour, from the Cilium 1.20 docs (security/policy/layer7.rst) and the way
the agent hands the rules to Envoy (pkg/envoy ``getHTTPRule``):

- ``method``, ``path`` and ``host`` are regular expressions that must match the
  *whole* value (Envoy regex header matchers; write ``/v1/.*`` for a prefix), in
  RE2 syntax: Envoy compiles them with RE2 (``google_re2``), and so does labkit
  (``google-re2``), so a pattern is accepted, rejected and matched exactly as Envoy
  does (no back-references or look-around, ``(?i)`` and ``[[:alpha:]]`` work), in
  time linear in the value: no pattern can hang the course;
  an empty or absent field matches anything;
- ``headers`` entries are ``Name`` (the header must be present) or
  ``Name: value`` (that exact value);
- ``headerMatches`` entries name a header and a value, given inline or read
  from a Secret that must hold exactly one item (a Secret that cannot be read
  falls back to ``value``, else the rule never matches). Without ``mismatch``
  a differing value rejects the request (an empty value only needs presence);
  with ``mismatch`` LOG / ADD / DELETE / REPLACE the proxy logs, adds, deletes
  or rewrites the header and lets the request through;
- several HTTP rules on one port are alternatives: a request needs one to match.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import re2

from labkit.inputs import quote
from labkit.model import ClusterState, HttpRequest
from labkit.policy.parse import ParseContext

MISMATCH_ACTIONS = ("LOG", "ADD", "DELETE", "REPLACE")


@lru_cache(maxsize=1024)
def compile_re2(pattern: str) -> Any:
    """The pattern compiled by RE2 (Envoy's engine); ``re2.error`` when RE2 refuses it."""
    options = re2.Options()
    options.log_errors = False  # the error is raised, not printed to stderr too
    return re2.compile(pattern, options)


@dataclass(frozen=True)
class HeaderMatch:
    name: str
    value: str = ""
    secret: tuple[str, str] | None = None  # (namespace, name)
    mismatch: str | None = None  # None: reject on mismatch

    def resolve(self, state: ClusterState) -> str | None:
        """The value to compare with, or None when the rule can never match."""
        if self.secret is not None:
            found = _secret_value(state, *self.secret)
            if found:
                return found
            return self.value or None
        return self.value

    def describe(self) -> str:
        source = (f"Secret {self.secret[0]}/{self.secret[1]}" if self.secret is not None
                  else repr(self.value) if self.value else "present")
        text = f"header {self.name} = {source}" if self.value or self.secret else \
            f"header {self.name} present"
        if self.mismatch:
            text += f" (on mismatch: {self.mismatch}, request not rejected)"
        return text


def _secret_value(state: ClusterState, namespace: str, name: str) -> str:
    secret = state.secrets.get(f"{namespace}/{name}")
    if secret is None:
        secret = next((s for s in state.secrets.values()
                       if s.namespace == namespace and s.name == name), None)
    if secret is None or len(secret.data) != 1:
        return ""  # Cilium: "Secret ... must have exactly one item"
    return next(iter(secret.data.values()))


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


@dataclass(frozen=True)
class HttpRule:
    """One entry of ``rules.http``; implements :class:`labkit.policy.ir.HttpMatcher`."""

    method: str = ""
    path: str = ""
    host: str = ""
    headers: tuple[tuple[str, str | None], ...] = ()
    header_matches: tuple[HeaderMatch, ...] = ()

    def matches(self, request: HttpRequest, state: ClusterState) -> bool:
        for pattern, value in ((self.method, request.method), (self.path, request.path),
                               (self.host, request.host)):
            if pattern and compile_re2(pattern).fullmatch(value) is None:
                return False
        for name, want in self.headers:
            got = _header(request.headers, name)
            if got is None or (want is not None and got != want):
                return False
        for hm in self.header_matches:
            expected = hm.resolve(state)
            if expected is None:
                return False
            if hm.mismatch is not None:
                continue  # logged, added, deleted or replaced: never a rejection
            got = _header(request.headers, hm.name)
            if got is None or (expected and got != expected):
                return False
        return True

    def rewrites(self, request: HttpRequest, state: ClusterState) -> list[str]:
        """What the proxy changes in a matching request (headerMatches with a mismatch action)."""
        out: list[str] = []
        for hm in self.header_matches:
            value = hm.resolve(state)
            if hm.mismatch is None or value is None:
                continue
            got = _header(request.headers, hm.name)
            if got == value:
                continue
            out.append({"LOG": f"logs the mismatching header {hm.name}",
                        "ADD": f"adds header {hm.name}",
                        "DELETE": f"deletes header {hm.name}",
                        "REPLACE": f"replaces header {hm.name} with the policy's value"}
                       [hm.mismatch])
        return out

    def describe(self) -> str:
        parts = [self.method or "any method", self.path or "any path"]
        if self.host:
            parts.append(f"host {self.host}")
        parts += [f"header {n}: {v}" if v is not None else f"header {n} present"
                  for n, v in self.headers]
        parts += [hm.describe() for hm in self.header_matches]
        return " ".join(parts)



# -- parsing --------------------------------------------------------------------------------
def parse_http_rules(ctx: ParseContext, raw: Any, field: str, namespace: str
                     ) -> tuple[HttpRule, ...]:
    rules = []
    for i, item in enumerate(ctx.sequence(raw, field)):
        where = f"{field}[{i}]"
        r = ctx.mapping(item, where, allowed=("method", "path", "host", "headers",
                                              "headerMatches"))
        headers = tuple(_parse_header(ctx, h, f"{where}.headers[{j}]")
                        for j, h in enumerate(ctx.sequence(r.get("headers"), f"{where}.headers")))
        matches = tuple(_parse_header_match(ctx, h, f"{where}.headerMatches[{j}]", namespace)
                        for j, h in enumerate(ctx.sequence(r.get("headerMatches"),
                                                           f"{where}.headerMatches")))
        rules.append(HttpRule(
            method=_regex(ctx, r.get("method"), f"{where}.method"),
            path=_regex(ctx, r.get("path"), f"{where}.path"),
            host=_regex(ctx, r.get("host"), f"{where}.host"),
            headers=headers, header_matches=matches))
    return tuple(rules)


def _regex(ctx: ParseContext, value: Any, field: str) -> str:
    text = ctx.string(value, field)
    if not text:
        return ""
    try:
        compile_re2(text)
    except re2.error as exc:
        why = exc.args[0].decode(errors="replace") if exc.args and \
            isinstance(exc.args[0], bytes) else str(exc)
        raise ctx.error(field, f"invalid regular expression {quote(text)}: {why}",
                        hint="Envoy matches with RE2 (no look-around, back-references or "
                        "possessive quantifiers); the value must match the whole field, e.g. "
                        "\"/v1/.*\" or \"GET|HEAD\"") from exc
    return text


def _parse_header(ctx: ParseContext, raw: Any, field: str) -> tuple[str, str | None]:
    text = ctx.string(raw, field, required=True).strip()
    if not text:
        raise ctx.error(field, "is empty", hint="write 'Name' or 'Name: value'")
    name, sep, value = text.partition(" ")
    name = name.rstrip(":")
    return (name, value.strip() if sep else None)


def _parse_header_match(ctx: ParseContext, raw: Any, field: str, namespace: str
                        ) -> HeaderMatch:
    h = ctx.mapping(raw, field, allowed=("name", "value", "secret", "mismatch"))
    name = ctx.string(h.get("name"), f"{field}.name", required=True)
    if not name:
        raise ctx.error(f"{field}.name", "is required")
    mismatch = ctx.string(h.get("mismatch"), f"{field}.mismatch") or None
    if mismatch is not None and mismatch not in MISMATCH_ACTIONS:
        raise ctx.error(f"{field}.mismatch", f"unknown mismatch action {mismatch!r}",
                        hint=f"use one of {', '.join(MISMATCH_ACTIONS)} (or leave it out to "
                        "reject mismatching requests)")
    secret = None
    if h.get("secret") is not None:
        s = ctx.mapping(h["secret"], f"{field}.secret", allowed=("namespace", "name"))
        secret_name = ctx.string(s.get("name"), f"{field}.secret.name", required=True)
        if not secret_name:
            raise ctx.error(f"{field}.secret.name", "is required")
        secret = (ctx.string(s.get("namespace"), f"{field}.secret.namespace") or namespace,
                  secret_name)
    return HeaderMatch(name, ctx.string(h.get("value"), f"{field}.value"), secret, mismatch)
