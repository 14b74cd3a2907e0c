"""labkit: the library behind CNI Lab, a Jupyter course on Kubernetes networking.

The public surface is curated here; ``__all__`` stays sorted (a test checks it).
Notebooks import from ``labkit`` and nothing else (a test checks that too), so the
modules behind these names may move freely. Each lab's checks are public under the
name the notebooks know them by (``checks`` is lab 01's, ``checks_calico`` lab 02's,
``checks_metallb`` lab 03's, ``checks_mesh`` lab 08's); ``calico``, ``metallb`` and
``gateway_api`` are the recipe and add-on modules.
``load_ipython_extension`` is what ``%load_ext labkit`` calls (the %kubectl magics).
"""

# Before anything loads nbformat (the CLI's course runner does): jsonschema then finds
# rfc3987_syntax deferred instead of building its grammars (labkit/imports.py).
from labkit import imports as _imports  # noqa: F401
from labkit.addons import gateway_api, metallb
from labkit.backends.base import ClusterStatus
from labkit.cni.calico import recipe as calico
from labkit.cni.cilium import recipe as cilium
from labkit.course.doctor import pinned_versions, run_doctor
from labkit.course.plan import claims_table, plan_table
from labkit.display import Table, simulated_banner
from labkit.environments import Stage, environments_dir, load_versions
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
from labkit.gateway import SplitCheck, route_requests, split_check
from labkit.hubble import Flow, FlowLog, ServiceMap, parse_flows, read_flows
from labkit.hubble import suggest as suggest_policies
from labkit.lab import Lab, choose_backend, current_lab
from labkit.labs import calico as checks_calico
from labkit.labs import cilium as checks_cilium
from labkit.labs import flannel as checks
from labkit.labs import hubble as checks_hubble
from labkit.labs import l7 as checks_l7
from labkit.labs import mesh as checks_mesh
from labkit.labs import metallb as checks_metallb
from labkit.magics import load_ipython_extension
from labkit.magics.exercise import Wanted, check_typed
from labkit.matrix import ConnectivityMatrix, HttpMatrix, Observation
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
    "HttpMatrix",
    "HttpRequest",
    "Lab",
    "LabkitError",
    "ManifestError",
    "Observation",
    "ServiceMap",
    "SplitCheck",
    "Stage",
    "Table",
    "ToolError",
    "ToolNotFound",
    "Traffic",
    "UnknownKindError",
    "Verdict",
    "Wanted",
    "build_state",
    "calico",
    "check_typed",
    "checks",
    "checks_calico",
    "checks_cilium",
    "checks_hubble",
    "checks_l7",
    "checks_mesh",
    "checks_metallb",
    "choose_backend",
    "cilium",
    "claims_table",
    "current_lab",
    "environments_dir",
    "gateway_api",
    "load_ipython_extension",
    "load_objects",
    "load_versions",
    "metallb",
    "parse_flows",
    "parse_text",
    "pinned_versions",
    "plan_table",
    "read_flows",
    "route_requests",
    "run_doctor",
    "simulated_banner",
    "split_check",
    "suggest_policies",
]
