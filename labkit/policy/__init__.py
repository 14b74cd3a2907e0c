"""The policy engine: parse manifests, build a cluster state, judge traffic."""

from labkit.policy.engine import (
    CNIS,
    Engine,
    Reachability,
    enforced_kinds,
    reference_cni,
    served_kinds,
)
from labkit.policy.kinds import load_objects, parse_text
from labkit.policy.parse import read_documents
from labkit.policy.state import add_policy, build_state

__all__ = [
    "CNIS",
    "Engine",
    "Reachability",
    "add_policy",
    "build_state",
    "enforced_kinds",
    "load_objects",
    "parse_text",
    "read_documents",
    "reference_cni",
    "served_kinds",
]
