"""Subresources: status, scale, pods/binding, pods/eviction, namespaces/finalize,
and the node-proxied pod subresources (log, exec, attach, portforward).

`status` is the main resource seen through a narrower window (only status
changes); `scale` is an `autoscaling/v1 Scale` view of a workload's replicas;
`binding` assigns a pod to a node; `eviction` is a delete through the
disruption rules. The node-proxied ones are forwarded to the pod's node agent
when one is registered.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from kubi.api import catalog, selectors
from kubi.api.errors import BadRequest, Conflict, MethodNotAllowed, NotFound, StatusError
from kubi.apiserver import decoding, negotiation, patching
from kubi.apiserver.cache import Entry
from kubi.apiserver.request import RequestInfo, missing_namespace
from kubi.apiserver.rest import DeleteOptions, Registry

_JSON = negotiation.Format("json", "application/json")


def _json(obj: dict, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(obj), status=status,
                        headers={"Content-Type": "application/json"})


def _success(status: int = 201) -> web.Response:
    return _json({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                  "code": status}, status)


async def handle(request: web.Request, registry: Registry, info: RequestInfo) -> web.StreamResponse:
    from kubi.apiserver.handlers import _body, write_options

    missing_namespace(info)
    sub = info.subresource
    method = request.method
    if method not in _allowed_methods(info.rt, sub):
        raise MethodNotAllowed("the server does not allow this method on the requested resource")
    ns = info.namespace or ""
    if sub == "status":
        fmt = negotiation.negotiate(request.headers.get("Accept"))
        if method == "GET":
            entry = registry.get(info.rt, ns, info.name)
            return web.Response(body=negotiation.encode_object(fmt, info.rt, entry),
                                headers={"Content-Type": fmt.content_type})
        opts = write_options(request)
        if method == "PUT":
            body = decoding.decode_body(request.headers.get("Content-Type"), await _body(request))
            decoding.check_fields(info.rt, body, opts.field_validation, opts.warnings)
            entry, _ = await registry.update(info.rt, ns, info.name, body, opts, "status")
        else:
            content_type = decoding.media_type(request.headers.get("Content-Type"))
            entry, _ = await registry.patch(info.rt, ns, info.name, content_type,
                                            await _body(request), opts, "status")
        return web.Response(body=negotiation.encode_object(fmt, info.rt, entry),
                            headers={"Content-Type": fmt.content_type})
    if sub == "scale":
        return await _scale(request, registry, info)
    if sub == "binding":
        body = decoding.decode_body(request.headers.get("Content-Type"), await _body(request))
        await bind(registry, ns, info.name, body, write_options(request))
        return _success()
    if sub == "eviction":
        body = decoding.decode_body(request.headers.get("Content-Type"), await _body(request))
        opts = body.get("deleteOptions") or {}
        pre = opts.get("preconditions") or {}
        await registry.delete(info.rt, ns, info.name, DeleteOptions(
            grace_period=opts.get("gracePeriodSeconds"),
            propagation=opts.get("propagationPolicy"),
            precondition_uid=pre.get("uid"),
            precondition_rv=pre.get("resourceVersion"),
            dry_run=bool(opts.get("dryRun")),
        ))
        return _success()
    if sub == "finalize":
        body = decoding.decode_body(request.headers.get("Content-Type"), await _body(request))
        finalizers = (body.get("spec") or {}).get("finalizers") or []

        def set_finalizers(current: dict) -> dict:
            current.setdefault("spec", {})["finalizers"] = finalizers
            return current

        entry = await registry.update_with(info.rt, ns, info.name, set_finalizers,
                                           write_options(request), subresource="finalize")
        return web.Response(body=entry.json, headers={"Content-Type": "application/json"})
    if sub == "token":
        from kubi.apiserver.tokens import issue_token

        body = decoding.decode_body(request.headers.get("Content-Type"), await _body(request),
                                    "TokenRequest")
        return _json(issue_token(request.app["token_signer"], registry, ns, info.name, body),
                     201)
    if sub in ("log", "exec", "attach", "portforward", "proxy"):
        return await request.app["node_proxy"](request, registry, info)
    raise MethodNotAllowed("the server does not allow this method on the requested resource")


def _allowed_methods(rt: catalog.ResourceType, sub: str) -> tuple[str, ...]:
    verbs = rt.sub_verbs(sub)
    methods = []
    for verb in verbs:
        methods.extend({"get": ["GET"], "create": ["POST"], "update": ["PUT"],
                        "patch": ["PATCH"], "delete": ["DELETE"]}[verb])
    if sub in ("exec", "attach", "portforward"):
        methods += ["GET", "POST"]
    return tuple(methods)


# ------------------------------------------------------------------ scale

def scale_of(rt: catalog.ResourceType, entry: Entry) -> dict:
    obj = entry.obj
    md = obj["metadata"]
    spec = obj.get("spec", {})
    if rt.kind == "ReplicationController":
        selector = ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items()))
    else:
        selector = str(selectors.selector_from_label_selector(spec.get("selector")))
    scale_md = {k: md[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                   "creationTimestamp") if k in md}
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": scale_md,
        "spec": {"replicas": spec.get("replicas", 0)},
        "status": {"replicas": obj.get("status", {}).get("replicas", 0), "selector": selector},
    }


async def _scale(request: web.Request, registry: Registry, info: RequestInfo) -> web.Response:
    from kubi.apiserver.handlers import _body, write_options

    rt = info.rt
    ns = info.namespace or ""
    if request.method == "GET":
        entry = registry.get(rt, ns, info.name)
        fmt = negotiation.negotiate(request.headers.get("Accept"))
        if fmt.kind == negotiation.TABLE:
            return web.Response(body=orjson.dumps(_scale_table(scale_of(rt, entry))),
                                headers={"Content-Type": fmt.content_type})
        return _json(scale_of(rt, entry))
    opts = write_options(request)
    body = await _body(request)
    if request.method == "PUT":
        scale = decoding.decode_body(request.headers.get("Content-Type"), body)
        precondition = (scale.get("metadata") or {}).get("resourceVersion") or None
    else:
        content_type = decoding.media_type(request.headers.get("Content-Type"))
        if content_type == patching.APPLY_PATCH:
            raise StatusError(415, "UnsupportedMediaType",
                              "apply patches are not supported on the scale subresource")
        patch = patching.parse_patch(content_type, body)
        current = scale_of(rt, registry.get(rt, ns, info.name))
        scale = _patch_scale(content_type, current, patch)
        precondition = patching.patch_resource_version(patch)
    replicas = (scale.get("spec") or {}).get("replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool):
        raise BadRequest("Scale.spec.replicas must be an integer")
    if replicas < 0:
        from kubi.api.errors import Invalid, invalid

        raise Invalid("Scale", info.name, [invalid(
            "spec.replicas", replicas, "must be greater than or equal to 0")], "autoscaling")

    def set_replicas(current: dict) -> dict:
        current.setdefault("spec", {})["replicas"] = replicas
        return current

    entry = await registry.update_with(rt, ns, info.name, set_replicas, opts,
                                       subresource="scale", precondition_rv=precondition)
    return _json(scale_of(rt, entry))


def _scale_table(scale: dict) -> dict:
    """The Table upstream prints for a Scale: NAME DESIRED AVAILABLE AGE."""
    import datetime as dt

    from kubi.api import printers
    from kubi.api.meta import parse_time

    created = parse_time(scale["metadata"].get("creationTimestamp"))
    now = dt.datetime.now(dt.UTC).timestamp()
    age = printers.human_duration(now - created) if created is not None else "<unknown>"
    columns = [
        {"name": "Name", "type": "string", "format": "name", "priority": 0,
         "description": "Name of the object"},
        {"name": "Desired", "type": "integer", "format": "", "priority": 0,
         "description": "Number of desired replicas"},
        {"name": "Available", "type": "integer", "format": "", "priority": 0,
         "description": "Number of actual replicas"},
        {"name": "Age", "type": "string", "format": "", "priority": 0,
         "description": "Time since the object was created"},
    ]
    row = {"cells": [scale["metadata"]["name"], scale["spec"]["replicas"],
                     scale["status"]["replicas"], age],
           "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                      "metadata": scale["metadata"]}}
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": scale["metadata"].get("resourceVersion", "")},
            "columnDefinitions": columns, "rows": [row]}


def _patch_scale(content_type: str, current: dict, patch: object) -> dict:
    from kubi.api.patch import PatchError, jsonpatch, mergepatch, strategic

    try:
        if content_type == patching.JSON_PATCH:
            return jsonpatch.apply_json_patch(current, patch)
        if content_type == patching.MERGE_PATCH:
            return mergepatch.apply_merge_patch(current, patch)
        return strategic.apply_strategic_merge_patch(current, patch, None)
    except PatchError as exc:
        raise patching.patch_status(exc) from None


# ---------------------------------------------------------------- binding

async def bind(registry: Registry, namespace: str, name: str, binding: dict, opts) -> Entry:
    """Assign a pod to a node (pods/binding), as upstream's BindingREST."""
    target = binding.get("target") or {}
    node = target.get("name")
    if not node:
        raise StatusError(422, "Invalid", "Binding target name is required")
    if target.get("kind", "Node") not in ("Node", ""):
        raise StatusError(422, "Invalid", "Binding target must be a Node")
    rt = catalog.lookup("", "v1", "pods")
    assert rt is not None
    uid = (binding.get("metadata") or {}).get("uid")

    def assign(pod: dict) -> dict:
        md = pod["metadata"]
        if md.get("deletionTimestamp"):
            raise Conflict("pods/binding", name, "", f"pod {name} is being deleted, cannot be "
                           "assigned to a host")
        if uid and md.get("uid") != uid:
            raise Conflict("pods/binding", name, "", "Precondition failed: UID in precondition: "
                           f"{uid}, UID in object meta: {md.get('uid')}")
        spec = pod.setdefault("spec", {})
        if spec.get("nodeName"):
            raise Conflict("pods/binding", name, "",
                           f'pod {name} is already assigned to node "{spec["nodeName"]}"')
        spec["nodeName"] = node
        for key, value in ((binding.get("metadata") or {}).get("annotations") or {}).items():
            md.setdefault("annotations", {})[key] = value
        status = pod.setdefault("status", {})
        conditions = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
        conditions.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                           "lastTransitionTime": _now()})
        status["conditions"] = conditions
        return pod

    try:
        return await registry.update_with(rt, namespace, name, assign, opts,
                                          subresource="binding")
    except NotFound:
        raise NotFound("pods", name) from None


def _now() -> str:
    from kubi.api import meta

    return meta.now_rfc3339()
