"""The OpenAPI documents kubectl reads: `/openapi/v2` and `/openapi/v3`.

Both are built from two sources: the resource catalog gives the paths and
operations (one set per resource and subresource, named and tagged as upstream
names them) and the compact schema gives the definitions each path refers to,
closed over `$ref`. kubectl needs three things from them: every PATCH operation
carries `x-kubernetes-group-version-kind` and lists the `fieldValidation` query
parameter (so `create`/`apply` leave validation to the server), the GET
operations let `explain` find a resource's kind, and `components.schemas` hold
the types it renders. Documents are built once, on first request, and cached
with their hashes: upper-case hex SHA-512 of the body, which the v3 root embeds
in each `serverRelativeURL` and which the server sends (quoted) as the ETag.
"""

from __future__ import annotations

import hashlib
from functools import cache
from typing import Any

import orjson

from kubi import KUBERNETES_VERSION
from kubi.api import catalog, schema
from kubi.api.catalog import ResourceType

META = "io.k8s.apimachinery.pkg.apis.meta.v1."
_PATCH_TYPES = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)
_CONNECT = frozenset({"exec", "attach", "portforward", "proxy"})
_BOOL_PARAMS = frozenset({
    "allowWatchBookmarks", "watch", "sendInitialEvents", "force", "orphanDependents",
    "ignoreStoreReadErrorWithClusterBreakingPotential", "follow", "previous",
    "insecureSkipTLSVerifyBackend", "timestamps", "stdin", "stdout", "stderr", "tty",
})
_INT_PARAMS = frozenset({
    "limit", "timeoutSeconds", "gracePeriodSeconds", "limitBytes", "sinceSeconds",
    "tailLines", "ports",
})
_LIST_QUERY = ("allowWatchBookmarks", "continue", "fieldSelector", "labelSelector", "limit",
               "resourceVersion", "resourceVersionMatch", "sendInitialEvents",
               "timeoutSeconds", "watch")
_WRITE_QUERY = ("dryRun", "fieldManager", "fieldValidation")
_DELETE_QUERY = ("dryRun", "gracePeriodSeconds",
                 "ignoreStoreReadErrorWithClusterBreakingPotential", "orphanDependents",
                 "propagationPolicy")
_DELETE_COLLECTION_QUERY = ("continue", "dryRun", "fieldSelector", "gracePeriodSeconds",
                            "ignoreStoreReadErrorWithClusterBreakingPotential", "labelSelector",
                            "limit", "orphanDependents", "propagationPolicy", "resourceVersion",
                            "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds")
_CONNECT_QUERY = {
    "exec": ("command", "container", "stderr", "stdin", "stdout", "tty"),
    "attach": ("container", "stderr", "stdin", "stdout", "tty"),
    "portforward": ("ports",),
    "proxy": ("path",),
}
_LOG_QUERY = ("container", "follow", "insecureSkipTLSVerifyBackend", "limitBytes", "previous",
              "sinceSeconds", "stream", "tailLines", "timestamps")


# ---- operations, described once for both document versions ------------------------------


class _Op:
    """One HTTP operation: enough to render it as swagger 2.0 or OpenAPI 3.0."""

    def __init__(self, method: str, op_id: str, action: str, gvk: dict[str, str], tag: str,
                 *, query: tuple[str, ...] = (), body: str | None = None,
                 body_types: tuple[str, ...] = ("application/json",),
                 response: str | None = None, created: bool = False) -> None:
        self.method, self.op_id, self.action, self.gvk, self.tag = method, op_id, action, gvk, tag
        self.query, self.body, self.body_types = query, body, body_types
        self.response, self.created = response, created


def _camel(text: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in text.replace("-", ".").split("."))


def _gv_words(group: str, version: str) -> str:
    """`apps`,`v1` → `AppsV1`; `storage.k8s.io` → `StorageV1`; core → `CoreV1`."""
    return _camel(group.removesuffix(".k8s.io") or "core") + _camel(version)


def _tag(group: str, version: str) -> str:
    return f"{(group.removesuffix('.k8s.io') or 'core').split('.')[0]}_{version}"


def _gvk(group: str, version: str, kind: str) -> dict[str, str]:
    return {"group": group, "kind": kind, "version": version}


def _list_definition(rt: ResourceType) -> str | None:
    return schema.definition_name(rt.group, rt.version, rt.list_kind)


def _resource_ops(rt: ResourceType) -> dict[str, list[_Op]]:
    """Paths → operations for a resource and its subresources."""
    base = "/api/v1" if not rt.group else f"/apis/{rt.group}/{rt.version}"
    words, tag = _gv_words(rt.group, rt.version), _tag(rt.group, rt.version)
    scope = "Namespaced" if rt.namespaced else ""
    collection = (f"{base}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced
                  else f"{base}/{rt.plural}")
    gvk = _gvk(rt.group, rt.version, rt.kind)
    own = schema.definition_name(rt.group, rt.version, rt.kind)
    listed = _list_definition(rt)
    verbs = set(rt.verbs)
    paths: dict[str, list[_Op]] = {collection: [], f"{collection}/{{name}}": []}
    ops, item = paths[collection], paths[f"{collection}/{{name}}"]

    def name(verb: str, suffix: str = "") -> str:
        return f"{verb}{words}{scope}{rt.kind}{suffix}"

    if "list" in verbs:
        ops.append(_Op("get", name("list"), "list", gvk, tag, query=_LIST_QUERY, response=listed))
        if rt.namespaced:
            paths[f"{base}/{rt.plural}"] = [_Op(
                "get", f"list{words}{rt.kind}ForAllNamespaces", "list", gvk, tag,
                query=_LIST_QUERY, response=listed)]
    if "create" in verbs:
        ops.append(_Op("post", name("create"), "post", gvk, tag, query=_WRITE_QUERY,
                       body=own, response=own, created=True))
    if "deletecollection" in verbs:
        ops.append(_Op("delete", f"delete{words}Collection{scope}{rt.kind}", "deletecollection",
                       gvk, tag, query=_DELETE_COLLECTION_QUERY, body=META + "DeleteOptions",
                       response=META + "Status"))
    if "get" in verbs:
        item.append(_Op("get", name("read"), "get", gvk, tag, response=own))
    if "update" in verbs:
        item.append(_Op("put", name("replace"), "put", gvk, tag, query=_WRITE_QUERY,
                        body=own, response=own, created=True))
    if "patch" in verbs:
        item.append(_Op("patch", name("patch"), "patch", gvk, tag,
                        query=_WRITE_QUERY + ("force",), body=META + "Patch",
                        body_types=_PATCH_TYPES, response=own, created=True))
    if "delete" in verbs:
        item.append(_Op("delete", name("delete"), "delete", gvk, tag, query=_DELETE_QUERY,
                        body=META + "DeleteOptions", response=META + "Status"))
    for sub in rt.subresources:
        paths[f"{collection}/{{name}}/{sub}"] = _subresource_ops(rt, sub, name, tag)
    return {path: found for path, found in paths.items() if found}


def _subresource_ops(rt: ResourceType, sub: str, name: Any, tag: str) -> list[_Op]:
    if sub in _CONNECT:
        kind = f"{rt.kind}ProxyOptions" if sub == "proxy" else rt.sub_kind(sub)[2]
        gvk = _gvk("", "v1", kind)
        methods = ("get", "post", "put", "patch", "delete") if sub == "proxy" else ("get", "post")
        return [_Op(m, name(f"connect{_camel(m)}", _camel(sub)), "connect", gvk, tag,
                    query=_CONNECT_QUERY[sub]) for m in methods]
    group, version, kind = rt.sub_kind(sub)
    if not kind:
        group, version, kind = rt.group, rt.version, rt.kind
    gvk = _gvk(group, version, kind)
    target = schema.definition_name(group, version, kind)
    suffix = _camel(sub)
    if sub == "log":
        return [_Op("get", name("read", suffix), "get", gvk, tag, query=_LOG_QUERY)]
    ops: list[_Op] = []
    verbs = rt.sub_verbs(sub)
    if "get" in verbs:
        ops.append(_Op("get", name("read", suffix), "get", gvk, tag, response=target))
    if "update" in verbs:
        ops.append(_Op("put", name("replace", suffix), "put", gvk, tag, query=_WRITE_QUERY,
                       body=target, response=target, created=True))
    if "patch" in verbs:
        ops.append(_Op("patch", name("patch", suffix), "patch", gvk, tag,
                       query=_WRITE_QUERY + ("force",), body=META + "Patch",
                       body_types=_PATCH_TYPES, response=target, created=True))
    if "create" in verbs:
        ops.append(_Op("post", name("create", suffix), "post", gvk, tag, query=_WRITE_QUERY,
                       body=target, response=target, created=True))
    return ops


def _group_version_ops(group: str, version: str) -> dict[str, list[_Op]]:
    paths: dict[str, list[_Op]] = {}
    for rt in catalog.resources_of(group, version):
        paths.update(_resource_ops(rt))
    return paths


def _referenced(paths: dict[str, list[_Op]]) -> set[str]:
    """Every definition the operations name, closed over `$ref` inside definitions."""
    defs = schema.definitions_data()
    pending = [name for ops in paths.values() for op in ops for name in (op.body, op.response)
               if name and name in defs]
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name not in seen:
            seen.add(name)
            _collect_refs(defs[name], pending)
    return seen


def _collect_refs(node: Any, into: list[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if ref:
            into.append(ref)
        for key in ("properties",):
            for sub in node.get(key, {}).values():
                _collect_refs(sub, into)
        for key in ("items", "additionalProperties"):
            if key in node:
                _collect_refs(node[key], into)


def _schema_copy(node: Any, prefix: str, wrap_refs: bool) -> Any:
    """A definition with `$ref` names made absolute for the document's layout.

    OpenAPI 3 ignores siblings of `$ref`, so there a reference that carries field
    extensions (a patch strategy) is wrapped in `allOf`, as upstream does.
    """
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {f: _schema_copy(s, prefix, wrap_refs) for f, s in value.items()}
        elif key in ("items", "additionalProperties"):
            out[key] = _schema_copy(value, prefix, wrap_refs)
        elif key != "$ref":
            out[key] = value
    if "$ref" in node:
        ref = {"$ref": prefix + node["$ref"]}
        if not out:
            return ref
        if wrap_refs:
            return {"allOf": [ref], **out}
        return {**ref, **out}
    return out


def _query_param(name: str) -> dict[str, Any]:
    kind = "boolean" if name in _BOOL_PARAMS else "integer" if name in _INT_PARAMS else "string"
    return {"name": name, "in": "query", "type": kind}


def _path_params(path: str) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [{"name": "pretty", "in": "query", "type": "string"}]
    for name in ("name", "namespace"):
        if "{" + name + "}" in path:
            params.append({"name": name, "in": "path", "required": True, "type": "string"})
    return params


# ---- swagger 2.0 ----------------------------------------------------------------------------


def _v2_param(param: dict[str, Any]) -> dict[str, Any]:
    return {**param, "uniqueItems": True}


def _v2_operation(op: _Op) -> dict[str, Any]:
    out: dict[str, Any] = {
        "consumes": list(op.body_types) if op.body else ["*/*"],
        "produces": ["application/json"],
        "schemes": ["https"],
        "tags": [op.tag],
        "operationId": op.op_id,
        "x-kubernetes-action": op.action,
        "x-kubernetes-group-version-kind": op.gvk,
    }
    params = [_v2_param(_query_param(q)) for q in op.query]
    if op.body:
        params.insert(0, {"name": "body", "in": "body", "required": op.method != "delete",
                          "schema": {"$ref": "#/definitions/" + op.body}})
    if params:
        out["parameters"] = params
    ok: dict[str, Any] = {"description": "OK"}
    ok["schema"] = {"$ref": "#/definitions/" + op.response} if op.response else {"type": "string"}
    responses: dict[str, Any] = {"200": ok, "401": {"description": "Unauthorized"}}
    if op.created:
        responses["201"] = {**ok, "description": "Created"}
    out["responses"] = responses
    return out


@cache
def _v2() -> tuple[bytes, str]:
    defs = schema.definitions_data()
    paths: dict[str, list[_Op]] = {}
    for group, versions in catalog.groups().items():
        for version in versions:
            paths.update(_group_version_ops(group, version))
    doc = {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION},
        "paths": {
            path: {"parameters": [_v2_param(p) for p in _path_params(path)],
                   **{op.method: _v2_operation(op) for op in ops}}
            for path, ops in sorted(paths.items())
        },
        "definitions": {name: _schema_copy(defs[name], "#/definitions/", False)
                        for name in sorted(_referenced(paths))},
        "securityDefinitions": {
            "BearerToken": {"type": "apiKey", "name": "authorization", "in": "header"},
        },
        "security": [{"BearerToken": []}],
    }
    return _finish(doc)


# ---- OpenAPI 3.0 ----------------------------------------------------------------------------


def _v3_param(param: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in param.items() if k != "type"}
    out["schema"] = {"type": param["type"], "uniqueItems": True}
    return out


def _v3_content(ref: str | None, types: tuple[str, ...]) -> dict[str, Any]:
    body = {"$ref": "#/components/schemas/" + ref} if ref else {"type": "string"}
    return {kind: {"schema": body} for kind in types}


def _v3_operation(op: _Op) -> dict[str, Any]:
    out: dict[str, Any] = {
        "tags": [op.tag],
        "operationId": op.op_id,
        "x-kubernetes-action": op.action,
        "x-kubernetes-group-version-kind": op.gvk,
    }
    if op.query:
        out["parameters"] = [_v3_param(_query_param(q)) for q in op.query]
    if op.body:
        out["requestBody"] = {"content": _v3_content(op.body, op.body_types),
                              "required": op.method != "delete"}
    ok = {"description": "OK", "content": _v3_content(op.response, ("application/json",))}
    responses: dict[str, Any] = {"200": ok, "401": {"description": "Unauthorized"}}
    if op.created:
        responses["201"] = {**ok, "description": "Created"}
    out["responses"] = responses
    return out


# OpenAPI 3 can say what these two really are; upstream's v3 documents do, and
# `kubectl explain` then names them (`<Quantity>`, `<IntOrString>`) instead of `<string>`.
_V3_SPECIAL: dict[str, dict[str, Any]] = {
    schema.QUANTITY: {"oneOf": [{"type": "string"}, {"type": "number"}]},
    schema.INT_OR_STRING: {"oneOf": [{"type": "integer"}, {"type": "string"}],
                           "x-kubernetes-int-or-string": True},
}


def _v3_schema(name: str, definition: dict[str, Any]) -> Any:
    return _V3_SPECIAL.get(name) or _schema_copy(definition, "#/components/schemas/", True)


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


@cache
def _v3_documents() -> dict[str, tuple[bytes, str]]:
    defs = schema.definitions_data()
    documents: dict[str, tuple[bytes, str]] = {}
    for group, versions in catalog.groups().items():
        for version in versions:
            paths = _group_version_ops(group, version)
            doc = {
                "openapi": "3.0.0",
                "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION},
                "paths": {
                    path: {"parameters": [_v3_param(p) for p in _path_params(path)],
                           **{op.method: _v3_operation(op) for op in ops}}
                    for path, ops in sorted(paths.items())
                },
                "components": {
                    "schemas": {name: _v3_schema(name, defs[name])
                                for name in sorted(_referenced(paths))},
                    "securitySchemes": {
                        "BearerToken": {"type": "apiKey", "name": "authorization",
                                        "in": "header"},
                    },
                },
                "security": [{"BearerToken": []}],
            }
            documents[_gv_path(group, version)] = _finish(doc)
    return documents


@cache
def _v3_root() -> bytes:
    paths = {
        path: {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
        for path, (_body, digest) in _v3_documents().items()
    }
    return orjson.dumps({"paths": paths}, option=orjson.OPT_SORT_KEYS)


def _finish(doc: dict[str, Any]) -> tuple[bytes, str]:
    body = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
    return body, hashlib.sha512(body).hexdigest().upper()


# ---- public API -----------------------------------------------------------------------------


def openapi_v2() -> tuple[bytes, str]:
    """The swagger 2.0 document and its hash (the ETag, unquoted)."""
    return _v2()


def openapi_v3_root() -> bytes:
    """`/openapi/v3`: each group-version's document path with its current hash."""
    return _v3_root()


def openapi_v3_group_version(path: str) -> tuple[bytes, str] | None:
    """The document for `api/v1` or `apis/<group>/<version>`, with its hash; None if unknown."""
    return _v3_documents().get(path.strip("/"))


def openapi_v3_paths() -> list[str]:
    """The group-version paths the v3 root lists."""
    return list(_v3_documents())
