"""Sets of field paths in the fieldsV1 encoding, and the algebra on them.

A set is held exactly as fieldsV1 spells it: a dict from path element to the
subtree below it. A subtree `{}` means "this field is in the set"; a subtree
with children holds the deeper members and carries `".": {}` when the field
itself is a member too. Working on the wire form directly makes decoding a
validation pass and encoding a sort, which matters because every write decodes
and re-encodes the object's managedFields. Trees are never mutated once built
(operations copy what they change and share the rest), so a subtree may be
shared by several sets. Ordering follows upstream's: `.` first, then field
names, then keys, values and indexes, each compared as values, not as text.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from kubi.api.managed.typed import go_float, go_json, go_quote

Tree = dict[str, Any]


class FieldsError(ValueError):
    """A fieldsV1 document that does not decode."""


def is_member(sub: Tree) -> bool:
    return not sub or "." in sub


def _sub(member: bool, children: Tree) -> Tree | None:
    """The subtree for a field with this membership and these children."""
    if not children:
        return {} if member else None
    if member:
        if "." in children:
            return children
        return {".": {}, **children}
    if "." in children:
        rest = {k: v for k, v in children.items() if k != "."}
        return rest or None
    return children


# ---- set algebra ---------------------------------------------------------------------


def union(a: Tree, b: Tree) -> Tree:
    """Members of either. `b` itself comes back when `a` adds nothing to it (and
    `a` when `b` is empty), so a manager that writes fields it already owns keeps
    its entry's encoded form."""
    if not a:
        return b
    if not b or a is b:
        return a
    out: Tree | None = None
    for pe, sa in a.items():
        sb = b.get(pe)
        if sb is None:
            merged = sa
        elif sa is sb:
            continue
        else:
            merged = _union_sub(sb, sa)
            if merged is sb:
                continue
        if out is None:
            out = dict(b)
        out[pe] = merged
    return b if out is None else out


def _union_sub(base: Tree, add: Tree) -> Tree:
    if not add:
        return base if (not base or "." in base) else {".": {}, **base}
    if not base:
        return add if "." in add else {".": {}, **add}
    return union(add, base)


def difference(a: Tree, b: Tree) -> Tree:
    """Members of `a` not in `b`; a parent in `b` does not take its children.

    `a` itself comes back when nothing of it is in `b`, so an entry whose
    fields a write did not touch keeps its encoded form."""
    if not a or not b:
        return a
    out: Tree | None = None
    for pe, sb in b.items():
        sa = a.get(pe)
        if sa is None:
            continue
        d = None if pe == "." else _difference_sub(sa, sb)
        if d is sa:
            continue
        if out is None:
            out = dict(a)
        if d is None:
            del out[pe]
        else:
            out[pe] = d
    return a if out is None else out


def _difference_sub(sa: Tree, sb: Tree) -> Tree | None:
    if not sa:
        return None if is_member(sb) else sa
    if not sb:
        return _sub(False, sa)
    d = difference(sa, sb)
    if d is sa:
        return sa
    if not d:
        return None
    if len(d) == 1 and "." in d:
        return {}
    return d


def intersection(a: Tree, b: Tree) -> Tree:
    if not a or not b:
        return {}
    if a is b:
        return a
    if len(b) < len(a):
        a, b = b, a
    out: Tree = {}
    for pe, sa in a.items():
        sb = b.get(pe)
        if sb is None:
            continue
        if pe == ".":
            out["."] = {}
            continue
        if not sa or not sb:
            # A plain member meets the other side's membership only.
            if is_member(sa) and is_member(sb):
                out[pe] = {}
            continue
        i = _normal(intersection(sa, sb))
        if i is not None:
            out[pe] = i
    return out


def _normal(sub: Tree) -> Tree | None:
    """Subtree normal form: nothing is None, a bare `.` is a plain member."""
    if not sub:
        return None
    if len(sub) == 1 and "." in sub:
        return {}
    return sub


def recursive_difference(a: Tree, b: Tree) -> Tree:
    """Members of `a` not in `b`, where a member of `b` also takes everything below it."""
    if not a or not b:
        return a
    out: Tree = {}
    for pe, sa in a.items():
        sb = b.get(pe)
        if sb is None:
            out[pe] = sa
        elif pe == "." or is_member(sb):
            continue
        elif not sa:
            out[pe] = sa
        else:
            kept = _normal(recursive_difference(sa, sb))
            if kept is not None:
                out[pe] = kept
    return out


def leaves(a: Tree) -> Tree:
    """Only the members that have nothing below them."""
    out: Tree = {}
    for pe, sub in a.items():
        if pe == ".":
            continue
        out[pe] = leaves(sub) if sub else sub
    return out


def has(a: Tree, path: list[str]) -> bool:
    """Whether the field at `path` is a member."""
    if not path:
        return False
    node: Tree | None = a
    for pe in path[:-1]:
        node = node.get(pe) if node else None
        if not node:
            return False
    sub = node.get(path[-1]) if node is not None else None
    return sub is not None and is_member(sub)


def with_path(a: Tree, path: list[str]) -> Tree:
    """`a` plus the member at `path` (its parents are not made members)."""
    if not path:
        return a
    pe, rest = path[0], path[1:]
    sub = a.get(pe)
    if not rest:
        if sub is not None and is_member(sub):
            return a
        new: Tree = {} if sub is None else {".": {}, **sub}
    elif sub is None:
        new = with_path({}, rest)
    elif not sub:
        new = {".": {}, **with_path({}, rest)}
    else:
        new = with_path(sub, rest)
    out = dict(a)
    out[pe] = new
    return out


def paths(a: Tree) -> Iterator[list[str]]:
    """Every member path in upstream's order: a level's members, then its children."""
    yield from _paths(a, [])


def _paths(a: Tree, prefix: list[str]) -> Iterator[list[str]]:
    ordered = sorted((pe for pe in a if pe != "."), key=_order)
    for pe in ordered:
        if is_member(a[pe]):
            yield prefix + [pe]
    for pe in ordered:
        sub = a[pe]
        if sub:
            yield from _paths(sub, prefix + [pe])


# ---- ordering and the wire form ------------------------------------------------------

_order_cache: dict[str, tuple[Any, ...]] = {}


def _order(pe: str) -> tuple[Any, ...]:
    if pe[0] == "f":
        return (0, pe[2:])
    found = _order_cache.get(pe)
    if found is None:
        if len(_order_cache) > 4096:
            _order_cache.clear()
        kind = pe[0]
        if kind == "k":
            fields = orjson.loads(pe[2:])
            found = (1, tuple((k, _value_order(fields[k])) for k in sorted(fields)))
        elif kind == "v":
            found = (2, _value_order(orjson.loads(pe[2:])))
        else:
            found = (3, int(pe[2:]))
        _order_cache[pe] = found
    return found


def _value_order(value: Any) -> tuple[Any, ...]:
    """A sort key giving upstream's total order over JSON values."""
    kind = type(value)
    if kind is bool:
        return (2, value)
    if kind is int or kind is float:
        return (0, value)
    if kind is str:
        return (1, value)
    if kind is list:
        return (3, tuple(_value_order(v) for v in value))
    if kind is dict:
        return (4, tuple((k, _value_order(value[k])) for k in sorted(value)))
    return (5,)


def to_wire(a: Tree, _top: bool = True) -> Tree:
    """A fresh copy of `a` in upstream's serialization order."""
    keys = [pe for pe in a if pe != "."]
    if len(keys) > 1:
        if all(pe[0] == "f" for pe in keys):
            keys.sort()
        else:
            keys.sort(key=_order)
    out: Tree = {}
    if not _top and "." in a:
        out["."] = {}
    for pe in keys:
        sub = a[pe]
        out[pe] = to_wire(sub, False) if sub else {}
    return out


def from_wire(raw: Any) -> Tree:
    """Decode (validate and normalize) a fieldsV1 document; FieldsError when invalid."""
    if raw is None:
        return {}
    if type(raw) is not dict:
        raise FieldsError("fieldsV1 must be a JSON object")
    return _decode(raw, True)


def _decode(raw: Tree, top: bool) -> Tree:
    """`raw` normalized; the very same dict when it already is (the usual case)."""
    out: Tree = {}
    changed = member = False
    for pe, sub in raw.items():
        if pe == ".":
            member = True
            changed = changed or top or sub != {}
            continue
        if type(sub) is not dict:
            raise FieldsError(f"fields of {pe!r} must be a JSON object")
        canonical = _canonical_pe(pe)
        if canonical is None:
            # An element kind from a newer version: dropped, as upstream does.
            changed = True
            continue
        decoded = _decode(sub, False) if sub else sub
        if canonical != pe or decoded is not sub or canonical in out:
            changed = True
            if canonical in out:
                decoded = union({canonical: out[canonical]}, {canonical: decoded})[canonical]
        out[canonical] = decoded
    if top:
        return raw if not changed else out
    if not out:
        return raw if not raw else {}
    if not changed:
        return raw
    return {".": {}, **out} if member else out


def _canonical_pe(pe: str) -> str | None:
    """The canonical spelling of a path element; None for unknown kinds (dropped)."""
    if len(pe) < 2:
        raise FieldsError(f"key must be 2 characters long: {pe!r}")
    if pe[1] != ":":
        raise FieldsError(f"missing colon: {pe}")
    kind = pe[0]
    if kind == "f":
        return pe
    try:
        if kind == "k":
            fields = orjson.loads(pe[2:])
            if type(fields) is not dict:
                raise FieldsError(f"parsing key as path element: {pe}")
            return (
                "k:{"
                + ",".join(go_json(k) + ":" + go_json(fields[k]) for k in sorted(fields))
                + "}"
            )
        if kind == "v":
            return "v:" + go_json(orjson.loads(pe[2:]))
        if kind == "i":
            return f"i:{int(pe[2:])}"
    except (orjson.JSONDecodeError, ValueError) as exc:
        raise FieldsError(f"parsing key as path element: {exc}") from None
    return None


# ---- paths as people read them -------------------------------------------------------


def path_string(path: list[str]) -> str:
    """A path as upstream prints it: `.spec.containers[name="web"].image`."""
    out = []
    for pe in path:
        kind = pe[0]
        if kind == "f":
            out.append("." + pe[2:])
        elif kind == "k":
            fields = orjson.loads(pe[2:])
            out.append("[" + ",".join(f"{k}={_to_string(fields[k])}" for k in fields) + "]")
        elif kind == "v":
            out.append(f"[={_to_string(orjson.loads(pe[2:]))}]")
        else:
            out.append(f"[{pe[2:]}]")
    return "".join(out)


def _to_string(value: Any) -> str:
    if value is None:
        return "null"
    kind = type(value)
    if kind is str:
        return go_quote(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is float:
        return go_float(value)
    if kind is list:
        return "[" + ",".join(_to_string(v) for v in value) + "]"
    if kind is dict:
        return "".join(f"{k}={_to_string(v)}" for k, v in value.items())
    return str(value)


# ---- the public value type -----------------------------------------------------------


class FieldSet:
    """An immutable set of field paths (upstream's fieldpath.Set)."""

    __slots__ = ("tree",)

    def __init__(self, tree: Tree | None = None) -> None:
        self.tree: Tree = tree or {}

    @classmethod
    def from_json(cls, raw: Any) -> FieldSet:
        """Decode a fieldsV1 document (a parsed JSON object)."""
        return cls(from_wire(raw))

    @classmethod
    def from_object(cls, obj: Any, node: Any) -> FieldSet:
        """The fields an object sets, as an applied configuration owns them."""
        from kubi.api.managed.walk import to_field_set

        return cls(to_field_set(obj, node))

    @classmethod
    def from_paths(cls, *paths: list[str]) -> FieldSet:
        tree: Tree = {}
        for path in paths:
            tree = with_path(tree, list(path))
        return cls(tree)

    def to_json(self) -> Tree:
        """The fieldsV1 document, keys in upstream's order."""
        return to_wire(self.tree)

    def union(self, other: FieldSet) -> FieldSet:
        return FieldSet(union(self.tree, other.tree))

    def difference(self, other: FieldSet) -> FieldSet:
        return FieldSet(difference(self.tree, other.tree))

    def intersection(self, other: FieldSet) -> FieldSet:
        return FieldSet(intersection(self.tree, other.tree))

    def recursive_difference(self, other: FieldSet) -> FieldSet:
        return FieldSet(recursive_difference(self.tree, other.tree))

    def leaves(self) -> FieldSet:
        return FieldSet(leaves(self.tree))

    def has(self, path: list[str]) -> bool:
        return has(self.tree, path)

    def paths(self) -> list[list[str]]:
        return list(paths(self.tree))

    def strings(self) -> list[str]:
        """Member paths as upstream prints them, in its order."""
        return [path_string(p) for p in paths(self.tree)]

    def empty(self) -> bool:
        return not self.tree

    def __bool__(self) -> bool:
        return bool(self.tree)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FieldSet) and self.tree == other.tree

    def __hash__(self) -> int:
        return hash(orjson.dumps(to_wire(self.tree)))

    def __repr__(self) -> str:
        return f"FieldSet({orjson.dumps(self.to_json()).decode()})"
