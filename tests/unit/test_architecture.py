"""The shape of labkit, checked: what issue 7 asks of the package layout.

- no import circle inside labkit/ (runtime imports; ``if TYPE_CHECKING:`` blocks never run);
- no ``# type: ignore[attr-defined]`` (nobody reaches past the Backend interface);
- no dispatch on a backend's name outside labkit/backends/;
- imports at module level, except the optional heavy dependencies (each marked ``# lazy:``);
- notebooks import from ``labkit`` only (its curated ``__all__``);
- the CNI table (labkit/cnis.py) is what the engine and the backends read.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
from kindfakes import FakeKube, FakeRunner  # tests/unit is on sys.path (rootdir import mode)

import labkit
from labkit import cnis
from labkit.backends.kind.backend import KindBackend
from labkit.environments import Stage
from labkit.lab import SYSTEM_NAMESPACES
from labkit.policy import engine

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "labkit"
#: Imported inside functions on purpose: slow to import and needed on one path only.
LAZY_OK = {"kubernetes", "papermill", "IPython", "nbconvert", "pandas", "networkx",
           "matplotlib", "ipywidgets", "nbformat", "labkit.course.kernel"}  # the last two
# load jsonschema and jupyter_client, which every labkit command would pay for (the CLI imports
# the runner)


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in {"TYPE_CHECKING",
                                                                   "typing.TYPE_CHECKING"}:
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skip


def import_graph() -> dict[str, set[str]]:
    """Module -> the labkit modules it imports when it runs."""
    mods = modules()

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        skip = _type_checking_nodes(tree)
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base
                         for a in node.names]
            else:
                continue
            for name in names:
                target = resolve(name) if name.startswith("labkit") else None
                if target and target != mod:
                    graph[mod].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import circle as a path (first == last), or [] when there is none."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return []

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) == []


def test_no_import_circle_inside_labkit() -> None:
    graph = import_graph()
    assert graph["labkit.lab"], "the graph must see imports"
    assert find_cycle(graph) == []


def test_layers_point_one_way() -> None:
    """The pure core and the backends never import the layers above them."""
    graph = import_graph()
    above = ("labkit.lab", "labkit.labs", "labkit.cni", "labkit.addons", "labkit.course",
             "labkit.cli")
    for mod, targets in graph.items():
        if mod.startswith(("labkit.backends", "labkit.policy", "labkit.model", "labkit.cnis",
                           "labkit.capture", "labkit.matrix", "labkit.errors")):
            bad = sorted(t for t in targets if any(t == a or t.startswith(a + ".") for a in above)
                         # the kind backend reads the recorded node-image pin (known exception)
                         and not (mod == "labkit.backends.kind.backend"
                                  and t == "labkit.course.images.pins"))
            assert bad == [], f"{mod} imports a layer above it: {bad}"


def _sources() -> list[tuple[Path, str]]:
    return [(p, p.read_text(encoding="utf-8")) for p in sorted(PACKAGE.rglob("*.py"))]


def test_no_attr_defined_ignores() -> None:
    hits = [f"{p}:{i}" for p, text in _sources()
            for i, line in enumerate(text.splitlines(), 1) if "type: ignore[attr-defined]" in line]
    assert hits == []


BACKEND_NAME_DISPATCH = re.compile(
    r"""(backend|impl|self|kb|b)\.name\s*[!=]=\s*["'](sim|kind)["']"""  # backend.name == "sim"
    r"""|getattr\([^)]*f["'][^"']*\{[^}]*\bname\}"""  # getattr(self, f"install_{backend.name}")
    r"""|lab\.backend\s*[!=]=\s*["'](sim|kind)["']""")


@pytest.mark.parametrize("line", ['if backend.name == "sim":',
                                  'method = getattr(self, f"install_{backend.name}", None)',
                                  "if lab.backend != 'kind':"])
def test_the_dispatch_pattern_catches(line: str) -> None:
    assert BACKEND_NAME_DISPATCH.search(line)


def test_no_dispatch_on_a_backend_name_outside_backends() -> None:
    hits = [f"{p}:{i}: {line.strip()}" for p, text in _sources()
            if "backends" not in p.relative_to(PACKAGE).parts
            for i, line in enumerate(text.splitlines(), 1) if BACKEND_NAME_DISPATCH.search(line)]
    assert hits == []


def test_function_level_imports_only_for_optional_heavy_dependencies() -> None:
    found = []
    for path, text in _sources():
        lines = text.splitlines()
        tree = ast.parse(text)
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.Import):
                    top = node.names[0].name.split(".")[0]
                elif isinstance(node, ast.ImportFrom):
                    top = (node.module or "").split(".")[0]
                else:
                    continue
                module = node.module if isinstance(node, ast.ImportFrom) else top
                if (top not in LAZY_OK and module not in LAZY_OK) \
                        or "# lazy:" not in lines[node.lineno - 1]:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    assert found == []


def test_notebooks_import_only_from_labkit() -> None:
    from IPython.core.inputtransformer2 import TransformerManager

    python = TransformerManager().transform_cell  # %magics and !commands, as IPython runs them
    seen = set()
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in json.loads(nb.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] != "code":
                continue
            source = python("".join(cell["source"]))
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("labkit"):
                    assert node.module == "labkit", f"{nb.name}: from {node.module} import"
                    seen.update(a.name for a in node.names)
                elif isinstance(node, ast.Import):
                    assert not any(a.name.startswith("labkit") for a in node.names), nb.name
    assert seen and seen <= set(labkit.__all__)


# -- the CNI table ----------------------------------------------------------------------------

def test_the_cilium_row_has_the_ground_truth_facts() -> None:
    cilium = cnis.CNIS["cilium"]
    assert cnis.Workload("kube-system", "cilium") in cilium.agents
    assert cnis.Workload("kube-system", "cilium-envoy") in cilium.daemonsets
    assert cnis.Workload("kube-system", "cilium-operator") in cilium.deployments
    assert cilium.datapath.vxlan_port == 8472 and cilium.datapath.wireguard_port == 51871
    assert cilium.crd_groups == ("cilium.io",) and cilium.crd_apis == ("cilium.io/v2",)
    assert cilium.enforces == {"NetworkPolicy", "CiliumNetworkPolicy",
                               "CiliumClusterwideNetworkPolicy"} and cilium.l7


def test_calico_api_server_runs_in_calico_system() -> None:
    calico = cnis.CNIS["calico"]
    assert cnis.Workload("calico-system", "calico-apiserver") in calico.deployments
    assert "calico-apiserver" not in calico.namespaces
    # clusters installed by older operators still count it as a system namespace
    assert "calico-apiserver" in SYSTEM_NAMESPACES


def test_the_engine_and_the_backends_read_the_table() -> None:
    assert tuple(cnis.CNIS) == engine.CNIS
    assert {name: p.enforces for name, p in cnis.CNIS.items()} == engine.ENFORCES
    assert engine.served_kinds("cilium") - engine.served_kinds("flannel") == {
        ("cilium.io/v2", "CiliumNetworkPolicy"), ("cilium.io/v2", "CiliumClusterwideNetworkPolicy")}
    probed = [(ds.namespace, ds.name, cni) for ds, cni in cnis.agents()]
    assert probed[-1] == ("kube-system", "kindnet", "kindnet")  # kind's own CNI comes last
    assert ("kube-system", "cilium", "cilium") in probed


def test_a_new_row_is_all_the_kind_backend_needs_to_recognise_a_cni(
        monkeypatch: pytest.MonkeyPatch) -> None:
    kube = FakeKube()
    config = {"current-context": "kind-cni-lab",
              "contexts": [{"name": "kind-cni-lab", "context": {"cluster": "kind-cni-lab"}}],
              "clusters": [{"name": "kind-cni-lab", "cluster": {"server": "https://127.0.0.1:3"}}]}
    backend = KindBackend(Stage.load("flannel"), run=FakeRunner(["cni-lab"]),
                          kube_factory=lambda ctx: kube, kubeconfig_loader=lambda: config)
    kube.add("DaemonSet", {"metadata": {"name": "new-agent", "namespace": "new-system"}})
    assert backend.installed_cni() is None
    row = cnis.CniProfile("newcni", agents=(cnis.Workload("new-system", "new-agent"),))
    monkeypatch.setitem(cnis.CNIS, "newcni", row)
    assert backend.installed_cni() == "newcni"
