"""Self-checks and the lab 01 closing check, on the sim backend (behaviour, via probes)."""

from __future__ import annotations

import json

import pytest

from labkit import Lab
from labkit.environments import environments_dir
from labkit.errors import CheckFailed
from labkit.labs import flannel as checks

POLICY = environments_dir() / "policies" / "shop-db-from-api-only.yaml"
GOOD = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api-from-frontend-only, namespace: shop-api}
spec:
  podSelector: {matchLabels: {app: api}}
  policyTypes: [Ingress]
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: shop-web}}
          podSelector: {matchLabels: {app: frontend}}
      ports: [{protocol: TCP, port: 8080}]
"""
# The classic mistake: a podSelector alone means "pods in the policy's own namespace".
SAME_NAMESPACE_ONLY = GOOD.replace(
    "        - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: shop-web}}\n"
    "          podSelector", "        - podSelector")
# Selects the wrong pods (the frontend), so the API stays open to everyone.
WRONG_TARGET = GOOD.replace("podSelector: {matchLabels: {app: api}}",
                            "podSelector: {matchLabels: {app: web}}")


@pytest.fixture
def bare_lab():
    lab = Lab("flannel", backend="sim")
    lab.down()  # sim clusters live for the process: start from nothing
    lab.up()
    yield lab
    lab.down()


@pytest.fixture
def shop_lab(bare_lab):
    bare_lab.install_cni("flannel")
    bare_lab.deploy_shop()
    return bare_lab


def test_nodes_ready_needs_a_cni(bare_lab):
    with pytest.raises(CheckFailed) as err:
        checks.nodes_ready(bare_lab)
    assert "NotReady" in str(err.value) and "install_cni" in err.value.hint
    bare_lab.install_cni("flannel")
    result = checks.nodes_ready(bare_lab)
    assert result.passed and result.simulated


def test_pod_addresses_come_from_the_node_range(shop_lab):
    result = checks.pods_in_node_ranges(shop_lab)
    assert result.passed
    assert all("outside" not in d for d in result.details)
    assert any("shop-api/db" in d for d in result.details)


def test_policy_ignored_needs_a_blocking_policy(shop_lab):
    with pytest.raises(CheckFailed) as err:
        checks.policy_ignored(shop_lab, "shop-web/frontend", "shop-api/db")
    assert "no applied policy blocks" in str(err.value)
    shop_lab.apply(POLICY)
    result = checks.policy_ignored(shop_lab, "shop-web/frontend", "shop-api/db")
    assert result.passed and "expected blocked, observed open" in result.details[0]


def test_connection_check_probes(shop_lab):
    assert checks.connection(shop_lab, "shop-web/frontend", "shop-api/api").passed
    with pytest.raises(CheckFailed):
        checks.connection(shop_lab, "shop-web/frontend", "shop-api/api", open=False)


def test_exercise_1_not_attempted_does_not_fail(shop_lab):
    result = checks.exercise_api_from_frontend_only(shop_lab, None)
    assert result.passed is None and "NOT ATTEMPTED" in result.to_text()


def test_every_exercise_not_attempted_says_where_to_write_and_how_to_skip():
    from labkit.labs import calico as checks_calico
    from labkit.labs import metallb as checks_metallb

    for result, where in ((checks_calico.exercise_db_no_egress(None, None), "MY_POLICY"),
                          (checks_metallb.exercise_api_lb(None, None), "MY_SERVICE")):
        assert result.passed is None
        assert where in result.message and "SOLVE_EXERCISES = True" in result.message


@pytest.mark.parametrize(("answer", "why"), [
    (SAME_NAMESPACE_ONLY, "blocks shop-web/frontend -> shop-api/api-1 on TCP 8080, which the "
     "exercise keeps open: a podSelector alone only matches pods in the policy's own namespace"),
    (WRONG_TARGET, "also lets shop-api/api-1 reach shop-api/api-2 on TCP 8080; the exercise "
     "does not (no NetworkPolicy selects shop-api/api-"),
])
def test_exercise_1_wrong_answers_say_why(shop_lab, answer, why):
    with pytest.raises(CheckFailed) as err:
        checks.exercise_api_from_frontend_only(shop_lab, answer)
    assert why in err.value.message


def test_exercise_1_right_answer(shop_lab):
    result = checks.exercise_api_from_frontend_only(shop_lab, GOOD)
    assert result.passed
    assert any("Flannel does not enforce" in d for d in result.details)


def test_exercise_2_prediction(shop_lab):
    shop_lab.apply(GOOD)
    assert checks.exercise_prediction(shop_lab, None).passed is None
    with pytest.raises(CheckFailed):
        checks.exercise_prediction(shop_lab, "maybe")
    with pytest.raises(CheckFailed) as err:
        checks.exercise_prediction(shop_lab, "blocked")  # the policy says so; Flannel disagrees
    assert "the probe saw open" in str(err.value)
    assert checks.exercise_prediction(shop_lab, "open").passed


def test_flannel_goal(shop_lab):
    with pytest.raises(CheckFailed) as err:
        checks.flannel_goal(shop_lab)
    assert "no applied policy" in str(err.value)
    shop_lab.apply(POLICY)
    result = checks.flannel_goal(shop_lab)
    assert result.passed and "open on Flannel" in result.message


def test_flannel_goal_without_a_cni(bare_lab):
    with pytest.raises(CheckFailed) as err:
        checks.flannel_goal(bare_lab)
    assert "not flannel" in str(err.value)


def test_remove_policies_gives_a_clean_slate(shop_lab):
    shop_lab.apply(POLICY)
    shop_lab.apply(GOOD)
    removed = checks.remove_policies(shop_lab)
    assert len(removed) == 2
    assert not shop_lab.matrix().diff()
    assert checks.remove_policies(shop_lab) == []


def test_overlay_path_names_vxlan_port(shop_lab):
    pods = {p.key: p for p in shop_lab.pods()}
    front = shop_lab.resolve("shop-web/frontend")
    other = next(k for k, p in pods.items() if p.namespace == "shop-api"
                 and p.node != pods[front].node)
    lines = checks.overlay_path(shop_lab, front, other)
    assert any("UDP dport 8472" in line for line in lines)
    same = checks.overlay_path(shop_lab, front, front)
    assert "never enters the overlay" in same[0]


def test_check_result_renders():
    result = checks.CheckResult("x", True, "fine", ["a <b>"], simulated=True)
    assert repr(result).startswith("[PASSED] [simulated] x: fine")
    assert "SIMULATED" not in result.to_text()  # the notebook's one callout explains it
    page = result._repr_html_()
    assert "a &lt;b&gt;" in page and ">simulated</span>" in page and "<i>" not in page
    assert json.loads(result.to_json())["passed"] is True


def test_vxlan_seen_on_a_cross_node_capture_only(shop_lab):
    pods = {p.key: p for p in shop_lab.pods()}
    front = shop_lab.resolve("shop-web/frontend")
    other = next(k for k, p in pods.items() if p.namespace == "shop-api"
                 and p.node != pods[front].node)
    result = checks.vxlan_seen(shop_lab.capture(front, other, 8080))
    assert result.passed and result.simulated
    assert any("UDP/8472" in d for d in result.details)
    same = next((k for k, p in pods.items() if k != front and p.node == pods[front].node
                 and p.namespace.startswith("shop-")), None)
    assert same is not None  # sim placement is deterministic: an API pod shares the node
    with pytest.raises(CheckFailed) as err:
        checks.vxlan_seen(shop_lab.capture(front, same, 8080))
    assert "different nodes" in err.value.hint
