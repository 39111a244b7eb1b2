"""What applying and creating strategic merge patches share.

The directive names, the errors (each with the HTTP status upstream answers
with), the schema lookups (a field's merge key and strategies), and the list
ordering rules: merged lists are partitioned into items the patch names and
items only the server has, each part sorted by its own reference order, and
the two interleaved so that both relative orders survive. Values are Python
JSON values; where upstream compares or sorts them through Go's `%v`
formatting, `go_text` reproduces that formatting so orders come out the same.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from kubi.api.patch import GENERIC_UNPROCESSABLE, PatchError
from kubi.api.schema import Node

DIRECTIVE = "$patch"
DELETE = "delete"
REPLACE = "replace"
MERGE = "merge"
RETAIN_KEYS_STRATEGY = "retainKeys"
RETAIN_KEYS = "$retainKeys"
DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList"
SET_ELEMENT_ORDER = "$setElementOrder"


class StrategicPatchError(PatchError):
    """A strategic merge patch that cannot be applied or created."""


def bad_request(reason: str) -> StrategicPatchError:
    return StrategicPatchError(reason, code=400)


def unprocessable(reason: str) -> StrategicPatchError:
    return StrategicPatchError(reason, code=422, message=GENERIC_UNPROCESSABLE)


def internal(reason: str) -> StrategicPatchError:
    # Upstream passes these through unconverted, which its server reports as a 500.
    return StrategicPatchError(reason, code=500)


BAD_JSON_DOC = "invalid JSON document"
NO_LIST_OF_LISTS = "lists of lists are not supported"
BAD_PRIMITIVE_LIST = "invalid patch format of primitive list"
BAD_RETAIN_KEYS = "invalid patch format of retainKeys"
BAD_SET_ELEMENT_ORDER = "invalid patch format of setElementOrder list"


def no_merge_key(item: Any, key: str) -> StrategicPatchError:
    return internal(f"map: {go_text(item)} does not contain declared merge key: {key}")


def bad_arg_type(expected: str, actual: Any) -> StrategicPatchError:
    return internal(f"expected a {expected}, but received a {go_type(actual)}")


def bad_patch_type(directive: Any, item: Any) -> StrategicPatchError:
    return internal(f"unknown patch type: {go_text(directive)} in map: {go_text(item)}")


# ---- Go's view of JSON values ------------------------------------------------------------

MAP_TYPE = "map[string]interface {}"
SLICE_TYPE = "[]interface {}"


def go_type(value: Any) -> str:
    """The Go type a decoded JSON value has (`map[string]interface {}`, `float64`, ...)."""
    if value is None:
        return "%!s(<nil>)"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    return SLICE_TYPE if isinstance(value, list) else MAP_TYPE


def go_text(value: Any) -> str:
    """`fmt.Sprintf("%v", value)` for a decoded JSON value."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_text(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(go_text(item) for item in value) + "]"
    return str(value)


def _go_float(value: float) -> str:
    """Go's shortest `%v` of a float64: `1.5`, `100000`, `1e+06`, `1e-05`."""
    if math.isnan(value):
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    text = "".join(map(str, digits))
    point = len(text) + int(exponent)  # where the decimal point falls in `text`
    prefix = "-" if sign else ""
    if point - 1 < -4 or point - 1 >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        power = point - 1
        return f"{prefix}{mantissa}e{'-' if power < 0 else '+'}{abs(power):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{text}"
    if point >= len(text):
        return prefix + text + "0" * (point - len(text))
    return f"{prefix}{text[:point]}.{text[point:]}"


def same(left: Any, right: Any) -> bool:
    """Go's `==` on interface values: same type and same value (scalars only)."""
    return type(left) is type(right) and left == right


def hash_key(value: Any) -> tuple[type, Any]:
    return type(value), value if not isinstance(value, (dict, list)) else id(value)


# ---- schema lookups -----------------------------------------------------------------------


class FieldMeta:
    """How one field patches: its schema, strategy, merge key and retainKeys flag."""

    __slots__ = ("merge_key", "node", "retain_keys", "strategy")

    def __init__(self, node: Node | None) -> None:
        self.node = node
        strategies = node.patch_strategy if node is not None else ()
        self.merge_key = (node.patch_merge_key or "") if node is not None else ""
        self.retain_keys, self.strategy = split_strategies(strategies)

    @property
    def element(self) -> Node | None:
        """The schema of a list field's items (a struct field given a list: the struct)."""
        if self.node is None:
            return None
        return self.node.items if self.node.type == "array" else self.node


def field_meta(node: Node | None, key: str) -> FieldMeta:
    return FieldMeta(node.child(key) if node is not None else None)


def split_strategies(strategies: tuple[str, ...]) -> tuple[bool, str]:
    """(`retainKeys` present, the other strategy) from a field's patch strategies."""
    if not strategies:
        return False, ""
    if len(strategies) == 1:
        return (True, "") if strategies[0] == RETAIN_KEYS_STRATEGY else (False, strategies[0])
    if len(strategies) == 2:
        if strategies[0] == RETAIN_KEYS_STRATEGY:
            return True, strategies[1]
        if strategies[1] == RETAIN_KEYS_STRATEGY:
            return True, strategies[0]
    raise internal(f"unexpected patch strategy: {go_text(list(strategies))}")


def extract_key(key: str, prefix: str) -> str:
    """`$setElementOrder/containers` → `containers`."""
    head, slash, rest = key.partition("/")
    if not slash or head != prefix:
        if prefix == DELETE_FROM_PRIMITIVE_LIST:
            raise bad_request(BAD_PRIMITIVE_LIST)
        raise bad_request(BAD_SET_ELEMENT_ORDER)
    return rest


# ---- list elements -------------------------------------------------------------------------


def element_kind(*lists: list[Any]) -> str:
    """'map' or 'scalar' for the common element type of the lists; errors if mixed."""
    seen: type | None = None
    for items in lists:
        for item in items:
            if item is None:
                continue
            kind = type(item)
            if seen is None:
                if kind is list:
                    raise unprocessable(NO_LIST_OF_LISTS)
                seen = kind
            elif kind is not seen:
                raise internal(f"list element types are not identical: {go_text(list(lists))}")
    if seen is None:
        raise internal("no elements in any of the given slices")
    return "map" if seen is dict else "scalar"


def find_by_key(items: list[Any], key: str, value: Any) -> int:
    """Position of the map whose `key` equals `value`, or -1."""
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            raise internal(f"value for key {position} is not a map")
        if key in item and same(item[key], value):
            return position
    return -1


def sort_scalars(items: list[Any]) -> list[Any]:
    return sorted(items, key=go_text)


def dedupe_scalars(items: list[Any]) -> list[Any]:
    """Drop repeated scalars the way upstream does (it moves the last item into the gap)."""
    out = list(items)
    last, first = len(out) - 1, 0
    while first < last:
        second = first + 1
        while second <= last:
            if same(out[first], out[second]):
                out[second] = out[last]
                out.pop()
                last -= 1
                second -= 1
            second += 1
        first += 1
    return out


def remove_directives(value: Any) -> tuple[Any, bool]:
    """Strip `$patch` maps from a value; (value, False) if the value itself is one."""
    if isinstance(value, dict):
        if DIRECTIVE in value:
            return None, False
        out = {}
        for key, item in value.items():
            cleaned, keep = remove_directives(item)
            if keep:
                out[key] = cleaned
        return out, True
    if isinstance(value, list):
        kept = []
        for item in value:
            cleaned, keep = remove_directives(item)
            if keep:
                kept.append(cleaned)
        return kept, True
    return value, True


def discard_nulls(value: Any) -> None:
    """Remove null-valued keys from every map inside `value`, in place."""
    if isinstance(value, dict):
        for key in [k for k, v in value.items() if v is None]:
            del value[key]
        for item in value.values():
            discard_nulls(item)
    elif isinstance(value, list):
        for item in value:
            discard_nulls(item)


# ---- ordering ---------------------------------------------------------------------------------


def _lookup(items: list[Any], value: Any, merge_key: str, maps: bool) -> int:
    if maps:
        wanted = value.get(merge_key) if isinstance(value, dict) else None
        for position, item in enumerate(items):
            if same(item.get(merge_key) if isinstance(item, dict) else None, wanted):
                return position
        return -1
    for position, item in enumerate(items):
        if same(item, value):
            return position
    return -1


def _stable_sort(items: list[Any], less: Callable[[Any, Any], bool]) -> list[Any]:
    """Go's stable sort with `less` (insertion sort on small inputs, as Go does)."""
    out = list(items)
    for end in range(1, len(out)):
        pos = end
        while pos > 0 and less(out[pos], out[pos - 1]):
            out[pos], out[pos - 1] = out[pos - 1], out[pos]
            pos -= 1
    return out


def sort_by_order(items: list[Any], order: list[Any], merge_key: str, maps: bool) -> list[Any]:
    """Sort `items` by where they appear in `order`; `$patch: delete` maps go last."""
    deletions: list[Any] = []
    if maps:
        for item in [*items, *order]:
            if not isinstance(item, dict):
                raise bad_arg_type(MAP_TYPE, item)
            if merge_key not in item:
                raise no_merge_key(item, merge_key)
        kept = [i for i in items if i.get(DIRECTIVE) != DELETE]
        deletions = [i for i in items if i.get(DIRECTIVE) == DELETE]
        items = kept

    def less(left: Any, right: Any) -> bool:
        first = _lookup(order, left, merge_key, maps)
        if first >= 0:
            second = _lookup(order, right, merge_key, maps)
            if second >= 0:
                return first < second
        return True

    return _stable_sort(items, less) + deletions


def interleave(server_only: list[Any], from_patch: list[Any], server_order: list[Any],
               merge_key: str, maps: bool) -> list[Any]:
    """Merge two sorted lists, keeping each one's order; server order breaks ties."""
    out: list[Any] = []
    left, right = 0, 0
    while left < len(server_only) or right < len(from_patch):
        if right >= len(from_patch):
            out.append(server_only[left])
            left += 1
        elif left >= len(server_only):
            out.append(from_patch[right])
            right += 1
        else:
            li = _lookup(server_order, server_only[left], merge_key, maps)
            ri = _lookup(server_order, from_patch[right], merge_key, maps)
            if li >= 0 and ri >= 0 and li < ri:
                out.append(server_only[left])
                left += 1
            else:
                out.append(from_patch[right])
                right += 1
    return out


def _already_ordered(items: list[Any], order: list[Any], merge_key: str, maps: bool) -> bool:
    """`items` name exactly the entries of `order`, in its order (the usual case of
    a patch that lists the whole list in the order the server keeps it)."""
    if len(items) != len(order):
        return False
    if not maps:
        return all(same(a, b) for a, b in zip(items, order, strict=True))
    for item, wanted in zip(items, order, strict=True):
        if type(item) is not dict or type(wanted) is not dict or DIRECTIVE in item \
                or merge_key not in item or merge_key not in wanted \
                or not same(item[merge_key], wanted[merge_key]):
            return False
    return True


def normalize_order(from_patch: list[Any], server_only: list[Any], patch_order: list[Any],
                    server_order: list[Any], merge_key: str, maps: bool) -> list[Any]:
    if not server_only and _already_ordered(from_patch, patch_order, merge_key, maps):
        return list(from_patch)
    from_patch = sort_by_order(from_patch, patch_order, merge_key, maps)
    server_only = sort_by_order(server_only, server_order, merge_key, maps)
    return interleave(server_only, from_patch, server_order, merge_key, maps)


def partition(items: list[Any], by: list[Any], merge_key: str) -> tuple[list[Any], list[Any]]:
    """(items present in `by`, the rest); maps are matched by their merge key."""
    present: list[Any] = []
    rest: list[Any] = []
    if not merge_key:
        wanted = {hash_key(v) for v in by}
        for item in items:
            (present if hash_key(item) in wanted else rest).append(item)
        return present, rest
    for item in items:
        if not isinstance(item, dict):
            raise bad_arg_type(MAP_TYPE, item)
        if merge_key not in item:
            raise no_merge_key(item, merge_key)
        found = find_by_key(by, merge_key, item[merge_key]) >= 0
        (present if found else rest).append(item)
    return present, rest
