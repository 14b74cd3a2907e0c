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
from labkit.magics.exercise import Wanted, check_typed
from labkit.matrix import ConnectivityMatrix, Observation
from labkit.model import Denial, HttpRequest, Traffic, Verdict
from labkit.policy import Engine, build_state, load_objects, parse_text


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext labkit``: the %kubectl, %helm, %cilium and %hubble magics (labkit.magics)."""
    from labkit.magics import load_ipython_extension as load

    load(ipython)



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
    "Wanted",
    "build_state",
    "check_typed",
    "choose_backend",
    "current_lab",
    "load_ipython_extension",
    "load_objects",
    "load_versions",
    "parse_text",
]
