"""The one place labkit runs external programs.

Argument lists only (never a shell string), a timeout on every call, and
failures turned into :class:`~labkit.errors.ToolError` carrying the command,
the tail of its stderr and a hint that names the fix.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO

from labkit.errors import ToolError, ToolNotFound
from labkit.paths import tools_bin

#: How to get each tool the course drives, shown when it is missing.
INSTALL_HINTS: dict[str, str] = {
    "docker": "install Docker Engine (Linux) or Docker Desktop, and start it",
    "kind": "`labkit tools install` (the pinned kind, checksum-verified, into "
    "$LABKIT_HOME/bin), or set LABKIT_KIND to a kind binary you have",
    "kubectl": "`labkit tools install` (the pinned kubectl, checksum-verified)",
    "helm": "`labkit tools install` (the pinned Helm, checksum-verified)",
    "cilium": "`labkit tools install` (the pinned cilium-cli, checksum-verified)",
    "hubble": "`labkit tools install` (the pinned hubble CLI, checksum-verified)",
}

STDERR_TAIL = 2000


@dataclass(frozen=True)
class Result:
    """What a finished command left behind; shaped like subprocess.CompletedProcess."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def command(self) -> str:
        return shlex.join(self.args)


def which(tool: str) -> str | None:
    """Path of ``tool``: ``LABKIT_<TOOL>`` if set; else the pinned copy that ``labkit tools
    install`` verified into ``$LABKIT_HOME/bin``; else the PATH lookup."""
    override = os.environ.get(f"LABKIT_{tool.upper().replace('-', '_')}")
    if override:
        return override if os.path.exists(override) else None
    own = tools_bin() / tool
    if own.is_file() and os.access(own, os.X_OK):
        return str(own)
    return shutil.which(tool)


def run(
    argv: Sequence[str],
    *,
    timeout: float = 120,
    check: bool = True,
    input: str | None = None,
    env: Mapping[str, str] | None = None,
    hint: str = "",
) -> Result:
    """Run ``argv`` and return its :class:`Result`.

    Raises ToolNotFound when the program is missing, and ToolError when it
    times out or (with ``check``) exits non-zero.
    """
    if not argv:
        raise ValueError("run() needs a command")
    tool = argv[0]
    path = which(tool) if os.sep not in tool else tool
    if path is None:
        raise ToolNotFound(
            f"'{tool}' is not installed or not on PATH",
            command=shlex.join(argv),
            hint=INSTALL_HINTS.get(tool, f"install {tool}"),
        )
    full_env = {**os.environ, **env} if env else None
    try:
        proc = subprocess.run(
            [path, *argv[1:]], capture_output=True, text=True, timeout=timeout, input=input,
            env=full_env, check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ToolError(
            f"'{shlex.join(argv)}' did not finish within {timeout:g}s",
            command=shlex.join(argv),
            stderr=_text(exc.stderr)[-STDERR_TAIL:],
            hint=hint or "the cluster may be overloaded; check `labkit status` and retry",
        ) from exc
    except OSError as exc:
        raise ToolError(
            f"could not start '{tool}': {exc}", command=shlex.join(argv), hint=hint
        ) from exc
    result = Result(tuple(argv), proc.returncode, proc.stdout, proc.stderr)
    if check and proc.returncode != 0:
        raise ToolError(
            f"'{result.command}' failed with exit code {proc.returncode}: "
            f"{proc.stderr.strip()[-STDERR_TAIL:] or proc.stdout.strip()[-STDERR_TAIL:]}",
            command=result.command,
            stderr=proc.stderr[-STDERR_TAIL:],
            returncode=proc.returncode,
            hint=hint,
        )
    return result


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


class Background:
    """A program left running (a packet capture, say) while labkit does something else.

    Its output goes to temporary files, so it can be read while the program runs
    (``output()``) without threads; ``wait()`` and ``stop()`` return a :class:`Result`.
    """

    def __init__(self, argv: Sequence[str], proc: subprocess.Popen[bytes], out: IO[bytes],
                 err: IO[bytes]) -> None:
        self.args = tuple(argv)
        self._proc, self._out, self._err = proc, out, err

    @property
    def command(self) -> str:
        return shlex.join(self.args)

    def running(self) -> bool:
        return self._proc.poll() is None

    def output(self) -> tuple[str, str]:
        """(stdout, stderr) written so far."""
        return _read(self._out), _read(self._err)

    def wait(self, timeout: float) -> Result:
        """Wait for the program to end; after ``timeout`` seconds it is killed (and reaped)."""
        try:
            self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=10)
        return self._result()

    def stop(self, grace: float = 5) -> Result:
        """SIGTERM, then SIGKILL after ``grace`` seconds."""
        if self.running():
            self._proc.terminate()
        return self.wait(grace)

    def _result(self) -> Result:
        stdout, stderr = self.output()
        for f in (self._out, self._err):
            f.close()
        return Result(self.args, self._proc.returncode, stdout, stderr)


def background(argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> Background:
    """Start ``argv`` and return at once; see :class:`Background`. ToolNotFound if missing."""
    if not argv:
        raise ValueError("background() needs a command")
    tool = argv[0]
    path = which(tool) if os.sep not in tool else tool
    if path is None:
        raise ToolNotFound(f"'{tool}' is not installed or not on PATH", command=shlex.join(argv),
                           hint=INSTALL_HINTS.get(tool, f"install {tool}"))
    # The files outlive this function: Background closes them when the program is reaped.
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()  # noqa: SIM115
    try:
        proc = subprocess.Popen([path, *argv[1:]], stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL, env={**os.environ, **env} if env
                                else None)
    except OSError as exc:
        out.close()
        err.close()
        raise ToolError(f"could not start '{tool}': {exc}", command=shlex.join(argv)) from exc
    return Background(argv, proc, out, err)


def _read(f: IO[bytes]) -> str:
    f.flush()
    f.seek(0)
    return f.read().decode(errors="replace")
