"""What a resource URL means: `RequestInfo` parsed from the path, and the
query parameters every verb reads.

Paths follow upstream's layout:
`/api/v1[/namespaces/{ns}]/{resource}[/{name}[/{subresource}]]` for the core
group and `/apis/{group}/{version}/...` for the others. A path segment after
`namespaces/{name}` is a namespace subresource (`status`, `finalize`) when it
names one, else the resource inside that namespace.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from kubi.api import catalog
from kubi.api.catalog import ResourceType
from kubi.api.errors import BadRequest, NotFound, StatusError


@dataclass(frozen=True)
class RequestInfo:
    rt: ResourceType
    namespace: str | None  # None: across all namespaces (or cluster-scoped)
    name: str
    subresource: str


def not_found() -> StatusError:
    return StatusError(404, "NotFound", "the server could not find the requested resource")


def parse_path(path: str) -> RequestInfo:
    parts = [p for p in path.split("/") if p]
    if not parts:
        raise not_found()
    if parts[0] == "api":
        if len(parts) < 3 or parts[1] != "v1":
            raise not_found()
        group, version, rest = "", "v1", parts[2:]
    elif parts[0] == "apis":
        if len(parts) < 4:
            raise not_found()
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise not_found()
    namespace: str | None = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        ns_rt = catalog.lookup("", "v1", "namespaces")
        assert ns_rt is not None
        if group == "" and len(rest) == 3 and rest[2] in ns_rt.subresources:
            return RequestInfo(ns_rt, None, rest[1], rest[2])
        namespace, rest = rest[1], rest[2:]
    rt = catalog.lookup(group, version, rest[0])
    if rt is None:
        raise not_found()
    if namespace is not None and not rt.namespaced:
        raise not_found()
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    if len(rest) > 3:
        raise not_found()
    if sub and sub not in rt.subresources:
        raise not_found()
    return RequestInfo(rt, namespace, name, sub)


def flag(request: web.Request, name: str) -> bool:
    value = request.query.get(name)
    return value is not None and value.lower() in ("true", "1", "")


def int_param(request: web.Request, name: str) -> int | None:
    value = request.query.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise BadRequest(f"invalid value for {name}: {value!r}: must be an integer") from None


def dry_run(request: web.Request) -> bool:
    values = request.query.getall("dryRun", [])
    for value in values:
        if value != "All":
            raise BadRequest(f'Invalid dryRun value: "{value}": supported values: "All"')
    return bool(values)


def missing_namespace(info: RequestInfo) -> None:
    if info.rt.namespaced and not info.namespace:
        raise NotFound("namespaces", "")
