"""Gateway API routing: HTTPRoute matching, precedence, filters and weights.

Pure code: ``Router`` takes parsed objects, ``route_requests`` reads manifests and a
requests file and answers with the CLI's JSON results; ``split_check`` judges an
observed traffic split against configured weights.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from labkit.gateway.matching import Request
from labkit.gateway.parse import PARSERS
from labkit.gateway.requests import read_requests
from labkit.gateway.router import Result, Router
from labkit.gateway.split import SplitCheck, draw_split, split_check
from labkit.policy.core_kinds import PARSERS as CORE
from labkit.policy.kinds import parse_one
from labkit.policy.parse import documents_of, read_documents

__all__ = ["Request", "Result", "Router", "SplitCheck", "draw_split", "load_router",
           "route_requests", "router_from_text", "split_check"]


#: The kinds ``labkit mesh route`` reads: the core kinds and the Gateway API's.
KINDS = {**CORE, **PARSERS}


def _router(docs: Iterable[tuple[str, dict[str, Any]]]) -> Router:
    objects: list[Any] = []
    for source, doc in docs:
        objects += parse_one(doc, source, KINDS)
    return Router(objects)


def load_router(manifests: Sequence[str | Path]) -> Router:
    """A Router over the Namespaces, Services, Deployments, Pods, Secrets and Gateway API
    objects of these files or directories (parsed strictly)."""
    return _router(read_documents(manifests))


def router_from_text(text: str, source: str = "<string>") -> Router:
    """A Router over the objects of a YAML string (several documents)."""
    return _router(documents_of(text, source))


def route_requests(manifests: Sequence[str | Path], requests: str | Path
                   ) -> list[dict[str, Any]]:
    """One JSON-ready result per request of the file, in order."""
    router = load_router(manifests)
    return [{**req.fields, **router.route(req).as_dict()}
            for req in read_requests(requests, router)]
