"""kind verbs as typed functions over :mod:`labkit.tools.process`.

Every function takes ``run`` (the process runner) so tests can pass a fake and
assert the exact argv; real callers use the default.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from labkit.errors import ClusterError, ToolError
from labkit.tools import process

Runner = Callable[..., process.Result]

#: What ``kind get clusters`` prints (to stderr) when there are none.
NO_CLUSTERS = "No kind clusters found."


def parse_clusters(stdout: str) -> list[str]:
    """Cluster names from ``kind get clusters`` (one per line; the 'none' notice is not one)."""
    return [line.strip() for line in stdout.splitlines()
            if line.strip() and line.strip() != NO_CLUSTERS]


def get_clusters(*, run: Runner = process.run) -> list[str]:
    # kind lists clusters through `docker ps`: it fails when the Docker daemon is down.
    result = run(["kind", "get", "clusters"], timeout=30,
                 hint="kind asks Docker for its clusters: is Docker running? (`docker info`)")
    return parse_clusters(result.stdout)


def create_cluster(name: str, config: Path, *, run: Runner = process.run,
                   timeout: float = 1800, on_output: Callable[[str], None] | None = None
                   ) -> process.Result:
    """``kind create cluster`` from a config file. No ``--wait``: without a CNI nodes never
    become Ready, so labkit waits itself once the CNI is in.

    The timeout is long because the first run pulls the node image (several hundred MB)
    inside this command, on whatever link a laptop has. kind removes the nodes itself
    when it fails, but not when it is killed: after a timeout labkit deletes the
    half-created cluster, which a later ``up()`` would otherwise reuse as if it were whole.
    An interrupt (Ctrl-C) deletes it the same way, then goes on interrupting.
    """
    argv = ["kind", "create", "cluster", "--name", name, "--config", str(config)]
    watch = {"on_output": on_output} if on_output else {}  # kind's step lines, as they come
    try:
        return run(argv, timeout=timeout, hint=_create_hint(""), **watch)
    except KeyboardInterrupt:
        try:
            delete_cluster(name, run=run)
        except ToolError:
            print(f"labkit: could not delete the half-created cluster; run `kind delete "
                  f"cluster --name {name}`", file=sys.stderr)
        raise
    except ToolError as exc:
        hint = _create_hint(exc.stderr)
        if exc.returncode is None:  # killed on timeout (process.run sets no code then)
            try:
                delete_cluster(name, run=run)
                hint = "the half-created cluster was deleted; " \
                       "pull the node image first (`docker pull IMAGE`, from versions.yaml " \
                       "kind.node_image) on a slow link, then retry"
            except ToolError:
                hint = f"delete the half-created cluster (`kind delete cluster --name {name}`)" \
                       " and retry"
        raise ToolError(exc.message, command=exc.command, stderr=exc.stderr,
                        returncode=exc.returncode, hint=hint) from exc


def _create_hint(stderr: str) -> str:
    if "already exist for a cluster with the name" in stderr:
        return "a cluster of that name half-exists: `labkit down` (or `kind delete cluster "\
               "--name NAME`) and retry"
    if "non-overlapping IPv4 address pool" in stderr:
        return "Docker ran out of subnets: remove unused networks (`docker network prune`) or "\
               "set default-address-pools in Docker's daemon.json (kind known issues)"
    if "too many open files" in stderr.lower():
        return "raise inotify limits: sysctl fs.inotify.max_user_watches=524288 "\
               "fs.inotify.max_user_instances=512 (kind known issues)"
    return "check that Docker is running and has enough memory (`labkit doctor`)"


def delete_cluster(name: str, *, run: Runner = process.run, timeout: float = 300
                   ) -> process.Result:
    return run(["kind", "delete", "cluster", "--name", name], timeout=timeout)


def get_kubeconfig(name: str, *, run: Runner = process.run) -> str:
    result = run(["kind", "get", "kubeconfig", "--name", name], timeout=30)
    return result.stdout


def export_kubeconfig(name: str, *, run: Runner = process.run) -> process.Result:
    """Write the cluster's context back into the user's kubeconfig (after it was removed)."""
    return run(["kind", "export", "kubeconfig", "--name", name], timeout=30)


def load_image(name: str, image: str, *, run: Runner = process.run,
               timeout: float = 600) -> process.Result:
    """Copy a locally present image into every node (offline workshops, image bundles)."""
    return run(["kind", "load", "docker-image", image, "--name", name], timeout=timeout,
               hint=f"pull the image first: docker pull {image}")


def version(*, run: Runner = process.run) -> str:
    """``kind version`` output, e.g. ``kind v0.33.0 go1.25.0 linux/amd64``."""
    return run(["kind", "version"], timeout=15).stdout.strip()


def require_cluster(name: str, *, run: Runner = process.run) -> None:
    """Raise ClusterError unless kind knows a cluster called ``name``."""
    clusters = get_clusters(run=run)
    if name not in clusters:
        raise ClusterError(
            f"the kind cluster '{name}' does not exist"
            + (f" (kind clusters: {', '.join(clusters)})" if clusters else ""),
            hint="create it with lab.up() or `labkit up STAGE`")
