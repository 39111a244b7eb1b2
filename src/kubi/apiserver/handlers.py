"""HTTP handlers for resource URLs: the verbs, their query parameters, and the
response codes upstream gives (201 on create, 200 or 202 on delete, Status
bodies for failures — the latter produced by the server's error middleware).

One entry point, `handle`, parses the URL and dispatches by method, name and
subresource; the work itself lives in `rest.Registry` (storage semantics),
`watch` (streams) and `subresources`.
"""

from __future__ import annotations

import base64
import binascii

import orjson
from aiohttp import web

from kubi.api import selectors
from kubi.api.catalog import ResourceType
from kubi.api.errors import BadRequest, Gone, MethodNotAllowed, StatusError
from kubi.apiserver import decoding, negotiation, subresources, views, watch
from kubi.apiserver.cache import Entry
from kubi.apiserver.request import (
    RequestInfo,
    dry_run,
    flag,
    int_param,
    missing_namespace,
    parse_path,
)
from kubi.apiserver.rest import DeleteOptions, Registry, WriteOptions

MAX_BODY = 3 * 1024 * 1024


def _respond(body: bytes, fmt: negotiation.Format, status: int = 200,
             warnings: list[str] | None = None) -> web.Response:
    resp = web.Response(body=body, status=status, headers={"Content-Type": fmt.content_type})
    for text in warnings or ():
        resp.headers.add("Warning", f'299 - "{_escape(text)}"')
    return resp


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


async def _body(request: web.Request) -> bytes:
    if request.content_length and request.content_length > MAX_BODY:
        from kubi.api.errors import RequestEntityTooLarge

        raise RequestEntityTooLarge("the request body is too large")
    data = await request.read()
    if len(data) > MAX_BODY:
        from kubi.api.errors import RequestEntityTooLarge

        raise RequestEntityTooLarge("the request body is too large")
    return data


def write_options(request: web.Request, *, validation_default: str = "Warn") -> WriteOptions:
    manager = request.query.get("fieldManager")
    if manager is not None and len(manager) > 128:
        raise BadRequest("fieldManager: Too long: must have at most 128 bytes")
    validation = request.query.get("fieldValidation")
    return WriteOptions(
        dry_run=dry_run(request),
        field_manager=manager,
        field_validation=decoding.field_validation_mode(validation)
        if validation else validation_default,
        user_agent=request.headers.get("User-Agent", ""),
        force=flag(request, "force"),
    )


async def handle(request: web.Request) -> web.StreamResponse:
    registry: Registry = request.app["registry"]
    info = parse_path(request.path)
    method = request.method
    if info.subresource:
        return await subresources.handle(request, registry, info)
    if method == "GET":
        if info.name:
            return _get(request, registry, info)
        if flag(request, "watch"):
            return await watch.serve(request, registry, info)
        return _list(request, registry, info)
    if method == "POST":
        if info.name:
            raise MethodNotAllowed('the server does not allow this method on the requested resource')
        return await _create(request, registry, info)
    if method == "PUT" and info.name:
        return await _update(request, registry, info)
    if method == "PATCH" and info.name:
        return await _patch(request, registry, info)
    if method == "DELETE":
        if info.name:
            return await _delete(request, registry, info)
        return await _delete_collection(request, registry, info)
    raise MethodNotAllowed("the server does not allow this method on the requested resource")


def _get(request: web.Request, registry: Registry, info: RequestInfo) -> web.Response:
    missing_namespace(info)
    fmt = negotiation.negotiate(request.headers.get("Accept"))
    entry = registry.get(info.rt, info.namespace or "", info.name)
    include = request.query.get("includeObject", "Metadata")
    return _respond(negotiation.encode_object(fmt, info.rt, entry, include), fmt)


def build_filter(rt: ResourceType, request: web.Request):
    """The label and field selector of a list or watch, as one predicate."""
    label_text = request.query.get("labelSelector", "")
    field_text = request.query.get("fieldSelector", "")
    try:
        label_sel = selectors.parse_label_selector(label_text) if label_text else None
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    try:
        field_sel = selectors.parse_field_selector(field_text) if field_text else None
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    if field_sel is not None:
        for field_name, _op, _value in field_sel.requirements:
            problem = selectors.field_label_error(rt.group, rt.kind, field_name)
            if problem:
                raise BadRequest(problem)
    if label_sel is None and field_sel is None:
        return None

    def match(entry: Entry) -> bool:
        obj = entry.obj
        if label_sel is not None and not label_sel.matches(obj["metadata"].get("labels")):
            return False
        if field_sel is not None and not field_sel.matches(
            selectors.field_set(rt.group, rt.kind, obj)
        ):
            return False
        return True

    return match


def _list(request: web.Request, registry: Registry, info: RequestInfo) -> web.Response:
    fmt = negotiation.negotiate(request.headers.get("Accept"))
    rt = info.rt
    match = build_filter(rt, request)
    limit = int_param(request, "limit") or 0
    token = request.query.get("continue")
    rv = request.query.get("resourceVersion")
    start_after = ""
    list_rv = registry.cache.rev
    if token:
        start_after, list_rv = _decode_continue(token, registry)
    elif rv and rv != "0" and request.query.get("resourceVersionMatch") == "Exact":
        if int(rv) != registry.cache.rev:
            raise Gone(f"too old resource version: {rv} ({registry.cache.rev})")
    res = registry.cache.resource(rt)
    namespace = info.namespace if rt.namespaced else None
    items: list[Entry] = []
    more = False
    remaining = 0
    for entry in res.entries(namespace):
        if start_after and _sort_key(entry) <= start_after:
            continue
        if match is not None and not match(entry):
            continue
        if limit and len(items) >= limit:
            more = True
            remaining += 1
            continue
        items.append(entry)
    list_meta: dict = {"resourceVersion": str(list_rv)}
    if more and items:
        list_meta["continue"] = _encode_continue(_sort_key(items[-1]), list_rv)
        list_meta["remainingItemCount"] = remaining
    include = request.query.get("includeObject", "Metadata")
    return _respond(negotiation.encode_list(fmt, rt, items, list_meta, include), fmt)


def _sort_key(entry: Entry) -> str:
    return f"{entry.namespace}/{entry.name}"


def _encode_continue(after: str, rv: int) -> str:
    raw = orjson.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": after})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_continue(token: str, registry: Registry) -> tuple[str, int]:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(padded))
        return str(data["start"]), int(data["rv"])
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise BadRequest(f"continue key is not valid: {token}") from None


async def _create(request: web.Request, registry: Registry, info: RequestInfo) -> web.Response:
    missing_namespace(info)
    opts = write_options(request)
    fmt = negotiation.negotiate(request.headers.get("Accept"))
    obj = decoding.decode_body(request.headers.get("Content-Type"), await _body(request),
                              info.rt.kind)
    registry._check_type_meta(info.rt, obj)
    decoding.check_fields(info.rt, obj, opts.field_validation, opts.warnings)
    obj = views.inbound(info.rt, obj)
    entry = await registry.create(views.storage_type(info.rt), info.namespace or "", obj, opts)
    return _respond(negotiation.encode_object(fmt, info.rt, entry), fmt, 201, opts.warnings)


async def _update(request: web.Request, registry: Registry, info: RequestInfo) -> web.Response:
    missing_namespace(info)
    opts = write_options(request)
    fmt = negotiation.negotiate(request.headers.get("Accept"))
    obj = decoding.decode_body(request.headers.get("Content-Type"), await _body(request),
                              info.rt.kind)
    registry._check_type_meta(info.rt, obj)
    decoding.check_fields(info.rt, obj, opts.field_validation, opts.warnings)
    obj = views.inbound(info.rt, obj)
    entry, created = await registry.update(views.storage_type(info.rt), info.namespace or "",
                                           info.name, obj, opts)
    return _respond(negotiation.encode_object(fmt, info.rt, entry), fmt, 201 if created else 200,
                    opts.warnings)


async def _patch(request: web.Request, registry: Registry, info: RequestInfo) -> web.Response:
    missing_namespace(info)
    opts = write_options(request)
    fmt = negotiation.negotiate(request.headers.get("Accept"))
    content_type = decoding.media_type(request.headers.get("Content-Type"))
    if views.is_view(info.rt):
        entry, created = await _patch_view(registry, info, content_type, await _body(request),
                                           opts)
    else:
        entry, created = await registry.patch(
            info.rt, info.namespace or "", info.name, content_type, await _body(request), opts
        )
    return _respond(negotiation.encode_object(fmt, info.rt, entry), fmt, 201 if created else 200,
                    opts.warnings)


async def _patch_view(registry: Registry, info: RequestInfo, content_type: str, body: bytes,
                      opts: WriteOptions) -> tuple[Entry, bool]:
    """Patch a view's object in the view's shape, store it in the storage shape."""
    from kubi.apiserver import patching

    if content_type == patching.APPLY_PATCH:
        raise StatusError(415, "UnsupportedMediaType",
                          "apply patches are not supported on events.k8s.io/v1 events")
    patch = patching.parse_patch(content_type, body)

    def apply(current: dict) -> dict:
        seen = views.outbound(info.rt, Entry(current, 0)).obj
        result = patching.apply_patch(info.rt, content_type, seen, patch)
        patching.check_patched(info.rt, result, opts.field_validation, opts.warnings)
        return views.inbound(info.rt, result)

    entry = await registry.update_with(views.storage_type(info.rt), info.namespace or "",
                                       info.name, apply, opts,
                                       precondition_rv=patching.patch_resource_version(patch))
    return entry, False


async def delete_options(request: web.Request) -> DeleteOptions:
    body = await _body(request)
    data: dict = {}
    if body.strip():
        # Typed clients (helm, client-go) send DeleteOptions as protobuf.
        data = decoding.decode_body(request.headers.get("Content-Type"), body)
    grace = data.get("gracePeriodSeconds")
    if grace is None:
        grace = int_param(request, "gracePeriodSeconds")
    policy = data.get("propagationPolicy") or request.query.get("propagationPolicy")
    orphan = data.get("orphanDependents")
    if orphan is None and "orphanDependents" in request.query:
        orphan = flag(request, "orphanDependents")
    if policy and orphan is not None:
        raise StatusError(422, "Invalid", "DeleteOptions.meta.k8s.io \"\" is invalid: "
                          "propagationPolicy: Invalid value: \"" + policy + "\": orphanDependents "
                          "and deletionPropagation cannot be both set")
    if orphan is not None:
        policy = "Orphan" if orphan else "Background"
    if policy not in (None, "Background", "Foreground", "Orphan"):
        raise StatusError(422, "Invalid", f'DeleteOptions.meta.k8s.io "" is invalid: '
                          f'propagationPolicy: Unsupported value: "{policy}": supported values: '
                          f'"Foreground", "Background", "Orphan", "nil"')
    pre = data.get("preconditions") or {}
    dry = bool(data.get("dryRun")) or dry_run(request)
    return DeleteOptions(
        grace_period=grace,
        propagation=policy,
        precondition_uid=pre.get("uid"),
        precondition_rv=pre.get("resourceVersion"),
        dry_run=dry,
    )


async def _delete(request: web.Request, registry: Registry, info: RequestInfo) -> web.Response:
    missing_namespace(info)
    fmt = negotiation.negotiate(request.headers.get("Accept"))
    options = await delete_options(request)
    entry, removed = await registry.delete(info.rt, info.namespace or "", info.name, options)
    if removed and not (info.rt.kind == "Pod" and info.rt.group == ""):
        status = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {"name": info.name, "kind": info.rt.plural,
                        "uid": entry.obj["metadata"].get("uid", "")},
        }
        if info.rt.group:
            status["details"]["group"] = info.rt.group
        return _respond(orjson.dumps(status), negotiation.Format("json", "application/json"))
    return _respond(negotiation.encode_object(fmt, info.rt, entry), fmt)


async def _delete_collection(
    request: web.Request, registry: Registry, info: RequestInfo
) -> web.Response:
    rt = info.rt
    fmt = negotiation.negotiate(request.headers.get("Accept"))
    options = await delete_options(request)
    match = build_filter(rt, request)
    namespace = info.namespace if rt.namespaced else None
    targets = [e for e in registry.cache.resource(rt).entries(namespace)
               if match is None or match(e)]
    deleted = await registry.delete_collection(rt, namespace, targets, options)
    return _respond(
        negotiation.encode_list(fmt, rt, deleted, {"resourceVersion": str(registry.cache.rev)}),
        fmt,
    )
