"""What every lab shares: the check result, the helpers checks are made of, the course set-up.

Each check returns a :class:`CheckResult` (text in a terminal, HTML in Jupyter,
JSON) when the behaviour is there, and raises :class:`~labkit.errors.CheckFailed`
with a hint that points at the fix when it is not. An exercise the learner has
not attempted (answer ``None``) is reported as "not attempted" and does not fail,
so a notebook runs green top to bottom before the learner writes anything.

The set-up functions (``ensure_lab01``, ``ensure_calico``) rebuild the state a lab
starts from, so any notebook runs on a fresh kernel or a fresh simulated cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit.cni.calico import recipe as calico
from labkit.display import SIMULATED_BADGE, escape
from labkit.display.render import Rendered, html_text
from labkit.environments import environments_dir
from labkit.errors import CheckFailed
from labkit.labs import exercise
from labkit.labs.exercise import exercise as exercise_check
from labkit.model import HttpRequest

if TYPE_CHECKING:
    from labkit.lab import Lab
    from labkit.matrix import Cell

SHOP_APPS = ("shop-web/frontend", "shop-api/api", "shop-api/db")
SHOP_PORT = 8080


@dataclass(repr=False)
class CheckResult(Rendered):
    name: str
    passed: bool | None  # None: the learner has not attempted it yet
    message: str
    details: list[str] = field(default_factory=list)
    simulated: bool = False

    @property
    def mark(self) -> str:
        return {True: "PASSED", False: "FAILED", None: "NOT ATTEMPTED"}[self.passed]

    def to_text(self) -> str:
        tag = " [simulated]" if self.simulated else ""
        lines = [f"[{self.mark}]{tag} {self.name}: {self.message}",
                 *(f"  - {d}" for d in self.details)]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        colour = {True: "#1a7f37", False: "#cf222e", None: "#9a6700"}[self.passed]
        items = "".join(f"<li>{html_text(d)}</li>" for d in self.details)
        tag = f" {SIMULATED_BADGE}" if self.simulated else ""
        return (f'<div style="border-left:4px solid {colour};padding-left:8px">'
                f'<b style="color:{colour}">{self.mark}</b>{tag} <b>{escape(self.name)}</b>: '
                f"{html_text(self.message)}<ul>{items}</ul></div>")

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "message": self.message,
                "details": list(self.details), "simulated": self.simulated}


def fail(name: str, message: str, hint: str) -> CheckFailed:
    return CheckFailed(f"{name}: {message}", hint=hint)


def require_cni(lab: Lab, name: str, cni: str, hint: str) -> None:
    """The closing check ``name`` runs only on the CNI its lab installs."""
    if lab.cni != cni:
        raise fail(name, f"the installed CNI is {lab.cni or 'none'}, not {cni}", hint)


def not_attempted(name: str, todo: str) -> CheckResult:
    """An exercise's check before the learner has written anything: what to write, where."""
    return CheckResult(name, None, f"{todo} and run this cell again (or set SOLVE_EXERCISES = "
                       "True to run the reference solution)")


def verdict(allowed: bool) -> str:
    return "open" if allowed else "blocked"


def describe(cell: Cell) -> str:
    """``frontend -> db TCP/8080: expected blocked, observed open`` (learner names)."""
    observed = verdict(cell.seen.allowed) if cell.observed else "not probed"
    return f"{cell.title}: expected {verdict(cell.expected.allowed)}, observed {observed}"


def reference(name: str) -> str:
    """A reference solution (environments/exercises/NAME.yaml) as YAML text."""
    return (environments_dir() / "exercises" / f"{name}.yaml").read_text(encoding="utf-8")


def judge_policy(lab: Lab, name: str, answer: Any, exercise_id: str, reference_name: str,
                 *, what: str = "MY_POLICY", requests: Sequence[HttpRequest] = ()
                 ) -> exercise.Answer:
    """Apply a policy answer (earlier attempts removed) and compare its meaning with the
    reference over the whole cluster plus decoys (and ``requests``, for L7 answers);
    CheckFailed on the first difference."""
    applied = exercise.apply_answer(lab, exercise_id, answer, what=what)
    _, ref_objects = lab.validate(reference(reference_name))
    result = exercise.compare(applied.before, applied.objects, ref_objects,
                              requests=requests)
    if result.differences:
        more = len(result.differences) - 1
        raise fail(name, exercise.explain(result.differences[0], result.state, applied.docs)
                   + (f" ({more} more connection{' differs' if more == 1 else 's differ'})"
                      if more else ""),
                   "fix the policy in your cell and run the check again (this attempt stays "
                   "applied until then; the next one replaces it)"
                   + ("; " + "; ".join(applied.removed_note()) if applied.removed else ""))
    return applied


# -- checks every lab uses --------------------------------------------------------------------
def connection(lab: Lab, source: str, destination: str, port: int = SHOP_PORT, *,
               open: bool = True) -> CheckResult:
    """Probe one connection and require it to be open (or blocked)."""
    cell = lab.probe(source, destination, port)
    name = f"{source} -> {destination}:{port}"
    if cell.seen.allowed != open:
        raise fail(name, f"observed {verdict(cell.seen.allowed)}, wanted "
                    f"{verdict(open)} ({cell.seen.detail or 'no detail'})",
                    "lab.status() shows whether the pods are Running and addressed")
    return CheckResult(name, True, f"observed {verdict(open)} after "
                       f"{cell.seen.attempts} attempt(s)", [describe(cell)], lab.simulated)


@exercise_check("prediction")
def exercise_prediction(lab: Lab, prediction: str | None, source: str = "shop-api/db",
                        destination: str = "shop-api/api", port: int = SHOP_PORT
                        ) -> CheckResult:
    """Exercise: predict whether a connection is open or blocked, then a probe decides."""
    name = f"exercise 2: predict {source} -> {destination}:{port}"
    if prediction is None:
        return CheckResult(name, None, "set PREDICTION to 'open' or 'blocked' and run this "
                           "cell again")
    if prediction not in ("open", "blocked"):
        raise fail(name, f"PREDICTION is {prediction!r}", "write 'open' or 'blocked'")
    cell = lab.probe(source, destination, port)
    seen = verdict(cell.seen.allowed)
    if seen != prediction:
        raise fail(name, f"you predicted {prediction}, the probe saw {seen} "
                    f"({describe(cell)})",
                    "expected is what the policies mean; observed is what the CNI does. "
                    f"Which policies does {lab.cni} enforce?")
    return CheckResult(name, True, f"right: the probe saw {seen}", [describe(cell)],
                       lab.simulated)


def remove_policies(lab: Lab, namespaces: tuple[str, ...] = ("shop-web", "shop-api")
                    ) -> list[str]:
    """Delete every Kubernetes NetworkPolicy in ``namespaces`` (a notebook's clean slate).

    Re-running a notebook must start from the state its narrative describes, whatever
    policies an earlier run (or the learner) left behind, whatever their names.
    """
    stubs = [
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
         "metadata": {"name": p.name, "namespace": p.namespace}, "spec": {"podSelector": {}}}
        for p in lab.impl.state().policies
        if getattr(p, "kind", "") == "NetworkPolicy" and getattr(p, "namespace", "") in namespaces
    ]
    return lab.delete(stubs) if stubs else []


# -- course set-up: the state a lab starts from ----------------------------------------------
POLICIES = environments_dir() / "policies"
LAB01_POLICY = POLICIES / "shop-db-from-api-only.yaml"
#: Every policy folder or file lab 02 applies, in the order a clean slate deletes them.
LAB02_POLICIES = (POLICIES / "calico-tiers", POLICIES / "calico", POLICIES / "shop",
                  LAB01_POLICY)


def ensure_lab01(lab: Lab) -> str:
    """The cluster lab 01 ends with (Flannel, the shop, the db policy), or what followed it.

    Idempotent: an existing cluster is reused, whatever lab ran last; a fresh sim
    kernel (or a deleted kind cluster) is rebuilt the way lab 01 builds it.
    """
    lab.up()
    if lab.cni is None:
        lab.install_cni("flannel").raise_for_failure()
    lab.deploy_shop()
    clean_slate(lab)  # whatever an earlier run (or the learner) left behind
    lab.apply(LAB01_POLICY)
    return f"cluster {lab.cluster_name}: CNI {lab.cni}, shop deployed, {LAB01_POLICY.name} applied"


def ensure_calico(lab: Lab) -> str:
    """Lab 02's end state (Calico, workloads restarted), for lab 03 and later."""
    ensure_lab01(lab)
    if lab.cni != "calico":
        calico.RECIPE.migrate(lab)
    clean_slate(lab)
    return f"cluster {lab.cluster_name}: CNI {lab.cni}, shop deployed, no lab policy applied"


def clean_slate(lab: Lab) -> list[str]:
    """Delete every policy lab 02 applies (an earlier run's included), and every exercise
    answer labkit applied (found by its annotation)."""
    removed: list[str] = exercise.remove_attempts(lab)
    if lab.cni == "calico":
        for path in LAB02_POLICIES:
            removed += lab.delete(Path(path))
    removed += remove_policies(lab)
    return removed
