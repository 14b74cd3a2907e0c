"""Helm verbs as typed functions over :mod:`labkit.tools.process`.

Every call names the kube context explicitly (``--kube-context``), so Helm never
acts on whatever context happens to be current.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from labkit.tools import process

Runner = Callable[..., process.Result]


def repo_add(name: str, url: str, *, run: Runner = process.run) -> process.Result:
    return run(["helm", "repo", "add", name, url, "--force-update"], timeout=120)


def repo_update(*names: str, run: Runner = process.run) -> process.Result:
    return run(["helm", "repo", "update", *names], timeout=300)


def upgrade_install_argv(release: str, chart: str, *, kube_context: str, namespace: str,
                         version: str = "", values: Sequence[Path] = (),
                         set_values: Mapping[str, str] | None = None, wait: bool = True,
                         timeout: str = "10m", create_namespace: bool = False) -> list[str]:
    """The exact ``helm upgrade --install`` command (pure, for tests and for showing learners)."""
    argv = ["helm", "upgrade", "--install", release, chart, "--kube-context", kube_context,
            "--namespace", namespace]
    if create_namespace:
        argv.append("--create-namespace")
    argv += _chart_options(version, values, set_values)
    if wait:
        argv += ["--wait", "--timeout", timeout]
    return argv


def _chart_options(version: str, values: Sequence[Path],
                   set_values: Mapping[str, str] | None) -> list[str]:
    argv = ["--version", version] if version else []
    for path in values:
        argv += ["--values", str(path)]
    for key, value in sorted((set_values or {}).items()):
        argv += ["--set", f"{key}={value}"]
    return argv


def template_argv(release: str, chart: str, *, namespace: str, version: str = "",
                  values: Sequence[Path] = (), set_values: Mapping[str, str] | None = None
                  ) -> list[str]:
    """``helm template``: the manifests an install would create, rendered locally."""
    return ["helm", "template", release, chart, "--namespace", namespace,
            *_chart_options(version, values, set_values)]


def upgrade_install(release: str, chart: str, *, kube_context: str, namespace: str,
                    run: Runner = process.run, process_timeout: float = 900,
                    on_output: Callable[[str], None] | None = None,
                    **options: object) -> process.Result:
    """``helm upgrade --install``; ``on_output`` (e.g. a Progress's ``update``) hears Helm's
    latest line about twice a second while ``--wait`` holds it."""
    argv = upgrade_install_argv(release, chart, kube_context=kube_context, namespace=namespace,
                                **options)  # type: ignore[arg-type]
    watch = {"on_output": on_output} if on_output else {}
    return run(argv, timeout=process_timeout,
               hint="`helm status RELEASE -n NAMESPACE` and the pods' events tell why", **watch)


def uninstall(release: str, *, kube_context: str, namespace: str,
              run: Runner = process.run) -> process.Result:
    return run(["helm", "uninstall", release, "--kube-context", kube_context,
                "--namespace", namespace, "--ignore-not-found"], timeout=300)


def version(*, run: Runner = process.run) -> str:
    return run(["helm", "version", "--short"], timeout=15).stdout.strip()
