"""Merging an applied configuration into an object, and removing owned fields.

`merge` lays the configuration over the live object: leaves and atomic values
are replaced, maps merge key by key, list-maps and sets merge item by item
(items matched by their key fields or value). Item order follows upstream: the
configuration's order wins for the items it names, and live items it does not
name keep their place relative to them. A null in the configuration removes the
field from the result (upstream stores null, which a typed object drops).

`remove_items` takes a set of fields out of an object; a member takes its whole
subtree. Both return fresh containers along every path they touch and share
untouched subtrees with their inputs.
"""

from __future__ import annotations

from typing import Any

from kubi.api.managed.fieldset import Tree, path_string
from kubi.api.managed.typed import (
    DEDUCED,
    LEAF,
    LIST_MAP,
    LIST_SET,
    MAP,
    PathError,
    child,
    item_pe,
    list_keys,
    shape,
)
from kubi.api.managed.walk import MISSING

NOTHING: Any = object()


def merge(live: dict[str, Any], config: dict[str, Any], node: Any) -> dict[str, Any]:
    """The live object with the configuration applied over it."""
    out = _merge(live, config, node if shape(node) == MAP else None)
    return out if out is not NOTHING else {}


def _merge(lhs: Any, rhs: Any, node: Any) -> Any:
    if rhs is MISSING:
        return lhs
    kind = shape(node)
    rtype = type(rhs)
    if kind == MAP or (kind == DEDUCED and rtype is dict):
        if rtype is not dict:
            return NOTHING if rhs is None else rhs
        lmap = lhs if type(lhs) is dict else None
        if not lmap and not rhs:
            return rhs
        sub_kind_node = node if kind == MAP else None
        out: dict[str, Any] = {}
        # A map whose keys were all set to null stays, empty (upstream keeps the nulls).
        nulled = False
        if lmap:
            for key, lv in lmap.items():
                value = _merge(lv, rhs.get(key, MISSING), child(sub_kind_node, key))
                if value is NOTHING:
                    nulled = nulled or rhs.get(key, 0) is None
                else:
                    out[key] = value
        for key, rv in rhs.items():
            if lmap is None or key not in lmap:
                value = _merge(MISSING, rv, child(sub_kind_node, key))
                if value is NOTHING:
                    nulled = nulled or rv is None
                else:
                    out[key] = value
        return out if out or nulled else NOTHING
    if kind == LIST_MAP or kind == LIST_SET:
        if rtype is not list:
            return NOTHING if rhs is None else rhs
        llist = lhs if type(lhs) is list else None
        if not llist and not rhs:
            return rhs
        return _merge_list(llist or [], rhs, node, kind) or NOTHING
    return NOTHING if rhs is None else rhs


def _pes(items: list[Any], node: Any, kind: int) -> list[str]:
    keys = list_keys(node) if kind == LIST_MAP else None
    item_node = node.items
    out = []
    for index, item in enumerate(items):
        try:
            out.append(item_pe(item, keys, item_node))
        except PathError as exc:
            raise PathError(f"element {index}: {exc.args[0]}") from None
    return out


def _merge_list(lhs: list[Any], rhs: list[Any], node: Any, kind: int) -> list[Any]:
    item_node = node.items
    rpes = _pes(rhs, node, kind)
    lpes = _pes(lhs, node, kind)
    robs = dict(zip(rpes, rhs))
    if len(robs) != len(rpes):
        seen: set[str] = set()
        for pe in rpes:
            if pe in seen:
                raise PathError(f"duplicate entries for key {path_string([pe])}")
            seen.add(pe)
    lobs: dict[str, Any] = {}
    for pe, item in zip(lpes, lhs):
        # Repeated live items are not merged with the configuration's.
        lobs[pe] = None if pe in lobs else item

    # The configuration's order for the items both sides have.
    shared = [pe for pe in rpes if pe in lobs]
    shared_at = 0
    next_shared = shared[0] if shared else None
    merged: set[str] = set()
    out: list[Any] = []

    def emit(value: Any) -> None:
        if value is not NOTHING:
            out.append(value)

    li = ri = 0
    nl, nr = len(lpes), len(rpes)
    while li < nl or ri < nr:
        if li < nl and ri < nr:
            pe = lpes[li]
            if pe == rpes[ri]:
                merged.add(pe)
                emit(_merge(lobs[pe], robs[pe], item_node))
                li += 1
                ri += 1
                shared_at += 1
                next_shared = shared[shared_at] if shared_at < len(shared) else None
                continue
            if pe in robs and next_shared is not None and next_shared != pe:
                li += 1
                continue
        if li < nl:
            pe = lpes[li]
            if pe not in robs:
                emit(lhs[li])
                li += 1
                continue
            if pe in merged:
                li += 1
        if ri < nr:
            pe = rpes[ri]
            merged.add(pe)
            emit(_merge(lobs.get(pe, MISSING), robs[pe], item_node))
            ri += 1
            if next_shared is not None and next_shared == pe:
                shared_at += 1
                next_shared = shared[shared_at] if shared_at < len(shared) else None
    return out


def remove_items(obj: dict[str, Any], fields: Tree, node: Any) -> dict[str, Any]:
    """`obj` without the fields in `fields` (members take their subtrees)."""
    if not fields:
        return obj
    out = _remove(obj, fields, node if shape(node) == MAP else None)
    return out if out is not NOTHING else {}


def _remove(value: Any, fields: Tree, node: Any) -> Any:
    kind = shape(node)
    vtype = type(value)
    if kind == MAP or (kind == DEDUCED and vtype is dict):
        if vtype is not dict or not value:
            return NOTHING
        sub_node = node if kind == MAP else None
        out: dict[str, Any] = {}
        for key, sub in value.items():
            below = fields.get("f:" + key)
            if below is None:
                out[key] = sub
            elif below and "." not in below:
                kept = _remove(sub, below, child(sub_node, key))
                if kept is not NOTHING:
                    out[key] = kept
        return out if out else NOTHING
    if kind == LIST_MAP or kind == LIST_SET:
        if vtype is not list or not value:
            return NOTHING
        item_node = node.items
        items: list[Any] = []
        for pe, item in zip(_pes(value, node, kind), value):
            below = fields.get(pe)
            if below is None:
                items.append(item)
            elif below and "." not in below:
                kept = _remove(item, below, item_node)
                if kept is not NOTHING:
                    items.append(kept)
        return items if items else NOTHING
    if kind == LEAF and vtype not in (dict, list):
        return value
    if kind == DEDUCED and vtype is not list:
        return value
    return NOTHING
