"""Hostnames as the Gateway API matches them: exact names and ``*.`` wildcards.

A wildcard ``*.example.com`` stands for one or more labels in front of
``example.com`` and never for ``example.com`` itself (``HTTPRouteSpec.Hostnames``
and ``Listener.Hostname`` in apis/v1 of gateway-api v1.6.1).
"""

from __future__ import annotations


def is_wildcard(name: str) -> bool:
    return name.startswith("*.")


def matches(pattern: str, host: str) -> bool:
    """Whether a concrete ``host`` is covered by ``pattern`` (exact or wildcard)."""
    if is_wildcard(pattern):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


def intersect(listener: str, route: str) -> str | None:
    """The hostnames both accept, as one hostname, or None when they are disjoint.

    "" (no hostname) accepts everything. Between two wildcards the more specific
    one is the intersection (``*.foo.example.com`` within ``*.example.com``).
    """
    if not listener:
        return route
    if not route:
        return listener
    if not is_wildcard(route):
        return route if matches(listener, route) else None
    if not is_wildcard(listener):
        return listener if matches(route, listener) else None
    if listener == route or matches(listener, route[2:]):
        return route
    return listener if matches(route, listener[2:]) else None


def specificity(name: str) -> tuple[int, int]:
    """Listener precedence: exact names first, then wildcards by how many labels follow
    the ``*``, then the empty hostname (Listener docs in gateway_types.go, v1.6.1)."""
    if not name:
        return (0, 0)
    if is_wildcard(name):
        return (1, name.count("."))
    return (2, 0)


def route_precedence(name: str) -> tuple[int, int]:
    """Route precedence between intersecting hostnames: characters in a matching
    non-wildcard hostname, then characters in the matching hostname
    (``HTTPRouteSpec.Hostnames``)."""
    return (0 if is_wildcard(name) else len(name), len(name))
