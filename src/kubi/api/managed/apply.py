"""Server-side apply: merge a configuration, settle ownership, report conflicts.

One apply, as upstream runs it: the configuration is merged over the live
object; the applier's entry becomes exactly the configuration's fields; fields
the applier applied last time and no longer names are pruned from the object
unless another manager owns them; then the change from live to merged is
checked against every other manager. A field another manager owns whose value
this apply changes is a conflict (409, one cause per field) unless `force`, in
which case the other manager loses it. Equal values are shared, not conflicts.
An object managed before by client-side `kubectl apply` upgrades without
conflicts when the manager is `kubectl`: fields that the last-applied
annotation still describes truthfully are taken over, and the annotation is
then rewritten from the new configuration.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from kubi.api.errors import BadRequest, StatusError
from kubi.api.managed.entries import (
    APPLY,
    Entry,
    Ident,
    ManagedFieldsError,
    decode,
    encode,
    ident,
    identifier_json,
    label,
)
from kubi.api.managed.fieldset import (
    Tree,
    difference,
    has,
    intersection,
    path_string,
    paths,
    union,
)
from kubi.api.managed.manager import (
    STRIP,
    Filter,
    record_update,
    reset_filter,
    strip_managed_fields,
)
from kubi.api.managed.merge import merge, remove_items
from kubi.api.managed.skeleton import empty_object
from kubi.api.managed.typed import PathError, go_json
from kubi.api.managed.walk import diff, ensure_named, to_field_set

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
BEFORE_FIRST_APPLY = "before-first-apply"
_MAX_ANNOTATIONS_BYTES = 256 * 1024


class _Conflicts(Exception):
    def __init__(self, items: list[tuple[Ident, list[str]]]) -> None:
        super().__init__("conflicts")
        self.items = items


def conflict_error(items: list[tuple[Ident, list[str]]]) -> StatusError:
    """Upstream's 409 for apply conflicts: grouped message, one cause per field."""
    rendered = [(key, path_string(path)) for key, path in items]
    if len(rendered) == 1:
        key, where = rendered[0]
        message = f"Apply failed with 1 conflict: conflict with {label(key)}: {where}"
    else:
        grouped: dict[Ident, list[str]] = {}
        for key, where in rendered:
            grouped.setdefault(key, []).append(where)
        lines = []
        for key in sorted(grouped, key=identifier_json):
            lines.append(f"conflicts with {label(key)}:")
            lines.extend(f"- {where}" for where in grouped[key])
        message = f"Apply failed with {len(rendered)} conflicts: " + "\n".join(lines)
    causes = [
        {"reason": "FieldManagerConflict", "message": f"conflict with {label(key)}", "field": where}
        for key, where in rendered
    ]
    return StatusError(409, "Conflict", message, {"causes": causes})


def _gvk(api_version: str, kind: str) -> str:
    group, _, version = api_version.rpartition("/")
    return f"{group}/{version}, Kind={kind}"


def _error_path(exc: PathError) -> str:
    where = path_string(getattr(exc, "path", []))
    return f"{where}: {exc.args[0]}" if where else str(exc.args[0])


def server_side_apply(
    live: dict[str, Any] | None,
    config: dict[str, Any],
    *,
    manager: str,
    force: bool,
    api_version: str,
    now: str,
    node: Any,
    subresource: str = "",
    kind: str | None = None,
    reset_fields: Iterable[Sequence[str]] | None = None,
) -> dict[str, Any]:
    """The object after applying `config` (a fresh dict, managedFields set).

    `live` is None when the apply creates the object. Raises StatusError: 409
    on conflicts, 400 for a configuration of another type or carrying
    managedFields, 500 for lists whose items cannot be told apart.
    """
    config_version = str(config.get("apiVersion") or "")
    config_kind = str(config.get("kind") or "")
    expected_kind = kind or (live.get("kind") if live is not None else None) or config_kind
    if config_version != api_version or config_kind != expected_kind:
        raise BadRequest(f"invalid object type: {_gvk(config_version, config_kind)}")
    md = config.get("metadata")
    md = md if type(md) is dict else {}
    if md.get("managedFields") is not None:
        raise BadRequest("metadata.managedFields must be nil")
    try:
        applied = to_field_set(config, node, allow_duplicates=False)
    except PathError as exc:
        raise StatusError(
            500,
            "",
            (
                f"failed to create typed patch object ({md.get('namespace') or ''}/"
                f"{md.get('name') or ''}; {_gvk(config_version, config_kind)}): {_error_path(exc)}"
            ),
        ) from None
    managed: dict[Ident, Entry] = {}
    if live is not None:
        try:
            managed = decode((live.get("metadata") or {}).get("managedFields"))
        except ManagedFieldsError as exc:
            raise StatusError(500, "", f"failed to decode managed fields: {exc}") from None
    live_view = strip_managed_fields(live) if live is not None else {}
    keep = reset_filter(subresource, reset_fields)
    args: dict[str, Any] = {
        "manager": manager,
        "api_version": api_version,
        "subresource": subresource,
        "now": now,
        "node": node,
        "keep": keep,
        "kind": config_kind,
    }
    try:
        obj, result = _apply_once(
            live_view, live is not None, config, applied, managed, force=force, **args
        )
    except _Conflicts as conflicts:
        remaining = conflicts.items
        if manager == "kubectl":
            allowed = _allowed_by_last_applied(live_view, api_version, node)
            if allowed is not None:
                remaining = [(k, p) for k, p in remaining if not has(allowed, p)]
        if remaining:
            raise conflict_error(remaining) from None
        obj, result = _apply_once(
            live_view, live is not None, config, applied, managed, force=True, **args
        )
    except PathError as exc:
        raise StatusError(500, "", f"failed to merge config: {_error_path(exc)}") from None
    obj = _fresh(obj)
    if manager == "kubectl":
        _refresh_last_applied(obj, config)
    entries = encode(result)
    obj_md = obj.setdefault("metadata", {})
    if entries:
        obj_md["managedFields"] = entries
    else:
        obj_md.pop("managedFields", None)
    return obj


def _apply_once(
    live: dict[str, Any],
    exists: bool,
    config: dict[str, Any],
    applied: Tree,
    managed: dict[Ident, Entry],
    *,
    force: bool,
    manager: str,
    api_version: str,
    subresource: str,
    now: str,
    node: Any,
    keep: Filter | None,
    kind: str,
) -> tuple[dict[str, Any], dict[Ident, Entry]]:
    if not managed and exists:
        # Fields set before anyone applied belong to a stand-in updater, so that
        # the first applier meets them as conflicts rather than silently.
        managed = record_update(
            {},
            empty_object(api_version, kind),
            live,
            manager=BEFORE_FIRST_APPLY,
            api_version=api_version,
            subresource=subresource,
            now=now,
            node=node,
            keep=keep,
        )
    key = ident(manager, APPLY, api_version, subresource)
    merged = merge(live, config, node)
    last = managed.get(key)
    managers = dict(managed)
    managers[key] = Entry(
        api_version, True, keep(applied) if keep else applied, last.time if last else None
    )
    merged = _prune(merged, managers, key, last, node)
    others = [k for k in managers if k != key]
    if others:
        changed, removed = diff(live, merged, node)
        if keep is not None:
            changed, removed = keep(changed), keep(removed)
        taken = {k: intersection(managers[k].fields, changed) for k in others}
        taken = {k: t for k, t in taken.items() if t}
        if taken and not force:
            raise _Conflicts(
                [(k, path) for k in sorted(taken, key=identifier_json) for path in paths(taken[k])]
            )
        for k in others:
            entry = managers[k]
            fields = difference(difference(entry.fields, changed), removed)
            if not fields:
                del managers[k]
            elif fields is not entry.fields:
                managers[k] = Entry(entry.api_version, entry.applied, fields, entry.time)
    own = managers[key]
    own_fields = difference(own.fields, STRIP)
    if not own_fields:
        del managers[key]
    else:
        changed_object = merged != live
        managers[key] = Entry(api_version, True, own_fields, now if changed_object else own.time)
    return merged, managers


def _prune(
    merged: dict[str, Any],
    managers: dict[Ident, Entry],
    key: Ident,
    last: Entry | None,
    node: Any,
) -> dict[str, Any]:
    """Remove what the applier applied last time and dropped, unless someone owns it."""
    if last is None or not last.fields:
        return merged
    previous = ensure_named(last.fields, node)
    pruned = remove_items(merged, previous, node)
    owned: Tree = {}
    for entry in managers.values():
        owned = union(owned, entry.fields)
    everything = ensure_named(to_field_set(merged, node), node)
    remaining = ensure_named(to_field_set(pruned, node), node)
    pruned = remove_items(
        merged, difference(everything, union(remaining, ensure_named(owned, node))), node
    )
    remaining = ensure_named(to_field_set(pruned, node), node)
    return remove_items(merged, intersection(difference(everything, remaining), previous), node)


def _allowed_by_last_applied(live: dict[str, Any], api_version: str, node: Any) -> Tree | None:
    """Fields the client-side apply annotation still describes truthfully."""
    annotations = (live.get("metadata") or {}).get("annotations") or {}
    text = annotations.get(LAST_APPLIED) if type(annotations) is dict else None
    if not text or type(text) is not str:
        return None
    try:
        last = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if type(last) is not dict or not last.get("kind") or last.get("apiVersion") != api_version:
        return None
    try:
        described = to_field_set(last, node, allow_duplicates=False)
        changed, removed = diff(last, live, node)
    except PathError:
        return None
    return difference(difference(described, changed), removed)


def _refresh_last_applied(obj: dict[str, Any], config: dict[str, Any]) -> None:
    annotations = obj.get("metadata", {}).get("annotations")
    if type(annotations) is not dict or not annotations.get(LAST_APPLIED):
        return
    source = orjson.loads(orjson.dumps(config))
    source_annotations = (source.get("metadata") or {}).get("annotations")
    if type(source_annotations) is dict:
        source_annotations.pop(LAST_APPLIED, None)
    annotations[LAST_APPLIED] = go_json(source) + "\n"
    total = sum(len(k.encode()) + len(str(v).encode()) for k, v in annotations.items())
    if total > _MAX_ANNOTATIONS_BYTES:
        del annotations[LAST_APPLIED]


def _fresh(obj: dict[str, Any]) -> dict[str, Any]:
    """A copy sharing nothing with the live object or the configuration."""
    try:
        return orjson.loads(orjson.dumps(obj))
    except (TypeError, orjson.JSONEncodeError):
        import copy

        return copy.deepcopy(obj)
