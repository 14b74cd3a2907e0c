"""Packet captures between nodes: what a CNI puts on the wire (``lab.capture(...)``).

>>> cap = lab.capture("shop-web/frontend", "shop-api/api", 8080,
...                   http=HttpRequest(path="/healthz"))
>>> cap.counts(), cap.encapsulations, cap.cleartext_http
({'UDP/8472': 10}, ['vxlan'], True)

- :mod:`~labkit.capture.tcpdump` parses ``tcpdump -n`` text into
  :class:`~labkit.capture.packet.Packet` objects;
- :mod:`~labkit.capture.datapath` says what each CNI does between nodes (and so
  which filter to use by default);
- each backend captures in its own way (``Backend.capture``):
  :mod:`labkit.backends.kind.capture` runs tcpdump in a kind node's network namespace,
  :mod:`labkit.backends.sim.capture` renders the modelled datapath's packets instead.
"""

from __future__ import annotations

from labkit.capture.datapath import Datapath, datapath_for
from labkit.capture.packet import Packet
from labkit.capture.result import Capture
from labkit.capture.spec import BRIDGE, CaptureSpec
from labkit.capture.tcpdump import parse, parse_packets

__all__ = ["BRIDGE", "Capture", "CaptureSpec", "Datapath", "Packet", "datapath_for", "parse",
           "parse_packets"]
