"""The safety guard: labkit acts only on its own kind clusters.

labkit never uses the *current* kube context. It names the context of the
stage's cluster explicitly (``kind-<cluster>``), and refuses unless that
context exists, points at a cluster of the same name, and talks to an API
server on this machine (kind publishes it on 127.0.0.1 by default). A context
called ``kind-cni-lab`` that points at a remote server is refused too: the
name alone proves nothing; nor is a context whose cluster entry sets ``proxy-url`` or
``tls-server-name`` (either can lead a 127.0.0.1 address to another machine).

The kubeconfig file list is resolved once (:func:`kubeconfig_paths`), merged once
(:func:`load_kubeconfig`), and the API client is built from the very entries the
guard approved (:attr:`LabContext.client_config`), never from ``$KUBECONFIG`` again:
what is judged is what is used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from labkit import inputs
from labkit.errors import ContextRefused, LabkitError

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
#: Entry lists of a kubeconfig, merged by name (the first file to name an entry wins).
SECTIONS = ("contexts", "clusters", "users")
#: Fields that name a file, relative to the kubeconfig that holds them (kubectl's rule).
FILE_FIELDS = {"clusters": ("certificate-authority",),
               "users": ("client-certificate", "client-key", "tokenFile")}
#: Cluster fields a lab context may not have: each can send the connection somewhere other
#: than the 127.0.0.1 address the guard approved (a proxy in front of it, or a TLS name
#: checked against another machine's certificate).
REMOTE_FIELDS = ("proxy-url", "tls-server-name")
#: User fields a lab context may not have: kind writes a client certificate, and these run a
#: program (exec) or an auth plugin the moment a client is built from the entry.
PLUGIN_FIELDS = ("exec", "auth-provider")


def kubeconfig_paths() -> list[Path]:
    """The files to read, resolved once: $KUBECONFIG (a path list) or ~/.kube/config.

    A ``~`` is expanded (as the kubernetes client and a shell do), so that what the guard
    judges is what a client built from the same list would read; but labkit never hands the
    client this list: it builds the client from the entries the guard approved
    (:attr:`LabContext.client_config`).
    """
    env = os.environ.get("KUBECONFIG")
    if env:
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    return [Path.home() / ".kube" / "config"]


def _read(path: Path) -> dict[str, Any] | None:
    """One kubeconfig file as a dict (None when it does not exist), or ContextRefused."""
    if not path.exists() and not path.is_symlink():
        return None  # kubectl skips missing files of the list too
    try:
        data = inputs.read_yaml(path, what="kubeconfig")
    except LabkitError as exc:
        raise ContextRefused(f"cannot read kubeconfig {exc.message}",
                             hint=f"fix or remove {path} (or drop it from KUBECONFIG)") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ContextRefused(f"kubeconfig {path} is {type(data).__name__}, not a mapping",
                             hint=f"fix or remove {path} (or drop it from KUBECONFIG)")
    for key in SECTIONS:
        entries = data.get(key)
        if entries is not None and not (
                isinstance(entries, list) and all(isinstance(e, dict) for e in entries)):
            raise ContextRefused(f"kubeconfig {path}: {key} must be a list of mappings",
                                 hint=f"fix or remove {path} (or drop it from KUBECONFIG)")
    return data


def _absolute(entry: dict[str, Any], section: str, folder: Path) -> dict[str, Any]:
    """``entry`` with its file fields made absolute against the kubeconfig's folder."""
    body = entry.get(section[:-1])
    if not isinstance(body, dict):
        return entry
    fixed = {k: str(folder / v) for k in FILE_FIELDS.get(section, ())
             if isinstance(v := body.get(k), str) and v and not os.path.isabs(v)}
    return {**entry, section[:-1]: {**body, **fixed}} if fixed else entry


def load_kubeconfig(paths: list[Path] | None = None) -> dict[str, Any]:
    """Merge kubeconfig files the way kubectl does: the first file to name an entry wins."""
    merged: dict[str, Any] = {"contexts": [], "clusters": [], "users": [],
                              "current-context": ""}
    seen: dict[str, set[str]] = {key: set() for key in SECTIONS}
    for path in paths if paths is not None else kubeconfig_paths():
        data = _read(path)
        if data is None:
            continue
        if not merged["current-context"]:
            merged["current-context"] = str(data.get("current-context") or "")
        for key in SECTIONS:
            for entry in data.get(key) or []:
                name = entry.get("name")
                if isinstance(name, str) and name and name not in seen[key]:
                    seen[key].add(name)
                    merged[key].append(_absolute(entry, key, path.parent))
    return merged


@dataclass(frozen=True)
class LabContext:
    """A context the guard accepted."""

    name: str
    cluster: str
    server: str
    #: A kubeconfig holding only the approved context, its cluster and its user: the one
    #: thing the API client is built from (``new_client_from_config_dict``).
    client_config: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


def context_for(cluster_name: str) -> str:
    return f"kind-{cluster_name}"


def check_context(kubeconfig: dict[str, Any], cluster_name: str, *,
                  requested: str | None = None) -> LabContext:
    """The lab's own context, or ContextRefused explaining why not.

    ``requested`` is a context someone asked for explicitly (e.g. ``LABKIT_CONTEXT``);
    it must be the lab's own.
    """
    wanted = context_for(cluster_name)
    current = kubeconfig.get("current-context") or "(none)"
    if requested is not None and requested != wanted:
        raise ContextRefused(
            f"refusing to use kube context '{requested}': labkit only acts on its own kind "
            f"cluster '{cluster_name}' (context '{wanted}')",
            hint=f"unset LABKIT_CONTEXT; labkit selects '{wanted}' itself and never "
            "touches other clusters")
    contexts = {c.get("name"): c.get("context") or {} for c in kubeconfig.get("contexts", [])}
    if wanted not in contexts:
        raise ContextRefused(
            f"no kube context '{wanted}' in your kubeconfig (current context: {current}); "
            "labkit will not use any other context",
            hint=f"create the lab cluster (lab.up()), or restore its context: "
            f"`kind export kubeconfig --name {cluster_name}`")
    ctx = contexts[wanted]
    if not isinstance(ctx, dict):
        raise ContextRefused(f"kube context '{wanted}' is not a mapping",
                             hint=f"`kind export kubeconfig --name {cluster_name}` rewrites it")
    cluster_ref = ctx.get("cluster", "")
    if cluster_ref != wanted:
        raise ContextRefused(
            f"kube context '{wanted}' points at cluster '{cluster_ref}', not at the kind "
            f"cluster '{wanted}'",
            hint=f"`kind export kubeconfig --name {cluster_name}` rewrites the context")
    clusters = {c.get("name"): c.get("cluster") or {} for c in kubeconfig.get("clusters", [])}
    cluster = clusters.get(cluster_ref, {})
    if not isinstance(cluster, dict):
        cluster = {}
    server = str(cluster.get("server", ""))
    try:
        host = urlparse(server).hostname or ""
    except ValueError:  # an unparsable URL ("https://[::1") names no host
        host = ""
    if host not in LOCAL_HOSTS:
        raise ContextRefused(
            f"kube context '{wanted}' talks to {server or 'no server'}, which is not a kind "
            "cluster on this machine; labkit refuses to act on it",
            hint=f"`kind export kubeconfig --name {cluster_name}` restores the real entry")
    for key in REMOTE_FIELDS:
        if cluster.get(key):
            raise ContextRefused(
                f"kube context '{wanted}' sets {key}: {str(cluster[key])[:80]}; a kind cluster "
                "is reached directly on this machine, so labkit refuses a context that may "
                "lead elsewhere",
                hint=f"`kind export kubeconfig --name {cluster_name}` restores the real entry")
    user_ref = ctx.get("user", "")
    users = [u for u in kubeconfig.get("users", []) if u.get("name") == user_ref][:1]
    user = users[0].get("user") if users else None
    for key in PLUGIN_FIELDS:
        if isinstance(user, dict) and user.get(key):
            raise ContextRefused(
                f"kube context '{wanted}' uses a user entry with {key}, which runs a program or "
                "plugin; a kind cluster's user is a client certificate, so labkit refuses it",
                hint=f"`kind export kubeconfig --name {cluster_name}` restores the real entry")
    client_config = {
        "apiVersion": "v1", "kind": "Config", "current-context": wanted,
        "contexts": [{"name": wanted, "context": dict(ctx)}],
        "clusters": [{"name": cluster_ref, "cluster": dict(cluster)}],
        "users": users,
    }
    return LabContext(wanted, cluster_ref, server, client_config)
