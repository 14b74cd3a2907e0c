"""The magics: kubectl's formats against real outputs, the sim's kubectl subset, the guarded
kind path (a fake CLI on PATH records argv, env and stdin), and a real IPython shell."""

from __future__ import annotations

import json
import os
import re
import stat
import sys
import time
from pathlib import Path

import pytest
import yaml

from labkit import Lab
from labkit.cni.calico import recipe as calico
from labkit.display import kubectl as fmt
from labkit.errors import CheckFailed, ContextRefused, LabkitError
from labkit.magics import run
from labkit.magics.cli import resource_of
from labkit.magics.exercise import Wanted, check_typed
from labkit.magics.simulated import SimKubectl
from tests.conftest import FIXED_CLOCK
from tests.unit.test_sim import shop_lab

#: Real kubectl tables, copied from the reference samples (see the folder's README).
SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "kubectl"
TABLES = sorted(p.name for p in SAMPLES.glob("kubectl_get_*.txt"))
NODES_NO_CNI = "kubectl_get_nodes_kind_no_cni_notready_4nodes_cilium_quickstart.txt"


def _cells(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


# -- kubectl's formats, against real outputs ------------------------------------------------

def test_the_fixtures_are_there() -> None:
    assert len(TABLES) == 8 and NODES_NO_CNI in TABLES and (SAMPLES / DESCRIBE).exists()


@pytest.mark.parametrize("name", TABLES, ids=[Path(t).stem[:40] for t in TABLES])
def test_table_reproduces_real_kubectl_output_byte_for_byte(name: str) -> None:
    text = (SAMPLES / name).read_text().rstrip("\n") + "\n"
    lines = text.splitlines()
    rows = [_cells(line) for line in lines]
    assert fmt.table(rows[0], rows[1:]) == text


@pytest.mark.parametrize(("seconds", "shown"), [
    (53, "53s"), (119, "119s"), (360, "6m"), (361, "6m1s"), (381, "6m21s"), (591, "9m51s"),
    (2460, "41m"), (3660, "61m"), (3 * 3600 + 5, "3h"), (3 * 3600 + 300, "3h5m"),
    (20 * 3600, "20h"), (24 * 3600, "24h"), (3 * 86400 + 4 * 3600, "3d4h"), (10 * 86400, "10d"),
    (-1, "0s"), (-5, "<invalid>")])
def test_age_is_apimachinerys_human_duration(seconds: int, shown: str) -> None:
    assert fmt.human_duration(seconds) == shown


def test_selectors_yaml_quotes_and_lists_look_like_kubectl() -> None:
    sel = {"matchLabels": {"app": "db"},
           "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]},
                                {"key": "x", "operator": "DoesNotExist"}]}
    assert fmt.label_selector(sel) == "app=db,tier in (a,b),!x"
    assert fmt.label_selector({}) == "<none>"
    assert 'creationTimestamp: "2025-06-15T15:06:40Z"' in fmt.to_yaml(
        {"metadata": {"creationTimestamp": fmt.timestamp(FIXED_CLOCK)}})
    assert json.loads(fmt.to_json(fmt.as_list([])))["kind"] == "List"
    assert resource_of("cilium.io/v2", "CiliumNetworkPolicy").plural_qualified == \
        "ciliumnetworkpolicies.cilium.io"


# -- the sim's kubectl ------------------------------------------------------------------------

@pytest.fixture()
def shop() -> Lab:
    return shop_lab()


def _kubectl(lab: Lab, line: str, stdin: str | None = None, age: float = 381):
    return SimKubectl(lab, lab.impl, now=lambda: FIXED_CLOCK + age).run(line.split(), stdin)


def test_sim_get_nodes_has_the_real_layout_before_and_after_the_cni() -> None:
    lab = Lab("flannel", backend="sim")
    lab.up()
    out = _kubectl(lab, "get nodes")
    real = (SAMPLES / NODES_NO_CNI).read_text().splitlines()
    assert out.stdout.splitlines()[0].split() == real[0].split()
    assert out.stdout == fmt.table(
        ["NAME", "STATUS", "ROLES", "AGE", "VERSION"],
        [["cni-lab-control-plane", "NotReady", "control-plane", "6m21s", "v1.36.4"],
         ["cni-lab-worker", "NotReady", "<none>", "6m21s", "v1.36.4"],
         ["cni-lab-worker2", "NotReady", "<none>", "6m21s", "v1.36.4"]])
    pods = _kubectl(lab, "get pods -A").stdout.splitlines()
    assert pods[0].split() == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    coredns = [_cells(p) for p in pods if "coredns" in p]
    assert [c[2:4] for c in coredns] == [["0/1", "Pending"]] * 2  # as in the real sample
    lab.install_cni("flannel")
    assert "NotReady" not in _kubectl(lab, "get nodes").stdout


def test_sim_get_pods_wide_counts_containers_and_shows_addresses(shop: Lab) -> None:
    out = _kubectl(shop, "get pods -n shop-api -o wide").stdout.splitlines()
    assert out[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE",
                              "NOMINATED", "NODE", "READINESS", "GATES"]
    pods = {p.name: p for p in shop.pods("shop-api")}
    for line in out[1:]:
        name, ready, status, restarts, age, ip, node, *_ = _cells(line)
        assert (ready, status, restarts, age) == ("2/2", "Running", "0", "6m21s")
        assert (ip, node) == (pods[name].ip, pods[name].node)


def test_sim_get_yaml_json_name_and_not_found(shop: Lab) -> None:
    listed = yaml.safe_load(_kubectl(shop, "get svc -n shop-api -o yaml").stdout)
    assert listed["kind"] == "List" and [i["metadata"]["name"] for i in listed["items"]] == \
        ["api", "db"]
    one = json.loads(_kubectl(shop, "get svc api -n shop-api -o json").stdout)
    assert one["kind"] == "Service" and one["spec"]["clusterIP"] == \
        shop.impl.state().services["shop-api/api"].cluster_ip
    assert _kubectl(shop, "get deploy -n shop-api -o name").stdout == \
        "deployment.apps/api\ndeployment.apps/db\n"
    missing = _kubectl(shop, "get pod nope -n shop-api")
    assert (missing.code, missing.stderr) == \
        (1, 'Error from server (NotFound): pods "nope" not found\n')
    assert _kubectl(shop, "get netpol").stderr == "No resources found in default namespace.\n"


def test_sim_apply_from_the_cell_then_get_delete(shop: Lab) -> None:
    policy = (Path(__file__).resolve().parents[2] / "environments" / "policies"
              / "shop-db-from-api-only.yaml").read_text()
    name = yaml.safe_load(policy)["metadata"]["name"]
    first = _kubectl(shop, "apply -f -", policy)
    assert first.stdout == f"networkpolicy.networking.k8s.io/{name} created\n"
    assert _kubectl(shop, "apply -f -", policy).stdout.endswith(" unchanged\n")
    table = _kubectl(shop, "get networkpolicy -A").stdout.splitlines()
    assert table[0].split() == ["NAMESPACE", "NAME", "POD-SELECTOR", "AGE"]
    assert _cells(table[1])[:3] == ["shop-api", name, "app=db"]
    gone = _kubectl(shop, f"delete netpol {name} -n shop-api")
    assert gone.stdout == f'networkpolicy.networking.k8s.io "{name}" deleted from shop-api ' \
        "namespace\n"
    assert shop.impl.state().policies == []
    again = _kubectl(shop, "delete -f -", policy)
    assert again.code == 1 and "(NotFound)" in again.stderr


def test_sim_apply_refuses_what_the_api_server_refuses(shop: Lab) -> None:
    bad = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: x}\n" \
          "spec: {podSelector: {}, policyTypes: [Sideways]}\n"
    out = _kubectl(shop, "apply -f -", bad)
    assert out.code == 1 and out.stderr.startswith("error: ") and "policyTypes" in out.stderr
    assert shop.impl.state().policies == []


def test_sim_exec_curl_follows_the_data_plane(shop: Lab) -> None:

    api = sorted(p.name for p in shop.pods("shop-api") if p.labels.get("app") == "api")[0]
    ok = _kubectl(shop, "exec -n shop-web deploy/frontend -- curl -s api.shop-api:8080/hostname")
    assert (ok.code, ok.stdout) == (0, api)
    assert ok.notice == 'Defaulted container "app" out of: app, probe\n'
    assert _kubectl(shop, "exec -n shop-api deploy/api -c probe -- curl -s "
                    "http://db:5432/echo?msg=hi").stdout == "hi"
    unknown = _kubectl(shop, "exec -n shop-api deploy/api -c probe -- curl -sS nothere:80/")
    assert unknown.code == 6 and "Could not resolve host: nothere" in unknown.stderr
    calico.RECIPE.migrate(shop, restart=False)  # Calico enforces what Flannel ignored
    calico.RECIPE.restart_workloads(shop)
    shop.apply(Path(__file__).resolve().parents[2] / "environments" / "policies"
               / "shop-db-from-api-only.yaml")
    dropped = _kubectl(shop, "exec -n shop-web deploy/frontend -c probe -- curl -sS "
                       "--connect-timeout 3 db.shop-api:5432/hostname")
    assert dropped.code == 28
    assert dropped.stderr.endswith("after 3000 ms: Timeout was reached\n"
                                   "command terminated with exit code 28\n")
    status = _kubectl(shop, "exec -n shop-api deploy/api -c probe -- curl -s -m 3 -o /dev/null "
                      "-w %{http_code} db:5432/hostname")
    assert (status.code, status.stdout) == (0, "200")


def test_sim_describe_node_and_outside_the_subset(shop: Lab) -> None:
    text = _kubectl(shop, "describe node cni-lab-worker").stdout
    node = shop.impl.cluster.nodes["cni-lab-worker"]
    assert text.startswith("Name:               cni-lab-worker\nRoles:              <none>\n")
    assert f"PodCIDR:            {node.pod_cidr}" in text and "InternalIP:  172.18.0.3" in text
    for line in ("top pods", "get pods --watch", "get configmaps", "exec -n shop-web "
                 "deploy/frontend -- wget x", "get pods -o jsonpath={.items}"):
        out = _kubectl(shop, line)
        assert out.code == 1 and out.stderr.startswith("[simulated] `kubectl ")
        assert "The simulated cluster answers:" in out.stderr


def test_run_labels_sim_output(shop: Lab) -> None:
    out: list[str] = []
    err: list[str] = []
    assert run("kubectl", "get pods -n shop-web", out=out.append, err=err.append) == 0
    assert out[0].startswith("NAME ") and err == \
        ["[simulated: answered by labkit's model of 'cni-lab', not by a real cluster]\n"]
    assert run("helm", "list -A", out=out.append, err=err.append) == 1
    assert "keeps no Helm releases" in err[-2]
    with pytest.raises(LabkitError, match="close the quote"):
        run("kubectl", 'get pods -n "shop', out=out.append, err=err.append)
    with pytest.raises(LabkitError, match="no shell to pipe"):
        run("kubectl", "get pods -A | grep api", out=out.append, err=err.append)


WIDE_PODS = Wanted("get", "kubectl get pods -n shop-api -o wide", resource="pods",
                   namespace="shop-api", output="wide")


@pytest.mark.parametrize("typed", [
    "kubectl get pods -n shop-api -o wide", "%kubectl get po --namespace=shop-api -owide",
    "kubectl get pods -A -o wide"])
def test_typed_exercise_judges_meaning_not_spelling(shop: Lab, typed: str, capsys) -> None:
    result = check_typed(shop, "try it", typed, WIDE_PODS)
    assert result.passed is True
    assert "READY" in capsys.readouterr().out  # the learner sees the command's output


@pytest.mark.parametrize(("typed", "why"), [
    ("kubectl get pods -o wide", "namespace default, not shop-api"),
    ("kubectl get pods -n shop-api", "-o wide"), ("kubectl get svc -n shop-api -o wide",
                                                  "does not list pods"),
    ("kubectl describe pods -n shop-api", "needs `kubectl get`"),
    ("get pods -n shop-api -o wide", "not a kubectl command")])
def test_typed_exercise_says_what_is_wrong(shop: Lab, typed: str, why: str) -> None:
    with pytest.raises(CheckFailed, match=re.escape(why)) as info:
        check_typed(shop, "try it", typed, WIDE_PODS)
    assert "kubectl get pods -n shop-api -o wide" in info.value.hint
    assert check_typed(shop, "try it", None, WIDE_PODS).passed is None


def test_typed_exercise_expects_the_exit_code_of_a_blocked_curl(shop: Lab) -> None:
    wanted = Wanted("exec", "kubectl exec ... -- curl -sS -m 3 db.shop-api:5432/", program="curl",
                    mentions="db", exit_code=28)
    typed = "kubectl exec -n shop-web deploy/frontend -c probe -- curl -sS -m 3 db.shop-api:5432/"
    with pytest.raises(CheckFailed, match="exit code 0"):  # Flannel: the policy is ignored
        check_typed(shop, "blocked", typed, wanted)


# -- the kind path: the real CLI, guarded ------------------------------------------------------

FAKE = """#!{python}
import json, os, sys, time
record = {{"argv": sys.argv[1:], "kubeconfig": os.environ.get("KUBECONFIG"),
          "stdin": sys.stdin.read() if not sys.stdin.isatty() else None}}
with open({log!r}, "a") as f:
    f.write(json.dumps(record) + "\\n")
print("first line", flush=True)
time.sleep(float(os.environ.get("FAKE_PAUSE", "0")))
print("last line", flush=True)
sys.exit(int(os.environ.get("FAKE_EXIT", "0")))
"""


@pytest.fixture()
def kind_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Lab, Path, Path]:
    """A kind Lab whose context exists locally, with fake kubectl/helm/cilium/hubble on PATH."""
    log = tmp_path / "calls.jsonl"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("kubectl", "helm", "cilium", "hubble"):
        path = bin_dir / tool
        path.write_text(FAKE.format(python=sys.executable, log=str(log)))
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    kubeconfig = tmp_path / "kubeconfig"
    _write_kubeconfig(kubeconfig, "https://127.0.0.1:40123")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("LABKIT_CONTEXT", raising=False)
    return Lab("flannel", backend="kind"), log, kubeconfig


def _write_kubeconfig(path: Path, server: str) -> None:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "prod",
        "contexts": [{"name": "kind-cni-lab", "context": {"cluster": "kind-cni-lab",
                                                          "user": "kind-cni-lab"}},
                     {"name": "prod", "context": {"cluster": "prod", "user": "prod"}}],
        "clusters": [{"name": "kind-cni-lab", "cluster": {"server": server}},
                     {"name": "prod", "cluster": {"server": "https://prod.example:6443"}}],
        "users": []}))


def _calls(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_kind_runs_the_real_cli_on_the_lab_context_only(kind_lab) -> None:
    lab, log, kubeconfig = kind_lab
    out: list[str] = []
    assert run("kubectl", "get pods -A", lab=lab, out=out.append) == 0
    assert "".join(out) == "first line\nlast line\n"
    run("kubectl", "exec -n shop-web deploy/frontend -c probe -- curl -s api:8080/", lab=lab,
        out=out.append)
    run("kubectl", "apply -f -", "kind: Namespace\n", lab=lab, out=out.append)
    run("helm", "list -A", lab=lab, out=out.append)
    run("cilium", "status --wait", lab=lab, out=out.append)
    run("hubble", "observe --last 5", lab=lab, out=out.append)
    run("hubble", "version", lab=lab, out=out.append)
    calls = _calls(log)
    assert [c["argv"] for c in calls] == [
        ["get", "pods", "-A", "--context", "kind-cni-lab"],
        ["exec", "-n", "shop-web", "deploy/frontend", "-c", "probe", "--context",
         "kind-cni-lab", "--", "curl", "-s", "api:8080/"],
        ["apply", "-f", "-", "--context", "kind-cni-lab"],
        ["list", "-A", "--kube-context", "kind-cni-lab"],
        ["status", "--wait", "--context", "kind-cni-lab"],
        ["observe", "--last", "5", "--kube-context", "kind-cni-lab", "--port-forward"],
        ["version", "--kube-context", "kind-cni-lab"]]
    assert {c["kubeconfig"] for c in calls} == {str(kubeconfig)}  # the file the guard read
    assert calls[2]["stdin"] == "kind: Namespace\n"  # the %%kubectl cell


def test_kind_output_streams_while_the_command_runs(kind_lab, monkeypatch) -> None:
    lab, _, _ = kind_lab
    monkeypatch.setenv("FAKE_PAUSE", "1.0")
    monkeypatch.setenv("FAKE_EXIT", "3")
    seen: list[tuple[float, str]] = []
    code = run("kubectl", "get pods -w", lab=lab, out=lambda s: seen.append((time.monotonic(), s)))
    assert code == 3
    first = next(t for t, s in seen if "first line" in s)
    last = next(t for t, s in seen if "last line" in s)
    assert last - first >= 0.7  # the first line was shown before the program finished


@pytest.mark.parametrize("line", [
    "get pods --context prod", "get pods --context=prod", "--kubeconfig /tmp/other get pods",
    "get pods --server https://prod.example:6443", "config use-context prod",
    "get pods -s https://x:6443", "get pods --user admin"])
def test_kind_refuses_anything_pointing_elsewhere(kind_lab, line: str) -> None:
    lab, log, _ = kind_lab
    with pytest.raises(ContextRefused):
        run("kubectl", line, lab=lab)
    assert _calls(log) == []


def test_kind_refuses_other_tools_context_flags_and_a_remote_lab_context(kind_lab) -> None:
    lab, log, kubeconfig = kind_lab
    for tool, line in (("helm", "list --kube-context prod"), ("hubble", "observe --server x:1"),
                       ("cilium", "status --context prod")):
        with pytest.raises(ContextRefused):
            run(tool, line, lab=lab)
    run("kubectl", "get pods --context kind-cni-lab", lab=lab, out=lambda s: None)
    assert len(_calls(log)) == 1  # naming the lab's own context is fine
    _write_kubeconfig(kubeconfig, "https://10.0.0.5:6443")  # same name, a remote server
    with pytest.raises(ContextRefused, match="not a kind cluster on this machine"):
        run("kubectl", "get pods", lab=lab)
    assert len(_calls(log)) == 1


def test_kind_missing_tool_is_one_clear_error(kind_lab, monkeypatch) -> None:
    lab, _, _ = kind_lab
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(LabkitError, match="'kubectl' is not installed"):
        run("kubectl", "get pods", lab=lab)


# -- through a real IPython shell ---------------------------------------------------------------

@pytest.fixture()
def shell():
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    ip.run_cell("%load_ext labkit", store_history=False)
    yield ip
    InteractiveShell.clear_instance()


def test_magics_in_an_ipython_shell(shell, shop: Lab) -> None:
    from IPython.utils.capture import capture_output

    with capture_output() as cap:
        result = shell.run_cell("%kubectl get svc -n shop-api")
    assert result.success and cap.stdout.startswith("NAME   TYPE        CLUSTER-IP")
    assert "[simulated:" in cap.stderr
    policy = (Path(__file__).resolve().parents[2] / "environments" / "policies"
              / "shop-db-from-api-only.yaml").read_text()
    with capture_output() as cap:
        result = shell.run_cell("%%kubectl apply -f -\n" + policy)
    assert result.success and " created" in cap.stdout
    assert len(shop.impl.state().policies) == 1
    with capture_output() as cap:
        result = shell.run_cell("if True:\n    %kubectl get netpol -n shop-api\n")
    assert result.success and "db-from-api-only" in cap.stdout
    with capture_output() as cap:  # refused before running: one line, no traceback
        result = shell.run_cell('%kubectl get pods -n "shop')
    assert not result.success and "Traceback" not in cap.stdout + cap.stderr
    assert "close the quote" in cap.stderr


def test_sim_ages_count_from_each_objects_creation(shop: Lab, monkeypatch) -> None:
    from labkit.backends.sim import cluster as sim_cluster

    monkeypatch.setattr(sim_cluster, "clock", lambda: FIXED_CLOCK + 600)
    calico.RECIPE.migrate(shop, restart=False)
    calico.RECIPE.restart_workloads(shop)  # the shop's pods are recreated 10 minutes later
    rows = [_cells(r) for r in _kubectl(shop, "get pods -A", age=660).stdout.splitlines()[1:]]
    ages = {r[1].split("-")[0]: r[5] for r in rows}
    assert ages["api"] == ages["db"] == ages["frontend"] == "60s"
    assert ages["etcd"] == "11m"  # created with the cluster


def test_sim_apply_of_a_kind_the_model_lacks_is_outside_the_subset_not_refused(shop) -> None:
    configmap = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\n"
    out = _kubectl(shop, "apply -f -", configmap)
    assert out.code == 1 and "does not model ConfigMap objects" in out.stderr
    assert "no matches for kind" not in out.stderr
    crd = "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: x}\n" \
          "spec: {}\n"  # on Flannel no Calico CRD is installed: the API server says so
    assert 'no matches for kind "GlobalNetworkPolicy"' in _kubectl(shop, "apply -f -", crd).stderr
    assert _kubectl(shop, "apply -f -", "a: [\n").stderr.startswith("error: STDIN: ")


@pytest.mark.parametrize(("selector", "apps"), [
    ("app=api", {"api"}), ("app!=api", {"db"}), ("app in (api,db)", {"api", "db"}),
    ("tier notin (api)", {"db"}), ("app,!nope", {"api", "db"}), ("!app", set())])
def test_sim_get_with_a_label_selector(shop: Lab, selector: str, apps: set[str]) -> None:
    out = SimKubectl(shop, shop.impl).run(["get", "pods", "-n", "shop-api", "-l", selector])
    assert {line.split("-")[0] for line in out.stdout.splitlines()[1:]} == apps


def test_sim_kubectl_without_a_cluster_says_how_to_make_one() -> None:
    out = _kubectl(Lab("flannel", backend="sim"), "get nodes")
    assert out.code == 1 and "does not exist" in out.stderr and "lab.up()" in out.stderr


def test_kind_magic_in_a_shell_streams_and_refuses_in_one_line(shell, kind_lab) -> None:
    from IPython.utils.capture import capture_output

    lab, log, _ = kind_lab
    with capture_output() as cap:
        result = shell.run_cell("%kubectl get nodes")
    assert result.success and cap.stdout == "first line\nlast line\n"
    with capture_output() as cap:
        result = shell.run_cell("%kubectl get pods --context prod")
    assert not result.success and "Traceback" not in cap.stdout + cap.stderr
    assert "refusing `kubectl get pods --context prod`" in cap.stderr
    assert [c["argv"] for c in _calls(log)] == [["get", "nodes", "--context", "kind-cni-lab"]]


def test_sim_curl_by_name_needs_dns(shop: Lab) -> None:

    calico.RECIPE.migrate(shop, restart=False)
    calico.RECIPE.restart_workloads(shop)
    policies = Path(__file__).resolve().parents[2] / "environments" / "policies"
    shop.apply(policies / "calico-traps")  # a default deny with no DNS exception
    db_ip = shop.impl.state().services["shop-api/db"].cluster_ip
    frontend = "exec -n shop-web deploy/frontend -c probe -- curl -sS -m 3 "
    by_name = _kubectl(shop, frontend + "db.shop-api:5432/hostname")
    assert by_name.code == 28 and "Resolving timed out after 3000 milliseconds" in by_name.stderr
    assert _kubectl(shop, "exec -n shop-web deploy/frontend -c probe -- curl -sS "
                    "db.shop-api:5432/").code == 6
    shop.apply(policies / "calico")  # the DNS exception back: the name resolves
    by_ip = _kubectl(shop, frontend + f"{db_ip}:5432/hostname")
    assert _kubectl(shop, frontend + "db.shop-api:5432/hostname").code == by_ip.code
    assert "Resolving" not in _kubectl(shop, frontend + "db.shop-api:5432/hostname").stderr


DESCRIBE = "kubectl_describe_node_kind_worker_notready_TRUNCATED_kind_issue3603.txt"


def test_describe_tables_match_real_kubectl_describe() -> None:
    lines = (SAMPLES / DESCRIBE).read_text().splitlines()
    start = lines.index("Conditions:") + 1
    header, _, row = (_cells(line) for line in lines[start:start + 3])
    assert fmt.describe_table(header, [row]) == lines[start:start + 3]


def test_sim_describe_node_conditions(shop: Lab) -> None:
    text = _kubectl(shop, "describe node cni-lab-worker").stdout.splitlines()
    start = text.index("Conditions:") + 1
    rows = [_cells(line) for line in text[start + 2:start + 6]]
    assert [r[0] for r in rows] == ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
    assert rows[0][4:] == ["KubeletHasSufficientMemory", "kubelet has sufficient memory available"]
    assert rows[3][1] == "True" and rows[3][2] == "Sun, 15 Jun 2025 15:13:01 +0000"  # now


def test_typed_exercise_outcomes_are_recorded_on_the_lab(shop: Lab) -> None:
    check_typed(shop, "try it", None, WIDE_PODS)
    assert shop.exercises["try it"] is None
    with pytest.raises(CheckFailed):
        check_typed(shop, "try it", "kubectl get pods", WIDE_PODS)
    assert shop.exercises["try it"] is False
    check_typed(shop, "try it", "kubectl get pods -A -o wide", WIDE_PODS)
    assert shop.exercises["try it"] is True


def test_sim_hubble_observe_prints_the_flows_of_what_curl_did() -> None:
    from tests.unit.test_hubble_cli import _sim_cilium_lab

    lab = _sim_cilium_lab()
    out: list[str] = []
    err: list[str] = []
    run("kubectl", "exec -n shop-web deploy/frontend -c probe -- curl -s "
        "api.shop-api:8080/hostname", lab=lab, out=out.append, err=err.append)
    assert run("hubble", "observe --last 3", lab=lab, out=out.append, err=err.append) == 0
    lines = out[-1].splitlines()
    assert len(lines) == 3 and all("FORWARDED" in line for line in lines)
    assert any("shop-web/frontend" in line and "shop-api/api" in line for line in lines)
    assert run("hubble", "observe --from-pod x", lab=lab, out=out.append, err=err.append) == 1
    assert "`--from-pod` is not modelled" in err[-2]


def test_sim_hubble_observe_needs_cilium(shop: Lab) -> None:
    err: list[str] = []
    assert run("hubble", "observe", lab=shop, out=print, err=err.append) == 1
    assert "Hubble needs Cilium" in err[0]
