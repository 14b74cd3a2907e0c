"""Where simulated clusters live between processes: one JSON file per cluster.

A kind cluster outlives the Python process that created it (it lives in
Docker); a simulated one lives in ``$LABKIT_HOME/sim/<cluster>.json``, so
``labkit up`` in one process and ``labkit status`` / ``labkit down``, a restarted
notebook kernel or the next notebook of ``labkit run`` find the same cluster.

``LABKIT_HOME`` defaults to ``$XDG_CACHE_HOME/labkit`` (``~/.cache/labkit``).
Writes are atomic (a temporary file in the same folder, then ``os.replace``), so
a reader sees the old state or the new one, never half a file. There is no
locking: two processes changing the same simulated cluster at once keep the
last writer's state, as for any file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from labkit.errors import ClusterError
from labkit.tools.files import home, write_atomic

#: Identifies one version of a state file: (inode, mtime in ns, size); None when absent.
Signature = tuple[int, int, int] | None


def folder() -> Path:
    return home() / "sim"


def path_for(cluster: str) -> Path:
    return folder() / f"{cluster}.json"


def flows_path_for(cluster: str) -> Path:
    """The simulated Hubble flows of a cluster: ``hubble observe -o jsonpb`` lines, appended
    as the sim answers probes (kept beside the state file, not in it: a flow buffer grows)."""
    return folder() / f"{cluster}.flows.jsonl"


def append_lines(path: Path, lines: list[str]) -> None:
    """Add whole lines at the end of ``path`` (created if missing)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            f.writelines(line + "\n" for line in lines)
    except OSError as exc:
        raise ClusterError(f"cannot save the simulated flows to {path}: {exc.strerror or exc}",
                           hint="set LABKIT_HOME to a writable folder") from exc


def read_lines(path: Path) -> list[str]:
    """The lines of ``path``; none when it does not exist."""
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []


def signature(path: Path) -> Signature:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1) + "\n"


def write(path: Path, text: str) -> Signature:
    """Write ``text`` atomically; returns the new file's signature."""
    try:
        write_atomic(path, text)
    except OSError as exc:
        raise ClusterError(f"cannot save the simulated cluster to {path}: {exc.strerror or exc}",
                           hint="set LABKIT_HOME to a writable folder") from exc
    return signature(path)


def read(path: Path) -> tuple[Any, str, Signature]:
    """(parsed JSON, text, signature) of a state file; ValueError when it is not JSON."""
    with path.open(encoding="utf-8") as f:  # stat the file we read, even if replaced meanwhile
        st = os.fstat(f.fileno())
        text = f.read()
    return json.loads(text), text, (st.st_ino, st.st_mtime_ns, st.st_size)


def remove(cluster: str) -> bool:
    """Delete a cluster's state file (and its flows); True if there was a state file."""
    flows_path_for(cluster).unlink(missing_ok=True)
    try:
        path_for(cluster).unlink()
    except FileNotFoundError:
        return False
    return True


def cluster_names() -> list[str]:
    """Every simulated cluster saved under the current ``LABKIT_HOME``."""
    base = folder()
    if not base.is_dir():
        return []
    return sorted(p.stem for p in base.glob("*.json") if not p.name.startswith("."))
