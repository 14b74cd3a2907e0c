"""The bad-input corpus (issue 9): every input that once ended in a traceback, a hang or a
silent wrong answer, with the exact one-line error it must get now.

Each case builds its input under a temporary folder (``{tmp}`` in the expected text) and
runs it through the entry point a learner uses: the ``labkit`` CLI (its one stderr line),
the ``Lab`` API or the reader behind them (the error's one line). A case passes only if
exactly that LabkitError comes out, within a few seconds.
"""

from __future__ import annotations

import json
import os
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from labkit.backends.kind.guard import load_kubeconfig
from labkit.backends.sim.backend import CLUSTERS
from labkit.cli import main
from labkit.course.images.bundle import archive_refs
from labkit.errors import LabkitError
from labkit.lab import Lab
from labkit.matrix import check_matrix_size

NS = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\n"
POD = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop, labels: {app: p}}\n"


def netpol(selector: str) -> str:
    return ("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
            f"metadata: {{name: np, namespace: shop}}\nspec:\n  podSelector: {selector}\n")


def cilium_path(path: str) -> str:
    return ("apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n"
            "metadata: {name: l7, namespace: shop}\nspec:\n  endpointSelector: {}\n"
            "  ingress:\n  - toPorts:\n    - ports: [{port: '80', protocol: TCP}]\n"
            f"      rules:\n        http: [{{path: {json.dumps(path)}}}]\n")


def calico(selector: str) -> str:
    return ("apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\n"
            "metadata: {name: c, namespace: shop}\n"
            f"spec:\n  selector: {json.dumps(selector)}\n  types: [Ingress]\n")


ALIASES = "x0: &x0 [a, a]\n" + "".join(
    f"x{i}: &x{i} [*x{i - 1}, *x{i - 1}]\n" for i in range(1, 10))


@dataclass(frozen=True)
class Case:
    id: str
    run: Callable[[Path], Any]
    error: str


def cli(*argv: str) -> Callable[[Path], Any]:
    """Run the CLI with ``{tmp}`` in argv; raise LabkitError with its single stderr line."""
    def run(tmp: Path) -> None:
        import contextlib
        import io

        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main([a.format(tmp=tmp) for a in argv])
        text = err.getvalue()
        assert code == 1 and text.count("\n") == 1, (code, text)  # one line, no traceback
        raise LabkitError(text.rstrip("\n").split(": error: ", 1)[1])
    return run


def write(name: str, content: str | bytes, then: Callable[[Path], Any]) -> Callable[[Path], Any]:
    def run(tmp: Path) -> Any:
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return then(tmp)
    return run


#: The hint of every label-syntax refusal.
LABEL_HINT = ("(hint: label keys are [prefix/]name, values at most 63 characters of letters, "
              "digits, '-', '_' and '.', starting and ending with a letter or digit)")
#: The API server's rule for label values, as it words it.
LABEL_RULE = ("a valid label must be an empty string or consist of alphanumeric characters, "
              "'-', '_' or '.', and must start and end with an alphanumeric character")


def in_values(values: str) -> Callable[[Path], Any]:
    """A NetworkPolicy whose podSelector has ``app In <values>``, through policy matrix."""
    return write("m.yaml", NS + netpol("{matchExpressions: [{key: app, operator: In, "
                                       f"values: {values}}}]}}"), matrix_of("m.yaml"))


def matrix_of(name: str) -> Callable[[Path], Any]:
    return cli("policy", "matrix", "{tmp}/" + name)


def check(manifest: str, traffic: str) -> Callable[[Path], Any]:
    return cli("policy", "check", "{tmp}/" + manifest, "--traffic", "{tmp}/" + traffic)


def traffic(text: str | bytes) -> Callable[[Path], Any]:
    """The traffic file ``text`` checked against one namespace with one pod, shop/p."""
    return with_files({"m.yaml": NS + POD, "t.yaml": text}, check("m.yaml", "t.yaml"))


def with_files(files: dict[str, str | bytes], then: Callable[[Path], Any]
               ) -> Callable[[Path], Any]:
    run = then
    for name, content in files.items():
        run = write(name, content, run)
    return run


def special(make: Callable[[Path], Any], then: Callable[[Path], Any]) -> Callable[[Path], Any]:
    def run(tmp: Path) -> Any:
        make(tmp)
        return then(tmp)
    return run


def kubeconfig(content: str | bytes) -> Callable[[Path], Any]:
    return write("kubeconfig", content, lambda tmp: load_kubeconfig([tmp / "kubeconfig"]))


def image_tar(manifest: bytes) -> Callable[[Path], Any]:
    def run(tmp: Path) -> Any:
        import io

        with tarfile.open(tmp / "images.tar", "w") as tar:
            info = tarfile.TarInfo("manifest.json")
            info.size = len(manifest)
            tar.addfile(info, io.BytesIO(manifest))
        return archive_refs(tmp / "images.tar")
    return run


def sim_lab(then: Callable[[Lab], Any], cni: str = "flannel") -> Callable[[Path], Any]:
    def run(tmp: Path) -> Any:
        lab = Lab("flannel", backend="sim")
        lab.up()
        lab.install_cni(cni)
        lab.apply(NS + POD)
        return then(lab)
    return run


def sim_state(content: str | bytes) -> Callable[[Path], Any]:
    def run(tmp: Path) -> Any:
        from labkit.backends.sim import store

        Lab("flannel", backend="sim").up()
        CLUSTERS.clear()
        path = store.path_for("cni-lab")
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return Lab("flannel", backend="sim").status()
    return run


def _touch(path: Path) -> Path:
    path.touch()
    return path


def _stage_named(name: str) -> Callable[[Path], None]:
    def make(tmp: Path) -> None:
        import shutil

        from labkit.environments import environments_dir

        shutil.copytree(environments_dir(), tmp / "envs")
        stage = tmp / "envs" / "stages" / "evil"
        stage.mkdir()
        (stage / "kind-config.yaml").write_text(
            f"kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nname: {json.dumps(name)}\n")
        os.environ["LABKIT_ENVIRONMENTS"] = str(tmp / "envs")
    return make


SIM_STATE = "{os.environ[LABKIT_HOME]}/sim/cni-lab.json"
HINT_SIM = ("(hint: start over: `labkit down flannel --backend sim` (or delete "
            f"{SIM_STATE}), then lab.up())")

CASES = [
    # -- manifests: encodings, file types, sizes -------------------------------------------
    Case("latin-1 manifest", write("m.yaml", "kind: caf\xe9\n".encode("latin-1"),
                                   matrix_of("m.yaml")),
         "{tmp}/m.yaml: the manifest is not UTF-8 text (byte 0xe9 at offset 9) (hint: save "
         "it as UTF-8; binary files cannot be read as YAML or JSON)"),
    Case("binary manifest", write("m.yaml", b"\x7fELF\x02\x01\x01\x00\xff", matrix_of("m.yaml")),
         "{tmp}/m.yaml: the manifest is not UTF-8 text (byte 0xff at offset 8) (hint: save "
         "it as UTF-8; binary files cannot be read as YAML or JSON)"),
    Case("dangling symlink in a manifest folder",
         special(lambda t: (t / "d").mkdir() or os.symlink(t / "gone.yaml", t / "d/x.yaml"),
                 matrix_of("d")),
         "{tmp}/d/x.yaml: the manifest does not exist (a symlink to '{tmp}/gone.yaml', which "
         "is missing) (hint: check the path; remove or fix the dangling symlink)"),
    Case("a folder named *.yaml in a manifest folder",
         special(lambda t: (t / "d" / "sub.yaml").mkdir(parents=True), matrix_of("d")),
         "{tmp}/d/sub.yaml: the manifest is a directory, not a regular file (hint: name a "
         "regular file)"),
    Case("/dev/zero as a manifest", cli("policy", "matrix", "/dev/zero"),
         "/dev/zero: the manifest is a character device, not a regular file (hint: name a "
         "regular file)"),
    Case("a FIFO as a manifest", special(lambda t: os.mkfifo(t / "fifo.yaml"),
                                         matrix_of("fifo.yaml")),
         "{tmp}/fifo.yaml: the manifest is a FIFO (named pipe), not a regular file (hint: "
         "name a regular file)"),
    Case("a huge manifest", special(lambda t: os.truncate(_touch(t / "big.yaml"), 50 << 20),
                                    matrix_of("big.yaml")),
         "{tmp}/big.yaml: the manifest is 50.0 MiB; labkit reads at most 16.0 MiB (hint: "
         "split it into smaller files, or check that it is the file you meant)"),
    # -- YAML that expands or nests without end ---------------------------------------------
    Case("nine levels of YAML aliases in matchExpressions values",
         write("m.yaml", ALIASES, matrix_of("m.yaml")),
         "{tmp}/m.yaml: line 1, column 5: YAML anchors and aliases (&name, *name, <<: *name) "
         "are not accepted (hint: write the repeated part out in full)"),
    Case("aliases in a traffic file's headers",
         traffic("- {from: shop/p, to: shop/p, port: 80, http: {headers: &h {a: b}}}\n"
                 "- {from: shop/p, to: shop/p, port: 80, http: {headers: *h}}\n"),
         "{tmp}/t.yaml: line 1, column 56: YAML anchors and aliases (&name, *name, <<: *name) "
         "are not accepted (hint: write the repeated part out in full)"),
    Case("deeply nested flow YAML", write("m.yaml", "[" * 5000 + "]" * 5000,
                                          matrix_of("m.yaml")),
         "{tmp}/m.yaml: line 1, column 1001: invalid YAML: exceeded maximum nesting depth "
         "(hint: check indentation and quoting near that line)"),
    Case("deeply nested block YAML",
         write("m.yaml", "".join(f"{' ' * i}k{i}:\n" for i in range(300)), matrix_of("m.yaml")),
         "{tmp}/m.yaml: line 101, column 101: nested more than 100 levels deep (hint: "
         "Kubernetes objects nest far less; check the file)"),
    # -- strings where strings are meant, and the API server's label rules ------------------
    Case("values: [null, 1, true]", in_values("[null, 1, true]"),
         "{tmp}/m.yaml: NetworkPolicy shop/np: spec.podSelector.matchExpressions[0].values[0]: "
         "expected a string, got nothing (hint: quote values such as \"true\", \"1\" or "
         "\"null\")"),
    Case("label value with a space and '!'",
         write("m.yaml", NS + POD.replace("{app: p}", "{app: 'hello world!'}"),
               matrix_of("m.yaml")),
         "{tmp}/m.yaml: Pod shop/p: metadata.labels: Invalid value: 'hello world!': "
         + LABEL_RULE + " " + LABEL_HINT),
    Case("64-character label value",
         write("m.yaml", NS + POD.replace("{app: p}", "{app: " + "a" * 64 + "}"),
               matrix_of("m.yaml")),
         "{tmp}/m.yaml: Pod shop/p: metadata.labels: Invalid value: '" + "a" * 64 + "': must "
         "be no more than 63 characters " + LABEL_HINT),
    Case("label key 'bad key!'",
         write("m.yaml", NS + netpol("{matchLabels: {'bad key!': x}}"), matrix_of("m.yaml")),
         "{tmp}/m.yaml: NetworkPolicy shop/np: spec.podSelector.matchLabels: Invalid value: "
         "'bad key!': name part must consist of alphanumeric characters, '-', '_' or '.', and "
         "must start and end with an alphanumeric character " + LABEL_HINT),
    Case("an In value the API server refuses", in_values("['a b']"),
         "{tmp}/m.yaml: NetworkPolicy shop/np: spec.podSelector.matchExpressions[0].values[0]: "
         "Invalid value: 'a b': " + LABEL_RULE + " " + LABEL_HINT),
    # -- patterns that hang a backtracking engine -------------------------------------------
    Case("Cilium path '/a++' (RE2 refuses possessive quantifiers)",
         write("m.yaml", NS + cilium_path("/a++"), matrix_of("m.yaml")),
         "{tmp}/m.yaml: CiliumNetworkPolicy shop/l7: spec.ingress[0].toPorts[0].rules.http[0]"
         ".path: invalid regular expression '/a++': bad repetition operator: ++ (hint: Envoy "
         "matches with RE2 (no look-around, back-references or possessive quantifiers); the "
         "value must match the whole field, e.g. \"/v1/.*\" or \"GET|HEAD\")"),
    Case("Calico selector with 300 nested parentheses",
         write("m.yaml", NS + calico("(" * 300 + "app == 'x'" + ")" * 300),
               cli("policy", "matrix", "{tmp}/m.yaml", "--cni", "calico")),
         "{tmp}/m.yaml: NetworkPolicy shop/c: spec.selector: invalid selector \""
         + "(" * 79 + "... (612 chars): parentheses nest more than 128 levels deep (labkit's "
         "limit; flatten the expression) (at character 129) (hint: Calico selector syntax: "
         "k == 'v', k != 'v', has(k), k in {'a', 'b'}, k not in {'a'}, k contains|starts "
         "with|ends with 's', all(), combined with !, &&, || and ( ); quote values with ' or "
         "\")"),
    # -- traffic files ---------------------------------------------------------------------
    Case("a traffic item naming an unknown pod",
         traffic("- {from: shop/p, to: shop/p, port: 80}\n"
                 "- {from: shop/p, to: shop/nope, port: 80}\n"),
         "{tmp}/t.yaml: traffic: [1].to: no pod shop/nope in the manifests (hint: known pods: "
         "shop/p)"),
    Case("a binary traffic file",
         traffic(b"\xfe\xff\x00-"),
         "{tmp}/t.yaml: the traffic file is not UTF-8 text (byte 0xfe at offset 0) (hint: save "
         "it as UTF-8; binary files cannot be read as YAML or JSON)"),
    Case("header values that are not strings",
         traffic("- {from: shop/p, to: shop/p, port: 80, http: {headers: {x: [1]}}}\n"),
         "{tmp}/t.yaml: traffic: [0].http.headers.'x': header values must be strings (hint: "
         "quote values such as \"true\" or \"1\")"),
    # -- kubeconfigs ------------------------------------------------------------------------
    Case("binary kubeconfig", kubeconfig(b"\x00\xff\xfe"),
         "cannot read kubeconfig {tmp}/kubeconfig: the kubeconfig is not UTF-8 text (byte 0xff "
         "at offset 1) (hint: fix or remove {tmp}/kubeconfig (or drop it from KUBECONFIG))"),
    Case("kubeconfig that is a list", kubeconfig("- a\n- b\n"),
         "kubeconfig {tmp}/kubeconfig is list, not a mapping (hint: fix or remove "
         "{tmp}/kubeconfig (or drop it from KUBECONFIG))"),
    Case("kubeconfig with invalid YAML", kubeconfig("clusters: [\n"),
         "cannot read kubeconfig {tmp}/kubeconfig: line 2, column 1: invalid YAML: did not "
         "find expected node content (hint: fix or remove {tmp}/kubeconfig (or drop it from "
         "KUBECONFIG))"),
    Case("kubeconfig that is a directory",
         special(lambda t: (t / "kubeconfig").mkdir(),
                 lambda t: load_kubeconfig([t / "kubeconfig"])),
         "cannot read kubeconfig {tmp}/kubeconfig: the kubeconfig is a directory, not a "
         "regular file (hint: fix or remove {tmp}/kubeconfig (or drop it from KUBECONFIG))"),
    Case("kubeconfig whose contexts is a string", kubeconfig("contexts: abc\n"),
         "kubeconfig {tmp}/kubeconfig: contexts must be a list of mappings (hint: fix or "
         "remove {tmp}/kubeconfig (or drop it from KUBECONFIG))"),
    # -- simulated cluster state ------------------------------------------------------------
    Case("state nested 100k deep", sim_state("[" * 100_000 + "]" * 100_000),
         "cannot read the simulated cluster 'cni-lab': " + SIM_STATE + ": the state file nests "
         "too deeply to read " + HINT_SIM),
    Case("state with Infinity", sim_state('{"format": "labkit-sim-cluster/v1", "x": Infinity}'),
         "cannot read the simulated cluster 'cni-lab': " + SIM_STATE + ": the state file is "
         "not valid JSON: Infinity is not JSON " + HINT_SIM),
    Case("state with a wrong type", sim_state(
        '{"format": "labkit-sim-cluster/v1", "stage": "flannel", "cluster": "cni-lab", '
        '"generation": "7"}'),
         "cannot read the simulated cluster 'cni-lab' from " + SIM_STATE + ": ValueError: "
         "generation: expected int, got str " + HINT_SIM),
    # -- image archives ---------------------------------------------------------------------
    Case("manifest.json that is ['a']", image_tar(b'["a"]'),
         "{tmp}/images.tar: its manifest.json is not the list of images `docker save` writes "
         "(entries with RepoTags) (hint: make the bundle with `labkit images save --output "
         "FILE`)"),
    Case("manifest.json 100k deep", image_tar(b"[" * 100_000 + b"]" * 100_000),
         "{tmp}/images.tar is not an image archive written by `docker save` ({tmp}/images.tar: "
         "manifest.json: the manifest.json nests too deeply to read) (hint: make the bundle "
         "with `labkit images save --output FILE`)"),
    # -- labkit run ------------------------------------------------------------------------
    Case("running a binary .ipynb", write("nb.ipynb", b"\x89PNG\r\n\x1a\n",
                                          cli("run", "{tmp}/nb.ipynb", "--backend", "sim",
                                              "--output-dir", "{tmp}/out")),
         "{tmp}/nb.ipynb: the notebook is not UTF-8 text (byte 0x89 at offset 0) (hint: save "
         "it as UTF-8; binary files cannot be read as YAML or JSON)"),
    Case("running a list-shaped .ipynb", write("nb.ipynb", "[1, 2]",
                                               cli("run", "{tmp}/nb.ipynb", "--backend", "sim",
                                                   "--output-dir", "{tmp}/out")),
         "{tmp}/nb.ipynb: not a Jupyter notebook (no list of cells) (hint: name an .ipynb file "
         "saved by Jupyter)"),
    Case("-p X=.nan", cli("run", "--backend", "sim", "-p", "X=.nan"),
         "-p X=.nan: Out of range float values are not JSON compliant (hint: NaN and "
         "infinities are not JSON; pass a number or a string (quoted: -p NAME='\"nan\"'))"),
    Case("--output-dir that is a file",
         with_files({"nb.ipynb": '{"cells": [], "metadata": {}}', "out": "x"},
                    cli("run", "{tmp}/nb.ipynb", "--backend", "sim", "--output-dir",
                        "{tmp}/out")),
         "--output-dir {tmp}/out is a file, not a folder (hint: name a folder (it is created "
         "if missing))"),
    Case("--output-dir under /proc",
         write("nb.ipynb", '{"cells": [], "metadata": {}}',
               cli("run", "{tmp}/nb.ipynb", "--backend", "sim", "--output-dir",
                   "/proc/labkit")),
         "cannot create --output-dir /proc/labkit: No such file or directory (hint: name a "
         "folder you can write to, e.g. runs/latest)"),
    Case("-p BACKEND=sim with --backend kind",
         cli("run", "--backend", "kind", "-p", "BACKEND=sim"),
         "-p BACKEND is not a parameter: the backend comes from --backend (hint: use "
         "--backend kind or --backend sim)"),
    # -- the Lab API -------------------------------------------------------------------------
    Case("lab.probe(..., '8080')", sim_lab(lambda lab: lab.probe("shop/p", "shop/p", "8080")),
         "lab.probe(): port: expected an integer, got a string"),
    Case("port 0 in Lab.matrix", sim_lab(lambda lab: lab.matrix(ports=[(0, "TCP")])),
         "lab.matrix(): ports[0][0]: 0 is out of range 1-65535 (hint: use a number from 1 to "
         "65535)"),
    Case("port 70000 in Lab.matrix", sim_lab(lambda lab: lab.matrix(ports=[(70000, "TCP")])),
         "lab.matrix(): ports[0][0]: 70000 is out of range 1-65535 (hint: use a number from 1 "
         "to 65535)"),
    Case("protocol ICMP in Lab.matrix", sim_lab(lambda lab: lab.matrix(ports=[(80, "ICMP")])),
         "lab.matrix(): ports[0][1]: unsupported protocol 'ICMP' (hint: use one of TCP, UDP, "
         "SCTP)"),
    Case("lab.apply('')", sim_lab(lambda lab: lab.apply("")),
         "an empty path names no manifest (hint: name a .yaml file or a folder of them)"),
    # -- sim refuses what the API server refuses --------------------------------------------
    Case("a pod in a namespace that does not exist",
         sim_lab(lambda lab: lab.apply(POD.replace("shop", "nowhere"))),
         'applying Pod nowhere/p: namespaces "nowhere" not found [simulated] (hint: create the '
         "namespace first (a Namespace earlier in the same file is created first))"),
    Case("deleting kube-system", sim_lab(lambda lab: lab.delete(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: kube-system}\n")),
         'deleting Namespace kube-system: namespaces "kube-system" is forbidden: this namespace '
         "may not be deleted [simulated] (hint: the API server protects default, kube-system "
         "and kube-public)"),
    Case("deleting calico-system while Calico runs", sim_lab(lambda lab: lab.delete(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: calico-system}\n"), cni="calico"),
         "deleting Namespace calico-system: calico's operator keeps it while calico is "
         "installed (a finalizer holds it: the namespace would stay Terminating) [simulated] "
         "(hint: delete the Installation 'default' (the operator then removes Calico))"),
    # -- stages ------------------------------------------------------------------------------
    Case("a stage whose cluster name is a path", special(
        _stage_named("../../../tmp/x"), cli("up", "evil", "--backend", "sim")),
         "{tmp}/envs/stages/evil/kind-config.yaml: name: '../../../tmp/x' is not a valid "
         "cluster name, cluster names must match `^[a-z0-9.-]+$` (hint: use lowercase letters, "
         "digits, '-' and '.' (kind's rule))"),
]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABKIT_PROGRESS", "off")
    # a case may point LABKIT_ENVIRONMENTS elsewhere; this restores it afterwards
    monkeypatch.setenv("LABKIT_ENVIRONMENTS", str(Path(__file__).resolve().parents[2] /
                                                  "environments"))
    CLUSTERS.clear()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_exactly_its_error(case: Case, tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(LabkitError) as err:
        case.run(tmp_path)
    assert time.monotonic() - started < 10
    expected = case.error.replace("{tmp}", str(tmp_path)).replace(
        "{os.environ[LABKIT_HOME]}", os.environ["LABKIT_HOME"])
    assert err.value.one_line() == expected


def test_a_huge_value_is_never_echoed_back_whole(tmp_path: Path) -> None:
    huge = "x" * (2 << 20)  # a 2 MB protocol name
    path = tmp_path / "m.yaml"
    path.write_text(NS + POD + f"spec:\n  containers: [{{name: c, ports: [{{containerPort: 80, "
                    f"protocol: {huge}}}]}}]\n")
    with pytest.raises(LabkitError) as err:
        cli("policy", "matrix", str(path))(tmp_path)
    assert len(err.value.one_line()) < 5000


def test_a_matrix_too_large_is_refused_before_it_is_computed() -> None:
    check_matrix_size(10_000, 10_000, 1)
    with pytest.raises(LabkitError, match="has 400,000,000 cells; labkit computes at most "
                       "100,000,000"):
        check_matrix_size(20_000, 20_000, 1)
