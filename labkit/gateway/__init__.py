"""Gateway API routing: HTTPRoute matching, precedence, filters and weights.

Pure code: ``Router`` takes parsed objects, ``route_requests`` reads manifests and a
requests file and answers with the CLI's JSON results; ``split_check`` judges an
observed traffic split against configured weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from labkit.gateway.matching import Request
from labkit.gateway.router import Result, Router
from labkit.gateway.split import SplitCheck, split_check

__all__ = ["Request", "Result", "Router", "SplitCheck", "load_router", "route_requests",
           "split_check"]


def load_router(manifests: Sequence[str | Path]) -> Router:
    """A Router over the Namespaces, Services, Deployments, Pods, Secrets and Gateway API
    objects of these files or directories (parsed strictly)."""
    from labkit.gateway.parse import PARSERS
    from labkit.policy.core_kinds import PARSERS as CORE
    from labkit.policy.parse import parse_one, read_documents

    table = {**CORE, **PARSERS}
    objects: list[Any] = []
    for source, doc in read_documents(manifests):
        objects += parse_one(doc, source, table)
    return Router(objects)


def route_requests(manifests: Sequence[str | Path], requests: str | Path
                   ) -> list[dict[str, Any]]:
    """One JSON-ready result per request of the file, in order."""
    from labkit.gateway.requests import read_requests

    router = load_router(manifests)
    return [{**req.fields, **router.route(req).as_dict()}
            for req in read_requests(requests, router)]
