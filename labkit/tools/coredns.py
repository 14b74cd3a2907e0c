"""CoreDNS's Corefile: the ``hosts`` block labkit adds for the names a lab serves itself.

The block sits in the ``.:53`` server block between two marker comments, is rewritten as a
whole on each change, and ends with ``fallthrough`` so every other name still resolves
(https://coredns.io/plugins/hosts/). Pure text in, text out.
"""

from __future__ import annotations

import re

from labkit.errors import ClusterError

BEGIN = "# labkit: served names (begin)"
END = "# labkit: served names (end)"
_BLOCK = re.compile(rf"\n?[ \t]*{re.escape(BEGIN)}.*?{re.escape(END)}[ \t]*", re.S)


def with_hosts(corefile: str, names: dict[str, str]) -> str:
    """The Corefile with one ``hosts`` block (name -> IP) in its ``.:53`` server block; any
    block labkit wrote before is replaced; ``fallthrough`` keeps every other name working."""
    text = _BLOCK.sub("", corefile)
    if not names:
        return text
    m = re.search(r"^\.:53\s*\{[ \t]*$", text, re.M)
    if m is None:
        raise ClusterError("the CoreDNS Corefile has no `.:53 {` server block",
                           hint="`kubectl -n kube-system get configmap coredns -o yaml`")
    lines = [f"    {BEGIN}", "    hosts {"]
    lines += [f"        {ip} {name}" for name, ip in sorted(names.items())]
    lines += ["        fallthrough", "    }", f"    {END}"]
    return text[:m.end()] + "\n" + "\n".join(lines) + text[m.end():]


def hosts_of(corefile: str) -> dict[str, str]:
    """The names labkit's block serves (name -> IP)."""
    m = _BLOCK.search(corefile)
    if m is None:
        return {}
    out = {}
    for line in m.group(0).splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0][0].isdigit():
            out[parts[1]] = parts[0]
    return out
