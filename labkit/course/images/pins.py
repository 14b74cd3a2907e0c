"""Digest pins that survive an offline ``docker save`` / ``docker load``.

kind looks the node image up by the full pin in versions.yaml (``name:tag@sha256:...``)
and pulls it when ``docker inspect --type=image REF`` fails. Docker's classic image
store does not restore an image's digests on ``docker load`` (moby#22011): the image is
back under ``name:tag`` only, and an offline ``labkit up`` would try to pull it.

The image ID (the digest of the image's config, which names every layer's content
digest) does survive. So ``labkit images save`` records, for each ``name:tag@digest``
pin, the ID Docker gave the image it pulled by that digest, in a ``labkit-pins.json``
member appended to the archive (``docker load`` ignores a file it does not know);
``labkit images load`` copies those records to ``$LABKIT_HOME/images/pins.json``.
Before ``kind create cluster``, :func:`node_image_for_kind` uses ``name:tag`` instead of
the pin only when the digest is missing and ``name:tag`` has exactly the recorded ID.
The proof is as good as the bundle: the record says what Docker saw on the machine that
pulled the image by its digest.
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from labkit.course.images.listing import archive_name, split_ref
from labkit.errors import LabkitError, ToolError
from labkit.inputs import read_tar_member, read_text
from labkit.tools import process
from labkit.tools.files import home, write_atomic

Runner = Callable[..., process.Result]

#: The member appended to the ``docker save`` archive.
MEMBER = "labkit-pins.json"
FORMAT = 1


def pins_path() -> Path:
    return home() / "images" / "pins.json"


def image_id(ref: str, *, run: Runner = process.run) -> str | None:
    """Docker's image ID of ``ref`` (``sha256:...``); None when Docker has no such image."""
    try:
        found = run(["docker", "image", "inspect", "--format", "{{.Id}}", ref], timeout=30,
                    check=False)
    except ToolError:  # no docker: nothing can be proven
        return None
    text = found.stdout.strip()
    return text if found.returncode == 0 and text.startswith("sha256:") else None


def record(refs: Iterable[str], *, run: Runner = process.run) -> dict[str, str]:
    """``{pin: image ID}`` for each ``name:tag@digest`` in ``refs`` (pulled by its digest)."""
    pins: dict[str, str] = {}
    for ref in refs:
        _, tag, digest = split_ref(ref)
        if tag and digest:
            found = image_id(ref, run=run)
            if found is None:
                raise LabkitError(f"docker has no image {ref} right after pulling it",
                                  hint=f"`docker image inspect {ref}` shows what Docker has")
            pins[ref] = found
    return pins


#: The largest labkit-pins.json read from a bundle: a few hundred bytes per image is normal.
MAX_PINS_BYTES = 1024 * 1024


def to_json(pins: Mapping[str, str]) -> str:
    return json.dumps({"format": FORMAT, "pins": [{"ref": r, "id": i} for r, i in
                                                  sorted(pins.items())]}, indent=1) + "\n"


def from_json(text: str) -> dict[str, str]:
    """Parse a pins document; ValueError when it is not one."""
    try:
        data = json.loads(text)
    except RecursionError as exc:
        raise ValueError("the pins document nests too deeply") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT \
            or not isinstance(data.get("pins"), list):
        raise ValueError(f"not a format-{FORMAT} pins document")
    out = {}
    for entry in data["pins"]:
        ref, found = (entry.get("ref"), entry.get("id")) if isinstance(entry, dict) else (0, 0)
        if not (isinstance(ref, str) and isinstance(found, str) and found.startswith("sha256:")):
            raise ValueError(f"bad pin entry {entry!r}")
        out[ref] = found
    return out


# -- the bundle ------------------------------------------------------------------------------
def append_to_archive(path: Path, pins: Mapping[str, str]) -> None:
    """Add the pins as one more member at the end of a ``docker save`` tar."""
    data = to_json(pins).encode()
    info = tarfile.TarInfo(MEMBER)
    info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
    try:
        with tarfile.open(path, "a") as tar:
            tar.addfile(info, io.BytesIO(data))
    except (tarfile.TarError, OSError) as exc:
        raise LabkitError(f"cannot add {MEMBER} to {path}: {exc}",
                          hint="is there free disk space? `docker save` wrote the archive "
                          "itself; without the pins an offline `labkit up` may try to pull "
                          "the node image") from exc


def read_archive(path: Path) -> dict[str, str]:
    """The pins a bundle carries; {} for a bundle without them (or with a broken record)."""
    try:
        return from_json(read_tar_member(path, MEMBER, limit=MAX_PINS_BYTES).decode())
    except (KeyError, ValueError, tarfile.TarError, OSError, LabkitError):
        return {}  # UnicodeDecodeError is a ValueError


# -- this machine's record -------------------------------------------------------------------
def stored() -> dict[str, str]:
    """The pins ``labkit images load`` recorded here; {} when none (or unreadable)."""
    try:
        return from_json(read_text(pins_path(), limit=MAX_PINS_BYTES))
    except (ValueError, LabkitError):
        return {}


def store(pins: Mapping[str, str]) -> Path:
    """Merge ``pins`` into this machine's record (a newer bundle wins per pin), atomically."""
    path = pins_path()
    text = to_json({**stored(), **pins})
    try:
        write_atomic(path, text)
    except OSError as exc:
        raise LabkitError(f"cannot record the image pins in {path}: {exc.strerror or exc}",
                          hint="set LABKIT_HOME to a writable folder") from exc
    return path


# -- before kind create cluster --------------------------------------------------------------
def tag_for_lost_digest(ref: str, *, run: Runner = process.run,
                        pins: Mapping[str, str] | None = None) -> tuple[str | None, str]:
    """For a pin Docker does not have by its digest: (``name:tag``, note) when a recorded pin
    gives ``ref`` image ID X and Docker's ``name:tag`` has exactly ID X; else (None, why or '').
    """
    recorded = (stored() if pins is None else pins).get(ref)
    if recorded is None:
        return None, ""
    local = archive_name(ref)
    found = image_id(local, run=run)
    if found != recorded:
        return None, (f"kept the digest pin {ref}: Docker's {local} has image ID "
                      f"{found or 'none'}, not the {recorded} recorded for that digest")
    return local, (f"node image {local} used for {ref}: Docker lost the digest on `docker "
                   f"load` (moby#22011), and {local} has the image ID recorded when the "
                   f"bundle was saved from that digest ({found})")


def node_image_for_kind(ref: str, *, run: Runner = process.run,
                        pins: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(the image to write in the kind config, a one-line note or '').

    ``ref`` itself, unless kind would not find it (its own check before it pulls,
    ``docker inspect --type=image REF``) and :func:`tag_for_lost_digest` proves ``name:tag``
    is the same image. Never weaker than the pin without that proof.
    """
    _, tag, digest = split_ref(ref)
    if not (tag and digest):
        return ref, ""
    try:
        if run(["docker", "inspect", "--type=image", ref], timeout=30,
               check=False).returncode == 0:
            return ref, ""
    except ToolError:
        return ref, ""  # no docker: kind fails on its own, with its own message
    local, note = tag_for_lost_digest(ref, run=run, pins=pins)
    return local or ref, note
