"""Where simulated clusters live between processes: one JSON file per cluster.

A kind cluster outlives the Python process that created it (it lives in
Docker); a simulated one lives in ``$LABKIT_HOME/sim/<cluster>.json``, so
``labkit up`` in one process and ``labkit status`` / ``labkit down``, a restarted
notebook kernel or the next notebook of ``labkit run`` find the same cluster.

``LABKIT_HOME`` defaults to ``$XDG_CACHE_HOME/labkit`` (``~/.cache/labkit``).
Writes are atomic (a temporary file in the same folder, then ``os.replace``), so
a reader sees the old state or the new one, never half a file. A change is a
read-modify-write held under an exclusive ``fcntl.flock`` on ``<cluster>.json.lock``
(:func:`locked`; the state file itself is replaced on every write, so it cannot
carry the lock): two processes applying to one simulated cluster take turns, and
neither loses the other's writes.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from labkit import inputs
from labkit.errors import ClusterError, LabkitError
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
    return inputs.dumps(data, indent=1) + "\n"


#: Locks this process holds: cluster name -> (open lock file, depth). Re-entrant, because a
#: second flock on another descriptor of the same file would wait for ourselves.
_HELD: dict[str, tuple[int, int]] = {}


@contextmanager
def locked(cluster: str) -> Iterator[None]:
    """Hold the cluster's lock (exclusive, blocking, re-entrant within this process)."""
    if cluster in _HELD:
        fd, depth = _HELD[cluster]
        _HELD[cluster] = (fd, depth + 1)
        try:
            yield
        finally:
            _HELD[cluster] = (fd, _HELD[cluster][1] - 1)
        return
    path = folder() / f"{cluster}.json.lock"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise ClusterError(f"cannot lock the simulated cluster at {path}: "
                           f"{exc.strerror or exc}",
                           hint="set LABKIT_HOME to a writable folder") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _HELD[cluster] = (fd, 1)
        try:
            yield
        finally:
            del _HELD[cluster]
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def write(path: Path, text: str) -> Signature:
    """Write ``text`` atomically; returns the new file's signature."""
    try:
        write_atomic(path, text)
    except OSError as exc:
        raise ClusterError(f"cannot save the simulated cluster to {path}: {exc.strerror or exc}",
                           hint="set LABKIT_HOME to a writable folder") from exc
    return signature(path)


def read(path: Path) -> tuple[Any, str, Signature]:
    """(parsed JSON, text, signature) of a state file; LabkitError when it is not a regular
    file, too big, not UTF-8 or not strict JSON (see labkit.inputs)."""
    # Non-blocking open: a FIFO put in its place must not hang the reader. fstat the file we
    # read, even if it is replaced meanwhile.
    with open(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC), "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_size > inputs.MAX_FILE_BYTES:
            raise LabkitError(f"{path} is not a regular file of at most "
                              f"{inputs.MAX_FILE_BYTES} bytes")
        text = inputs.decode(f.read(inputs.MAX_FILE_BYTES + 1), str(path), "state file")
    data = inputs.json_value(text, str(path), what="state file")
    return data, text, (st.st_ino, st.st_mtime_ns, st.st_size)


def remove(cluster: str) -> bool:
    """Delete a cluster's state file (and its flows) without reading it (a corrupt one too);
    True if there was a state file."""
    flows_path_for(cluster).unlink(missing_ok=True)
    try:
        path_for(cluster).unlink()
    except FileNotFoundError:
        return False
    except IsADirectoryError:
        shutil.rmtree(path_for(cluster))
    return True


def cluster_names() -> list[str]:
    """Every simulated cluster saved under the current ``LABKIT_HOME``."""
    base = folder()
    if not base.is_dir():
        return []
    return sorted(p.stem for p in base.glob("*.json") if not p.name.startswith("."))
