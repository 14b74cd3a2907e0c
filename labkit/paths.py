"""Where labkit keeps its own files on this machine: ``LABKIT_HOME`` and what lives in it.

``LABKIT_HOME`` defaults to ``$XDG_CACHE_HOME/labkit`` (``~/.cache/labkit``). It holds the
simulated clusters (``sim/``), the image pins of a loaded bundle (``images/``), the offline
manifests and CNI-plugins tarballs of a loaded bundle (``offline/``), the upstream manifests
fetched once (``manifests/``) and the tools ``labkit tools install`` verified (``bin/``).
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """labkit's own state folder (``LABKIT_HOME``, else the XDG cache folder)."""
    explicit = os.environ.get("LABKIT_HOME")
    if explicit:
        return Path(explicit).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "labkit"


def tools_bin() -> Path:
    """Where ``labkit tools install`` puts the pinned, verified tools by default."""
    return home() / "bin"


def manifests_dir() -> Path:
    """Upstream manifests, fetched once (or copied from a loaded bundle)."""
    return home() / "manifests"


def cached_manifest(url: str) -> Path:
    """The file that keeps the manifest at ``url``."""
    return manifests_dir() / url.replace("://", "_").replace("/", "_")


def offline_dir() -> Path:
    """Release files copied from a loaded bundle (the cni-plugins tarballs)."""
    return home() / "offline"


def offline_file(url: str) -> Path | None:
    """The loaded bundle's copy of the release file at ``url``, if there is one."""
    path = offline_dir() / url.rsplit("/", 1)[-1]
    return path if path.is_file() else None
