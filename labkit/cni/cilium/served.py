"""Names a lab serves itself, outside the cluster: targets for DNS-aware (toFQDNs) egress.

On kind, each name is an HTTP server (agnhost ``netexec`` on port 80, the course's pinned
image) in its own container on the ``kind`` Docker network, so it is outside the cluster but
reachable from the pods; CoreDNS answers the name with the container's address through a
``hosts`` block in its Corefile (https://coredns.io/plugins/hosts/), which labkit writes
between two marker comments and rewrites as a whole on each change. No internet is needed.
The containers carry labkit's cluster label, so deleting the cluster (``labkit down``) removes
them too.

On sim, the name gets the next free address high on the kind network (172.18.0.200 up), and
the cluster state's ``dns_names`` carries it to the policy engine.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from labkit.environments import pinned
from labkit.errors import ClusterError
from labkit.tools.coredns import hosts_of, with_hosts
from labkit.tools.docker import KIND_NETWORK, LAB_CLUSTER_LABEL

if TYPE_CHECKING:
    from labkit.backends.kind.backend import KindBackend
    from labkit.backends.sim.backend import SimBackend

SIM_FIRST = "172.18.0.200"


def container_name(cluster: str, name: str) -> str:
    return f"{cluster}-served-{re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-')}"


# -- kind ----------------------------------------------------------------------------------------
def serve_kind(backend: KindBackend, name: str) -> str:
    """Start (or reuse) the name's server container; point CoreDNS at it; its address."""
    container = container_name(backend.stage.cluster_name, name)
    fmt = f'{{{{(index .NetworkSettings.Networks "{KIND_NETWORK}").IPAddress}}}}'
    found = backend.run(["docker", "inspect", "-f", fmt, container], timeout=30, check=False)
    if found.returncode != 0:
        backend.run(["docker", "run", "-d", "--name", container, "--network", KIND_NETWORK,
                     "--label", f"{LAB_CLUSTER_LABEL}={backend.stage.cluster_name}",
                     str(pinned("images", "agnhost")), "netexec", "--http-port=80"],
                    timeout=300, hint="the image comes from versions.yaml images.agnhost")
        found = backend.run(["docker", "inspect", "-f", fmt, container], timeout=30)
    ip = found.stdout.strip()
    if not ip:
        raise ClusterError(f"container {container} has no address on the {KIND_NETWORK} network",
                           hint=f"docker inspect {container}")
    cm: dict[str, Any] = backend.kube.get("v1", "ConfigMap", "coredns", "kube-system") or {}
    corefile = str((cm.get("data") or {}).get("Corefile", ""))
    names = {**hosts_of(corefile), name: ip}
    if hosts_of(corefile) != names:
        backend.apply_raw([{"apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": "coredns", "namespace": "kube-system"},
                            "data": {**(cm.get("data") or {}),
                                     "Corefile": with_hosts(corefile, names)}}])
        # kind's Corefile has `reload`: CoreDNS reads the change within about a minute; a
        # restart makes it take effect now.
        backend.apply_raw([{"apiVersion": "apps/v1", "kind": "Deployment",
                            "metadata": {"name": "coredns", "namespace": "kube-system"},
                            "spec": {"template": {"metadata": {"annotations": {
                                "labkit/served-names": ",".join(sorted(names))}}}}}])
        backend.wait_ready(nodes=False, namespaces=("kube-system",), timeout=180)
    return ip


# -- sim -----------------------------------------------------------------------------------------
def serve_sim(backend: SimBackend, name: str) -> str:
    c = backend.cluster
    if c.cni is None:
        raise ClusterError("no CNI is installed [simulated]", hint="lab.install_cni('cilium')")
    names: dict[str, list[str]] = dict(c.cni.settings.get("dns_names") or {})
    key = name.lower().rstrip(".")
    if key not in names:
        base = [int(p) for p in SIM_FIRST.split(".")]
        used = {ip for ips in names.values() for ip in ips}
        ip = next(f"{base[0]}.{base[1]}.{base[2]}.{n}" for n in range(base[3], 255)
                  if f"{base[0]}.{base[1]}.{base[2]}.{n}" not in used)
        names[key] = [ip]
        c.cni.settings["dns_names"] = names
        c.changed()
    return names[key][0]
