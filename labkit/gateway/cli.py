"""``labkit mesh route``: what a Gateway API implementation does with each request.

    labkit mesh route MANIFEST [MANIFEST ...] --requests FILE [--output json|text]
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from labkit.gateway import route_requests
from labkit.gateway.filters import Location


def register(subparsers: Any) -> None:
    """Add the ``mesh`` command group to the main CLI's subparsers."""
    mesh = subparsers.add_parser("mesh", help="Gateway API routing, north-south and GAMMA")
    sub = mesh.add_subparsers(dest="mesh_command", required=True)
    route = sub.add_parser("route", help="route each request of a file through the manifests' "
                           "Gateways and HTTPRoutes")
    route.add_argument("manifests", nargs="+", metavar="MANIFEST",
                       help="YAML files or directories")
    route.add_argument("--requests", required=True, metavar="FILE",
                       help="a YAML list of requests (gateway or service, host, path, ...)")
    route.add_argument("--output", choices=("json", "text"), default="text",
                       help="json: {\"results\": [...]} for programs; text (default) for people")
    route.set_defaults(func=run_route)


def run_route(args: argparse.Namespace) -> int:
    results = route_requests(args.manifests, args.requests)
    if args.output == "json":
        print(json.dumps({"results": results}, indent=2))
        return 0
    for r in results:
        print(to_text(r))
    return 0


def to_text(r: dict[str, Any]) -> str:
    target = f"gateway {r['gateway']}" if "gateway" in r else f"service {r['service']}"
    head = f"{r['method']} {r['host'] or '(no host)'}:{r['port']}{r['path']} via {target}"
    if r["redirect"]:
        outcome = f"{r['status']} redirect to {Location(**r['redirect']).url()}"
    elif r["backends"]:
        outcome = f"{r['status']} -> " + ", ".join(f"{k} {v:.0%}" for k, v in
                                                    r["backends"].items())
    else:
        outcome = str(r["status"])
    lines = [f"{outcome:<40} {head}"] + [f"    {line}" for line in r["reasons"]]
    return "\n".join(lines)
