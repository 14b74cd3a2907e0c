"""``labkit tools install [--dest DIR]``: the course's CLIs, pinned and verified.

kind, kubectl, helm, cilium-cli and hubble at the versions of environments/versions.yaml,
for this machine's OS and architecture (linux or darwin, amd64 or arm64). Each download is
checked against the SHA-256 that versions.yaml ``tools:`` records from the upstream
release's own checksum file, *before* anything is unpacked or made executable; a mismatch
deletes the download and names both sums. An artifact with no recorded sum is refused:
nothing unverified is ever installed, and no shell script is ever piped anywhere.

Each tool lands atomically: it is written to a temporary file in the destination folder,
made executable, then renamed over the old one, so a reader sees the old binary or the new
one, never half of one. The default destination, ``$LABKIT_HOME/bin``, is where
:func:`labkit.tools.process.which` looks first, so ``labkit doctor`` and the kind backend
use these copies without any PATH change.

``LABKIT_TOOLS_MIRROR=URL`` downloads every artifact from ``URL/<file name>`` instead (a
room's local web server); the sums checked are the same pinned ones.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import os
import platform
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from labkit.environments import load_versions
from labkit.errors import LabkitError, ManifestError
from labkit.tools.files import tools_bin

CHUNK = 1 << 16
TIMEOUT = 60.0  # seconds without a byte before a download is abandoned
ARCHES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
SYSTEMS = {"Linux": "linux", "Darwin": "darwin"}

Echo = Callable[[str], None]


@dataclass(frozen=True)
class Artifact:
    """One tool for one platform: where it comes from and what it must hash to."""

    tool: str
    version: str
    url: str
    sha256: str | None  # None: no upstream sum recorded, so it is refused
    member: str  # path of the binary inside a .tar.gz; "" for a bare binary
    source: str  # the upstream checksum file the sum comes from

    @property
    def file_name(self) -> str:
        return self.url.rsplit("/", 1)[-1]


@dataclass
class Outcome:
    tool: str
    status: str  # installed | refused | failed
    detail: str
    path: str = ""


@dataclass
class InstallReport:
    dest: str
    platform: str
    outcomes: list[Outcome] = field(default_factory=list)
    on_path: bool = True  # whether doctor and the kind backend will find the tools

    @property
    def ok(self) -> bool:
        return all(o.status == "installed" for o in self.outcomes)

    def to_text(self) -> str:
        lines = [f"labkit tools install: {self.platform} -> {self.dest}"]
        lines += [f"  {o.tool:<8} {o.status.upper():<9} {o.detail}" for o in self.outcomes]
        if not self.on_path:
            lines.append(f"note: {self.dest} is neither $LABKIT_HOME/bin nor on PATH: add it "
                         "to PATH, or doctor and the kind backend will not find these tools")
        return "\n".join(lines)


# -- the pins ---------------------------------------------------------------------------------
def host_platform(system: str | None = None, machine: str | None = None) -> str:
    """``os-arch`` as release assets name it (``linux-amd64``...); LabkitError elsewhere."""
    system = system or platform.system()
    machine = (machine or platform.machine()).lower()
    os_name, arch = SYSTEMS.get(system), ARCHES.get(machine)
    if os_name is None or arch is None:
        raise LabkitError(f"no pinned tools for {system}/{machine}",
                          hint="the course pins linux and darwin on amd64 and arm64; on "
                          "Windows, run the course inside WSL2")
    return f"{os_name}-{arch}"


def _pin(versions: Mapping[str, Any], dotted: str, tool: str) -> str:
    value: Any = versions
    for key in dotted.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    if not value:
        raise ManifestError(f"tools.{tool}.pin names {dotted}, which has no value",
                            source="environments/versions.yaml", field=f"tools.{tool}.pin",
                            hint="point it at a key holding the tool's version")
    return str(value)


def artifacts(plat: str, versions: Mapping[str, Any] | None = None) -> list[Artifact]:
    """Every tool of versions.yaml ``tools:`` for platform ``plat`` (``linux-amd64``...)."""
    versions = load_versions() if versions is None else versions
    table = versions.get("tools")
    if not isinstance(table, dict) or not table:
        raise ManifestError("no tools: table", source="environments/versions.yaml",
                            field="tools", hint="restore it from the repository")
    os_name, arch = plat.split("-")
    out = []
    for tool, spec in table.items():
        where = f"tools.{tool}"
        for key in ("pin", "url", "source"):
            if not isinstance(spec, dict) or not spec.get(key):
                raise ManifestError(f"missing {key}", source="environments/versions.yaml",
                                    field=f"{where}.{key}", hint="every tool needs pin, url "
                                    "and source (the upstream checksum file)")
        version = _pin(versions, str(spec["pin"]), tool)

        def fill(text: str, version: str = version) -> str:
            return text.format(version=version, os=os_name, arch=arch)

        sums = spec.get("sha256") or {}
        sha = sums.get(plat)
        if sha is not None and (len(str(sha)) != 64 or not _is_hex(str(sha))):
            raise ManifestError(f"{sha!r} is not a SHA-256", source="environments/versions.yaml",
                                field=f"{where}.sha256.{plat}",
                                hint="copy the 64 hex digits of the upstream checksum file")
        out.append(Artifact(tool, version, fill(str(spec["url"])),
                            str(sha).lower() if sha else None,
                            fill(str(spec.get("member") or "")), fill(str(spec["source"]))))
    return out


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


# -- one download -----------------------------------------------------------------------------
class DownloadError(LabkitError):
    """A download that did not produce the pinned bytes (deleted before raising)."""


def _url_for(artifact: Artifact, mirror: str | None) -> str:
    return f"{mirror.rstrip('/')}/{artifact.file_name}" if mirror else artifact.url


def download(url: str, target: IO[bytes], *, name: str, timeout: float = TIMEOUT,
             echo: Echo | None = None, interval: float = 2.0) -> str:
    """Stream ``url`` into ``target``; returns the SHA-256 of what arrived.

    Fails on an HTTP error, on ``timeout`` seconds without data, and on fewer bytes than
    the server announced (a cut connection). Progress: a line at most every ``interval``.
    """
    say = echo or (lambda line: None)
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - pinned
            expected = int(response.headers.get("Content-Length") or 0)
            got, last = 0, time.monotonic()
            while True:
                chunk = response.read(CHUNK)
                if not chunk:
                    break
                digest.update(chunk)
                target.write(chunk)
                got += len(chunk)
                if time.monotonic() - last >= interval:
                    last = time.monotonic()
                    of = f" of {expected / 1e6:.1f}" if expected else ""
                    say(f"  {name}: {got / 1e6:.1f}{of} MB")
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"{name}: {url} answered HTTP {exc.code} {exc.reason}",
                            hint="the pinned version or URL in versions.yaml `tools:` may be "
                            "wrong, or the mirror lacks the file") from exc
    except (TimeoutError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(f"{name}: downloading {url} failed: {reason}",
                            hint="check the network (or the mirror) and run "
                            "`labkit tools install` again; nothing was installed") from exc
    if expected and got < expected:
        raise DownloadError(f"{name}: {url} ended after {got} of {expected} bytes",
                            hint="the connection was cut: run `labkit tools install` again")
    return digest.hexdigest()


def _write_binary(artifact: Artifact, data: IO[bytes], out: IO[bytes]) -> None:
    """Copy the executable into ``out``: the download itself, or its ``member`` out of the
    .tar.gz."""
    data.seek(0)
    if not artifact.member:
        shutil.copyfileobj(data, out)
        return
    try:
        with tarfile.open(fileobj=data, mode="r:gz") as tar:
            member = tar.getmember(artifact.member)
            handle = tar.extractfile(member) if member.isfile() else None
            if handle is None:
                raise DownloadError(f"{artifact.tool}: {artifact.member!r} in "
                                    f"{artifact.file_name} is not a regular file",
                                    hint=f"fix tools.{artifact.tool}.member in versions.yaml")
            shutil.copyfileobj(handle, out)
    except (tarfile.TarError, KeyError, EOFError, OSError) as exc:
        raise DownloadError(f"{artifact.tool}: {artifact.file_name} has no file "
                            f"{artifact.member!r} ({exc})",
                            hint="the archive matched its pinned sum, so versions.yaml "
                            f"`tools.{artifact.tool}.member` is wrong") from exc


@contextlib.contextmanager
def _temp_in(folder: Path, prefix: str) -> Iterator[tuple[IO[bytes], Path]]:
    """A temporary file inside ``folder`` (same file system: the final rename is atomic),
    removed on the way out unless it was renamed away."""
    fd, name = tempfile.mkstemp(prefix=f".{prefix}.", suffix=".part", dir=folder)
    path = Path(name)
    try:
        with os.fdopen(fd, "w+b") as handle:
            yield handle, path
    finally:
        path.unlink(missing_ok=True)


def install_one(artifact: Artifact, dest: Path, *, mirror: str | None = None,
                timeout: float = TIMEOUT, echo: Echo | None = None) -> Path:
    """Download, verify, unpack and atomically install one tool; returns its path."""
    say = echo or (lambda line: print(line, file=sys.stderr, flush=True))
    if artifact.sha256 is None:
        raise DownloadError(
            f"{artifact.tool} {artifact.version}: no upstream SHA-256 is recorded for "
            f"{artifact.file_name}, so it is not installed (labkit never installs an "
            "unverified binary)",
            hint=f"add it to environments/versions.yaml tools.{artifact.tool}.sha256 from "
            f"{artifact.source}, or install {artifact.tool} yourself")
    url = _url_for(artifact, mirror)
    say(f"{artifact.tool} {artifact.version}: downloading {url}")
    with _temp_in(dest, f"{artifact.tool}-download") as (part, _):
        got = download(url, part, timeout=timeout, echo=say, name=artifact.tool)
        if got != artifact.sha256:
            raise DownloadError(
                f"{artifact.tool}: checksum mismatch for {artifact.file_name}: expected "
                f"{artifact.sha256} (pinned, from {artifact.source}), got {got}; the download "
                "was deleted",
                hint="retry; if it persists, the file on the server is not the release the "
                "course pins (a proxy, a mirror or a re-tagged release): do not install it")
        with _temp_in(dest, artifact.tool) as (out, tmp):
            _write_binary(artifact, part, out)
            out.flush()
            os.fchmod(out.fileno(), 0o755)
            final = dest / artifact.tool
            os.replace(tmp, final)
    return final


# -- all of them ------------------------------------------------------------------------------
def install(dest: Path | None = None, tools: Sequence[str] | None = None, *,
            plat: str | None = None, versions: Mapping[str, Any] | None = None,
            mirror: str | None = None, timeout: float = TIMEOUT,
            echo: Echo | None = None) -> InstallReport:
    """Install every pinned tool (or ``tools``) into ``dest`` (default ``$LABKIT_HOME/bin``).

    One tool's failure does not stop the others; the report says what happened to each.
    """
    plat = plat or host_platform()
    folder = (dest or tools_bin()).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LabkitError(f"cannot create {folder}: {exc.strerror or exc}",
                          hint="choose a writable folder with --dest DIR") from exc
    chosen = artifacts(plat, versions)
    if tools:
        known = [a.tool for a in chosen]
        unknown = [t for t in tools if t not in known]
        if unknown:
            raise LabkitError(f"unknown tool(s): {', '.join(unknown)}",
                              hint=f"the pinned tools are {', '.join(known)}")
        chosen = [a for a in chosen if a.tool in tools]
    mirror = mirror if mirror is not None else os.environ.get("LABKIT_TOOLS_MIRROR") or None
    report = InstallReport(str(folder), plat)
    for artifact in chosen:
        try:
            path = install_one(artifact, folder, mirror=mirror, timeout=timeout, echo=echo)
        except DownloadError as exc:
            status = "refused" if artifact.sha256 is None else "failed"
            report.outcomes.append(Outcome(artifact.tool, status, exc.one_line()))
        else:
            report.outcomes.append(Outcome(
                artifact.tool, "installed",
                f"{artifact.version}, sha256 verified against {artifact.source}", str(path)))
    report.on_path = _found_there(folder)
    return report


def _found_there(folder: Path) -> bool:
    """Will :func:`labkit.tools.process.which` look in ``folder``?"""
    resolved = folder.resolve()
    if resolved == tools_bin().expanduser().resolve():
        return True
    return any(Path(p).expanduser().resolve() == resolved
               for p in os.environ.get("PATH", "").split(os.pathsep) if p)



# -- command line -----------------------------------------------------------------------------
def register(subparsers: Any) -> None:
    """Add the ``tools`` command group to the main CLI's subparsers."""
    group = subparsers.add_parser("tools", help="the course's CLIs, pinned and checksum-verified")
    sub = group.add_subparsers(dest="tools_command", required=True)
    p = sub.add_parser("install", help="download kind, kubectl, helm, cilium-cli and hubble at "
                       "the pinned versions, verify their SHA-256, install them")
    p.add_argument("--dest", metavar="DIR", help="default: $LABKIT_HOME/bin, where doctor and "
                   "the kind backend look first")
    p.add_argument("tools", nargs="*", metavar="TOOL", help="only these (default: all)")
    p.set_defaults(func=_cmd_install)


def _cmd_install(args: argparse.Namespace) -> int:
    report = install(Path(args.dest) if args.dest else None, args.tools or None)
    print(report.to_text())
    return 0 if report.ok else 1
