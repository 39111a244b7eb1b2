"""PATCH requests and field ownership: the glue between the REST storage and
the pure patch and managedFields code in `kubi.api.patch` and `kubi.api.managed`.

Four patch types, chosen by Content-Type as upstream does: JSON patch (RFC
6902), JSON merge patch (RFC 7386), strategic merge patch (merge keys from the
schema) and server-side apply (`application/apply-patch+yaml`). The patched
object then goes through the same update pipeline as a PUT, including the
unknown-field check the request's `fieldValidation` asks for.
"""

from __future__ import annotations

import orjson
import yaml

from kubi.api import managed, meta, schema
from kubi.api.catalog import ResourceType
from kubi.api.errors import BadRequest, Invalid, StatusError, UnsupportedMediaType, required
from kubi.api.patch import PatchError, jsonpatch, mergepatch, strategic
from kubi.apiserver import decoding

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, APPLY_PATCH)


def parse_patch(content_type: str, body: bytes) -> object:
    if content_type not in PATCH_TYPES:
        raise UnsupportedMediaType(content_type)
    try:
        patch = orjson.loads(body)
    except orjson.JSONDecodeError:
        try:
            patch = decoding.load_yaml(body)
        except yaml.YAMLError as exc:
            raise BadRequest(f"error decoding patch: {exc}") from None
    if content_type == JSON_PATCH:
        if not isinstance(patch, list):
            raise BadRequest(
                "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
            )
    elif not isinstance(patch, dict):
        raise BadRequest("the patch must be a JSON object")
    return patch


def touched_fields(content_type: str, patch: object) -> frozenset[str] | None:
    """The top-level fields `patch` can change, None when it may change any.

    A merge-style patch names them as its keys (a strategic directive names
    the field after its '/'); a JSON patch as the first step of each path.
    """
    fields: set[str] = set()
    if content_type == JSON_PATCH:
        for op in patch if isinstance(patch, list) else ():
            if not isinstance(op, dict):
                return None
            for key in ("path", "from"):
                path = op.get(key)
                if key == "from" and path is None:
                    continue
                if not isinstance(path, str) or not path.startswith("/") or path == "/":
                    return None
                fields.add(path[1:].split("/", 1)[0].replace("~1", "/").replace("~0", "~"))
        return frozenset(fields)
    if not isinstance(patch, dict):
        return None
    for key in patch:
        if key.startswith("$"):
            _, slash, field = key.partition("/")
            if not slash:
                return None  # $patch or $retainKeys on the whole object
            fields.add(field)
        else:
            fields.add(key)
    return frozenset(fields)


def patch_resource_version(patch: object) -> str | None:
    """A resourceVersion in a merge-style patch is an optimistic-lock precondition."""
    if isinstance(patch, dict):
        md = patch.get("metadata")
        if isinstance(md, dict) and isinstance(md.get("resourceVersion"), str):
            return md["resourceVersion"] or None
    return None


def apply_patch(rt: ResourceType, content_type: str, current: dict, patch: object,
                own_patch: bool = False) -> dict:
    """`current` (the caller's own copy, which this may change) with `patch` applied;
    with `own_patch` the patch is the caller's to spend too."""
    node = schema.for_kind(rt.group, rt.version, rt.kind)
    try:
        if content_type == JSON_PATCH:
            result = jsonpatch.apply_json_patch(current, patch)
        elif content_type == MERGE_PATCH:
            result = mergepatch.apply_merge_patch(current, patch, in_place=True)
        else:
            result = strategic.apply_strategic_merge_patch(current, patch, node, in_place=True,
                                                           own_patch=own_patch)
    except PatchError as exc:
        raise patch_status(exc) from None
    if not isinstance(result, dict):
        raise BadRequest("the patched object is not an object")
    return result


_REASONS = {400: "BadRequest", 413: "RequestEntityTooLarge", 422: "Invalid", 500: "InternalError"}


def patch_status(exc: PatchError) -> StatusError:
    """A failed patch as upstream reports it: its own code and Status message."""
    return StatusError(exc.code, _REASONS.get(exc.code, ""), exc.message)


def touched_subfields(content_type: str, patch: object) -> dict[str, frozenset[str]]:
    """For a merge-style patch, the fields it can change one level down: for each
    top-level map it patches key by key, the keys it names there (a strategic
    directive names the field after its '/'). A top-level field missing here may
    change anywhere below it (a whole-map directive, a list, a JSON patch)."""
    if content_type == JSON_PATCH or not isinstance(patch, dict):
        return {}
    out: dict[str, frozenset[str]] = {}
    for key, value in patch.items():
        if key.startswith("$") or type(value) is not dict:
            continue
        names: set[str] = set()
        for sub in value:
            if sub.startswith("$"):
                _, slash, field = sub.partition("/")
                if not slash:
                    break  # $patch or $retainKeys on the whole map
                names.add(field)
            else:
                names.add(sub)
        else:
            out[key] = frozenset(names)
    return out


def check_patched(rt: ResourceType, obj: dict, validation: str, warnings: list[str],
                  touched: frozenset[str] | None = None,
                  within: dict[str, frozenset[str]] | None = None) -> None:
    """Apply the schema to a patched object; with `touched` (the top-level fields
    the patch could change), only those are checked, and of those in `within`
    only the fields named there: the rest is as stored, and was checked when it
    was written."""
    decoding.check_fields(rt, obj, validation, warnings, touched, within)


def track_update(
    rt: ResourceType, old: dict | None, new: dict, opts, subresource: str
) -> None:
    """Record the write's changed fields under the request's field manager."""
    node = schema.for_kind(rt.group, rt.version, rt.kind)
    new["metadata"]["managedFields"] = managed.update_managed_fields(
        old,
        new,
        manager=opts.manager(),
        operation="Update",
        subresource=subresource,
        api_version=rt.api_version,
        now=meta.now_rfc3339(),
        node=node,
    )
    if not new["metadata"]["managedFields"]:
        del new["metadata"]["managedFields"]


async def server_side_apply(registry, rt: ResourceType, namespace: str, name: str, body: bytes,
                            opts, subresource: str):
    """`application/apply-patch+yaml`: create or update the object so it holds the
    applied configuration, with ownership and conflicts per field manager."""
    if not opts.field_manager:
        raise Invalid(
            "PatchOptions", "", [required("fieldManager", "is required for apply patch")],
            "meta.k8s.io",
        )
    try:
        config = decoding.load_yaml(body)
    except yaml.YAMLError as exc:
        raise BadRequest(f"error decoding YAML: {exc}") from None
    if not isinstance(config, dict):
        raise BadRequest("the apply configuration must be an object")
    registry._check_type_meta(rt, config)
    md = config.setdefault("metadata", {})
    if md.get("name") and md["name"] != name:
        raise BadRequest(
            f"the name of the object ({md['name']}) does not match the name on the URL ({name})"
        )
    md["name"] = name
    registry._set_namespace(rt, namespace, md)
    decoding.check_fields(rt, config, opts.field_validation, opts.warnings)
    node = schema.for_kind(rt.group, rt.version, rt.kind)

    def applied(live: dict | None) -> dict:
        return managed.server_side_apply(
            live,
            config,
            manager=opts.field_manager,
            force=opts.force,
            api_version=rt.api_version,
            now=meta.now_rfc3339(),
            node=node,
            subresource=subresource,
        )

    def keep(_old: dict | None, _new: dict) -> None:
        """Ownership was settled by the apply itself."""

    if registry.find(rt, namespace, name) is None:
        if subresource:
            from kubi.api.errors import NotFound

            raise NotFound(rt.plural, name, rt.group)
        obj = applied(None)
        return await registry.create(rt, namespace, obj, opts, track=keep), True
    precondition = md.get("resourceVersion") or None
    entry = await registry.update_with(
        rt, namespace, name, applied, opts, subresource=subresource,
        precondition_rv=precondition, operation="Apply", track=keep,
    )
    return entry, False
