"""``labkit policy check`` and ``labkit policy matrix``: the engine from the command line.

    labkit policy check MANIFEST [MANIFEST ...] --traffic FILE [--cni CNI] [--output json|text]
    labkit policy matrix MANIFEST [MANIFEST ...] [--port 80/TCP ...] [--cni CNI]
                                  [--output json|text|html] [--explain]
    labkit policy suggest --from-flows FILE [--dialect kubernetes|cilium]

The matrix comes from the engine's bitset grid; reasons are computed for what is shown
with them: every cell with ``--explain``, and the cells of a small JSON matrix. JSON is
written as it is computed; above labkit.matrix.COMPACT_ABOVE cells it takes the compact
rows form (one string of codes per source) unless ``--explain`` asks for the cells.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from labkit.errors import ManifestError
from labkit.hubble.log import read_flows
from labkit.hubble.suggest import suggest
from labkit.inputs import dumps, read_text, yaml_document
from labkit.matrix import ConnectivityMatrix
from labkit.model import HttpRequest, Traffic, Verdict, parse_endpoint
from labkit.policy.engine import CNIS, Engine, served_kinds
from labkit.policy.kinds import parse_documents
from labkit.policy.parse import ParseContext, read_documents
from labkit.policy.state import build_state

DEFAULT_CNI = "cilium"
TRAFFIC_FIELDS = ("from", "to", "port", "protocol", "http")


def register(subparsers: Any) -> None:
    """Add the ``policy`` command group to the main CLI's subparsers."""
    policy = subparsers.add_parser("policy", help="predict and explain policy verdicts")
    sub = policy.add_subparsers(dest="policy_command", required=True)

    check = sub.add_parser("check", help="judge each connection of a traffic file")
    check.add_argument("manifests", nargs="+", metavar="MANIFEST")
    check.add_argument("--traffic", required=True, metavar="FILE")
    check.add_argument("--cni", choices=CNIS, default=DEFAULT_CNI)
    check.add_argument("--output", choices=("json", "text"), default="text")
    check.set_defaults(func=run_check)

    matrix = sub.add_parser("matrix", help="the reachability matrix of every pod pair")
    matrix.add_argument("manifests", nargs="+", metavar="MANIFEST")
    matrix.add_argument("--port", action="append", metavar="PORT/PROTO",
                        help="port to probe, e.g. 80/TCP (repeatable; default 80/TCP)")
    matrix.add_argument("--cni", choices=CNIS, default=DEFAULT_CNI)
    matrix.add_argument("--output", choices=("json", "text", "html"), default="text")
    matrix.add_argument("--explain", action="store_true",
                        help="give every cell's reasons (JSON: one object per cell; text: "
                        "one paragraph per cell after the grid)")
    matrix.set_defaults(func=run_matrix)

    suggest = sub.add_parser("suggest", help="least-privilege policies that allow exactly the "
                             "forwarded flows of a Hubble capture")
    suggest.add_argument("--from-flows", required=True, metavar="FILE",
                         help="`hubble observe -o jsonpb` output (or `labkit hubble observe`)")
    suggest.add_argument("--dialect", choices=("kubernetes", "cilium"), default="cilium",
                         help="NetworkPolicy, or CiliumNetworkPolicy with the observed HTTP "
                         "method and path (default cilium)")
    suggest.set_defaults(func=run_suggest)


def _engine(manifests: list[str], cni: str, exclude: Path | None = None) -> Engine:
    objects = parse_documents(read_documents(manifests, exclude=exclude),
                              served=served_kinds(cni))
    return Engine(build_state(objects), cni)


def run_check(args: argparse.Namespace) -> int:
    traffic = read_traffic(args.traffic)
    # The traffic file may sit in a scanned folder (environments/examples/policy-check/).
    engine = _engine(args.manifests, args.cni, exclude=Path(args.traffic))
    check_endpoints(traffic, engine, args.traffic)
    verdicts = engine.evaluate_all(traffic)
    if args.output == "json":
        print(dumps({"cni": args.cni, "results": [v.as_dict() for v in verdicts]}, indent=2))
        return 0
    for v in verdicts:
        print(verdict_text(v))
    return 0


def verdict_text(v: Verdict) -> str:
    """A verdict as a headline and its reasons, indented."""
    t = v.traffic
    what = "ALLOW" if v.allowed else f"DENY ({v.denial})"
    http = f" {t.http.method} {t.http.path}" if t.http else ""
    lines = [f"{what:<16} {t.source} -> {t.destination} {t.protocol}/{t.port}{http}"]
    lines += (f"    {line}" for line in (*v.reasons, *(f"warning: {w}" for w in v.warnings)))
    return "\n".join(lines)


def run_matrix(args: argparse.Namespace) -> int:
    ports = [parse_port(p) for p in (args.port or ["80/TCP"])]
    engine = _engine(args.manifests, args.cni)
    pods = sorted(engine.state.pods)
    if not pods:
        raise ManifestError("the manifests hold no pods", hint="add Pods or Deployments")
    m = ConnectivityMatrix.expected(engine, pods, pods, ports, title=f"expected on {args.cni}")
    out = sys.stdout
    if args.output == "json":
        m.write_json(out, explain=args.explain, first={"cni": args.cni})
        out.write("\n")
    elif args.output == "html":
        out.write(m._repr_html_() + "\n")
    else:
        out.writelines(line + "\n" for line in m.text_lines())
        if args.explain:
            out.writelines(verdict_text(m.grid.explain(s, d, p, proto)) + "\n"
                           for s, d, p, proto in m.grid.cell_keys())
    return 0


def run_suggest(args: argparse.Namespace) -> int:
    print(suggest(read_flows(args.from_flows).flows, args.dialect).to_yaml(), end="")
    return 0


def parse_port(text: str) -> tuple[int, str]:
    number, _, proto = text.partition("/")
    proto = (proto or "TCP").upper()
    if not number.isdigit() or not 1 <= int(number) <= 65535 or proto not in ("TCP", "UDP",
                                                                               "SCTP"):
        raise ManifestError(f"invalid --port {text!r}", hint="write PORT/PROTOCOL, e.g. 80/TCP")
    return int(number), proto


def read_traffic(path: str) -> list[Traffic]:
    """The traffic file: a YAML list of {from, to, port, protocol, http}."""
    raw = yaml_document(read_text(path, what="traffic file"), path)
    ctx = ParseContext(path, "traffic")
    items = ctx.sequence(raw, "")
    out = []
    for i, item in enumerate(items):
        where = f"[{i}]"
        t = ctx.mapping(item, where, allowed=TRAFFIC_FIELDS)
        for end in ("from", "to"):
            text = ctx.string(t.get(end), f"{where}.{end}", required=True)
            try:
                parse_endpoint(text)
            except ValueError as exc:
                raise ctx.error(f"{where}.{end}", str(exc),
                                hint="write 'namespace/pod' or 'ip:ADDRESS'") from exc
        http = None
        if t.get("http") is not None:
            h = ctx.mapping(t["http"], f"{where}.http", allowed=("method", "path", "host",
                                                                  "headers"))
            headers = ctx.labels(h.get("headers"), f"{where}.http.headers", keys=False,
                                 values=False, noun="header")
            http = HttpRequest(ctx.string(h.get("method"), f"{where}.http.method") or "GET",
                               ctx.string(h.get("path"), f"{where}.http.path") or "/",
                               ctx.string(h.get("host"), f"{where}.http.host"), headers)
        out.append(Traffic(t["from"], t["to"], ctx.port_number(t.get("port"), f"{where}.port"),
                           ctx.protocol(t.get("protocol"), f"{where}.protocol"), http))
    return out


def check_endpoints(traffic: list[Traffic], engine: Engine, source: str) -> None:
    """Every pod a traffic item names exists in the manifests (else: the file and the item)."""
    ctx = ParseContext(source, "traffic")
    known = sorted(engine.state.pods)
    for i, t in enumerate(traffic):
        for end, value in (("from", t.source), ("to", t.destination)):
            if not value.startswith("ip:") and value not in engine.state.pods:
                raise ctx.error(f"[{i}].{end}", f"no pod {value[:120]} in the manifests",
                                hint=f"known pods: {', '.join(known[:8])}" if known
                                else "the manifests hold no pods")
