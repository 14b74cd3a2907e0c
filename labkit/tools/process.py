"""The one place labkit runs external programs.

Argument lists only (never a shell string), a timeout on every call, and
failures turned into :class:`~labkit.errors.ToolError` carrying the command,
the tail of its stderr and a hint that names the fix.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import selectors
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO

from labkit.errors import ToolError, ToolNotFound
from labkit.tools.files import tools_bin

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


def resolve(argv: Sequence[str], what: str) -> str:
    """The program to start for ``argv``: its path, or ToolNotFound with the install hint."""
    if not argv:
        raise ValueError(f"{what}() needs a command")
    tool = argv[0]
    path = which(tool) if os.sep not in tool else tool
    if path is None:
        raise ToolNotFound(f"'{tool}' is not installed or not on PATH", command=shlex.join(argv),
                           hint=INSTALL_HINTS.get(tool, f"install {tool}"))
    return path


def run(
    argv: Sequence[str],
    *,
    timeout: float = 120,
    check: bool = True,
    input: str | None = None,
    env: Mapping[str, str] | None = None,
    hint: str = "",
    on_output: Callable[[str], None] | None = None,
) -> Result:
    """Run ``argv`` and return its :class:`Result`.

    Raises ToolNotFound when the program is missing, and ToolError when it
    times out or (with ``check``) exits non-zero. ``on_output``, for long commands
    (``kind create cluster``, ``helm upgrade --install --wait``), is called about twice a
    second with the last line the program printed, for a progress report.
    """
    path = resolve(argv, "run")
    tool = argv[0]
    full_env = {**os.environ, **env} if env else None
    try:
        if on_output is not None and input is None:
            proc = _watched([path, *argv[1:]], argv, timeout, env, on_output)
        else:
            proc = subprocess.run(
                [path, *argv[1:]], capture_output=True, text=True, timeout=timeout,
                input=input, env=full_env, check=False,
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


def _watched(command: Sequence[str], argv: Sequence[str], timeout: float,
             env: Mapping[str, str] | None, on_output: Callable[[str], None],
             poll: float = 0.5) -> subprocess.CompletedProcess[str]:
    """:func:`subprocess.run`'s result, while telling ``on_output`` the latest line."""
    job = background(command, env=env)
    job.args = tuple(argv)
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        try:
            job._proc.wait(timeout=poll)
            finished = True
        except subprocess.TimeoutExpired:
            finished = False
        out, err = job.output()
        lines = [ln.strip() for ln in (err + out).splitlines() if ln.strip()]
        if lines and lines[-1] != last:
            last = lines[-1]
            on_output(last)
        if finished:
            result = job.wait(0)
            return subprocess.CompletedProcess(list(argv), result.returncode, result.stdout,
                                               result.stderr)
        if time.monotonic() >= deadline:
            result = job.stop()
            raise subprocess.TimeoutExpired(list(argv), timeout, output=result.stdout,
                                            stderr=result.stderr)


def stream(
    argv: Sequence[str],
    write: Callable[[str], object],
    *,
    timeout: float = 300,
    input: str | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    """Run ``argv`` and hand its output (stdout and stderr, interleaved as the program writes
    them) to ``write`` as it comes, chunk by chunk; return the exit code.

    A program still running after ``timeout`` seconds (``kubectl get -w``, ``hubble observe
    -f``) or interrupted (Jupyter's stop button) is killed; a line says so. ToolNotFound
    when the program is missing.
    """
    path = resolve(argv, "stream")
    tool = argv[0]
    try:
        proc = subprocess.Popen(
            [path, *argv[1:]], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            env={**os.environ, **env} if env else None)
    except OSError as exc:
        raise ToolError(f"could not start '{tool}': {exc}", command=shlex.join(argv)) from exc
    assert proc.stdout is not None
    if input is not None and proc.stdin is not None:
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.write(input.encode())
        proc.stdin.close()
    deadline = time.monotonic() + timeout
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    fd = proc.stdout.fileno()
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    write(f"[labkit: stopped '{shlex.join(argv)}' after {timeout:g}s]\n")
                    break
                if not sel.select(timeout=min(left, 0.5)):
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:  # end of output: the program closed it (it has exited)
                    break
                text = decoder.decode(chunk)
                if text:
                    write(text)
    except KeyboardInterrupt:
        write(f"[labkit: interrupted '{shlex.join(argv)}']\n")
    finally:
        if proc.poll() is None:
            proc.kill()
        code = proc.wait(timeout=10)
        proc.stdout.close()
    return code


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
    path = resolve(argv, "background")
    tool = argv[0]
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
