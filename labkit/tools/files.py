"""Files labkit writes and fetches: its state folder, atomic writes, cached downloads."""

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
    """Download a manifest once and keep it (the pinned URL never changes content)."""
    cache = cache_dir or Path.home() / ".cache" / "labkit" / "manifests"
    target = cache / url.replace("://", "_").replace("/", "_")
    if target.exists():
        return target.read_text(encoding="utf-8")
    try:
        with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - pinned URL
            text = response.read().decode()
    except OSError as exc:
        raise ClusterError(f"could not download {url}: {exc}",
                           hint="check the network, or put the file at " + str(target)) from exc
    cache.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return text
