"""kindnet (kindnetd), kind's default CNI: present unless the kind config disables it.

It uses the same addressing as Flannel (host-local over each node's /24) and, since
kind v0.24, enforces Kubernetes NetworkPolicy (cni-ground-truth.md; DESIGN.md).
labkit never installs it on kind: kind does, at cluster creation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from labkit.cni import Recipe
from labkit.errors import ClusterError

if TYPE_CHECKING:
    from labkit.backends.kind.backend import KindBackend
    from labkit.backends.sim.backend import SimBackend
    from labkit.progress import Progress


class Kindnet(Recipe):
    name = "kindnet"

    def install_sim(self, backend: SimBackend, progress: Progress | None = None) -> None:
        backend.install_kindnet()

    def install_kind(self, backend: KindBackend, progress: Progress | None = None) -> None:
        if backend.installed_cni() != "kindnet":
            raise ClusterError("kindnet comes with kind itself; this stage disables it",
                               hint="use a stage whose kind config keeps the default CNI")


RECIPE = Kindnet()
