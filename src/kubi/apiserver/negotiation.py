"""Response formats: what the client's Accept header asks for, and the
encoders for each: plain JSON objects and lists, YAML, `meta.k8s.io/v1 Table`
(server-side printing, what every human-readable `kubectl get` asks for) and
`PartialObjectMetadata` (metadata-only clients such as the garbage collector).

Lists are assembled from the cached JSON bytes of each item, so listing
does not re-encode objects.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import orjson
import yaml

from kubi.api import printers
from kubi.api.catalog import ResourceType
from kubi.api.errors import NotAcceptable
from kubi.apiserver import views
from kubi.apiserver.cache import Entry

TABLE = "table"
JSON = "json"
YAML = "yaml"
PARTIAL = "partial"

_TABLE_CT = "application/json;as=Table;v=v1;g=meta.k8s.io"


@dataclass(frozen=True)
class Format:
    kind: str
    content_type: str


def negotiate(accept: str | None) -> Format:
    """Pick the first acceptable clause of the Accept header, as upstream does."""
    if not accept:
        return Format(JSON, "application/json")
    unsupported = []
    for clause in accept.split(","):
        parts = [p.strip() for p in clause.split(";")]
        mt = parts[0].lower()
        params = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        as_ = params.get("as")
        if mt in ("application/json", "*/*", "application/*"):
            if as_ == "Table" and params.get("g") == "meta.k8s.io" and params.get("v") in (
                "v1", "v1beta1"
            ):
                return Format(TABLE, _TABLE_CT)
            if as_ in ("PartialObjectMetadata", "PartialObjectMetadataList") and params.get(
                "g") == "meta.k8s.io":
                return Format(PARTIAL, f"application/json;as={as_};v=v1;g=meta.k8s.io")
            if as_ is None:
                return Format(JSON, "application/json")
        elif mt in ("application/yaml",) and as_ is None:
            return Format(YAML, "application/yaml")
        unsupported.append(mt)
    raise NotAcceptable(
        "only the following media types are accepted: application/json, application/yaml, "
        "application/vnd.kubernetes.protobuf"
    )


def encode_object(fmt: Format, rt: ResourceType, entry: Entry, include: str = "Metadata") -> bytes:
    entry = views.outbound(rt, entry)
    if fmt.kind == JSON:
        return entry.json
    if fmt.kind == YAML:
        return yaml.safe_dump(entry.obj, sort_keys=False).encode()
    if fmt.kind == PARTIAL:
        return orjson.dumps(_partial(entry.obj))
    return orjson.dumps(table(rt, [entry], {"resourceVersion": str(entry.rv)}, include))


def encode_list(
    fmt: Format,
    rt: ResourceType,
    entries: list[Entry],
    list_meta: dict,
    include: str = "Metadata",
) -> bytes:
    if views.is_view(rt):
        entries = [views.outbound(rt, e) for e in entries]
    if fmt.kind == TABLE:
        return orjson.dumps(table(rt, entries, list_meta, include))
    if fmt.kind == PARTIAL:
        return orjson.dumps({
            "kind": "PartialObjectMetadataList",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": list_meta,
            "items": [_partial(e.obj) for e in entries],
        })
    head = orjson.dumps({"kind": rt.list_kind, "apiVersion": rt.api_version,
                         "metadata": list_meta})
    body = head[:-1] + b',"items":[' + b",".join(e.json for e in entries) + b"]}"
    if fmt.kind == YAML:
        return yaml.safe_dump(orjson.loads(body), sort_keys=False).encode()
    return body


def _partial(obj: dict) -> dict:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata", {})}


def table(
    rt: ResourceType,
    entries: Iterable[Entry],
    list_meta: dict,
    include: str = "Metadata",
    headers: bool = True,
) -> dict:
    now = dt.datetime.now(dt.UTC)
    rows = []
    for entry in entries:
        row: dict = {"cells": printers.row_cells(rt.group, rt.plural, entry.obj, now)}
        conditions = printers.row_conditions(rt.group, rt.plural, entry.obj)
        if conditions:
            row["conditions"] = conditions
        if include == "Object":
            row["object"] = entry.obj
        elif include != "None":
            row["object"] = _partial(entry.obj)
        rows.append(row)
    out: dict = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta}
    if headers:
        out["columnDefinitions"] = printers.column_definitions(rt.group, rt.plural)
    else:
        out["columnDefinitions"] = None
    out["rows"] = rows
    return out
