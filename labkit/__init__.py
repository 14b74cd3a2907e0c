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
from labkit.hubble import Flow, FlowLog, ServiceMap, parse_flows, read_flows
from labkit.hubble import suggest as suggest_policies
from labkit.lab import Lab, choose_backend
from labkit.matrix import ConnectivityMatrix, Observation
from labkit.model import Denial, HttpRequest, Traffic, Verdict
from labkit.policy import Engine, build_state, load_objects, parse_text

__all__ = [
    "BackendUnsupported",
    "CheckFailed",
    "ClusterError",
    "ClusterStatus",
    "ConnectivityMatrix",
    "ContextRefused",
    "Denial",
    "Engine",
    "Flow",
    "FlowLog",
    "HttpRequest",
    "Lab",
    "LabkitError",
    "ManifestError",
    "Observation",
    "ServiceMap",
    "Stage",
    "ToolError",
    "ToolNotFound",
    "Traffic",
    "UnknownKindError",
    "Verdict",
    "build_state",
    "choose_backend",
    "load_objects",
    "load_versions",
    "parse_flows",
    "parse_text",
    "read_flows",
    "suggest_policies",
]
