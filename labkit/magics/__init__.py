"""IPython magics so that learners type the real commands: ``%kubectl``, ``%helm``, ``%cilium``,
``%hubble``, and ``%%kubectl apply -f -`` with a YAML cell.

``%load_ext labkit`` registers them. They act on the lab this session last created or
opened (:func:`labkit.lab.current_lab`):

- on **kind** the real program runs, guarded (:mod:`.guarded`): only ever against the lab's
  own context, its output streamed into the cell as it comes;
- on **sim** kubectl answers a documented subset from the model in kubectl's own format
  (:mod:`.simulated`, :mod:`.curl`), ``hubble observe`` prints the sim's Hubble flows (with
  Cilium), all labelled simulated; helm and cilium say that the model has nothing for them.
  Anything outside the subset gets one clear message.

A failing command (a curl that times out, a NotFound) prints what the tool prints, as in a
terminal; a refused one (another context, a missing tool) stops the cell with one line.
Exercises where the learner types a command are checked by :mod:`.exercise`.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from labkit.backends.sim import SimBackend
from labkit.errors import LabkitError
from labkit.hubble.writers import write as write_flows
from labkit.lab import current_lab
from labkit.magics import guarded
from labkit.magics.output import Output
from labkit.magics.simulated import SimKubectl, outside_subset
from labkit.tools import process

if TYPE_CHECKING:
    from labkit.lab import Lab

TOOLS = ("kubectl", "helm", "cilium", "hubble")
SHELL_OPERATORS = ("|", "||", "&&", ";", ">", ">>", "<", "&")
SIMULATED_LABEL = "[simulated: answered by labkit's model of '{cluster}', not by a real cluster]"
Writer = Callable[[str], object]


def run(tool: str, line: str, cell: str | None = None, *, lab: Lab | None = None,
        out: Writer | None = None, err: Writer | None = None) -> int:
    """Run ``tool line`` (``cell`` is its stdin) on the current lab; return the exit code.

    Raises LabkitError when the command is refused before anything runs (bad quoting,
    another kube context, a tool that is not installed).
    """
    if tool not in TOOLS:
        raise LabkitError(f"no magic for {tool!r}", hint=f"use one of {', '.join(TOOLS)}")
    write_out = out or _writer(sys.stdout)
    write_err = err or _writer(sys.stderr)
    try:
        args = shlex.split(line)
    except ValueError as exc:
        raise LabkitError(f"cannot split `{tool} {line}` into words: {exc}",
                          hint="close the quote") from exc
    if args[:1] == [tool]:  # `%kubectl kubectl get pods`: the tool's name typed twice
        args = args[1:]
    shell = next((a for a in args if a in SHELL_OPERATORS), None)
    if shell is not None:
        raise LabkitError(f"`{shell}` in `{tool} {line}`: the magics run one {tool} command, "
                          "with no shell to pipe, chain or redirect",
                          hint="drop it: narrow the output with -n, -l or -o instead, or run "
                          "the command in a terminal")
    the_lab = lab or current_lab()

    def simulated(backend: SimBackend) -> int:
        result = answer_simulated(the_lab, backend, tool, args, cell)
        if result.notice:
            write_err(result.notice)
        if result.stdout:
            write_out(result.stdout)
        if result.stderr:
            write_err(result.stderr)
        gap = "\n" if result.stdout and not result.stdout.endswith("\n") else ""
        write_err(gap + SIMULATED_LABEL.format(cluster=the_lab.cluster_name) + "\n")
        return result.code

    def real(_: object) -> int:
        cmd = guarded.command(tool, args, the_lab.cluster_name)
        return process.stream(cmd.argv, write_out, input=cell, env=cmd.env)

    return the_lab.impl.dispatch(sim=simulated, kind=real)


def answer_simulated(lab: Lab, backend: SimBackend, tool: str, args: Sequence[str],
                     stdin: str | None) -> Output:
    """What ``tool args`` prints on the simulated cluster."""
    if tool == "kubectl":
        return SimKubectl(lab, backend).run(args, stdin)
    if tool == "hubble" and args[:1] == ["observe"]:
        return observe_simulated(lab, args)
    cni = lab.cni or "no CNI"
    why = {"helm": "the simulated cluster keeps no Helm releases (labkit installs the sim's "
                   "add-ons from its model, not from charts)",
           "cilium": f"the sim models no Cilium agent or operator to report on (this "
                     f"cluster runs {cni})",
           "hubble": "only `hubble observe [--last N] [-o compact|json|jsonpb]` is answered "
                     "on the simulated cluster"}[tool]
    return Output(stderr=outside_subset(tool, args, why), code=1)


def observe_simulated(lab: Lab, args: Sequence[str]) -> Output:
    """``hubble observe [--last N] [-o compact|json|jsonpb]``: the sim's flows (with Cilium),
    printed as hubble prints them (labkit.hubble.writers)."""
    last, output = 20, "compact"  # hubble observe's defaults
    rest = list(args[1:])
    while rest:
        flag = rest.pop(0)
        value = rest.pop(0) if rest and flag in ("--last", "-o", "--output") else ""
        if flag == "--last" and value.isdigit() and int(value) > 0:
            last = int(value)
        elif flag in ("-o", "--output") and value in ("compact", "json", "jsonpb"):
            output = value
        else:
            why = f"`{flag}{' ' + value if value else ''}` is not modelled"
            return Output(stderr=outside_subset("hubble", args, why), code=1)
    try:
        log = lab.flows(last=last)
    except LabkitError as exc:
        return Output(stderr=outside_subset("hubble", args, exc.message), code=1)
    return Output(write_flows(log.flows, output))


def _writer(stream: Any) -> Writer:
    def write(text: str) -> None:
        stream.write(text)
        stream.flush()
    return write


# -- IPython ---------------------------------------------------------------------------------

def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext labkit``: register %kubectl (also a cell magic), %helm, %cilium, %hubble."""
    from IPython.core.error import UsageError  # lazy: IPython is there only inside a kernel

    def magic(tool: str) -> Callable[..., None]:
        def handler(line: str, cell: str | None = None) -> None:
            try:
                run(tool, line, cell)
            except LabkitError as exc:  # refused before running: one line, the cell fails
                raise UsageError(str(exc)) from None
        handler.__name__ = tool
        handler.__doc__ = f"Run `{tool} ...` on the lab cluster (kind: the real {tool}, " \
            "guarded to the lab's context; sim: a modelled subset)."
        return handler

    ipython.register_magic_function(magic("kubectl"), "line_cell", "kubectl")
    for tool in TOOLS[1:]:
        ipython.register_magic_function(magic(tool), "line", tool)
