"""Field sets of objects: what a configuration sets, and what a write changed.

`to_field_set` lists the fields an applied configuration owns: every leaf, every
list item, every map key that is not a declared struct field, and empty or null
maps (so an applier can own "this map, empty"). Declared struct fields with
content are not members themselves, only their contents are.

`diff` compares the live and the new object the way upstream's comparison
does: a field present on one side only is added (or removed) together with
everything below it, each level a member; a field on both sides is changed
where its leaves differ. Equal subtrees are skipped with one `==`, which keeps
the cost of an update close to the size of what it changed.
"""

from __future__ import annotations

from typing import Any

from kubi.api.managed.fieldset import Tree
from kubi.api.managed.typed import (
    DEDUCED,
    LIST_MAP,
    LIST_SET,
    MAP,
    PathError,
    child,
    is_named,
    item_pe,
    list_keys,
    shape,
)

MISSING: Any = object()


def _prefixed(exc: PathError, pe: str) -> PathError:
    path = getattr(exc, "path", [])
    err = PathError(exc.args[0])
    err.path = [pe, *path]  # type: ignore[attr-defined]
    return err


def _item_pes(items: list[Any], node: Any, kind: int) -> list[str]:
    keys = list_keys(node) if kind == LIST_MAP else None
    item_node = node.items
    pes = []
    for index, item in enumerate(items):
        try:
            pes.append(item_pe(item, keys, item_node))
        except PathError as exc:
            raise PathError(f"element {index}: {exc.args[0]}") from None
    return pes


# ---- what an object sets -------------------------------------------------------------


def to_field_set(obj: Any, node: Any, *, allow_duplicates: bool = True) -> Tree:
    """The fields `obj` sets (upstream's ToFieldSet); PathError on unaddressable items."""
    if type(obj) is not dict:
        return {}
    return _set_of_map(obj, node if shape(node) == MAP else None, allow_duplicates)


def _set_of_map(value: dict[str, Any], node: Any, dups: bool) -> Tree:
    out: Tree = {}
    for key, sub in value.items():
        pe = "f:" + key
        sub_node = child(node, key)
        kind = shape(sub_node)
        try:
            children = _children_of(sub, sub_node, kind, dups)
        except PathError as exc:
            raise _prefixed(exc, pe) from None
        if children is None:
            out[pe] = {}
            continue
        member = sub is None or (type(sub) is dict and not sub) or not is_named(node, key)
        if children:
            out[pe] = {".": {}, **children} if member else children
        elif member:
            out[pe] = {}
    return out


def _children_of(value: Any, node: Any, kind: int, dups: bool) -> Tree | None:
    """The set below a granular value, or None when the value is one leaf."""
    vtype = type(value)
    if kind == MAP:
        return _set_of_map(value, node, dups) if vtype is dict else {}
    if kind == DEDUCED:
        return _set_of_map(value, None, dups) if vtype is dict else None
    if kind == LIST_MAP or kind == LIST_SET:
        return _set_of_list(value, node, kind, dups) if vtype is list else {}
    return None


def _set_of_list(items: list[Any], node: Any, kind: int, dups: bool) -> Tree:
    pes = _item_pes(items, node, kind)
    out: Tree = {}
    repeated: set[str] = set()
    if len(set(pes)) != len(pes):
        seen: set[str] = set()
        for pe in pes:
            if pe in seen:
                if not dups:
                    from kubi.api.managed.fieldset import path_string

                    raise PathError(f"duplicate entries for key {path_string([pe])}")
                repeated.add(pe)
            seen.add(pe)
    item_node = node.items
    item_kind = shape(item_node)
    for pe, item in zip(pes, items):
        if pe in repeated:
            out[pe] = {}
            continue
        try:
            children = _children_of(item, item_node, item_kind, dups)
        except PathError as exc:
            raise _prefixed(exc, pe) from None
        out[pe] = {".": {}, **children} if children else {}
    return out


def ensure_named(tree: Tree, node: Any) -> Tree:
    """`tree` with every declared struct field that has members below made a member too."""
    if node is None or not tree:
        return tree
    kind = shape(node)
    out: Tree | None = None
    for pe, sub in tree.items():
        if pe == "." or not sub:
            continue
        if pe[0] == "f" and kind == MAP:
            name = pe[2:]
            new = ensure_named(sub, child(node, name))
            if "." not in new and is_named(node, name):
                new = {".": {}, **new}
        elif pe[0] == "k" and kind == LIST_MAP:
            new = ensure_named(sub, node.items)
        else:
            continue
        if new is not sub:
            if out is None:
                out = dict(tree)
            out[pe] = new
    return out if out is not None else tree


# ---- what a write changed ------------------------------------------------------------


def all_fields(value: Any, node: Any) -> Tree:
    """The subtree for a field present on one side only: it and everything below."""
    kind = shape(node)
    vtype = type(value)
    if vtype is dict and value and (kind == MAP or kind == DEDUCED):
        out: Tree = {".": {}}
        for key, sub in value.items():
            out["f:" + key] = all_fields(sub, child(node, key) if kind == MAP else None)
        return out
    if vtype is list and value and (kind == LIST_MAP or kind == LIST_SET):
        out = {".": {}}
        item_node = node.items
        pes = _item_pes(value, node, kind)
        repeated = _repeated(pes)
        for pe, item in zip(pes, value):
            out[pe] = {} if pe in repeated else all_fields(item, item_node)
        return out
    return {}


def _repeated(pes: list[str]) -> set[str]:
    if len(set(pes)) == len(pes):
        return set()
    seen: set[str] = set()
    return {pe for pe in pes if pe in seen or seen.add(pe)}  # type: ignore[func-returns-value]


def diff(live: dict[str, Any], new: dict[str, Any], node: Any) -> tuple[Tree, Tree]:
    """(added or modified, removed) field sets between two objects."""
    changed: Tree = {}
    removed: Tree = {}
    _diff_map(live, new, node if shape(node) == MAP else None, changed, removed)
    return changed, removed


def _diff_map(lhs: dict, rhs: dict, node: Any, changed: Tree, removed: Tree) -> None:
    for key, lv in lhs.items():
        rv = rhs.get(key, MISSING)
        if rv is MISSING:
            removed["f:" + key] = all_fields(lv, child(node, key))
        elif lv is not rv and lv != rv:
            pe = "f:" + key
            try:
                c, r = _diff_value(lv, rv, child(node, key))
            except PathError as exc:
                raise _prefixed(exc, pe) from None
            if c is not None:
                changed[pe] = c
            if r is not None:
                removed[pe] = r
    for key, rv in rhs.items():
        if key not in lhs:
            changed["f:" + key] = all_fields(rv, child(node, key))


def _without_self(sub: Tree) -> Tree | None:
    if not sub:
        return None
    rest = {k: v for k, v in sub.items() if k != "."}
    return rest or None


def _diff_value(lv: Any, rv: Any, node: Any) -> tuple[Tree | None, Tree | None]:
    """What differs between two unequal values present on both sides."""
    kind = shape(node)
    ltype, rtype = type(lv), type(rv)
    container: type
    if kind == MAP or (kind == DEDUCED and (ltype is dict or rtype is dict)):
        container, sub_node = dict, (node if kind == MAP else None)
    elif kind == LIST_MAP or kind == LIST_SET:
        container, sub_node = list, node
    else:
        return {}, None
    lc = lv if ltype is container else None
    rc = rv if rtype is container else None
    if not lc and not rc:
        # Empty and null containers compare as leaves.
        return {}, None
    if lc is None or rc is None:
        if lv is None:
            return _without_self(all_fields(rv, node)), None
        if rv is None:
            return None, _without_self(all_fields(lv, node))
        # Different kinds of value: the field itself changed, with all below it.
        return (
            all_fields(rv, node) if rc is not None else {},
            _without_self(all_fields(lv, node)) if lc is not None else None,
        )
    changed: Tree = {}
    removed: Tree = {}
    if container is dict:
        _diff_map(lc, rc, sub_node, changed, removed)
    else:
        _diff_list(lc, rc, node, kind, changed, removed)
    return changed or None, removed or None


def _diff_list(lhs: list, rhs: list, node: Any, kind: int, changed: Tree, removed: Tree) -> None:
    item_node = node.items
    lpes = _item_pes(lhs, node, kind)
    rpes = _item_pes(rhs, node, kind)
    lvals: dict[str, list[Any]] = {}
    for pe, item in zip(lpes, lhs):
        lvals.setdefault(pe, []).append(item)
    rvals: dict[str, list[Any]] = {}
    for pe, item in zip(rpes, rhs):
        rvals.setdefault(pe, []).append(item)
    none: list[Any] = []
    for pe in {**lvals, **rvals}:
        lo = lvals.get(pe, none)
        ro = rvals.get(pe, none)
        if len(lo) <= 1 and len(ro) <= 1:
            if not lo:
                changed[pe] = all_fields(ro[0], item_node)
            elif not ro:
                removed[pe] = all_fields(lo[0], item_node)
            elif lo[0] != ro[0]:
                try:
                    c, r = _diff_value(lo[0], ro[0], item_node)
                except PathError as exc:
                    raise _prefixed(exc, pe) from None
                if c is not None:
                    changed[pe] = c
                if r is not None:
                    removed[pe] = r
        elif len(lo) >= 2 and len(ro) >= 2:
            if lo != ro:
                changed[pe] = {}
        elif len(lo) >= 2:
            # Duplicates resolved: the survivor is new, the duplicate marker goes.
            if ro:
                changed[pe] = all_fields(ro[0], item_node)
            removed[pe] = {}
        else:
            if lo:
                removed[pe] = all_fields(lo[0], item_node)
            changed[pe] = {}
