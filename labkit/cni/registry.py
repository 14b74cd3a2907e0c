"""Every CNI recipe, by name: a plain dict of the recipe objects."""

from __future__ import annotations

from labkit.cni import Recipe, flannel, kindnet
from labkit.cni.calico import recipe as calico
from labkit.cni.cilium import recipe as cilium
from labkit.cnis import CNIS
from labkit.errors import ManifestError

RECIPES: dict[str, Recipe] = {
    "flannel": flannel.RECIPE,
    "kindnet": kindnet.RECIPE,
    "calico": calico.RECIPE,
    "cilium": cilium.RECIPE,
}


def recipe(name: str) -> Recipe:
    """The recipe that installs and verifies ``name``."""
    try:
        return RECIPES[name]
    except KeyError:
        raise ManifestError(f"no recipe for CNI {name!r}",
                            hint=f"known CNIs: {', '.join(CNIS)}") from None
