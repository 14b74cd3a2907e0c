"""Exercise self-checks never lie: judged by meaning (with decoys), earlier attempts removed,
hints in diagnostic order, and a summary in each closing check."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from labkit import Lab, checks, checks_calico, checks_metallb
from labkit.addons import metallb
from labkit.backends.kind import KindBackend
from labkit.environments import Stage
from labkit.errors import CheckFailed
from labkit.labs.exercise import ANNOTATION, earlier_attempts
from labkit.magics.exercise import Wanted, check_typed

REF01 = checks.reference("01-api-from-frontend-only")
REF02 = checks.reference("02-db-no-egress")
REF03 = checks.reference("03-api-lb")
AND_AS_OR = REF01.replace("name: api-from-frontend-only", "name: first-try").replace(
    "          podSelector:\n            matchLabels:\n              app: frontend",
    "        - podSelector:\n            matchLabels:\n              app: frontend")


@pytest.fixture
def flannel() -> Iterator[Lab]:
    lab = Lab("flannel", backend="sim")
    lab.up()
    lab.install_cni("flannel")
    lab.deploy_shop()
    yield lab
    lab.down()


@pytest.fixture
def calico() -> Iterator[Lab]:
    lab = Lab("flannel", backend="sim")
    checks_calico.ensure_calico(lab)
    yield lab
    lab.down()


def _policies(lab: Lab) -> set[str]:
    return {p.name for p in lab.impl.state().policies}


# -- lab 01 ---------------------------------------------------------------------------------
def test_and_written_as_or_fails_naming_the_decoy_and_the_mistake(flannel: Lab) -> None:
    with pytest.raises(CheckFailed) as err:
        checks.exercise_api_from_frontend_only(flannel, AND_AS_OR)
    text = err.value.message
    assert "also lets shop-web/debug" in text and "reach shop-api/api-1" in text
    assert "separate `from` items, which means OR" in text
    assert flannel.exercises == {"lab01-ex1": False}


def test_podselector_without_namespaceselector_blocks_the_frontend(flannel: Lab) -> None:
    alone = REF01.replace("        - namespaceSelector:\n            matchLabels:\n"
                          "              kubernetes.io/metadata.name: shop-web\n"
                          "          podSelector:", "        - podSelector:")
    with pytest.raises(CheckFailed, match="blocks shop-web/frontend -> shop-api/api-1 on TCP "
                       "8080.*podSelector alone only matches pods in the policy's own"):
        checks.exercise_api_from_frontend_only(flannel, alone)


def test_a_rule_without_ports_opens_every_port(flannel: Lab) -> None:
    no_ports = REF01.split("      ports:")[0]
    with pytest.raises(CheckFailed, match="on TCP 9090.*no `ports`"):
        checks.exercise_api_from_frontend_only(flannel, no_ports)


def test_right_answer_after_a_wrong_one_removes_it_and_passes(flannel: Lab) -> None:
    with pytest.raises(CheckFailed):
        checks.exercise_api_from_frontend_only(flannel, AND_AS_OR)
    assert "first-try" in _policies(flannel)
    result = checks.exercise_api_from_frontend_only(flannel, REF01)
    assert result.passed and "first-try" not in _policies(flannel)
    assert "removed your earlier attempt: NetworkPolicy shop-api/first-try" in result.details
    assert [s["metadata"]["name"] for s in earlier_attempts(flannel, "lab01-ex1")] == [
        "api-from-frontend-only"]


def test_closing_check_summarises_the_exercises(flannel: Lab) -> None:
    flannel.apply(checks_calico.LAB01_POLICY)
    checks.exercise_api_from_frontend_only(flannel, REF01)
    checks.exercise_prediction(flannel, None)
    details = checks.flannel_goal(flannel).details
    assert "exercises: 1/3 passed, 2 not attempted" in details


def test_the_typed_command_counts_in_the_closing_summary(flannel: Lab) -> None:
    """The "try it" cell of lab 01 records under the name the closing check counts."""
    flannel.apply(checks_calico.LAB01_POLICY)
    checks.exercise_api_from_frontend_only(flannel, REF01)
    check_typed(flannel, checks.LAB01_TRY_IT, "kubectl get pods -n shop-api -o wide",
                Wanted("get", "kubectl get pods -n shop-api -o wide", resource="pods",
                       namespace="shop-api", output="wide"))
    assert "exercises: 2/3 passed, 1 not attempted" in checks.flannel_goal(flannel).details


# -- lab 02 ---------------------------------------------------------------------------------
def test_lab02_earlier_attempt_no_longer_makes_the_right_answer_fail(calico: Lab) -> None:
    calico.apply(checks_calico.POLICIES / "calico-tiers")
    too_much = REF02.replace("security.db-no-egress", "security.db-first-try").replace(
        "types: [Egress]", "types: [Egress, Ingress]\n  ingress:\n    - action: Deny")
    with pytest.raises(CheckFailed, match="blocks shop-api/api-1 -> shop-api/db on TCP 8080"):
        checks_calico.exercise_db_no_egress(calico, too_much)
    result = checks_calico.exercise_db_no_egress(calico, REF02)
    assert result.passed and "security.db-first-try" not in _policies(calico)
    assert any("db-first-try" in d for d in result.details)
    # lab 02's clean slate removes every exercise answer too
    checks_calico.clean_slate(calico)
    assert not earlier_attempts(calico)


# -- lab 03 ---------------------------------------------------------------------------------
def test_lab03_hints_follow_type_then_endpoints_then_metallb(calico: Lab) -> None:
    nodeport = REF03.replace("type: LoadBalancer", "type: NodePort")
    with pytest.raises(CheckFailed, match="MetalLB is not installed"):
        checks_metallb.exercise_api_lb(calico, REF03)
    with pytest.raises(CheckFailed, match="type NodePort: only a Service of type LoadBalancer"):
        checks_metallb.exercise_api_lb(calico, nodeport)
    metallb.install(calico)
    with pytest.raises(CheckFailed, match="selector app=apii matches no running pod") as err:
        checks_metallb.exercise_api_lb(calico, REF03.replace("app: api", "app: apii"))
    assert "Docker Desktop" not in str(err.value) and "metallb.install" not in str(err.value)
    with pytest.raises(CheckFailed, match="targetPort names no port"):
        checks_metallb.exercise_api_lb(calico, REF03.replace("targetPort: http", "targetPort: x"))
    result = checks_metallb.exercise_api_lb(calico, REF03)
    assert result.passed and calico.exercises == {"lab03-ex1": True}


# -- MetalLB's address is written asynchronously: wait, bounded --------------------------------
class _SlowMetalLB:
    """A Service whose status.loadBalancer MetalLB fills on the third read."""

    def __init__(self, after: int) -> None:
        self.reads, self.after = 0, after

    def get(self, api: str, kind: str, name: str, ns: str | None = None) -> dict[str, Any]:
        self.reads += 1
        ingress = [{"ip": "172.18.255.201"}] if self.reads >= self.after else []
        return {"metadata": {"name": name, "namespace": ns, "annotations": {ANNOTATION: "x"}},
                "spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {"ingress": ingress}}}


def _kind_with(kube: Any) -> KindBackend:
    backend = KindBackend(Stage.load("flannel"), kube_factory=lambda ctx: kube)
    backend._kube = kube
    return backend


def test_wait_for_address_polls_until_metallb_writes_it() -> None:
    kube, sleeps = _SlowMetalLB(after=3), []
    ip = metallb.wait_for_address(_kind_with(kube), "shop-api/api-lb", timeout=60,
                                  sleep=sleeps.append)
    assert ip == "172.18.255.201" and kube.reads >= 3 and sleeps


def test_wait_for_address_gives_up_after_its_timeout() -> None:
    ip = metallb.wait_for_address(_kind_with(_SlowMetalLB(after=10**9)), "shop-api/api-lb",
                                  timeout=0, sleep=lambda s: None)
    assert ip == ""


def test_a_typo_in_the_answer_names_the_variable_and_field_and_applies_nothing(
        flannel: Lab) -> None:
    from labkit.errors import ManifestError

    typo = REF01.replace("matchLabels:\n      app: api", "matchLabel:\n      app: api")
    before = _policies(flannel)
    with pytest.raises(ManifestError, match="MY_POLICY: NetworkPolicy shop-api/"
                       "api-from-frontend-only: spec.podSelector.matchLabel: unknown field"):
        checks.exercise_api_from_frontend_only(flannel, typo)
    with pytest.raises(ManifestError, match="MY_POLICY: line"):
        checks.exercise_api_from_frontend_only(flannel, "metadata:\n  name: x\n bad: 1\n")
    assert _policies(flannel) == before and flannel.exercises == {"lab01-ex1": False}
