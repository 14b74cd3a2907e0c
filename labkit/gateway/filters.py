"""What HTTPRoute filters do to a request: header changes, URL rewrites, redirects.

Semantics from ``HTTPHeaderFilter``, ``HTTPPathModifier``, ``HTTPURLRewriteFilter``
and ``HTTPRequestRedirectFilter`` in apis/v1/httproute_types.go (gateway-api v1.6.1).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from labkit.gateway.objects import HeaderModifier, PathMatch, PathModifier, Redirect, Rewrite

Headers = tuple[tuple[str, str], ...]
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Forwarded:
    """The request as the gateway sends it on: path (with any query), Host, headers."""

    path: str
    host: str | None
    headers: Headers

    def as_dict(self) -> dict[str, object]:
        return {"path": self.path, "host": self.host, "headers": dict(self.headers)}


def modify_headers(headers: Headers, mod: HeaderModifier) -> Headers:
    """``set`` overwrites, ``add`` appends to an existing value with a comma (the spec's
    example turns ``my-header: foo`` into ``my-header: foo,bar,baz``), ``remove`` drops;
    header names compare without case."""
    out = list(headers)
    for name, value in mod.set:
        out = [(k, v) for k, v in out if k.lower() != name.lower()] + [(name, value)]
    for name, value in mod.add:
        i = next((i for i, (k, _) in enumerate(out) if k.lower() == name.lower()), None)
        if i is None:
            out.append((name, value))
        else:
            out[i] = (out[i][0], f"{out[i][1]},{value}")
    removed = {r.lower() for r in mod.remove}
    return tuple((k, v) for k, v in out if k.lower() not in removed)


def modify_path(path: str, mod: PathModifier, matched: PathMatch) -> str:
    """The new path; for ReplacePrefixMatch, ``matched`` is the rule's PathPrefix match.

    Prefixes compare element by element and a trailing "/" is ignored on both sides,
    which gives the spec's table: /foo/bar with prefix /foo and replacement /xyz/ is
    /xyz/bar, /foo/ with replacement "" is /.
    """
    if mod.type == "ReplaceFullPath":
        return mod.value
    rest = path[len(matched.value.rstrip("/")):]
    return (mod.value.rstrip("/") + rest) or "/"


def split_query(path: str) -> tuple[str, str]:
    bare, sep, query = path.partition("?")
    return bare, sep + query


def rewrite(fwd: Forwarded, rw: Rewrite, matched: PathMatch) -> Forwarded:
    if rw.path is not None:
        bare, query = split_query(fwd.path)
        fwd = replace(fwd, path=modify_path(bare, rw.path, matched) + query)
    if rw.hostname is not None:
        fwd = replace(fwd, host=rw.hostname)
    return fwd


@dataclass(frozen=True)
class Location:
    scheme: str
    host: str
    port: int
    path: str

    def as_dict(self) -> dict[str, object]:
        return {"scheme": self.scheme, "host": self.host, "port": self.port, "path": self.path}

    def url(self) -> str:
        """The Location header; the port is left out when it is the scheme's default."""
        port = "" if DEFAULT_PORTS.get(self.scheme) == self.port else f":{self.port}"
        return f"{self.scheme}://{self.host}{port}{self.path}"


def redirect_location(rd: Redirect, *, scheme: str, host: str, port: int, path: str,
                      matched: PathMatch) -> Location:
    """Where a RequestRedirect sends the client.

    The port, when not set: the well-known port of a configured scheme, else the
    port the request came in on (the listener's).
    """
    new_scheme = rd.scheme or scheme
    if rd.port is not None:
        new_port = rd.port
    elif rd.scheme is not None:
        new_port = DEFAULT_PORTS[rd.scheme]
    else:
        new_port = port
    new_path = modify_path(path, rd.path, matched) if rd.path is not None else path
    return Location(new_scheme, rd.hostname or host, new_port, new_path)
