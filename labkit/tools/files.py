"""Files labkit writes and fetches: its state folder, atomic writes, cached downloads.

``LABKIT_HOME`` (default ``$XDG_CACHE_HOME/labkit``, i.e. ``~/.cache/labkit``) holds the
simulated clusters (``sim/``), the image pins of a loaded bundle (``images/``), the upstream
manifests fetched once or copied from a bundle (``manifests/``), the release files of a loaded
bundle (``offline/``: the cni-plugins tarballs) and the tools ``labkit tools install``
verified (``bin/``).
"""

from __future__ import annotations

import os
import tempfile
import urllib.request
from pathlib import Path

from labkit.errors import ClusterError


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


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temp file beside ``path``, then rename: readers never see half a file.

    Raises OSError; callers say what they were saving.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def fetch_url(url: str, *, cache_dir: Path | None = None) -> str:
    """Download a manifest once and keep it in ``$LABKIT_HOME/manifests`` (the pinned URL
    never changes content); ``labkit images load`` fills that folder from an offline bundle."""
    target = (cache_dir / cached_manifest(url).name) if cache_dir else cached_manifest(url)
    if target.exists():
        return target.read_text(encoding="utf-8")
    try:
        with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - pinned URL
            text = response.read().decode()
    except OSError as exc:
        raise ClusterError(f"could not download {url}: {exc}",
                           hint="check the network; offline, load the course's bundle "
                           f"(`labkit images load FILE`), or put the file at {target}") from exc
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return text
