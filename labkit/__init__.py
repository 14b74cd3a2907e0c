"""labkit: the library behind CNI Lab, a Jupyter course on Kubernetes networking.

The public surface is curated here; ``__all__`` stays sorted (a test checks it).
"""

from labkit.backends.base import ClusterStatus
from labkit.backends.stage import Stage, load_versions
from labkit.errors import (
    BackendUnsupported,
    CheckFailed,
    ClusterError,
    ContextRefused,
    LabkitError,
    ManifestError,
    ToolError,
    ToolNotFound,
    UnknownKindError,
)
from labkit.lab import Lab, choose_backend, current_lab
from labkit.matrix import ConnectivityMatrix, Observation
from labkit.model import Denial, HttpRequest, Traffic, Verdict
from labkit.policy import Engine, build_state, load_objects, parse_text


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext labkit``: the %kubectl, %helm, %cilium and %hubble magics (labkit.magics)."""
    from labkit.magics import load_ipython_extension as load

    load(ipython)


def command_ran(tool: str, *words: str, hint: str = "") -> object:
    """The learner's last successful ``%tool`` command containing ``words``, else CheckFailed."""
    from labkit.magics import command_ran as ran

    return ran(tool, *words, hint=hint)


__all__ = [
    "BackendUnsupported",
    "CheckFailed",
    "ClusterError",
    "ClusterStatus",
    "ConnectivityMatrix",
    "ContextRefused",
    "Denial",
    "Engine",
    "HttpRequest",
    "Lab",
    "LabkitError",
    "ManifestError",
    "Observation",
    "Stage",
    "ToolError",
    "ToolNotFound",
    "Traffic",
    "UnknownKindError",
    "Verdict",
    "build_state",
    "choose_backend",
    "command_ran",
    "current_lab",
    "load_ipython_extension",
    "load_objects",
    "load_versions",
    "parse_text",
]
