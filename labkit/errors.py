"""One error tree for labkit. Every error carries a ``hint`` that names the fix.

    LabkitError
    ├── ManifestError          a file, object or field the API server would refuse
    │   └── UnknownKindError   a kind (or CRD) the cluster does not serve
    ├── ToolError              an external program failed (command, stderr, hint)
    │   └── ToolNotFound       the program is not installed
    ├── ClusterError           the cluster is missing, not ready, or not ours
    │   └── ContextRefused     the kube context is not a lab cluster
    ├── BackendUnsupported     the chosen backend cannot do this
    ├── FlowError              a Hubble flow file line that is not what Hubble writes
    └── CheckFailed            a learner self-check or a lab's closing check failed
"""

from __future__ import annotations

#: The longest message an error keeps: a user's 15 MB value is never echoed back whole.
MAX_MESSAGE = 2000


def _cut(text: str) -> str:
    if len(text) <= MAX_MESSAGE:
        return text
    return f"{text[:MAX_MESSAGE]}... ({len(text) - MAX_MESSAGE} more characters)"


class LabkitError(Exception):
    """Base of every error labkit raises on purpose."""

    def __init__(self, message: str, *, hint: str = "") -> None:
        message, hint = _cut(message), _cut(hint)
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message

    def one_line(self) -> str:
        """The error as one line, for a CLI's stderr."""
        text = self.message.replace("\n", " ")
        return f"{text} (hint: {self.hint})" if self.hint else text

    def _render_traceback_(self) -> list[str]:
        """What IPython shows instead of a traceback: one FAILED callout, message and hint.

        IPython calls this on an exception that defines it and displays the lines (ANSI
        colours allowed) in place of the stack, in Jupyter and in papermill's output; the
        cell still fails, so papermill still stops. A learner sees what went wrong and the
        fix, not sixty lines of labkit internals (and not the chained causes either).
        """
        red, bold, dim, reset = "\x1b[1;31m", "\x1b[1m", "\x1b[2m", "\x1b[0m"
        first, *rest = self.message.splitlines() or [""]
        lines = [f"{red}FAILED{reset} {bold}{first}{reset}", *(f"  {r}" for r in rest)]
        if self.hint:
            lines.append(f"{bold}hint:{reset} {self.hint}")
        lines.append(f"{dim}({type(self).__name__}){reset}")
        return lines


class ManifestError(LabkitError):
    """A manifest the real API server (or CNI) would reject.

    ``source`` names the file, ``obj`` the object (``Kind ns/name``), ``field``
    the path inside it (``spec.ingress[0].ports[1].port``).
    """

    def __init__(
        self,
        message: str,
        *,
        source: str = "",
        obj: str = "",
        field: str = "",
        hint: str = "",
    ) -> None:
        where = ": ".join(p for p in (source, obj, field) if p)
        super().__init__(f"{where}: {message}" if where else message, hint=hint)
        self.source = source
        self.obj = obj
        self.field = field


class UnknownKindError(ManifestError):
    """``no matches for kind ...``: the kind is unknown or its CRD is not installed."""


class ToolError(LabkitError):
    """An external program failed; keeps the command and its stderr."""

    def __init__(
        self, message: str, *, command: str = "", stderr: str = "", returncode: int | None = None,
        hint: str = "",
    ) -> None:
        super().__init__(message, hint=hint)
        self.command = command
        self.stderr = stderr
        self.returncode = returncode


class ToolNotFound(ToolError):
    """The program is not on PATH."""


class ClusterError(LabkitError):
    """The cluster is missing, not ready, or in a state labkit cannot continue from."""


class ContextRefused(ClusterError):
    """The kube context does not belong to a lab cluster; labkit will not touch it."""


class BackendUnsupported(LabkitError):
    """The selected backend cannot perform this operation."""


class FlowError(LabkitError):
    """A line of a Hubble flow file that is not what ``hubble observe`` writes (file:line,
    and the field when one has the wrong type)."""


class CheckFailed(LabkitError):
    """A self-check or closing check did not see the behaviour it expects."""
