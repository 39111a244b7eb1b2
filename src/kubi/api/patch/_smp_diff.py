"""Creating strategic merge patches: the two-way diff and kubectl apply's three-way.

`diff_maps` compares two documents field by field. Changed scalars and
replaced lists go into the patch as new values, removed keys as `null`, maps
recurse; merge lists yield only the changed elements (keyed by merge key), a
`$patch: delete` element per removed one, and a `$setElementOrder/<list>` that
fixes the resulting order; merge lists of scalars yield the additions and a
`$deleteFromPrimitiveList/<list>`; fields with the retainKeys strategy yield a
`$retainKeys` list. The three-way patch (last applied, new manifest, live
object) is the deletions from last-applied to new, combined with the changes
from live to new, exactly the patch client-side apply sends.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from kubi.api.patch import copy_json, json_equal
from kubi.api.patch._smp_common import (
    BAD_JSON_DOC,
    DELETE,
    DELETE_FROM_PRIMITIVE_LIST,
    DIRECTIVE,
    MAP_TYPE,
    MERGE,
    REPLACE,
    RETAIN_KEYS,
    SET_ELEMENT_ORDER,
    bad_arg_type,
    bad_request,
    dedupe_scalars,
    element_kind,
    field_meta,
    go_text,
    internal,
    no_merge_key,
    sort_by_order,
    sort_scalars,
)
from kubi.api.patch._smp_merge import COMBINING, merge_map
from kubi.api.schema import Node


@dataclass(frozen=True)
class DiffOptions:
    set_element_order: bool = False
    ignore_changes_and_additions: bool = False
    ignore_deletions: bool = False
    build_retain_keys: bool = False


def _document(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_request(BAD_JSON_DOC)
    copied: dict[str, Any] = copy_json(value)
    return copied


def create_two_way_strategic_patch(
    original: Any, modified: Any, node: Node | None
) -> dict[str, Any]:
    """The patch that turns `original` into `modified` when applied with `node`."""
    return diff_maps(_document(original), _document(modified), node,
                     DiffOptions(set_element_order=True))


def create_three_way_strategic_patch(original: Any, modified: Any, current: Any,
                                     node: Node | None) -> dict[str, Any]:
    """kubectl apply's patch: `original` is the last-applied configuration,
    `modified` the new one and `current` the live object. Changes made to the
    live object by others survive unless the new configuration overrides them
    (apply's default `--overwrite`; conflicts are not reported)."""
    current_doc, modified_doc = _document(current), _document(modified)
    delta = diff_maps(current_doc, modified_doc, node,
                      DiffOptions(ignore_deletions=True, set_element_order=True))
    deletions = diff_maps(_document(original), _document(modified), node,
                          DiffOptions(set_element_order=True, ignore_changes_and_additions=True))
    return merge_map(deletions, delta, node, COMBINING)


def diff_maps(original: dict[str, Any], modified: dict[str, Any], node: Node | None,
              options: DiffOptions) -> dict[str, Any]:
    patch: dict[str, Any] = {}
    retained: list[str] = []
    for key, new in modified.items():
        if options.build_retain_keys and new is not None:
            retained.append(key)
        if key not in original:
            if not options.ignore_changes_and_additions:
                patch[key] = new
            continue
        old = original[key]
        if key == DIRECTIVE:
            if not isinstance(old, str) or not isinstance(new, str):
                raise internal(f"invalid value for special key: {DIRECTIVE}")
            if new != old:
                patch[DIRECTIVE] = new
            continue
        if type(old) is not type(new):
            if not options.ignore_changes_and_additions:
                patch[key] = new
            continue
        if isinstance(old, dict):
            _diff_map_field(key, old, new, patch, node, options)
        elif isinstance(old, list):
            _diff_list_field(key, old, new, patch, node, options)
        else:
            _replace_if_changed(key, old, new, patch, options)
    if not options.ignore_deletions:
        for key in original:
            if key not in modified:
                patch[key] = None
    if retained and (patch or _has_more_fields(original, modified)):
        patch[RETAIN_KEYS] = sort_scalars(retained)
    return patch


def _has_more_fields(original: dict[str, Any], modified: dict[str, Any]) -> bool:
    return any(value is not None and key not in modified for key, value in original.items())


def _replace_if_changed(key: str, old: Any, new: Any, patch: dict[str, Any],
                        options: DiffOptions) -> None:
    if not options.ignore_changes_and_additions and not json_equal(old, new):
        patch[key] = new


def _diff_map_field(key: str, old: dict[str, Any], new: dict[str, Any], patch: dict[str, Any],
                    node: Node | None, options: DiffOptions) -> None:
    meta = field_meta(node, key)
    if meta.strategy == REPLACE:
        if not options.ignore_changes_and_additions:
            patch[key] = new
        return
    nested = diff_maps(old, new, meta.node, replace(options, build_retain_keys=meta.retain_keys))
    if nested:
        patch[key] = nested


def _diff_list_field(key: str, old: list[Any], new: list[Any], patch: dict[str, Any],
                     node: Node | None, options: DiffOptions) -> None:
    meta = field_meta(node, key)
    if meta.strategy != MERGE:
        _replace_if_changed(key, old, new, patch, options)
        return
    nested = replace(options, build_retain_keys=meta.retain_keys)
    additions, deletions, order = _diff_lists(old, new, meta.element, meta.merge_key, nested)
    if additions:
        patch[key] = additions
    if deletions:
        patch[f"{DELETE_FROM_PRIMITIVE_LIST}/{key}"] = deletions
    if order:
        patch[f"{SET_ELEMENT_ORDER}/{key}"] = order


def _diff_lists(original: list[Any], modified: list[Any], element: Node | None, merge_key: str,
                options: DiffOptions) -> tuple[list[Any], list[Any], list[Any]]:
    """(patch list, deletion list for scalars, `$setElementOrder` list) of a merge list."""
    if not original:
        if not modified or options.ignore_changes_and_additions:
            return [], [], []
        return modified, [], []
    if element_kind(original, modified) == "map":
        changed, removed = _diff_lists_of_maps(original, modified, element, merge_key, options)
        changed = sort_by_order(changed, modified, merge_key, True) + removed
        order_same = _order_same(original, modified, merge_key)
        order: list[Any] = []
        if options.set_element_order and (
            (not options.ignore_changes_and_additions and (changed or not order_same))
            or (not options.ignore_deletions and changed)
        ):
            order = [{merge_key: item[merge_key]} for item in modified]
        return changed, [], order
    # Upstream sorts the original list in place while diffing, then compares the
    # sorted copy with the new list to decide whether the order changed.
    original.sort(key=go_text)
    added, deleted = _diff_lists_of_scalars(original, modified, options)
    added = sort_by_order(added, modified, merge_key, False)
    order = []
    if options.set_element_order and (
        (not options.ignore_deletions and deleted)
        or (not options.ignore_changes_and_additions and not json_equal(original, modified))
    ):
        order = modified
    return added, deleted, order


def _diff_lists_of_scalars(original: list[Any], modified: list[Any],
                           options: DiffOptions) -> tuple[list[Any], list[Any]]:
    old, new = sort_scalars(original), sort_scalars(modified)
    added: list[Any] = []
    deleted: list[Any] = []
    i = j = 0
    while i < len(old) or j < len(new):
        left = go_text(old[i]) if i < len(old) else ""
        right = go_text(new[j]) if j < len(new) else ""
        if i < len(old) and j < len(new) and left == right:
            i, j = i + 1, j + 1
        elif i >= len(old) or (j < len(new) and left > right):
            if not options.ignore_changes_and_additions:
                added.append(new[j])
            j += 1
        else:
            if not options.ignore_deletions:
                deleted.append(old[i])
            i += 1
    return added, dedupe_scalars(deleted)


def _keyed(items: list[Any], merge_key: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for item in items:
        if not isinstance(item, dict):
            raise bad_arg_type(MAP_TYPE, item)
        out.append((go_text(item.get(merge_key)), item))
    out.sort(key=lambda pair: pair[0])
    for _, item in out:
        if merge_key not in item:
            raise no_merge_key(item, merge_key)
    return out


def _diff_lists_of_maps(original: list[Any], modified: list[Any], element: Node | None,
                        merge_key: str, options: DiffOptions) -> tuple[list[Any], list[Any]]:
    """(changed and added elements, `$patch: delete` elements) matched by merge key."""
    old, new = _keyed(original, merge_key), _keyed(modified, merge_key)
    changed: list[Any] = []
    removed: list[Any] = []
    i = j = 0
    while i < len(old) or j < len(new):
        if i < len(old) and j < len(new) and old[i][0] == new[j][0]:
            nested = diff_maps(old[i][1], new[j][1], element, options)
            if nested:
                nested[merge_key] = new[j][1][merge_key]
                changed.append(nested)
            i, j = i + 1, j + 1
        elif i >= len(old) or (j < len(new) and old[i][0] > new[j][0]):
            if not options.ignore_changes_and_additions:
                changed.append(new[j][1])
            j += 1
        else:
            if not options.ignore_deletions:
                removed.append({merge_key: old[i][1][merge_key], DIRECTIVE: DELETE})
            i += 1
    return changed, removed


def _order_same(original: list[Any], modified: list[Any], merge_key: str) -> bool:
    if len(original) != len(modified):
        return False
    for left, right in zip(original, modified, strict=True):
        for side in (left, right):
            if merge_key not in side:
                raise no_merge_key(side, merge_key)
        if not (type(left[merge_key]) is type(right[merge_key])
                and left[merge_key] == right[merge_key]):
            return False
    return True
