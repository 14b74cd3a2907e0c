"""The course plan: which notebooks exist, in what order, and what each teaches."""

from __future__ import annotations

from pathlib import Path

from labkit.display import Table

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"

#: (notebook stem, what the learner does and sees), from the course design.
PLAN: tuple[tuple[str, str], ...] = (
    ("00-preflight", "doctor checks, backend choice, pinned versions, this plan"),
    ("01-flannel", "a cluster without CNI, Flannel, pod addresses per node, a policy Flannel "
     "ignores"),
    ("02-calico", "migrate to Calico: the same policy enforced; Calico policy order"),
    ("03-metallb", "MetalLB L2: a LoadBalancer service reached from outside the cluster"),
    ("04-cilium", "Cilium with kube-proxy replacement; identities; policies enforced again"),
    ("05-l7-policies", "HTTP rules: 403 versus timeout"),
    ("06-encryption", "WireGuard: captures before and after"),
    ("07-hubble", "flows as data, drops and their reasons"),
    ("08-service-mesh", "Gateway API traffic split, mTLS and its limits"),
    ("09-clustermesh", "two clusters, a global service, a cross-cluster policy"),
    ("10-choosing-a-cni", "a capability table built from what this run observed"),
)


def plan_table(folder: Path = NOTEBOOKS_DIR) -> Table:
    present = {p.stem for p in folder.glob("[0-9][0-9]-*.ipynb")}
    table = Table(("notebook", "status", "what you do and see"), title="The course")
    for stem, topic in PLAN:
        table.add(stem, "available" if stem in present else "planned", topic)
    return table
