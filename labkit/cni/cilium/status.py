"""What Cilium says about itself, as data: ``cilium status`` and the agent's ``cilium-dbg status``.

Two different printers, two parsers:

- :func:`parse_cli_status` reads cilium-cli's ``cilium status [--wait]``: the logo with the
  component summary (``Cilium: OK``, ``Envoy DaemonSet: disabled (using embedded mode)``,
  ``Hubble Relay: 1 warnings``), then a tabwriter table of DaemonSets and Deployments
  (``Desired: 4, Ready: 4/4, Available: 4/4``), containers, ``Cluster Pods: 8/8 managed by
  Cilium``, the Helm chart version, image versions, errors and warnings.
  :meth:`CliStatus.to_text` prints it back in the same layout (Go's text/tabwriter rules:
  a column is as wide as its widest cell in a run of lines that have it, plus 4 blanks), which
  is how the sim backend answers ``cilium status``.
- :func:`parse_agent_status` reads ``cilium-dbg status`` (``cilium status`` inside the agent
  before 1.15): ``Key: value`` lines plus indented detail lines, with the lines the course
  judges parsed further: ``KubeProxyReplacement``, ``Encryption`` (WireGuard interface, port,
  peers; IPsec) and ``ClusterMesh`` (clusters ready, global services, one line per remote
  cluster).

Built and tested on the real outputs in ``shared/reference/samples/cilium-status/`` and
``clustermesh/`` (cilium-cli 0.10 to 0.16 layouts, agents 1.7 to 1.16).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from labkit.display.render import Rendered, html_table
from labkit.errors import ToolError

# The logo cilium-cli prints left of the component summary (cilium-cli status/k8s.go).
LOGO = ("    /¯¯\\", " /¯¯\\__/¯¯\\    ", " \\__/¯¯\\__/    ", " /¯¯\\__/¯¯\\    ",
        " \\__/¯¯\\__/    ", "    \\__/       ")
_LOGO_CHARS = " /¯\\_"
_PADDING = 4  # cilium-cli's tabwriter.NewWriter(w, 0, 0, 4, ' ', 0)
_SPLIT = re.compile(r" {2,}")
_WORKLOAD = re.compile(r"Desired: (?P<desired>\d+)(?:, Ready: (?P<ready>\d+)/\d+)?"
                       r"(?:, Available: (?P<available>\d+)/\d+)?"
                       r"(?:, Unavailable: (?P<unavailable>\d+)/\d+)?")
_MANAGED = re.compile(r"^(?P<managed>\d+)/(?P<total>\d+) managed by Cilium")
_TABLE_KEYS = ("Deployment", "DaemonSet", "Containers:", "Cluster Pods:", "Helm chart version:",
               "Image versions", "Errors:", "Warnings:")


@dataclass(frozen=True)
class Workload:
    """A DaemonSet or Deployment row: ``DaemonSet  cilium  Desired: 4, Ready: 4/4, ...``."""

    kind: str
    name: str
    desired: int
    ready: int
    available: int
    unavailable: int = 0

    @property
    def ok(self) -> bool:
        return self.desired == self.ready == self.available and not self.unavailable

    def text(self) -> str:
        out = f"Desired: {self.desired}, Ready: {self.ready}/{self.desired}, " \
              f"Available: {self.available}/{self.desired}"
        if self.unavailable:
            out += f", Unavailable: {self.unavailable}/{self.desired}"
        return out


@dataclass(frozen=True)
class Problem:
    """One line of the ``Errors:`` or ``Warnings:`` block: component, object, message."""

    component: str
    name: str
    message: str


@dataclass(frozen=True, repr=False)
class CliStatus(Rendered):
    """``cilium status`` as data. ``ok`` is what ``cilium status --wait`` waits for."""

    summary: dict[str, str]
    workloads: tuple[Workload, ...] = ()
    containers: tuple[tuple[str, str], ...] = ()  # (name, "Running: 4")
    cluster_pods: tuple[int, int] | None = None  # (managed, total)
    helm_chart_version: str | None = None
    images: tuple[tuple[str, str, int], ...] = ()  # (container, image, count)
    errors: tuple[Problem, ...] = ()
    warnings: tuple[Problem, ...] = ()
    simulated: bool = False

    @property
    def ok(self) -> bool:
        """Every component OK or disabled, every workload fully available, no errors."""
        return (not self.errors and all(v == "OK" or v.startswith("disabled")
                                        for v in self.summary.values())
                and all(w.ok for w in self.workloads))

    def component(self, name: str) -> str | None:
        return self.summary.get(name)

    def workload(self, name: str) -> Workload | None:
        return next((w for w in self.workloads if w.name == name), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "simulated": self.simulated, "summary": dict(self.summary),
            "workloads": [{"kind": w.kind, "name": w.name, "desired": w.desired,
                           "ready": w.ready, "available": w.available,
                           "unavailable": w.unavailable} for w in self.workloads],
            "containers": {n: v for n, v in self.containers},
            "cluster_pods": (None if self.cluster_pods is None else
                             {"managed": self.cluster_pods[0], "total": self.cluster_pods[1]}),
            "helm_chart_version": self.helm_chart_version,
            "images": [{"container": c, "image": i, "count": n} for c, i, n in self.images],
            "errors": [vars(p) for p in self.errors],
            "warnings": [vars(p) for p in self.warnings],
        }

    def to_text(self) -> str:
        """The layout cilium-cli prints (logo, summary, tabwriter table)."""
        width = max((len(k) + 1 for k in self.summary), default=0) + _PADDING
        head = [LOGO[0]]
        keys = list(self.summary.items())
        for i, art in enumerate(LOGO[1:]):
            if i < len(keys):
                key, value = keys[i]
                head.append(f"{art}{(key + ':').ljust(width)}{value}")
            else:
                head.append(art.rstrip())
        rows: list[list[str]] = [[w.kind, w.name, w.text()] for w in self.workloads]
        rows += _labelled("Containers:", [[n, v] for n, v in self.containers])
        if self.cluster_pods is not None:
            rows.append(["Cluster Pods:", f"{self.cluster_pods[0]}/{self.cluster_pods[1]} "
                                          "managed by Cilium"])
        if self.helm_chart_version is not None:
            rows.append(["Helm chart version:", self.helm_chart_version])
        rows += _labelled("Image versions", [[c, f"{i}: {n}"] for c, i, n in self.images])
        rows += _labelled("Errors:", [[p.component, p.name, p.message] for p in self.errors])
        rows += _labelled("Warnings:", [[p.component, p.name, p.message]
                                        for p in self.warnings])
        text = "\n".join([*head, "", *tabwrite(rows)]) if rows else "\n".join(head)
        return text + ("\n(simulated: labkit's model of cilium status, not a real cluster)"
                       if self.simulated else "")

    def _repr_html_(self) -> str:
        summary = html_table(["component", "status"], self.summary.items())
        workloads = html_table(["kind", "name", "ready"],
                               [(w.kind, w.name, w.text()) for w in self.workloads])
        note = "<p><i>simulated</i></p>" if self.simulated else ""
        return f"<p><b>cilium status</b>: {'OK' if self.ok else 'NOT OK'}</p>" \
               f"{summary}{workloads}{note}"


def _labelled(label: str, rows: Sequence[list[str]]) -> list[list[str]]:
    """``label`` in the first cell of the first row only, as cilium-cli prints blocks."""
    return [[label if i == 0 else "", *r] for i, r in enumerate(rows)]


def tabwrite(rows: Iterable[Sequence[str]], padding: int = _PADDING) -> list[str]:
    """Lay out rows as Go's text/tabwriter does when every cell but the last ends in a tab.

    A column's width is set per *block*: a run of consecutive lines that all have a
    tab-terminated cell in that column; the last cell of a line is not aligned. The Helm
    line's empty last cell (``Helm chart version:`` then spaces) comes out padded, as in
    the real output.
    """
    rows = [list(r) for r in rows]
    widths: list[list[int]] = [[0] * (len(r) - 1) for r in rows]

    def layout(first: int, last: int, column: int) -> None:
        line = first
        while line < last:
            if len(rows[line]) - 1 <= column:
                line += 1
                continue
            end = line
            while end < last and len(rows[end]) - 1 > column:
                end += 1
            width = max(len(rows[i][column]) for i in range(line, end)) + padding
            for i in range(line, end):
                widths[i][column] = width
            layout(line, end, column + 1)
            line = end

    layout(0, len(rows), 0)
    return ["".join(c.ljust(w) for c, w in zip(r, ws, strict=False)) + r[-1]
            for r, ws in zip(rows, widths, strict=True)]


def parse_cli_status(text: str, *, source: str = "cilium status") -> CliStatus:
    """Parse cilium-cli's ``cilium status`` output (any layout from cilium-cli 0.10 on)."""
    summary: dict[str, str] = {}
    workloads: list[Workload] = []
    containers: list[tuple[str, str]] = []
    images: list[tuple[str, str, int]] = []
    errors: list[Problem] = []
    warnings: list[Problem] = []
    cluster_pods: tuple[int, int] | None = None
    helm: str | None = None
    block = ""
    for raw in text.splitlines():
        line = raw.rstrip("\n")
        stripped = line.lstrip(_LOGO_CHARS)
        if not line.strip():
            continue
        if not line.startswith(" ") and line.startswith(_TABLE_KEYS):
            block = next(k for k in _TABLE_KEYS if line.startswith(k))
            rest = line[len(block):].strip()
        elif line.startswith(" ") and block and not summary_line(line):
            rest = line.strip()
        elif ":" in stripped and summary_line(line):
            key, _, value = stripped.partition(":")
            summary[key.strip()] = value.strip()
            continue
        else:
            continue
        cells = _SPLIT.split(rest) if rest else []
        if block in ("Deployment", "DaemonSet") and len(cells) >= 2:
            m = _WORKLOAD.match(cells[1])
            if m:
                workloads.append(Workload(block, cells[0], int(m["desired"]),
                                          int(m["ready"] or 0), int(m["available"] or 0),
                                          int(m["unavailable"] or 0)))
        elif block == "Containers:" and len(cells) >= 2:
            containers.append((cells[0], cells[1]))
        elif block == "Cluster Pods:":
            m = _MANAGED.match(rest)
            if m:
                cluster_pods = (int(m["managed"]), int(m["total"]))
        elif block == "Helm chart version:":
            helm = rest
        elif block == "Image versions" and len(cells) >= 2:
            image, _, count = " ".join(cells[1:]).rpartition(": ")
            if image and count.isdigit():
                images.append((cells[0], image, int(count)))
        elif block in ("Errors:", "Warnings:") and len(cells) >= 3:
            problem = Problem(cells[0], cells[1], "  ".join(cells[2:]))
            (errors if block == "Errors:" else warnings).append(problem)
    if not summary:
        raise ToolError(f"{source}: no component summary (Cilium: ..., Operator: ...) in the "
                        "output", command=source, stderr=text[-500:],
                        hint="is this the output of cilium-cli's `cilium status`? "
                        "The agent's `cilium-dbg status` is read by parse_agent_status")
    return CliStatus(summary, tuple(workloads), tuple(containers), cluster_pods, helm,
                     tuple(images), tuple(errors), tuple(warnings))


def summary_line(line: str) -> bool:
    """A line of the logo block: it starts with logo characters and has ``Key: value``."""
    prefix = line[:15]
    return bool(prefix.strip()) and set(prefix) <= set(_LOGO_CHARS) and ":" in line[15:]


# -- the agent: cilium-dbg status ------------------------------------------------------------

_KEY_VALUE = re.compile(r"^(?P<key>[A-Za-z][A-Za-z0-9 .\-]*?):\s*(?P<value>.*?)\s*$")
_WIREGUARD = re.compile(r"(?P<iface>[^\s\[,]+) \(Pubkey: (?P<pubkey>[^,]*), Port: (?P<port>\d+), "
                        r"Peers: (?P<peers>\d+)\)")
_MESH = re.compile(r"^(?P<ready>\d+)/(?P<total>\d+) clusters ready"
                   r"(?:, (?P<services>\d+) global-services)?")
_REMOTE = re.compile(r"^(?P<name>[^:\s]+): (?P<state>ready|not-ready), (?P<nodes>\d+) nodes?"
                     r"(?:, (?P<endpoints>\d+) endpoints)?, (?P<identities>\d+) identities, "
                     r"(?P<services>\d+) services, (?P<failures>\d+) failures")


@dataclass(frozen=True)
class Encryption:
    """The agent's ``Encryption:`` line: ``Wireguard [cilium_wg0 (Pubkey: .., Port: 51871,
    Peers: 2)]``, ``IPsec``, or ``Disabled``."""

    mode: str  # Wireguard | IPsec | Disabled | ...
    interface: str | None = None
    public_key: str | None = None
    port: int | None = None
    peers: int | None = None
    node_encryption: bool | None = None

    @classmethod
    def parse(cls, value: str) -> Encryption:
        mode = value.split("[", 1)[0].split()[0] if value.strip() else "Disabled"
        m = _WIREGUARD.search(value)
        node = re.search(r"NodeEncryption: (true|false|Enabled|Disabled)", value)
        return cls(mode, m["iface"] if m else None, m["pubkey"] if m else None,
                   int(m["port"]) if m else None, int(m["peers"]) if m else None,
                   None if node is None else node[1] in ("true", "Enabled"))


@dataclass(frozen=True)
class RemoteCluster:
    """One remote cluster under the agent's ``ClusterMesh:`` line."""

    name: str
    ready: bool
    nodes: int
    identities: int
    services: int
    failures: int


@dataclass(frozen=True)
class MeshStatus:
    ready: int
    total: int
    global_services: int | None
    clusters: tuple[RemoteCluster, ...] = ()

    @property
    def ok(self) -> bool:
        return self.ready == self.total and all(c.ready for c in self.clusters)


@dataclass(frozen=True, repr=False)
class AgentStatus(Rendered):
    """``cilium-dbg status`` as data: every ``Key: value`` line, with its indented details."""

    fields: dict[str, str]
    details: dict[str, tuple[str, ...]] = field(default_factory=dict)
    simulated: bool = False

    @property
    def kube_proxy_replacement(self) -> str | None:
        """``True``/``False`` (1.16+), ``Strict``/``Partial``/``Disabled`` (older agents)."""
        value = self.fields.get("KubeProxyReplacement")
        return value.split()[0] if value else None

    @property
    def encryption(self) -> Encryption | None:
        value = self.fields.get("Encryption")
        return None if value is None else Encryption.parse(value)

    @property
    def clustermesh(self) -> MeshStatus | None:
        value = self.fields.get("ClusterMesh")
        m = _MESH.match(value or "")
        if m is None:
            return None
        remotes = []
        for line in self.details.get("ClusterMesh", ()):
            r = _REMOTE.match(line.strip())
            if r:
                remotes.append(RemoteCluster(r["name"], r["state"] == "ready", int(r["nodes"]),
                                             int(r["identities"]), int(r["services"]),
                                             int(r["failures"])))
        return MeshStatus(int(m["ready"]), int(m["total"]),
                          int(m["services"]) if m["services"] else None, tuple(remotes))

    def as_dict(self) -> dict[str, Any]:
        enc, mesh = self.encryption, self.clustermesh
        return {"simulated": self.simulated, "fields": dict(self.fields),
                "kube_proxy_replacement": self.kube_proxy_replacement,
                "encryption": None if enc is None else vars(enc),
                "clustermesh": None if mesh is None else {
                    "ready": mesh.ready, "total": mesh.total,
                    "global_services": mesh.global_services,
                    "clusters": [vars(c) for c in mesh.clusters]}}

    def to_text(self) -> str:
        width = max((len(k) + 1 for k in self.fields), default=0) + 3
        lines = []
        for key, value in self.fields.items():
            lines.append(f"{(key + ':').ljust(width)}{value}".rstrip())
            lines += self.details.get(key, ())
        if self.simulated:
            lines.append("(simulated: labkit's model of cilium-dbg status, not a real agent)")
        return "\n".join(lines)


def parse_agent_status(text: str, *, source: str = "cilium-dbg status") -> AgentStatus:
    """Parse the agent's status (``kubectl exec ds/cilium -c cilium-agent -- cilium-dbg
    status``); a ``| grep Encryption`` excerpt is a valid (one-line) status too."""
    fields: dict[str, str] = {}
    details: dict[str, list[str]] = {}
    last = ""
    for line in text.splitlines():
        if not line.strip():
            continue
        m = _KEY_VALUE.match(line)
        if m and not line[0].isspace():
            last = m["key"]
            fields[last] = m["value"]
        elif last:
            details.setdefault(last, []).append(line)
    if not fields:
        raise ToolError(f"{source}: no `Key: value` lines in the output", command=source,
                        stderr=text[-500:],
                        hint="run it inside the agent: kubectl -n kube-system exec ds/cilium "
                        "-c cilium-agent -- cilium-dbg status")
    return AgentStatus(fields, {k: tuple(v) for k, v in details.items()})
