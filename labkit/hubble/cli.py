"""``labkit hubble``: flows as data from a file or a lab cluster.

    labkit hubble parse FILE [--output json|text]
    labkit hubble observe [STAGE] [--backend auto|kind|sim] [--last N]
                          [--output jsonpb|json|compact]
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from labkit.errors import LabkitError
from labkit.hubble.log import read_flows
from labkit.hubble.writers import compact_line, write
from labkit.lab import Lab

DEFAULT_STAGE = "cilium"
DEFAULT_LAST = 20  # as `hubble observe` prints without --last or --follow


def register(subparsers: Any) -> None:
    """Add the ``hubble`` command group to the main CLI's subparsers."""
    hubble = subparsers.add_parser("hubble", help="Hubble flows as data")
    sub = hubble.add_subparsers(dest="hubble_command", required=True)

    p = sub.add_parser("parse", help="parse `hubble observe -o jsonpb` (or -o json) output")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--output", choices=("json", "text"), default="text",
                   help="json: {flows, skipped}; text: compact lines (default)")
    p.set_defaults(func=run_parse)

    p = sub.add_parser("observe", help="the flows of a lab cluster, as `hubble observe` "
                       "prints them")
    p.add_argument("stage", metavar="STAGE", nargs="?", default=DEFAULT_STAGE,
                   help=f"the stage whose cluster to read (default {DEFAULT_STAGE})")
    p.add_argument("--backend", choices=("auto", "kind", "sim"), default="auto")
    p.add_argument("--last", type=_positive, default=DEFAULT_LAST, metavar="N",
                   help=f"the last N flows (default {DEFAULT_LAST}, as hubble observe)")
    p.add_argument("--output", choices=("jsonpb", "json", "compact"), default="compact",
                   help="as hubble observe -o: json is jsonpb unless "
                   "HUBBLE_COMPAT=legacy-json-output (default compact)")
    p.set_defaults(func=run_observe)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"--last wants a whole number >= 1, not {text!r}")
    return int(text)


def run_parse(args: argparse.Namespace) -> int:
    log = read_flows(args.file)
    if args.output == "json":
        print(log.to_json())
        return 0
    for flow in log.flows:
        print(compact_line(flow))
    print(f"{len(log.flows)} flows, {log.skipped} skipped (not flows)", file=sys.stderr)
    return 0


def run_observe(args: argparse.Namespace) -> int:
    lab = Lab(args.stage, backend=args.backend)
    if not lab.exists():
        raise LabkitError(f"no cluster for stage {args.stage!r} ({lab.backend})",
                          hint=f"create it first: labkit up {args.stage} "
                          f"--backend {lab.backend}")
    log = lab.flows(last=args.last)
    if lab.simulated:
        print(f"note: SIMULATED flows of the sim cluster {lab.cluster_name!r} (labkit's model, "
              "not a real Hubble)", file=sys.stderr)
    sys.stdout.write(write(log.flows, args.output))
    return 0
