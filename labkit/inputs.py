"""Reading what a user hands labkit: files, YAML and JSON, with limits and one kind of error.

Every file labkit reads on a user's behalf (manifests, traffic files, kubeconfigs,
stage configs, simulated cluster state, notebooks) goes through :func:`read_text`:

- only regular files: a FIFO, ``/dev/zero`` or a directory is refused before a byte is
  read (the file is opened non-blocking, so opening a FIFO does not wait for a writer);
- at most :data:`MAX_FILE_BYTES` (16 MiB; the largest manifest the course ships is well
  under 1 MiB), so no input can exhaust memory silently;
- UTF-8 only, as kubectl reads YAML; a binary or Latin-1 file is named with the offset of
  its first bad byte.

YAML goes through :func:`yaml_documents`: safe, duplicate keys refused (kubectl's strict
field validation), anchors and aliases refused (a few nested aliases expand to gigabytes,
and ``kubectl apply`` sends the API server plain JSON anyway). JSON goes through
:func:`json_value`: strict (no ``NaN``/``Infinity``, which no JSON parser outside
Python reads), and nesting too deep for the parser is an error, not a crash. Each failure
is one :class:`ManifestError` naming the file, the place and the fix.
"""

from __future__ import annotations

import json
import os
import stat
import tarfile
from pathlib import Path
from typing import Any

import yaml

from labkit.errors import ManifestError

#: The largest file labkit reads (bytes). Documented in the README ("Limits").
MAX_FILE_BYTES = 16 * 1024 * 1024
#: How deeply YAML may nest. Kubernetes objects nest about 15 levels deep.
MAX_DEPTH = 100
#: Longest piece of a user's value quoted back in an error message.
QUOTE_CHARS = 80

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def quote(value: object) -> str:
    """``repr(value)``, cut to :data:`QUOTE_CHARS` characters: never echo a huge value back."""
    text = repr(value)
    return text if len(text) <= QUOTE_CHARS else f"{text[:QUOTE_CHARS]}... ({len(text)} chars)"


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB"


def read_bytes(path: str | Path, *, limit: int = MAX_FILE_BYTES, what: str = "file") -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes, or ManifestError saying why not."""
    source = str(path)
    try:
        fd = os.open(source, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        dangling = os.path.islink(source)
        raise ManifestError(
            f"the {what} does not exist" + (
                f" (a symlink to {os.readlink(source)!r}, which is missing)" if dangling else ""),
            source=source, hint="check the path" + (
                "; remove or fix the dangling symlink" if dangling else "")) from exc
    except IsADirectoryError as exc:
        raise ManifestError(f"the {what} is a directory, not a file", source=source,
                            hint="name a file") from exc
    except OSError as exc:
        raise ManifestError(f"cannot open the {what}: {exc.strerror or exc}", source=source,
                            hint="check the path and its permissions") from exc
    try:
        st = os.fstat(fd)
        for test, name in _KINDS:
            if test(st.st_mode):
                raise ManifestError(f"the {what} is {name}, not a regular file", source=source,
                                    hint="name a regular file")
        if st.st_size > limit:
            raise ManifestError(f"the {what} is {_mib(st.st_size)}; labkit reads at most "
                                f"{_mib(limit)}", source=source,
                                hint="split it into smaller files, or check that it is the "
                                "file you meant")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise ManifestError(f"cannot read the {what}: {exc.strerror or exc}", source=source,
                            hint="check the path and its permissions") from exc
    finally:
        os.close(fd)
    if len(data) > limit:  # grew while we read it
        raise ManifestError(f"the {what} is larger than {_mib(limit)}", source=source,
                            hint="split it into smaller files")
    return data


def decode(data: bytes, source: str, what: str = "file") -> str:
    """UTF-8 text, or ManifestError naming the first byte that is not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(
            f"the {what} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            source=source, hint="save it as UTF-8; binary files cannot be read as YAML or JSON"
        ) from exc


def read_text(path: str | Path, *, limit: int = MAX_FILE_BYTES, what: str = "file") -> str:
    """A regular UTF-8 text file of at most ``limit`` bytes (see the module's docstring)."""
    return decode(read_bytes(path, limit=limit, what=what), str(path), what)


def read_tar_member(archive: str | Path, name: str, *, limit: int) -> bytes:
    """One member of a tar archive, at most ``limit`` bytes (checked before reading).

    Raises KeyError when there is no such member, ManifestError when it is too big or not a
    regular file, and tarfile.TarError/OSError for an unreadable archive.
    """
    with tarfile.open(archive) as tar:
        member = tar.getmember(name)
        if not member.isfile():
            raise ManifestError(f"{name} is not a regular file in the archive",
                                source=str(archive))
        if member.size > limit:
            raise ManifestError(f"{name} is {_mib(member.size)}; labkit reads at most "
                                f"{_mib(limit)} of it", source=str(archive),
                                hint="the archive was not written by labkit; check it")
        handle = tar.extractfile(member)
        return handle.read(limit + 1) if handle is not None else b""


# -- YAML ---------------------------------------------------------------------------------------
class _StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe YAML (libyaml's parser when PyYAML has it) that refuses duplicate keys.

    kubectl's strict field validation refuses duplicate fields; a plain YAML
    loader would silently keep the last one (``ingress: []`` then ``ingress: [{}]``).
    """


def _mapping_without_duplicates(loader: Any, node: yaml.MappingNode, deep: bool = False) -> Any:
    """A mapping, each key constructed once (this runs for every object of every manifest)."""
    loader.flatten_mapping(node)
    out: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in out
        except TypeError:  # a mapping or list used as a key ("? [a]: b")
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a string", key_node.start_mark) from None
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate field {quote(key)}", key_node.start_mark)
        out[key] = loader.construct_object(value_node, deep=deep)
    return out


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                              _mapping_without_duplicates)


def _where(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


def _refuse_anchors(text: str, source: str) -> None:
    """Refuse anchors, aliases and excessive nesting before anything is built from ``text``."""
    depth = 0
    for event in yaml.parse(text, Loader=_StrictLoader):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise ManifestError(
                "YAML anchors and aliases (&name, *name, <<: *name) are not accepted",
                source=source, field=_where(event.start_mark),
                hint="write the repeated part out in full")
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise ManifestError(f"nested more than {MAX_DEPTH} levels deep", source=source,
                                    field=_where(event.start_mark),
                                    hint="Kubernetes objects nest far less; check the file")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def yaml_documents(text: str, source: str = "<string>") -> list[Any]:
    """Every document of a YAML stream (None for empty ones), strictly (see the module)."""
    try:
        _refuse_anchors(text, source)
        return list(yaml.load_all(text, Loader=_StrictLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ManifestError(f"invalid YAML: {problem}", source=source, field=_where(mark),
                            hint="check indentation and quoting near that line") from exc


def yaml_document(text: str, source: str = "<string>") -> Any:
    """The one document of a YAML file (None when empty); several documents are an error."""
    docs = yaml_documents(text, source)
    if len(docs) > 1:
        raise ManifestError(f"holds {len(docs)} YAML documents, not one", source=source,
                            hint="remove the extra '---' separators")
    return docs[0] if docs else None


def read_yaml(path: str | Path, *, what: str = "file") -> Any:
    """One YAML document from a file (see :func:`read_text` and :func:`yaml_document`)."""
    return yaml_document(read_text(path, what=what), str(path))


# -- JSON ---------------------------------------------------------------------------------------
def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def json_value(text: str | bytes, source: str, *, what: str = "file") -> Any:
    """Strict JSON (no NaN or Infinity); nesting too deep for the parser is an error too."""
    try:
        return json.loads(text, parse_constant=_no_constant)
    except RecursionError as exc:
        raise ManifestError(f"the {what} nests too deeply to read", source=source,
                            hint="check that it is the file you meant") from exc
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ManifestError(f"the {what} is not valid JSON: {exc}", source=source,
                            hint="check that it is the file you meant") from exc


def dumps(value: Any, **kwargs: Any) -> str:
    """Strict JSON out: NaN and Infinity are refused (ValueError), as every reader refuses them."""
    return json.dumps(value, allow_nan=False, **kwargs)

