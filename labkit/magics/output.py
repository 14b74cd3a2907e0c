"""What a simulated command printed, and the error for commands outside the modelled subset."""

from __future__ import annotations

from dataclasses import dataclass

from labkit.errors import LabkitError


@dataclass
class Output:
    """What a command printed and its exit code; ``notice`` goes to stderr before stdout
    (kubectl's ``Defaulted container ...`` line precedes what the command prints)."""

    stdout: str = ""
    stderr: str = ""
    code: int = 0
    notice: str = ""


class Unsupported(LabkitError):
    """A command outside the modelled subset."""
