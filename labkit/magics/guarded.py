"""The kind half of the magics: the real CLI, on the lab's own cluster and no other.

The guard (:mod:`labkit.backends.kind.guard`) first proves that the lab's context
``kind-<cluster>`` exists in the kubeconfig and points at a kind API server on this
machine. The command then runs with that context named explicitly on its command line
(kubectl/cilium ``--context``, helm/hubble ``--kube-context``) and ``KUBECONFIG`` set to
exactly the files the guard read, so the current context never matters. Anything a
learner types that would point the tool elsewhere (another context, kubeconfig, server,
user) or change which context is current is refused before anything runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from labkit.backends.kind.guard import check_context, kubeconfig_paths, load_kubeconfig
from labkit.errors import ContextRefused

#: The flag that names the kube context, per tool.
CONTEXT_FLAG = {"kubectl": "--context", "helm": "--kube-context", "cilium": "--context",
                "hubble": "--kube-context"}
#: Flags that would point a tool at another cluster or identity than the lab's context.
ELSEWHERE = {
    "kubectl": ("--context", "--kubeconfig", "--cluster", "--user", "--server", "-s",
                "--token", "--as", "--as-group", "--as-uid"),
    "helm": ("--kube-context", "--kubeconfig", "--kube-apiserver", "--kube-token",
             "--kube-as-user", "--kube-as-group"),
    "cilium": ("--context", "--kubeconfig"),
    "hubble": ("--kube-context", "--kubeconfig", "--server"),
}
#: kubectl config verbs that change the user's kubeconfig (read-only ones stay allowed).
CONFIG_WRITES = ("use-context", "use", "set-context", "set-cluster", "set-credentials",
                 "delete-context", "delete-cluster", "delete-user", "rename-context", "set",
                 "unset")
#: hubble subcommands that talk to Hubble Relay: labkit port-forwards it (``-P``) through the
#: lab's context (hubble/cmd/common/conn: ``--port-forward`` with ``--kube-context``).
HUBBLE_RELAY_VERBS = ("observe", "status", "list")


@dataclass(frozen=True)
class Command:
    """What runs: the argument list and the environment it adds."""

    argv: tuple[str, ...]
    env: dict[str, str]


def command(tool: str, args: Sequence[str], cluster: str, *,
            kubeconfig: Callable[[], dict[str, Any]] = load_kubeconfig) -> Command:
    """The guarded command for ``tool args`` on the lab cluster ``cluster``.

    Raises ContextRefused when the lab's context is missing or not a local kind cluster,
    or when ``args`` try to reach another cluster.
    """
    ctx = check_context(kubeconfig(), cluster, requested=os.environ.get("LABKIT_CONTEXT"))
    refuse_elsewhere(tool, args, ctx.name)
    flags = [CONTEXT_FLAG[tool], ctx.name]
    if tool == "hubble" and args and args[0] in HUBBLE_RELAY_VERBS \
            and not {"-P", "--port-forward"} & set(args):
        flags.append("--port-forward")
    if tool == "kubectl" and "--" in args:  # flags go before `--` (kubectl exec POD -- cmd)
        cut = list(args).index("--")
        full = [tool, *args[:cut], *flags, *args[cut:]]
    else:
        full = [tool, *args, *flags]
    paths = os.pathsep.join(str(p) for p in kubeconfig_paths())
    return Command(tuple(full), {"KUBECONFIG": paths})


def refuse_elsewhere(tool: str, args: Sequence[str], context: str) -> None:
    """ContextRefused if ``args`` name another context, kubeconfig, server or user."""
    words = list(args[:list(args).index("--")] if "--" in args else args)
    for i, word in enumerate(words):
        flag, _, inline = word.partition("=")
        if flag not in ELSEWHERE[tool]:
            continue
        value = inline or (words[i + 1] if i + 1 < len(words) else "")
        if flag == CONTEXT_FLAG[tool] and value == context:
            continue  # naming the lab's own context is harmless
        raise ContextRefused(
            f"refusing `{tool} {' '.join(args)}`: {flag} would point {tool} away from the "
            f"lab's own cluster (context '{context}')",
            hint=f"drop {flag}: labkit adds {CONTEXT_FLAG[tool]} {context} itself")
    if tool == "kubectl" and words[:1] == ["config"] and len(words) > 1 \
            and words[1] in CONFIG_WRITES:
        raise ContextRefused(
            f"refusing `kubectl {' '.join(args)}`: it changes your kubeconfig, and the "
            "magics never switch contexts",
            hint=f"the magics always use '{context}'; in a terminal you may run it yourself")
