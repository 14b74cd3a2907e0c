"""The requests file of ``labkit mesh route``: a YAML list of HTTP requests.

Each item: ``gateway: NAMESPACE/NAME`` (north-south) or ``service: NAMESPACE/NAME``
(east-west, GAMMA), ``host`` (the Host header; absent: none), ``path`` (with an
optional ``?query``; default /), ``method`` (default GET), ``headers``
(``{Name: value}``) and ``port`` (default 80; 443 reaches the HTTPS listener).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from labkit.errors import ManifestError
from labkit.gateway.matching import Request
from labkit.gateway.router import Router
from labkit.policy.parse import ParseContext

FIELDS = ("gateway", "service", "host", "path", "method", "headers", "port")
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")  # RFC 9110 token: methods, header names


def read_requests(path: str | Path, router: Router) -> list[Request]:
    """Parse and check the requests file against the objects the router knows."""
    source = str(path)
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ManifestError(f"cannot read the requests file: {exc.strerror}", source=source,
                            hint="pass --requests FILE, a YAML list of requests") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ManifestError(f"invalid YAML: {problem}", source=source,
                            field=f"line {mark.line + 1}, column {mark.column + 1}" if mark
                            else "", hint="the requests file is a YAML list of requests; "
                            "quote values holding ?, : or # (path: '/a?b=c')") from exc
    ctx = ParseContext(source, "requests")
    items = ctx.sequence(raw, "")
    if not items:
        raise ctx.error("", "holds no requests", hint="write a YAML list, e.g. "
                        "[{gateway: shop-web/shop, host: shop.example.com, path: /checkout}]")
    return [_request(ParseContext(source, f"request [{i}]"), item, router)
            for i, item in enumerate(items)]


def _request(ctx: ParseContext, item: Any, router: Router) -> Request:
    r = ctx.mapping(item, "", allowed=FIELDS)
    if (r.get("gateway") is None) == (r.get("service") is None):
        raise ctx.error("gateway", "give exactly one of gateway and service",
                        hint="gateway: NAMESPACE/NAME for north-south, service: NAMESPACE/NAME "
                        "for east-west (GAMMA)")
    mesh = r.get("service") is not None
    key = "service" if mesh else "gateway"
    target = ctx.string(r[key], key)
    if target.count("/") != 1 or not all(target.split("/")):
        raise ctx.error(key, f"{target!r} is not NAMESPACE/NAME")
    known = router.services if mesh else router.gateways
    if target not in known:
        raise ctx.error(key, f"no {'Service' if mesh else 'Gateway'} {target} in the manifests",
                        hint=f"known: {', '.join(sorted(known)) or 'none'}")
    port = 80 if r.get("port") is None else ctx.port_number(r["port"], "port")
    if mesh and all(p.port != port for p in router.services[target].ports):
        raise ctx.error("port", f"Service {target} has no port {port}",
                        hint="ports: " + ", ".join(str(p.port) for p in
                                                   router.services[target].ports))
    path = ctx.string(r.get("path"), "path") or "/"
    if not path.startswith("/") or any(c.isspace() for c in path):
        raise ctx.error("path", f"{path!r} is not a request path",
                        hint="start with / and leave out spaces, e.g. /checkout?cart=1")
    method = ctx.string(r.get("method"), "method") or "GET"
    if not _TOKEN.match(method):
        raise ctx.error("method", f"{method!r} is not an HTTP method")
    headers = []
    for name, value in ctx.mapping(r.get("headers"), "headers").items():
        if not isinstance(name, str) or not _TOKEN.match(name):
            raise ctx.error(f"headers.{name}", f"{name!r} is not a header name")
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ctx.error(f"headers.{name}", "a header value must be a string",
                            hint='quote it, e.g. "true"')
        headers.append((name, str(value)))
    host = r.get("host")
    host = None if host is None else ctx.string(host, "host")
    fields: dict[str, object] = {key: target, "host": host, "path": path, "method": method,
              "headers": dict(headers), "port": port}
    return Request(target, mesh, host, path, method, tuple(headers), port, fields)
