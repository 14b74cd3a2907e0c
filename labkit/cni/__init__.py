"""Per-CNI recipes: install, verify (and later uninstall), for each backend.

This package's base: :class:`Recipe`, its :class:`Verification`, and the node checks
every CNI must pass. Each CNI's recipe lives in its own module or package here, and
``labkit.cni.registry`` maps CNI names to their ``RECIPE`` objects.
"""

from __future__ import annotations

import html
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from labkit.display.render import SIMULATED_BADGE, Rendered, html_table
from labkit.errors import BackendUnsupported, CheckFailed

if TYPE_CHECKING:
    from labkit.backends.base import Backend
    from labkit.backends.kind.backend import KindBackend
    from labkit.backends.sim.backend import SimBackend
    from labkit.progress import Progress



@dataclass(frozen=True)
class VerificationCheck:
    name: str
    ok: bool
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True, repr=False)
class Verification(Rendered):
    """The result of ``recipe.verify``: renders as text/HTML, serialises to JSON."""

    cni: str
    checks: tuple[VerificationCheck, ...]
    simulated: bool = False

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def failed(self) -> list[VerificationCheck]:
        return [c for c in self.checks if not c.ok]

    def raise_for_failure(self) -> None:
        if not self.ok:
            names = "; ".join(f"{c.name}: {c.detail}" for c in self.failed())
            raise CheckFailed(f"{self.cni} is not working: {names}",
                              hint="lab.status() shows nodes and pods; on kind, the logs of "
                              f"the {self.cni} pods (kubectl logs) tell why")

    def as_dict(self) -> dict[str, Any]:
        return {"cni": self.cni, "ok": self.ok, "simulated": self.simulated,
                "checks": [c.as_dict() for c in self.checks]}

    def to_text(self) -> str:
        label = " [simulated]" if self.simulated else ""
        lines = [f"{self.cni}: {'OK' if self.ok else 'NOT OK'}{label}"]
        lines += [f"  [{'x' if c.ok else ' '}] {c.name}: {c.detail}" for c in self.checks]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        table = html_table(("", "check", "detail"),
                           [("✔" if c.ok else "✘", c.name, c.detail) for c in self.checks])
        label = f" {SIMULATED_BADGE}" if self.simulated else ""
        return (f"<p><b>{html.escape(self.cni)}</b>: {'OK' if self.ok else 'NOT OK'}{label}"
                f"</p>{table}")


class Recipe:
    """Base recipe: one half per backend, each typed to the backend it serves.

    ``install`` and ``verify`` ask the backend to run its own half
    (:meth:`~labkit.backends.base.Backend.dispatch`); a recipe without a half for a
    backend says so with :class:`~labkit.errors.BackendUnsupported`.
    """

    name = ""

    def install(self, backend: Backend, progress: Progress | None = None) -> None:
        backend.dispatch(sim=lambda b: self.install_sim(b, progress),
                         kind=lambda b: self.install_kind(b, progress))

    def install_sim(self, backend: SimBackend, progress: Progress | None = None) -> None:
        raise BackendUnsupported(f"no {self.name} recipe for the sim backend")

    def install_kind(self, backend: KindBackend, progress: Progress | None = None) -> None:
        raise BackendUnsupported(f"no {self.name} recipe for the kind backend")

    def verify(self, backend: Backend) -> Verification:
        checks = list(node_checks(backend))
        checks.extend(backend.dispatch(sim=self.verify_sim, kind=self.verify_kind))
        return Verification(self.name, tuple(checks), backend.simulated)

    def verify_sim(self, backend: SimBackend) -> Sequence[VerificationCheck]:
        """Checks beyond :func:`node_checks` on the sim (none by default)."""
        return ()

    def verify_kind(self, backend: KindBackend) -> Sequence[VerificationCheck]:
        """Checks beyond :func:`node_checks` on a real cluster (none by default)."""
        return ()


def node_checks(backend: Backend) -> Sequence[VerificationCheck]:
    """Nodes Ready with a podCIDR, and every pod-network pod addressed from its node's range."""
    nodes = backend.node_rows()
    not_ready = [n.name for n in nodes if not n.ready]
    out = [VerificationCheck("nodes Ready", not not_ready and bool(nodes),
                             f"{len(nodes) - len(not_ready)}/{len(nodes)} Ready"
                             + (f"; NotReady: {', '.join(not_ready)}" if not_ready else ""))]
    no_cidr = [n.name for n in nodes if not n.pod_cidr]
    out.append(VerificationCheck("every node has a podCIDR", not no_cidr,
                                 ", ".join(f"{n.name}={n.pod_cidr}" for n in nodes) if not no_cidr
                                 else f"missing on {', '.join(no_cidr)}"))
    ranges = {n.name: ipaddress.ip_network(n.pod_cidr) for n in nodes if n.pod_cidr}
    pods = [p for p in backend.pod_rows() if not p.host_network and p.phase == "Running"]
    wrong = [f"{p.namespace}/{p.name} {p.ip} on {p.node}" for p in pods
             if p.node not in ranges or ipaddress.ip_address(p.ip) not in ranges[p.node]]
    out.append(VerificationCheck(
        "pods addressed from their node's range", not wrong and bool(pods),
        f"{len(pods)} pods checked" if not wrong else "; ".join(wrong[:5])))
    return out
