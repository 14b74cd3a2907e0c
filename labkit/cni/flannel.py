"""Flannel: install and verify, on kind and on sim.

On kind two things happen, in this order:

1. **The missing ``bridge`` plugin.** kind's node image ships only host-local,
   loopback, ptp and portmap, and Flannel's CNI config delegates to ``bridge``,
   so pods fail with ``failed to find plugin "bridge"`` (cni-ground-truth.md
   §0.2, §3). We use workaround **(b)**: a DaemonSet copies the reference
   plugins (the pinned cni-plugins tarball) into each node's ``/opt/cni/bin``.
   Why (b) rather than (a), the ``extraMounts`` of a host directory: (a) must be
   decided before the cluster exists and *replaces* the image's plugins, so the
   host needs the whole tarball unpacked first, in a path Docker Desktop shares
   with its VM; (b) works on an existing cluster (the learner first sees the
   NotReady nodes, then fixes them), only *adds* the missing files, needs nothing
   on the host, and is an ordinary Kubernetes object. (Lab 02 leaves it in place: the
   plugins it copied stay in /opt/cni/bin either way and do no harm.)
2. **Flannel itself**, from the pinned release manifest (versions.yaml
   ``flannel.manifest``), its ``net-conf.json`` network set to the stage's pod
   subnet, applied through the Kubernetes API (server-side apply).

Verification: nodes Ready, each node has a podCIDR, pods are addressed from their
node's /24, the kube-flannel-ds pods run, and on kind ``/run/flannel/subnet.env``
exists on every node.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import yaml

from labkit.backends.sim.cluster import CniRecord
from labkit.backends.sim.ipam import NodeRangeIpam
from labkit.cni import Recipe, VerificationCheck
from labkit.environments import pinned
from labkit.errors import ClusterError, ManifestError
from labkit.tools import docker, process
from labkit.tools.files import fetch_url, offline_file

if TYPE_CHECKING:
    from labkit.backends.kind.backend import KindBackend
    from labkit.backends.sim.backend import SimBackend
    from labkit.progress import Progress

NAMESPACE = "kube-flannel"
DAEMONSET = "kube-flannel-ds"
PLUGINS_NAMESPACE = "kube-system"
PLUGINS_DAEMONSET = "install-cni-plugins"
SUBNET_ENV = "/run/flannel/subnet.env"

Fetch = Callable[[str], str]


#: Inside a kind node: where the recipe copies a loaded bundle's cni-plugins tarball.
NODE_OFFLINE_DIR = "/opt/labkit/offline"


def cni_plugins_daemonset(tarball_url: str, curl_image: str, pause_image: str,
                          sha256: dict[str, str] | None = None) -> dict[str, Any]:
    """Workaround (b): copy the reference CNI plugins that a node lacks into /opt/cni/bin.

    hostNetwork because there is no pod network yet (that is the point); tolerates
    every taint because the nodes are NotReady; root because /opt/cni/bin is root's;
    copies only missing executables (not a LICENSE or README the tarball may carry), so
    the image's own plugins stay as kind built them. The tarball is the node's copy in
    ``NODE_OFFLINE_DIR`` when an offline bundle put one there, else it is downloaded; either
    way it must have the pinned SHA-256 (``sha256`` by arch) before it is unpacked. The
    script uses only what busybox in the curl image has (uname, sed, tar -z, basename, cp,
    mv, sha256sum, cut).
    """
    sums = sha256 or {}
    script = "\n".join([
        "set -eu",
        'case "$(uname -m)" in x86_64) arch=amd64 ;; aarch64|arm64) arch=arm64 ;; '
        '*) echo "unsupported arch $(uname -m)"; exit 1 ;; esac',
        'url=$(echo "$CNI_PLUGINS_URL" | sed "s/{arch}/$arch/g")',
        'local_copy="$OFFLINE_DIR/$(basename "$url")"',
        'if [ -f "$local_copy" ]; then cp "$local_copy" /tmp/cni-plugins.tgz; '
        'echo "using the offline bundle\'s $(basename "$url")"; '
        'else curl -fsSL --retry 5 --retry-delay 2 -o /tmp/cni-plugins.tgz "$url"; fi',
        'eval "want=\\${SHA256_$arch:-}"',
        'got=$(sha256sum /tmp/cni-plugins.tgz | cut -d " " -f 1)',
        'if [ -n "$want" ] && [ "$got" != "$want" ]; then echo "checksum mismatch for '
        '$(basename "$url"): expected $want (pinned), got $got"; exit 1; fi',
        "mkdir -p /tmp/cni && tar -xzf /tmp/cni-plugins.tgz -C /tmp/cni",
        "for f in /tmp/cni/*; do",
        '  [ -f "$f" ] && [ -x "$f" ] || continue',
        '  name=$(basename "$f"); dest="$CNI_BIN_DIR/$name"',
        # copy then rename: the kubelet may run a plugin while it is being written
        '  if [ ! -e "$dest" ]; then cp "$f" "$dest.tmp" && mv "$dest.tmp" "$dest"; '
        'echo "installed $name"; fi',
        "done",
    ])
    labels = {"app": PLUGINS_DAEMONSET}
    return {
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": PLUGINS_DAEMONSET, "namespace": PLUGINS_NAMESPACE,
                     "labels": {**labels, "app.kubernetes.io/managed-by": "labkit"}},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "hostNetwork": True,
                    "tolerations": [{"operator": "Exists"}],
                    "initContainers": [{
                        "name": "install", "image": curl_image,
                        "command": ["sh", "-c", script],
                        "env": [{"name": "CNI_PLUGINS_URL", "value": tarball_url},
                                {"name": "CNI_BIN_DIR", "value": "/host/opt/cni/bin"},
                                {"name": "OFFLINE_DIR", "value": "/host/offline"},
                                *({"name": f"SHA256_{arch}", "value": value}
                                  for arch, value in sorted(sums.items()))],
                        "securityContext": {"runAsUser": 0},
                        "volumeMounts": [{"name": "cni-bin", "mountPath": "/host/opt/cni/bin"},
                                         {"name": "offline", "mountPath": "/host/offline",
                                          "readOnly": True}],
                    }],
                    "containers": [{"name": "idle", "image": pause_image, "args": ["pause"]}],
                    "volumes": [{"name": "cni-bin", "hostPath": {"path": "/opt/cni/bin",
                                                                  "type": "DirectoryOrCreate"}},
                                {"name": "offline", "hostPath": {"path": NODE_OFFLINE_DIR,
                                                                 "type": "DirectoryOrCreate"}}],
                },
            },
        },
    }


def copy_offline_tarball(nodes: Sequence[str], progress: Progress | None = None,
                         *, run: Callable[..., Any] | None = None) -> list[str]:
    """After ``labkit images load``: put the bundle's cni-plugins tarball for each node's
    architecture into the node (``docker cp``), where the DaemonSet uses it instead of
    downloading. Returns the nodes that got one; none without a loaded bundle."""
    template = str(pinned("cni_plugins", "tarball"))
    if not any(offline_file(template.format(arch=a)) for a in ("amd64", "arm64")):
        return []  # no bundle loaded: the DaemonSet downloads, as it always did
    call = run or process.run
    done = []
    for node in nodes:
        machine = call(["docker", "exec", node, "uname", "-m"], timeout=30).stdout.strip()
        arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine)
        url = template.format(arch=arch or machine)
        local = offline_file(url)
        if arch is None or local is None:
            continue
        call(["docker", "exec", node, "mkdir", "-p", NODE_OFFLINE_DIR], timeout=30)
        call(["docker", "cp", str(local), f"{node}:{NODE_OFFLINE_DIR}/{local.name}"],
             timeout=300, hint="is there free disk space for the node containers?")
        done.append(node)
    if done and progress is not None:
        progress.update(f"cni-plugins tarball from the offline bundle copied into "
                        f"{len(done)} node(s)", force=True)
    return done


def flannel_documents(manifest: str, pod_subnet: str, source: str = "kube-flannel.yml"
                      ) -> list[dict[str, Any]]:
    """The manifest's objects, with net-conf.json's ``Network`` set to the pod subnet."""
    docs = [d for d in yaml.safe_load_all(manifest) if d]
    patched = False
    for doc in docs:
        if doc.get("kind") != "ConfigMap":
            continue
        data = doc.get("data") or {}
        if "net-conf.json" not in data:
            continue
        try:
            conf = json.loads(data["net-conf.json"])
        except ValueError as exc:
            raise ManifestError("net-conf.json is not JSON", source=source,
                                obj=f"ConfigMap {doc['metadata'].get('name')}",
                                field="data.net-conf.json") from exc
        conf["Network"] = pod_subnet
        data["net-conf.json"] = json.dumps(conf, indent=2)
        patched = True
    if not patched:
        raise ManifestError("no ConfigMap with net-conf.json", source=source,
                            hint="is this Flannel's kube-flannel.yml?")
    return docs


class Flannel(Recipe):
    name = "flannel"

    def __init__(self, fetch: Fetch = fetch_url) -> None:
        self.fetch = fetch

    # -- sim ---------------------------------------------------------------------------
    def install_sim(self, backend: SimBackend, progress: Progress | None = None) -> None:
        cluster = backend.cluster
        if cluster.cni is not None and cluster.cni.name == self.name:
            return
        if cluster.cni is not None:
            raise ClusterError(f"{cluster.cni.name} is already installed [simulated]",
                               hint="one CNI per cluster: recreate the cluster (lab.down())")
        # The controller-manager's node IPAM gave each node a /24 (node.spec.podCIDR) when
        # it registered; Flannel reads it and host-local assigns from .2, .1 being cni0.
        cluster.add_daemonset(PLUGINS_NAMESPACE, PLUGINS_DAEMONSET, {"app": PLUGINS_DAEMONSET})
        cluster.install_cni(CniRecord(self.name, NodeRangeIpam(cluster.pod_cidrs,
                                                               name="flannel/host-local"),
                                      NAMESPACE, DAEMONSET))
        if progress is not None:
            progress.update("flannel installed (simulated)", force=True)

    # -- kind --------------------------------------------------------------------------
    def kind_documents(self, pod_subnet: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """(the CNI-plugins DaemonSet, Flannel's objects): exactly what install_kind applies."""
        images = pinned("images")
        plugins = cni_plugins_daemonset(pinned("cni_plugins", "tarball"), images["curl"],
                                        images["agnhost"], pinned("cni_plugins", "sha256"))
        url = pinned("flannel", "manifest")
        return plugins, flannel_documents(self.fetch(url), pod_subnet, source=url)

    def install_kind(self, backend: KindBackend, progress: Progress | None = None) -> None:
        current = backend.installed_cni()
        if current not in (None, self.name):
            raise ClusterError(f"{current} is already installed in {backend.stage.cluster_name}",
                               hint="recreate the cluster (lab.down(); lab.up()) or follow the "
                               "migration lab")
        plugins, docs = self.kind_documents(backend.stage.pod_subnet)
        copy_offline_tarball([n.name for n in backend.node_rows()], progress, run=backend.run)
        backend.apply_raw([plugins])
        backend.wait_daemonset(PLUGINS_NAMESPACE, PLUGINS_DAEMONSET, timeout=300, progress=progress)
        backend.apply_raw(docs)
        backend.wait_daemonset(NAMESPACE, DAEMONSET, timeout=300, progress=progress)
        backend.wait_ready(nodes=True, namespaces=("kube-system",), timeout=300,
                           progress=progress)

    def verify_kind(self, backend: KindBackend) -> Sequence[VerificationCheck]:
        pods = [p for p in backend.pod_rows(NAMESPACE) if p.name.startswith(DAEMONSET)]
        running = [p for p in pods if p.phase == "Running"]
        out = [VerificationCheck("kube-flannel-ds pods Running",
                                 bool(pods) and len(running) == len(pods),
                                 f"{len(running)}/{len(pods)} Running")]
        missing = []
        for node in backend.node_rows():
            result = docker.node_exec(node.name, ["cat", SUBNET_ENV], check=False)
            if result.returncode != 0 or "FLANNEL_SUBNET=" not in result.stdout:
                missing.append(node.name)
        out.append(VerificationCheck(
            f"{SUBNET_ENV} on every node", not missing,
            "present" if not missing else f"missing on {', '.join(missing)}"))
        return out

    def verify_sim(self, backend: SimBackend) -> Sequence[VerificationCheck]:
        pods = [p for p in backend.pod_rows(NAMESPACE) if p.name.startswith(DAEMONSET)]
        return [VerificationCheck("kube-flannel-ds pods Running",
                                  bool(pods) and all(p.phase == "Running" for p in pods),
                                  f"{len(pods)} Running [simulated]")]


RECIPE = Flannel()
