"""What a removed CNI leaves on a kind node, found and removed with ``docker exec``.

Deleting a CNI's DaemonSet does not clean the nodes: its CNI config file stays
in ``/etc/cni/net.d`` (and the kubelet keeps using the first file it finds
there), its interfaces and iptables chains stay in the node's network
namespace. Ground truth §5.2 lists them; rke2-killall.sh removes the same set.

Each node is *surveyed* first (which of those things exist), then only what
exists is removed, so a second run finds nothing and runs nothing: the step is
idempotent and can be resumed after an interruption.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from labkit.tools import docker
from labkit.tools.process import Result

#: Runs ``argv`` inside node container ``node``; same shape as :func:`docker.node_exec`.
NodeExec = Callable[..., Result]


@dataclass(frozen=True)
class Leftovers:
    """The node state one CNI leaves behind."""

    cni: str
    files: tuple[str, ...]
    #: Exact interface names, or shell-style patterns (``cali*``).
    interfaces: tuple[str, ...]
    #: iptables chains whose name starts with one of these belong to the CNI.
    chain_prefixes: tuple[str, ...]


FLANNEL = Leftovers(
    cni="flannel",
    files=("/etc/cni/net.d/10-flannel.conflist", "/run/flannel/subnet.env"),
    interfaces=("flannel.1", "cni0"),
    chain_prefixes=("FLANNEL-",),
)

#: Not ``tunl0``: the ipip kernel module creates it as its fallback device, and
#: ``ip link delete tunl0`` fails while the module is loaded (rke2-killall.sh leaves it too;
#: cni-ground-truth.md §5.2). An empty tunl0 does no harm.
CALICO = Leftovers(
    cni="calico",
    files=("/etc/cni/net.d/10-calico.conflist", "/etc/cni/net.d/calico-kubeconfig"),
    interfaces=("vxlan.calico", "cali*"),
    chain_prefixes=("cali-",),
)

BY_CNI = {lo.cni: lo for lo in (FLANNEL, CALICO)}

IPTABLES_TABLES = ("filter", "nat", "mangle", "raw")
# ``docker exec`` exits 126/127 when the program is missing or not executable.
_MISSING_PROGRAM = (126, 127)


@dataclass(frozen=True)
class IptRule:
    table: str
    chain: str
    #: The rule spec after ``-A CHAIN`` as iptables-save prints it, tokenised.
    spec: tuple[str, ...]


@dataclass
class NodeSurvey:
    """Which leftovers of one CNI exist on one node."""

    node: str
    files: list[str] = field(default_factory=list)
    interfaces: list[str] = field(default_factory=list)
    #: (table, chain) pairs that belong to the CNI.
    chains: list[tuple[str, str]] = field(default_factory=list)
    #: Rules outside the CNI's chains that jump into them (must go before the chains).
    jumps: list[IptRule] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.files or self.interfaces or self.chains or self.jumps)


def parse_link_names(text: str) -> list[str]:
    """Interface names from ``ip -o link show`` (``15: eth0@if16: <...>`` -> ``eth0``)."""
    names = []
    for line in text.splitlines():
        m = re.match(r"\s*\d+:\s+([^:@\s]+)(?:@[^:\s]*)?:", line)
        if m:
            names.append(m.group(1))
    return names


def parse_iptables_save(text: str) -> dict[str, tuple[list[str], list[IptRule]]]:
    """``iptables-save`` output as ``{table: (chains, rules)}`` in file order."""
    tables: dict[str, tuple[list[str], list[IptRule]]] = {}
    current: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or line == "COMMIT":
            continue
        if line.startswith("*"):
            current = line[1:]
            tables.setdefault(current, ([], []))
        elif current is None:
            continue
        elif line.startswith(":"):
            tables[current][0].append(line[1:].split()[0])
        elif line.startswith("-A "):
            tokens = shlex.split(line)
            tables[current][1].append(IptRule(current, tokens[1], tuple(tokens[2:])))
    return tables


def _jump_target(rule: IptRule) -> str | None:
    spec = rule.spec
    for i, tok in enumerate(spec[:-1]):
        if tok in ("-j", "--jump", "-g", "--goto"):
            return spec[i + 1]
    return None


def _matches_interface(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def survey_node(node: str, leftovers: Leftovers, *, exec_fn: NodeExec | None = None) -> NodeSurvey:
    """Look (read-only) for ``leftovers`` on ``node``."""
    exe = exec_fn or docker.node_exec
    out = NodeSurvey(node)

    res = exe(node, ["ls", "-1d", "--", *leftovers.files], check=False)
    present = {line.strip() for line in res.stdout.splitlines()}
    out.files = [f for f in leftovers.files if f in present]

    res = exe(node, ["ip", "-o", "link", "show"], check=False)
    if res.returncode in _MISSING_PROGRAM:
        out.notes.append("`ip` is not available in the node: interfaces not checked")
    else:
        out.interfaces = [
            n for n in parse_link_names(res.stdout) if _matches_interface(n, leftovers.interfaces)
        ]

    res = exe(node, ["iptables-save"], check=False)
    if res.returncode in _MISSING_PROGRAM:
        out.notes.append("`iptables-save` is not available in the node: chains not checked")
        return out
    if res.returncode != 0:
        out.notes.append(f"`iptables-save` failed ({res.stderr.strip()[:200]}): chains not checked")
        return out
    for table, (chains, rules) in parse_iptables_save(res.stdout).items():
        ours = [c for c in chains if c.startswith(leftovers.chain_prefixes)]
        out.chains += [(table, c) for c in ours]
        out.jumps += [
            r for r in rules
            if r.chain not in ours and (_jump_target(r) or "").startswith(leftovers.chain_prefixes)
        ]
    return out


def cleanup_commands(survey: NodeSurvey) -> list[list[str]]:
    """The exact commands, run inside the node, that remove what ``survey`` found.

    Order matters for iptables: rules that jump into the CNI's chains first,
    then every chain is flushed (they may jump to each other), then deleted.
    """
    cmds: list[list[str]] = []
    if survey.files:
        cmds.append(["rm", "-f", "--", *survey.files])
    cmds += [["ip", "link", "delete", name] for name in survey.interfaces]
    cmds += [["iptables", "-t", r.table, "-D", r.chain, *r.spec] for r in survey.jumps]
    cmds += [["iptables", "-t", t, "-F", c] for t, c in survey.chains]
    cmds += [["iptables", "-t", t, "-X", c] for t, c in survey.chains]
    return cmds


@dataclass
class NodeCleanup:
    """What cleaning one node found and did."""

    node: str
    cni: str
    found: NodeSurvey
    commands: list[list[str]]

    @property
    def noop(self) -> bool:
        return not self.commands

    def as_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "cni": self.cni,
            "files": list(self.found.files),
            "interfaces": list(self.found.interfaces),
            "chains": [f"{t}/{c}" for t, c in self.found.chains],
            "commands": [shlex.join(c) for c in self.commands],
            "notes": list(self.found.notes),
        }

    def to_text(self) -> str:
        if self.noop:
            return f"{self.node}: no {self.cni} leftovers (nothing to do)"
        parts = []
        if self.found.files:
            parts.append(f"{len(self.found.files)} file(s)")
        if self.found.interfaces:
            parts.append("interfaces " + ", ".join(self.found.interfaces))
        if self.found.chains:
            parts.append(f"{len(self.found.chains)} iptables chain(s)")
        return f"{self.node}: removed {self.cni} leftovers: " + "; ".join(parts)


def clean_node(node: str, leftovers: Leftovers, *, exec_fn: NodeExec | None = None) -> NodeCleanup:
    """Survey ``node`` and remove what is there; a clean node costs three reads and no write."""
    exe = exec_fn or docker.node_exec
    found = survey_node(node, leftovers, exec_fn=exe)
    cmds = cleanup_commands(found)
    for argv in cmds:
        exe(node, argv, check=True)
    return NodeCleanup(node, leftovers.cni, found, cmds)
