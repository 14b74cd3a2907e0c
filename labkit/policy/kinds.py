"""Every kind labkit understands, and documents to typed objects.

``load_objects(paths)`` reads YAML files or directories of them; ``parse_text(text)``
reads a string. The core kinds (``core_kinds``) and each policy flavour (``kubernetes``,
``calico``, ``cilium``) export a ``PARSERS`` table; :data:`KINDS` is their union.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from labkit.cnis import crd_owners
from labkit.errors import UnknownKindError
from labkit.policy import core_kinds, kubernetes
from labkit.policy.calico import policies as calico
from labkit.policy.cilium import policies as cilium
from labkit.policy.parse import (
    METADATA_FIELDS,
    ParseContext,
    Parser,
    documents_of,
    read_documents,
)

#: (apiVersion, kind) -> parser: the core kinds, then each policy flavour.
KINDS: dict[tuple[str, str], Parser] = {
    **core_kinds.PARSERS, **kubernetes.PARSERS, **calico.PARSERS, **cilium.PARSERS}

#: Which CNI or add-on serves a CRD group, for "no matches for kind" hints.
CRD_OWNERS = crd_owners()


def kinds() -> dict[tuple[str, str], Parser]:
    """Every (apiVersion, kind) labkit understands, mapped to its parser."""
    return KINDS


Served = Collection[tuple[str, str]]


def parse_documents(docs: Iterable[tuple[str, dict[str, Any]]], *, served: Served | None = None
                    ) -> list[Any]:
    """Typed objects from documents; all or nothing: the first bad one raises.

    ``served``: the (apiVersion, kind) pairs the target cluster serves (see
    ``labkit.policy.served_kinds``); others fail with "no matches for kind".
    """
    table = KINDS
    objects: list[Any] = []
    for source, doc in docs:
        objects.extend(parse_one(doc, source, table, served=served))
    return objects


def load_objects(paths: Sequence[str | Path], *, served: Served | None = None) -> list[Any]:
    return parse_documents(read_documents(paths), served=served)


def parse_text(text: str, source: str = "<string>", *, served: Served | None = None
               ) -> list[Any]:
    return parse_documents(documents_of(text, source), served=served)


def parse_one(doc: dict[str, Any], source: str,
              table: Mapping[tuple[str, str], Parser] | None = None, *,
              served: Served | None = None) -> list[Any]:
    table = table if table is not None else KINDS
    api = doc.get("apiVersion")
    kind = doc.get("kind")
    ctx = ParseContext(source, str(kind or "object"))
    if not isinstance(kind, str) or not kind:
        raise ctx.error("kind", "is required", hint="every object needs apiVersion and kind")
    if not isinstance(api, str) or not api:
        raise ctx.error("apiVersion", "is required", hint="every object needs apiVersion and kind")
    meta = ctx.mapping(doc.get("metadata"), "metadata", allowed=METADATA_FIELDS)
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise ctx.error("metadata.name", "is required", hint="give the object a name")
    ns = meta.get("namespace")
    ctx.obj = f"{kind} {ns}/{name}" if isinstance(ns, str) and ns else f"{kind} {name}"
    parser = table.get((api, kind))
    if parser is None:
        raise _unknown_kind(api, kind, table, ctx)
    if served is not None and (api, kind) not in served:
        group = api.split("/")[0]
        owner = CRD_OWNERS.get(group, "another component")
        raise UnknownKindError(
            f'no matches for kind "{kind}" in version "{api}"', source=source, obj=ctx.obj,
            field="kind", hint=f"{kind} is a CRD that comes with {owner}, which this cluster "
            "does not run; install it first, or apply a policy kind this CNI serves")
    return parser(doc, ctx)


def _unknown_kind(api: str, kind: str, table: Mapping[tuple[str, str], Parser],
                  ctx: ParseContext) -> UnknownKindError:
    versions = sorted(a for a, k in table if k == kind)
    group = api.split("/")[0] if "/" in api else ""
    if versions:
        hint = f"{kind} is served as apiVersion {' or '.join(versions)}"
    elif group in CRD_OWNERS:
        hint = f"kinds of {group} come with {CRD_OWNERS[group]}; this lab does not model {kind}"
    else:
        hint = "check the kind's spelling and apiVersion"
    return UnknownKindError(
        f'no matches for kind "{kind}" in version "{api}"', source=ctx.source, obj=ctx.obj,
        field="kind", hint=hint)
