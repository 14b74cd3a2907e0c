"""Cilium DNS-aware policy: ``toFQDNs`` selectors and ``rules.dns`` (the DNS proxy).

Semantics (Cilium 1.20 docs, security/policy/language.rst "DNS based" and "Obtaining DNS
data for use by toFQDNs"; pkg/fqdn/matchpattern):

- ``matchName`` is one exact name; ``matchPattern`` may use ``*``, which stands for any
  run of characters valid in a DNS name except the dot (so ``*.shop.test`` matches
  ``api.shop.test``, not ``shop.test`` nor ``a.b.shop.test``), and ``*`` alone matches
  every name. Matching ignores case and a trailing dot.
- A ``toFQDNs`` rule admits the IPs that the endpoint's own DNS lookups returned for a
  matching name. Cilium learns them only from responses its DNS proxy saw, and the proxy
  only sees lookups an egress rule sends through it: a ``toPorts`` rule to kube-dns on port
  53 with ``rules.dns``. Without that rule no name is learned and ``toFQDNs`` admits
  nothing. The proxy also refuses lookups that no ``rules.dns`` pattern allows.

labkit models the cluster's resolvable names as ``ClusterState.dns_names`` (name -> IPs,
the names a lab serves itself) and assumes the endpoint looked a name up before connecting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_DNS_CHARS = "[-a-zA-Z0-9_]"


def normalize(name: str) -> str:
    return name.lower().rstrip(".") + "."


@lru_cache(maxsize=1024)
def _pattern(pattern: str) -> re.Pattern[str]:
    text = normalize(pattern)
    if text == "*.":
        return re.compile(r".*")
    return re.compile("".join(f"{_DNS_CHARS}*" if ch == "*" else re.escape(ch) for ch in text))


@dataclass(frozen=True)
class FqdnSelector:
    """One ``matchName`` or ``matchPattern`` entry (of ``toFQDNs`` or ``rules.dns``)."""

    match_name: str = ""
    match_pattern: str = ""

    def matches(self, name: str) -> bool:
        if self.match_name:
            return normalize(self.match_name) == normalize(name)
        return bool(self.match_pattern) and _pattern(self.match_pattern).fullmatch(
            normalize(name)) is not None

    def describe(self) -> str:
        return f"matchName {self.match_name}" if self.match_name else \
            f"matchPattern {self.match_pattern}"
