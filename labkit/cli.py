"""The ``labkit`` command: doctor, cluster lifecycle, the course runner, and policy tools.

Every failure the user can fix ends as one line on stderr (the error and its
hint) and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from labkit.backends.sim.store import folder
from labkit.course import doctor
from labkit.course.images.cli import register as register_images
from labkit.course.room import summarize
from labkit.course.runner import parse_parameter, run_course
from labkit.course.tools_install import register as register_tools
from labkit.environments import environments_dir
from labkit.errors import LabkitError
from labkit.gateway.cli import register as register_mesh
from labkit.hubble.cli import register as register_hubble
from labkit.lab import Lab
from labkit.policy.cli import register as register_policy

BACKENDS = ("auto", "kind", "sim")


def _render(obj: Any, output: str) -> str:
    if output == "json":
        return obj.to_json() if hasattr(obj, "to_json") else str(obj)
    if output == "html":
        return obj._repr_html_() if hasattr(obj, "_repr_html_") else str(obj)
    return obj.to_text() if hasattr(obj, "to_text") else str(obj)


# -- commands ---------------------------------------------------------------------------------
def cmd_doctor(args: argparse.Namespace) -> int:
    if getattr(args, "doctor_command", None) == "summarize":
        return cmd_doctor_summarize(args)
    report = doctor.run_doctor()
    print(_render(report, args.output))
    return 0 if report.ok else 1


def cmd_doctor_summarize(args: argparse.Namespace) -> int:
    room = summarize([Path(f) for f in args.files])
    output = args.summary_output
    print(room.to_html_page() if output == "html" else _render(room, output), end=(
        "" if output == "html" else "\n"))
    return 0


def _lab(stage: str, backend: str) -> Any:
    return Lab(stage, backend=backend)


def _sim_note(lab: Any) -> None:
    if getattr(lab, "simulated", False):
        print(f"note: backend 'sim': a SIMULATED cluster, saved under {folder()} "
              "(LABKIT_HOME); notebooks using the same stage and backend see it",
              file=sys.stderr)


def cmd_up(args: argparse.Namespace) -> int:
    lab = _lab(args.stage, args.backend)
    _sim_note(lab)
    lab.up()
    print(f"cluster {lab.cluster_name!r} for stage {args.stage!r} is up ({lab.backend})")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    """Delete a stage's cluster; with --all, every cluster labkit recorded creating.

    kind clusters are deleted only when labkit created them (a record under LABKIT_HOME,
    see KindBackend.created_by_labkit); any other cluster of the same name is left alone,
    and the output says so and why.
    """
    if not args.all and not args.stage:
        raise LabkitError("which cluster?", hint="name a stage (labkit down flannel) or use --all")
    stages = _all_stages() if args.all else [args.stage]
    done: set[str] = set()
    for stage in stages:
        lab = _lab(stage, args.backend)
        if lab.cluster_name in done:
            continue
        done.add(lab.cluster_name)
        if not lab.exists():
            print(f"cluster {lab.cluster_name!r} not found ({lab.backend}): nothing to delete")
            continue
        impl: Any = getattr(lab, "impl", None)
        owned = getattr(impl, "created_by_labkit", None)
        if args.all and owned is not None and not owned():
            print(f"cluster {lab.cluster_name!r} left alone ({lab.backend}): labkit did not "
                  f"create it (no record under {impl.workdir}); delete it yourself if it is "
                  f"yours: kind delete cluster --name {lab.cluster_name}")
            continue
        lab.down()
        print(f"cluster {lab.cluster_name!r} deleted ({lab.backend})")
    return 0


def _all_stages() -> list[str]:
    root = environments_dir() / "stages"
    stages = sorted(p.name for p in root.iterdir() if (p / "kind-config.yaml").is_file()) \
        if root.is_dir() else []
    if not stages:
        raise LabkitError(f"no stages found in {root}",
                          hint="run labkit from a clone of the course repository, or set "
                          "LABKIT_ENVIRONMENTS")
    return stages


def cmd_status(args: argparse.Namespace) -> int:
    lab = _lab(args.stage, args.backend)
    _sim_note(lab)
    print(_render(lab.status(), args.output))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    params = dict(parse_parameter(p) for p in args.parameter)
    report = run_course(
        args.notebooks or None, backend=args.backend, parameters=params,
        output_dir=args.output_dir, fail_fast=args.fail_fast,
    )
    print(report.to_text())
    return 0 if report.ok else 1


# -- parser -----------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="labkit", description="CNI Lab: a Kubernetes networking course, verified by traffic.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("doctor", help="check this machine for the course (exit 1 if a check fails)")
    p.add_argument("--output", choices=("text", "json", "html"), default="text")
    p.set_defaults(func=cmd_doctor)
    room = p.add_subparsers(dest="doctor_command", metavar="summarize", required=False)
    s = room.add_parser("summarize", help="a room's `doctor --output json` files as one HTML "
                        "page: which laptop fails what, and the fix")
    s.add_argument("files", nargs="+", metavar="FILE")
    s.add_argument("--output", dest="summary_output", choices=("html", "text", "json"),
                   default="html", help="default html: a whole page, e.g. > room.html")

    p = sub.add_parser("up", help="create (or reuse) the cluster of a stage")
    p.add_argument("stage", metavar="STAGE", help="a folder of environments/stages, e.g. flannel")
    p.add_argument("--backend", choices=BACKENDS, default="auto")
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("down", help="delete a stage's cluster, or every lab cluster with --all")
    p.add_argument("stage", metavar="STAGE", nargs="?")
    p.add_argument("--all", action="store_true", help="every cluster the course created")
    p.add_argument("--backend", choices=BACKENDS, default="auto")
    p.set_defaults(func=cmd_down)

    p = sub.add_parser("status", help="nodes, CNI and pods of a stage's cluster")
    p.add_argument("stage", metavar="STAGE", nargs="?", default="flannel")
    p.add_argument("--backend", choices=BACKENDS, default="auto")
    p.add_argument("--output", choices=("text", "json", "html"), default="text")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("run", help="run the course (or some notebooks) headless with papermill")
    p.add_argument("notebooks", metavar="NOTEBOOK", nargs="*",
                   help="notebooks to run in order (default: every notebooks/NN-*.ipynb)")
    p.add_argument("--backend", choices=BACKENDS, default="auto")
    p.add_argument("-p", "--parameter", action="append", default=[], metavar="NAME=VALUE",
                   help="a notebook parameter (VALUE is read as YAML); repeatable")
    p.add_argument("--output-dir", default="runs/latest", metavar="DIR")
    p.add_argument("--fail-fast", action="store_true", help="stop at the first failing notebook")
    p.set_defaults(func=cmd_run)

    register_policy(sub)
    register_mesh(sub)
    register_hubble(sub)
    register_images(sub)
    register_tools(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except LabkitError as exc:
        print(f"labkit {args.command}: error: {exc.one_line()}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `labkit doctor | head`: the reader left, nothing to report
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"labkit {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
