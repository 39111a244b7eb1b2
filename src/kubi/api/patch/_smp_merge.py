"""Merging a strategic merge patch into a document (or into another patch).

`merge_map` walks the patch beside the document, looking each field up in the
schema: maps merge recursively (unless the field's strategy is `replace`),
lists merge by merge key or as sets when the strategy is `merge`, and the
directives are applied on the way. The same walk, with `COMBINING` options,
folds two patches into one for three-way patch creation: then the parallel
lists and nulls are carried along instead of applied. Inputs are owned by the
caller and changed in place; `strategic` copies before calling in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubi.api.patch import json_equal
from kubi.api.patch._smp_common import (
    BAD_RETAIN_KEYS,
    BAD_SET_ELEMENT_ORDER,
    DELETE,
    DELETE_FROM_PRIMITIVE_LIST,
    DIRECTIVE,
    MAP_TYPE,
    MERGE,
    REPLACE,
    RETAIN_KEYS,
    SET_ELEMENT_ORDER,
    SLICE_TYPE,
    StrategicPatchError,
    bad_arg_type,
    bad_patch_type,
    bad_request,
    dedupe_scalars,
    discard_nulls,
    element_kind,
    extract_key,
    field_meta,
    find_by_key,
    go_text,
    hash_key,
    internal,
    no_merge_key,
    normalize_order,
    partition,
    remove_directives,
)
from kubi.api.schema import Node


@dataclass(frozen=True)
class MergeOptions:
    # Apply `$deleteFromPrimitiveList` and `$setElementOrder` (server side), or
    # carry them along (when merging two patches into one, client side).
    parallel_lists: bool
    # Drop nulls the original lacks instead of keeping them as deletions.
    ignore_unmatched_nulls: bool


APPLYING = MergeOptions(parallel_lists=True, ignore_unmatched_nulls=True)
COMBINING = MergeOptions(parallel_lists=False, ignore_unmatched_nulls=False)


# ---- maps ------------------------------------------------------------------------------


def merge_map(original: dict[str, Any] | None, patch: dict[str, Any], node: Node | None,
              options: MergeOptions) -> dict[str, Any]:
    """Merge `patch` into `original`; both are owned by the caller and may be changed."""
    if DIRECTIVE in patch:
        return _map_directive(patch, options)
    if original is None:
        original = {}
    _retain_keys(original, patch, options)
    _set_element_order(original, patch, node, options)
    for key, value in list(patch.items()):
        deletion_list = False
        if key.startswith(DELETE_FROM_PRIMITIVE_LIST):
            if not options.parallel_lists:
                original[key] = value
                continue
            key = extract_key(key, DELETE_FROM_PRIMITIVE_LIST)
            deletion_list = True
        if value is None:
            original.pop(key, None)
            if options.ignore_unmatched_nulls:
                continue
        if key not in original or type(original[key]) is not type(value):
            if not deletion_list:
                _put(original, key, value, options)
            continue
        current = original[key]
        meta = field_meta(node, key)
        if isinstance(current, dict):
            if meta.strategy == REPLACE:
                original[key] = value
            else:
                original[key] = merge_map(current, value, meta.node, options)
        elif isinstance(current, list):
            original[key] = merge_list_field(current, value, meta.element, meta.strategy,
                                             meta.merge_key, deletion_list, options)
        else:
            original[key] = value
    return original


def _put(original: dict[str, Any], key: str, value: Any, options: MergeOptions) -> None:
    """Take the patch's value where there is nothing (or nothing alike) to merge with."""
    if options.ignore_unmatched_nulls:
        discard_nulls(value)
    cleaned, keep = remove_directives(value)
    if keep:
        original[key] = cleaned
    else:
        original.pop(key, None)


def _map_directive(patch: dict[str, Any], options: MergeOptions) -> dict[str, Any]:
    directive = patch[DIRECTIVE]
    if directive == REPLACE:
        del patch[DIRECTIVE]
        if options.ignore_unmatched_nulls:
            discard_nulls(patch)
        return patch
    if directive == DELETE:
        return {}
    raise bad_patch_type(directive, patch)


def _retain_keys(original: dict[str, Any], patch: dict[str, Any], options: MergeOptions) -> None:
    """`$retainKeys`: clear every key of `original` the list does not name."""
    if RETAIN_KEYS not in patch:
        return
    retained = patch.pop(RETAIN_KEYS)
    if not options.parallel_lists:
        if RETAIN_KEYS in original:
            if not json_equal(original[RETAIN_KEYS], retained):
                raise internal(
                    f"{go_text(original[RETAIN_KEYS])} and {go_text(retained)} are not deep equal: "
                    "this may happen when calculating the 3-way diff patch")
        else:
            original[RETAIN_KEYS] = retained
        return
    if not isinstance(retained, list):
        raise bad_request(BAD_RETAIN_KEYS)
    keep = {hash_key(item) for item in retained}
    for key, value in patch.items():
        if value is None or key.startswith((DELETE_FROM_PRIMITIVE_LIST, SET_ELEMENT_ORDER)):
            continue
        if hash_key(key) not in keep:
            raise bad_request(BAD_RETAIN_KEYS)
    for key in [k for k in original if hash_key(k) not in keep]:
        del original[key]


def _set_element_order(original: dict[str, Any], patch: dict[str, Any], node: Node | None,
                       options: MergeOptions) -> None:
    """Merge each list a `$setElementOrder/<list>` names and put it in that order.

    The order list wins over the patch list's order, which wins over the order
    the server had; items only the server has keep their place between them.
    """
    for directive in [k for k in patch if k.startswith(SET_ELEMENT_ORDER)]:
        order = patch.pop(directive)
        if not options.parallel_lists:
            if directive in original:
                if not json_equal(original[directive], order):
                    raise bad_request(BAD_SET_ELEMENT_ORDER)
            else:
                original[directive] = order
        if not isinstance(order, list):
            raise bad_arg_type(SLICE_TYPE, order)
        key = extract_key(directive, SET_ELEMENT_ORDER)
        current, incoming = original.get(key), patch.get(key)
        if key in original and not isinstance(current, list):
            raise bad_arg_type(SLICE_TYPE, current)
        if key in patch and not isinstance(incoming, list):
            raise bad_arg_type(SLICE_TYPE, incoming)
        meta = field_meta(node, key)
        _check_order(incoming or [], order, meta.merge_key)
        # Upstream reads the live list back after merging into it in place, so
        # the order it keeps for server-only items is that of the live list's
        # storage after the merge (see `_merge_list`), not of the list as it was.
        server_order = current or []
        if current is not None and incoming is None:
            merged = current
        elif current is None and incoming is not None:
            merged = remove_directives(incoming)[0]
        elif current is not None and incoming is not None:
            storage: list[Any] = []
            merged = merge_list_field(current, incoming, meta.element, meta.strategy,
                                      meta.merge_key, False, options, storage)
            server_order = storage or current
        else:
            continue
        try:
            maps = element_kind(current or [], incoming or []) == "map"
        except StrategicPatchError:
            if merged:
                raise
            # Nothing to order: an empty list stays empty.
            original[key] = merged
            patch.pop(key, None)
            continue
        named, server_only = partition(merged, order, meta.merge_key)
        original[key] = normalize_order(named, server_only, order, server_order,
                                        meta.merge_key, maps)
        patch.pop(key, None)


def _check_order(items: list[Any], order: list[Any], merge_key: str) -> None:
    """The patch list must name its items in the same relative order as the order list."""
    if not order or not items:
        return
    if merge_key:
        for item in items:
            if not isinstance(item, dict):
                raise bad_arg_type(MAP_TYPE, item)
        items = [i for i in items if i.get(DIRECTIVE) != DELETE]
    position, ordered = 0, 0
    while position < len(items) and ordered < len(order):
        item = items[position]
        if isinstance(item, dict) and DIRECTIVE in item:
            position += 1
            continue
        if _same_key(item, order[ordered], merge_key):
            position += 1
        ordered += 1
    if position < len(items) and ordered >= len(order):
        raise internal(
            f"The order in patch list:\n{go_text(items)}\n doesn't match "
            f"{SET_ELEMENT_ORDER} list:\n{go_text(order)}\n")


def _same_key(left: Any, right: Any, merge_key: str) -> bool:
    if not merge_key:
        return type(left) is type(right) and left == right
    for side in (left, right):
        if not isinstance(side, dict):
            raise bad_arg_type(MAP_TYPE, side)
        if merge_key not in side:
            raise no_merge_key(side, merge_key)
    return type(left[merge_key]) is type(right[merge_key]) and left[merge_key] == right[merge_key]


# ---- lists -------------------------------------------------------------------------------


def merge_list_field(current: list[Any], incoming: list[Any], element: Node | None,
                     strategy: str, merge_key: str, deletion_list: bool,
                     options: MergeOptions, storage: list[Any] | None = None) -> list[Any]:
    """A list field: merged when its strategy says so (or for a deletion list), else replaced.

    `storage`, if given, receives the live list's storage as merging left it.
    """
    if strategy == MERGE or deletion_list:
        return _merge_list(current, incoming, element, merge_key, deletion_list, options,
                           storage)
    if options.ignore_unmatched_nulls:
        discard_nulls(incoming)
    return incoming


def _merge_list(current: list[Any], incoming: list[Any], element: Node | None, merge_key: str,
                deletion_list: bool, options: MergeOptions,
                storage: list[Any] | None = None) -> list[Any]:
    if not current and not incoming:
        return current
    maps = element_kind(current, incoming) == "map"
    if not maps:
        if options.parallel_lists and deletion_list:
            doomed = {hash_key(v) for v in incoming}
            return [v for v in current if hash_key(v) not in doomed]
        merged = dedupe_scalars(current + incoming)
    else:
        if not merge_key:
            raise internal("cannot merge lists without merge key for struct")
        live = _LiveList(current)
        current, incoming = _list_directives(live, incoming, merge_key)
        merged = _merge_elements(live, current, incoming, merge_key, element, options)
        if storage is not None:
            storage.extend(live.cells)
    named, server_only = partition(merged, incoming, merge_key)
    return normalize_order(named, server_only, incoming, current, merge_key, maps)


class _LiveList:
    """The live list's storage as upstream's in-place merge leaves it.

    Deleting an element shifts the rest left inside the same storage, and new
    elements are appended into the freed cells until it is full (its capacity
    is its original length). `cells` is what reading the live list back shows;
    upstream uses that as the server's order when applying `$setElementOrder`.
    Worked example: live [1, 2, 4], patch deletes 1 and adds 3: the cells go
    [2, 4, 4] then [2, 4, 3], so 4 sorts before the new 3.
    """

    def __init__(self, items: list[Any]) -> None:
        self.cells = list(items)
        self.size = len(items)
        self.shared = True  # appends still land in the original storage

    def delete(self, position: int) -> None:
        self.cells[position:self.size - 1] = self.cells[position + 1:self.size]
        self.size -= 1

    def append(self, item: Any) -> None:
        if self.shared and self.size < len(self.cells):
            self.cells[self.size] = item
            self.size += 1
        else:
            self.shared = False


def _list_directives(live: _LiveList, incoming: list[Any],
                     merge_key: str) -> tuple[list[Any], list[Any]]:
    """Apply `$patch` elements: deletions by merge key, or `replace` of the whole list.

    Returns the list to merge into and the patch elements left to merge.
    """
    plain: list[Any] = []
    replace = False
    for item in incoming:
        if DIRECTIVE not in item:
            plain.append(item)
            continue
        directive = item[DIRECTIVE]
        if directive == DELETE:
            if merge_key not in item:
                raise no_merge_key(item, merge_key)
            value = item[merge_key]
            while (position := find_by_key(live.cells[:live.size], merge_key, value)) >= 0:
                live.delete(position)
        elif directive == REPLACE:
            replace = True
        elif directive == MERGE:
            raise internal("merging lists cannot yet be specified in the patch")
        else:
            raise bad_patch_type(directive, item)
    if replace:
        live.shared = False
        live.cells, live.size = [], 0
        return plain, []
    return live.cells[:live.size], plain


def _merge_elements(live: _LiveList, current: list[Any], incoming: list[Any], merge_key: str,
                    element: Node | None, options: MergeOptions) -> list[Any]:
    merged = list(current)
    for item in incoming:
        if merge_key not in item:
            raise no_merge_key(item, merge_key)
        position = find_by_key(merged, merge_key, item[merge_key])
        if position >= 0:
            merged[position] = merge_map(merged[position], item, element, options)
        elif options.ignore_unmatched_nulls:
            # A new element: what upstream stores is its decoded form, which has
            # no nulls and no directives left in it.
            discard_nulls(item)
            merged.append(remove_directives(item)[0])
            live.append(merged[-1])
        else:
            merged.append(item)
            live.append(item)
    return merged
