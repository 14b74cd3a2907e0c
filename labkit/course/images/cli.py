"""``labkit images list|save|load``: the offline image bundle from the command line."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from labkit.course.images.bundle import load, save
from labkit.course.images.listing import list_images


def register(subparsers: Any) -> None:
    """Add the ``images`` command group to the main CLI's subparsers."""
    images = subparsers.add_parser("images", help="the offline image bundle for workshops")
    sub = images.add_subparsers(dest="images_command", required=True)
    p = sub.add_parser("list", help="every image the kind path needs, pinned")
    p.add_argument("--stage", action="append", metavar="STAGE", help="repeatable; default all")
    p.add_argument("--output", choices=("text", "json"), default="text")
    p.set_defaults(func=_cmd_list)
    p = sub.add_parser("save", help="docker pull every image, then one docker save archive")
    p.add_argument("--output", "-o", required=True, metavar="FILE", help="the .tar to write")
    p.add_argument("--stage", action="append", metavar="STAGE", help="repeatable; default all")
    p.add_argument("--format", choices=("text", "json"), default="text", dest="render")
    p.set_defaults(func=_cmd_save)
    p = sub.add_parser("load", help="docker load a bundle, and kind load it into lab clusters")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--stage", metavar="STAGE", help="default: every stage")
    p.add_argument("--output", choices=("text", "json"), default="text")
    p.set_defaults(func=_cmd_load)


def _cmd_list(args: argparse.Namespace) -> int:
    listing = list_images(args.stage)
    print(listing.to_json() if args.output == "json" else listing.to_text())
    return 0


def _cmd_save(args: argparse.Namespace) -> int:
    report = save(Path(args.output), args.stage)
    print(report.to_json() if args.render == "json" else report.to_text())
    return 0


def _cmd_load(args: argparse.Namespace) -> int:
    report = load(Path(args.file), [args.stage] if args.stage else None)
    print(report.to_json() if args.output == "json" else report.to_text())
    return 0
