"""Exercises where the learner types a real command: the check runs it, then judges it.

The learner writes the command as a string (``MY_COMMAND = "kubectl get pods -n shop-api -o
wide"``, the same words as in a terminal or after ``%``). The check runs it through the magics
(the real kubectl on kind, the modelled subset on sim), so its output appears under the
check, then compares it with what the exercise asks for, by meaning rather than by spelling:
``-n shop-api``, ``--namespace=shop-api`` and ``-nshop-api`` are the same, so are ``po`` and
``pods``. A headless run sets the answer in the notebook's solution cell.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING

from labkit.errors import CheckFailed, LabkitError
from labkit.labs.common import CheckResult, not_attempted
from labkit.magics import run
from labkit.magics.cli import parse_args, resource
from labkit.magics.output import Unsupported

if TYPE_CHECKING:
    from labkit.lab import Lab


@dataclass(frozen=True)
class Wanted:
    """What an exercise asks the learner to type (kubectl)."""

    verb: str  # get, describe, exec ...
    example: str  # a right answer, shown when the learner is stuck
    resource: str = ""  # any name kubectl accepts for it: pods, po, pod
    namespace: str = ""  # -n NAMESPACE (-A also shows it)
    output: str = ""  # -o FORMAT
    program: str = ""  # exec: the program after `--`
    mentions: str = ""  # a word the command must contain (a Service's name, say)
    exit_code: int = 0  # how the right command ends (28: curl timed out, as it should)


def check_typed(lab: Lab, name: str, command: str | None, wanted: Wanted) -> CheckResult:
    """Run the learner's ``command`` on ``lab`` and judge it against ``wanted``; the outcome is
    recorded in ``lab.exercises`` under ``name`` (for a lab's exercise summary)."""
    try:
        result = _judge(lab, name, command, wanted)
    except CheckFailed:
        lab.exercises[name] = False
        raise
    lab.exercises[name] = result.passed
    return result


def _judge(lab: Lab, name: str, command: str | None, wanted: Wanted) -> CheckResult:
    if command is None:
        return not_attempted(name, "write the command in MY_COMMAND")
    words = shlex.split(command.strip().lstrip("%")) if command.strip() else []
    if words[:1] != ["kubectl"]:
        raise CheckFailed(f"{name}: {command!r} is not a kubectl command",
                          hint=f'start with kubectl, e.g. MY_COMMAND = "{wanted.example}"')
    problem = _mismatch(words[1:], wanted)
    if problem:
        raise CheckFailed(f"{name}: `{command}` {problem}",
                          hint=f'e.g. MY_COMMAND = "{wanted.example}"')
    try:
        code = run("kubectl", shlex.join(words[1:]), lab=lab)
    except LabkitError as exc:
        raise CheckFailed(f"{name}: `{command}` was refused: {exc.message}",
                          hint=exc.hint) from exc
    if code != wanted.exit_code:
        expected = "succeed" if wanted.exit_code == 0 else f"end with exit code {wanted.exit_code}"
        raise CheckFailed(f"{name}: `{command}` ended with exit code {code}; the right "
                          f"command should {expected} here",
                          hint=f'read its output above; e.g. MY_COMMAND = "{wanted.example}"')
    return CheckResult(name, True, f"`{command}` is the command (exit code {code})",
                       simulated=lab.simulated)


def _mismatch(args: list[str], wanted: Wanted) -> str:
    """What is wrong with ``kubectl args`` for ``wanted``, in words; "" when nothing is."""
    try:
        parsed = parse_args(args)
    except Unsupported as exc:
        return f"uses something this exercise does not need ({exc.message})"
    verb = parsed.words[0] if parsed.words else ""
    if verb != wanted.verb:
        return f"runs `kubectl {verb or '(nothing)'}`; this exercise needs `kubectl {wanted.verb}`"
    if wanted.resource:
        got = resource(parsed.words[1]) if len(parsed.words) > 1 else None
        want = resource(wanted.resource)
        if got is None or want is None or got.kind != want.kind:
            return f"does not list {wanted.resource}"
    if wanted.namespace and parsed.namespace != wanted.namespace and not parsed.all_namespaces:
        return f"looks in namespace {parsed.namespace or 'default'}, not {wanted.namespace} " \
            f"(add -n {wanted.namespace})"
    if wanted.output and parsed.output != wanted.output:
        return f"does not ask for -o {wanted.output}"
    if wanted.program and parsed.after_dashes[:1] != [wanted.program]:
        return f"does not run {wanted.program} in the pod (kubectl exec POD -- " \
            f"{wanted.program} ...)"
    if wanted.mentions and not any(wanted.mentions in w for w in args):
        return f"does not mention {wanted.mentions}"
    return ""
