"""Fuzzing the inputs a user hands labkit: only a LabkitError (or success) may come out.

Hypothesis mutates valid seeds (the course's own manifests, a traffic file, a saved
simulated cluster, a kubeconfig) two ways: edits to the text (YAML syntax, anchors,
binary bytes, huge numbers ...) and replacement of one value of the parsed document
by an arbitrary JSON-like value. Each input then goes all the way through: manifests
are parsed and judged by the engine for every CNI, traffic is checked and evaluated,
a state file is loaded and the cluster shown, a kubeconfig is judged by the guard
and a client built from it. Any other exception fails the test, and so does any
single input that takes more than 2 s (hypothesis' deadline).

Derandomized, so CI is repeatable; ``LABKIT_FUZZ_EXAMPLES`` raises the count for a
longer hunt (``LABKIT_FUZZ_EXAMPLES=5000 pytest tests/unit/test_fuzz_inputs.py``).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labkit.backends.kind.guard import check_context, load_kubeconfig
from labkit.backends.sim import store
from labkit.backends.sim.backend import CLUSTERS
from labkit.environments import environments_dir, render
from labkit.errors import LabkitError
from labkit.lab import Lab
from labkit.matrix import ConnectivityMatrix
from labkit.policy import Engine, build_state
from labkit.policy.cli import check_endpoints, read_traffic
from labkit.policy.engine import CNIS
from labkit.policy.kinds import parse_documents
from labkit.policy.parse import documents_of, read_documents
from labkit.tools.k8s import KubeClient

FUZZ = settings(max_examples=int(os.environ.get("LABKIT_FUZZ_EXAMPLES", "60")),
                deadline=timedelta(seconds=2), derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])

ENV = environments_dir()
SHOP = "\n---\n".join(render(p.read_text(), str(p))
                      for p in sorted((ENV / "workloads" / "shop").glob("*.yaml")))
POLICY_SEEDS = [p.read_text() for p in sorted((ENV / "policies").rglob("*.yaml"))] + [
    (ENV / "examples" / "policy-check" / "cluster.yaml").read_text()]
TRAFFIC_SEED = (ENV / "examples" / "policy-check" / "traffic.yaml").read_text()
KUBECONFIG_SEED = yaml.safe_dump({
    "apiVersion": "v1", "kind": "Config", "current-context": "kind-cni-lab",
    "contexts": [{"name": "kind-cni-lab", "context": {"cluster": "kind-cni-lab",
                                                      "user": "kind-cni-lab"}}],
    "clusters": [{"name": "kind-cni-lab", "cluster": {"server": "https://127.0.0.1:40123",
                                                      "certificate-authority-data": "AAAA"}}],
    "users": [{"name": "kind-cni-lab", "user": {"token": "abc"}}]})

#: Pieces that break YAML, JSON and the fields labkit reads, spliced into valid text.
PIECES = st.sampled_from([
    "&a ", "*a", "<<: *a\n", "[", "]", "{", "}", ": ", "- ", "\n", "  ", "\t", "!!python/tuple ",
    "!!binary ", "\x00", "\ufeff", "\udcff", "é", "null", "~", "1e309", ".nan", "-.inf", "-1",
    "0", "70000", "'", '"', "\\", "#", "|", ">", "---\n", "? ", "%YAML 1.1\n", "0x1F",
    "2020-01-01", "yes", "[" * 60, "{a: " * 30, "a" * 300, "::", "/", "*", "(", ")", "&&", "||",
    "!", "has(", "in {", "Infinity", "NaN", '"\\u0000"', "9" * 40,
]) | st.text(max_size=6)

JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats()
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)


@st.composite
def text_mutation(draw: st.DrawFn, seed: str) -> str:
    text = seed
    for _ in range(draw(st.integers(1, 6))):
        i = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(("insert", "delete", "replace")))
        piece = draw(PIECES)
        if op == "insert":
            text = text[:i] + piece + text[i:]
        elif op == "delete":
            text = text[:i] + text[i + draw(st.integers(1, 20)):]
        else:
            text = text[:i] + piece + text[i + len(piece):]
    return text


def _paths(value: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [here]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*here, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*here, i))
    return out


@st.composite
def value_mutation(draw: st.DrawFn, seed: Any) -> Any:
    """``seed`` with one value (anywhere) replaced by an arbitrary JSON-like value."""
    doc = copy.deepcopy(seed)
    path = draw(st.sampled_from(_paths(doc)))
    new = draw(JSONISH)
    if not path:
        return new
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = new
    return doc


def documents(seed_text: str) -> list[Any]:
    return [d for d in yaml.safe_load_all(seed_text) if d is not None]


def as_text(docs: Any, how: str) -> str:
    if how == "json":
        return json.dumps(docs)
    return yaml.safe_dump_all(docs if isinstance(docs, list) else [docs])


def mutated_file(seed_text: str, *, multi: bool = True) -> st.SearchStrategy[str | bytes]:
    """Text edits, value replacements, or bytes (a binary or Latin-1 file)."""
    parsed = documents(seed_text) if multi else yaml.safe_load(seed_text)
    structural = st.builds(as_text, value_mutation(parsed), st.sampled_from(("yaml", "json")))
    raw = st.builds(lambda t, b: t.encode("utf-8", "surrogatepass")[:len(b)] + b,
                    text_mutation(seed_text), st.binary(max_size=8))
    return st.one_of(text_mutation(seed_text), structural, raw)


def only_labkit_errors(action: Callable[[], Any]) -> None:
    try:
        action()
    except LabkitError as exc:
        assert exc.one_line() and "\n" not in exc.one_line()


def write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, str):
        content = content.encode("utf-8", "surrogatepass")
    path.write_bytes(content)
    return path


# -- manifests -----------------------------------------------------------------------------
@FUZZ
@given(st.data(), st.sampled_from(CNIS))
def test_manifests(tmp_path: Path, data: st.DataObject, cni: str) -> None:
    seed = data.draw(st.sampled_from(POLICY_SEEDS))
    content = data.draw(mutated_file(seed))
    path = write(tmp_path / "m.yaml", content)

    def judge() -> None:
        objects = parse_documents([*documents_of(SHOP, "shop"), *read_documents([path])])
        engine = Engine(build_state(objects), cni)
        pods = sorted(engine.state.pods)
        ConnectivityMatrix.expected(engine, pods, pods, [(8080, "TCP"), (53, "UDP")]).to_json()

    only_labkit_errors(judge)


# -- traffic files -------------------------------------------------------------------------
@FUZZ
@given(st.data())
def test_traffic_files(tmp_path: Path, data: st.DataObject) -> None:
    manifests = (ENV / "examples" / "policy-check" / "cluster.yaml").read_text()
    path = write(tmp_path / "t.yaml", data.draw(mutated_file(TRAFFIC_SEED, multi=False)))

    def judge() -> None:
        traffic = read_traffic(str(path))
        engine = Engine(build_state(parse_documents(documents_of(manifests, "m"))), "cilium")
        check_endpoints(traffic, engine, str(path))
        for verdict in engine.evaluate_all(traffic):
            json.dumps(verdict.as_dict(), allow_nan=False)

    only_labkit_errors(judge)


# -- simulated cluster state ---------------------------------------------------------------
@pytest.fixture(scope="module")
def state_seed(tmp_path_factory: pytest.TempPathFactory) -> str:
    home = tmp_path_factory.mktemp("seed-home")
    before = os.environ.get("LABKIT_HOME")
    os.environ["LABKIT_HOME"] = str(home)
    try:
        CLUSTERS.clear()
        lab = Lab("flannel", backend="sim")
        lab.up()
        lab.install_cni("calico")
        lab.deploy_shop()
        lab.apply(ENV / "policies" / "calico")
        return store.path_for("cni-lab").read_text()
    finally:
        CLUSTERS.clear()
        if before is None:
            os.environ.pop("LABKIT_HOME", None)
        else:
            os.environ["LABKIT_HOME"] = before


@FUZZ
@given(st.data())
def test_sim_state_files(state_seed: str, data: st.DataObject) -> None:
    os.environ["LABKIT_PROGRESS"] = "off"
    content = data.draw(mutated_file(state_seed, multi=False))
    CLUSTERS.clear()
    store.folder().mkdir(parents=True, exist_ok=True)
    write(store.path_for("cni-lab"), content)

    def use() -> None:
        lab = Lab("flannel", backend="sim")
        lab.status().to_text()
        if lab.cni is not None and lab.workload_pods():
            lab.matrix().to_json()

    only_labkit_errors(use)
    Lab("flannel", backend="sim").down()  # always possible, whatever the file holds
    assert not store.path_for("cni-lab").exists()


# -- kubeconfigs ---------------------------------------------------------------------------
@FUZZ
@given(st.data())
def test_kubeconfigs(tmp_path: Path, data: st.DataObject) -> None:
    path = write(tmp_path / "config", data.draw(mutated_file(KUBECONFIG_SEED, multi=False)))

    def judge() -> None:
        ctx = check_context(load_kubeconfig([path]), "cni-lab")
        client = KubeClient(ctx.name, ctx.client_config)
        assert client.api_client.configuration.host == ctx.server  # what was judged is used

    only_labkit_errors(judge)
