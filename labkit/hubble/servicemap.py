"""A service map drawn from flows: nodes are workloads, edges are who talked to whom, coloured
by verdict (networkx for the layout, matplotlib for the picture; both imported lazily).

Replies (``is_reply`` true) and L7 responses are left out, so an edge points from the client to
the server as in Hubble UI's service map.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from labkit.hubble.flow import Flow
from labkit.hubble.frame import workload

#: Edge colour per verdict; any other verdict is grey.
VERDICT_COLOURS = {"FORWARDED": "#2e7d32", "REDIRECTED": "#1565c0", "DROPPED": "#c62828",
                   "ERROR": "#c62828", "AUDIT": "#ef6c00"}
OTHER_COLOUR = "#757575"


@dataclass(frozen=True)
class Edge:
    source: str
    destination: str
    verdict: str
    flows: int
    ports: tuple[str, ...] = ()

    @property
    def colour(self) -> str:
        return VERDICT_COLOURS.get(self.verdict, OTHER_COLOUR)


@dataclass(frozen=True)
class ServiceMap:
    nodes: tuple[str, ...]
    edges: tuple[Edge, ...]
    title: str = "service map"
    simulated: bool = field(default=False, compare=False)

    @classmethod
    def from_flows(cls, flows: Iterable[Flow], *, title: str = "service map",
                   simulated: bool = False) -> ServiceMap:
        counts: Counter[tuple[str, str, str]] = Counter()
        ports: dict[tuple[str, str, str], set[str]] = {}
        nodes: set[str] = set()
        for f in flows:
            if f.is_reply or (f.l7 is not None and f.l7.type == "RESPONSE"):
                continue
            key = (workload(f, "source"), workload(f, "destination"), f.verdict or "UNKNOWN")
            counts[key] += 1
            nodes.update(key[:2])
            if f.l4.destination_port is not None:
                ports.setdefault(key, set()).add(f"{f.l4.destination_port}/{f.l4.protocol}")
        edges = tuple(Edge(s, d, v, n, tuple(sorted(ports.get((s, d, v), ()))))
                      for (s, d, v), n in sorted(counts.items()))
        return cls(tuple(sorted(nodes)), edges, title, simulated)

    def graph(self) -> Any:
        """A networkx MultiDiGraph: one edge per (source, destination, verdict)."""
        import networkx as nx  # lazy: heavy, and only the map needs it

        g = nx.MultiDiGraph(title=self.title)
        g.add_nodes_from(self.nodes)
        for e in self.edges:
            g.add_edge(e.source, e.destination, key=e.verdict, verdict=e.verdict,
                       flows=e.flows, ports=list(e.ports), colour=e.colour)
        return g

    def figure(self) -> Any:
        """The picture as a matplotlib Figure (no pyplot: safe in any backend)."""
        import networkx as nx  # lazy: heavy, and only the map needs it
        from matplotlib.figure import Figure  # lazy: heavy, and only the picture needs it
        from matplotlib.lines import Line2D  # lazy: as above

        g = nx.DiGraph()  # drawing: one arc per (source, destination, verdict), bent apart
        g.add_nodes_from(self.nodes)
        g.add_edges_from((e.source, e.destination) for e in self.edges)
        fig = Figure(figsize=(8, 5.5))
        ax = fig.add_subplot()
        ax.set_axis_off()
        title = f"{self.title} (simulated)" if self.simulated else self.title
        ax.set_title(title)
        if not self.nodes:
            ax.text(0.5, 0.5, "no flows", ha="center", va="center")
            return fig
        pos = nx.circular_layout(g) if len(self.nodes) > 2 else nx.spring_layout(g, seed=1)
        nx.draw_networkx_nodes(g, pos, ax=ax, node_color="#eceff1", edgecolors="#455a64",
                               node_size=1600)
        nx.draw_networkx_labels(g, pos, ax=ax, font_size=8)
        seen: Counter[tuple[str, str]] = Counter()
        for e in self.edges:
            bend = 0.12 + 0.12 * seen[(e.source, e.destination)]
            seen[(e.source, e.destination)] += 1
            nx.draw_networkx_edges(g, pos, ax=ax, edgelist=[(e.source, e.destination)],
                                   edge_color=e.colour, width=1.5, arrows=True,
                                   arrowsize=14, node_size=1600,
                                   connectionstyle=f"arc3,rad={bend}")
        verdicts = sorted({e.verdict for e in self.edges})
        ax.legend(handles=[Line2D([0], [0], color=VERDICT_COLOURS.get(v, OTHER_COLOUR),
                                  label=v) for v in verdicts], loc="lower right", fontsize=8)
        return fig

    def _repr_svg_(self) -> str:
        buffer = io.StringIO()
        self.figure().savefig(buffer, format="svg", bbox_inches="tight")
        return buffer.getvalue()

    def to_text(self) -> str:
        label = " (simulated)" if self.simulated else ""
        lines = [f"{self.title}{label}: {len(self.nodes)} workloads, {len(self.edges)} edges"]
        for e in self.edges:
            ports = f" [{', '.join(e.ports)}]" if e.ports else ""
            lines.append(f"  {e.source} -> {e.destination}  {e.verdict} x{e.flows}{ports}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()
