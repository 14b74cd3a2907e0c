"""Packet captures between nodes: what a CNI puts on the wire (``lab.capture(...)``).

>>> cap = lab.capture("shop-web/frontend", "shop-api/api", 8080,
...                   http=HttpRequest(path="/healthz"))
>>> cap.counts(), cap.encapsulations, cap.cleartext_http
({'UDP/8472': 10}, ['vxlan'], True)

- :mod:`~labkit.capture.tcpdump` parses ``tcpdump -n`` text into
  :class:`~labkit.capture.packet.Packet` objects;
- :mod:`~labkit.capture.datapath` says what each CNI does between nodes (and so
  which filter to use by default);
- :mod:`~labkit.capture.kind` runs tcpdump in a kind node's network namespace;
  :mod:`~labkit.capture.sim` renders the modelled datapath's packets instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from labkit.capture.datapath import Datapath, datapath_for
from labkit.capture.packet import Packet
from labkit.capture.result import Capture
from labkit.capture.spec import BRIDGE, CaptureSpec
from labkit.capture.tcpdump import parse, parse_packets
from labkit.errors import BackendUnsupported

if TYPE_CHECKING:
    from labkit.matrix import Cell

__all__ = ["BRIDGE", "Capture", "CaptureSpec", "Datapath", "Packet", "datapath_for", "parse",
           "parse_packets", "run_capture"]


def run_capture(backend: Any, spec: CaptureSpec, generate: Callable[[], Cell]) -> Capture:
    """Capture on ``backend`` while ``generate()`` makes the traffic (one probe)."""
    if backend.name == "kind":
        from labkit.backends.kind import capture as kind

        return kind.capture(backend, spec, generate)
    if backend.name == "sim":
        from labkit.backends.sim import capture as sim

        return sim.capture(backend, spec, generate)
    raise BackendUnsupported(f"no packet capture on the {backend.name} backend")
