"""How the schema shapes field ownership, and how path elements are spelled.

Every walk in this package (comparing, merging, removing, listing fields) asks
the same two questions of a schema node: is a value here one leaf, a map whose
keys are owned one by one, or a list whose items are (matched by key fields, or
by value for sets)? And how is a child addressed in a field set? Path elements
are kept as their fieldsV1 strings (`f:name`, `k:{"name":"web"}`, `v:"x"`,
`i:0`) so that sets are plain dicts keyed by the very text upstream writes.
Key and value elements are rendered as Go's JSON encoder renders them, since
that text is what two API servers must agree on.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any, Protocol

from kubi.api.errors import go_quote  # noqa: F401  (re-exported for the managed package)

# Shapes of a schema position.
LEAF, MAP, LIST_MAP, LIST_SET, DEDUCED = range(5)

_SCALAR_TYPES = frozenset({"string", "integer", "number", "boolean", "int-or-string"})

# List-map keys upstream's schema defaults when an item omits them. The compact
# schema does not carry `default`, and every built-in key that has one is a
# `protocol` defaulting to TCP (container ports, service ports).
_KEY_DEFAULTS = {"protocol": "TCP"}


class SchemaNode(Protocol):
    """What this package reads of a `kubi.api.schema.Node`."""

    type: str
    properties: dict[str, Any]
    additional: Any
    items: Any
    list_type: str | None
    list_map_keys: tuple[str, ...]
    map_type: str | None
    patch_merge_key: str | None
    patch_strategy: tuple[str, ...]


class PathError(ValueError):
    """A list item cannot be addressed (missing key field, null or mixed item)."""


def shape(node: Any) -> int:
    """The ownership shape of values at a schema position (`None`: no schema)."""
    if node is None:
        return DEDUCED
    kind = node.type
    if kind == "object":
        return LEAF if node.map_type == "atomic" else MAP
    if kind == "array":
        list_type = node.list_type
        if list_type == "map":
            return LIST_MAP if node.list_map_keys else LIST_SET
        if list_type == "set":
            return LIST_SET
        if list_type == "atomic":
            return LEAF
        strategy = node.patch_strategy
        if node.patch_merge_key and (not strategy or "merge" in strategy):
            return LIST_MAP
        if "merge" in strategy:
            return LIST_SET
        return LEAF
    if kind == "any":
        return DEDUCED
    return LEAF


def list_keys(node: Any) -> tuple[str, ...]:
    if node.list_type == "map" and node.list_map_keys:
        return tuple(node.list_map_keys)
    return (node.patch_merge_key,)


def child(node: Any, name: str) -> Any:
    """The schema of field or map key `name` below a map-shaped node."""
    if node is None:
        return None
    props = node.properties
    found = props.get(name) if props else None
    return found if found is not None else node.additional


def is_named(node: Any, name: str) -> bool:
    """Whether `name` is a declared struct field (upstream's named fields)."""
    if node is None:
        return False
    props = node.properties
    return bool(props) and name in props


def item_pe(item: Any, keys: tuple[str, ...] | None, item_node: Any) -> str:
    """The path element of one item of a list-map (`keys`) or set (`keys` None)."""
    if keys is None:
        if isinstance(item, (dict, list)) or item is None:
            if item is None:
                raise PathError(
                    "associative list without keys has an element that's an explicit null"
                )
            if isinstance(item, dict):
                raise PathError("associative list without keys has an element that's a map type")
            raise PathError("not supported: associative list with lists as elements")
        return "v:" + go_json(item)
    if type(item) is not dict:
        if item is None:
            raise PathError("associative list with keys may not have a null element")
        raise PathError("associative list with keys may not have non-map elements")
    if len(keys) == 1:
        name = keys[0]
        value = item.get(name, _ABSENT)
        if value is _ABSENT:
            value = _key_default(item_node, name)
        return 'k:{"' + _go_name(name) + '":' + go_json(value) + "}"
    parts = []
    for name in sorted(keys):
        value = item.get(name, _ABSENT)
        if value is _ABSENT:
            value = _key_default(item_node, name)
        parts.append('"' + _go_name(name) + '":' + go_json(value))
    return "k:{" + ",".join(parts) + "}"


_ABSENT = object()


def _key_default(item_node: Any, name: str) -> Any:
    key_node = child(item_node, name)
    default = getattr(key_node, "default", None) if key_node is not None else None
    if default is None:
        default = _KEY_DEFAULTS.get(name)
    if default is None:
        raise PathError(
            f"associative list with keys has an element that omits key field {go_quote(name)} "
            "(and doesn't have default value)"
        )
    return default


# ---- Go-compatible JSON text ----------------------------------------------------------

_PLAIN = re.compile(r'[^"\\<>&\x00-\x1f\u2028\u2029\x7f-\uffff]*\Z')
_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _go_string(text: str) -> str:
    if _PLAIN.match(text):
        return '"' + text + '"'
    out = ['"']
    for ch in text:
        esc = _SHORT_ESCAPES.get(ch)
        if esc is not None:
            out.append(esc)
        elif ch < " " or ch in "<>&\u2028\u2029":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _go_name(name: str) -> str:
    return _go_string(name)[1:-1]


def go_float(value: float) -> str:
    """A float64 as Go's JSON encoder writes it (integral values without `.0`)."""
    if math.isnan(value) or math.isinf(value):
        raise PathError(f"unsupported value: {value}")
    if value == int(value) and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)
    if "e" in text and 1e-6 <= abs(value) < 1e21:
        return format(Decimal(text), "f")
    if "e" in text:
        mantissa, _, exponent = text.partition("e")
        sign = "-" if exponent.startswith("-") else "+"
        digits = exponent.lstrip("+-").lstrip("0") or "0"
        text = f"{mantissa}e{sign}{digits.zfill(2)}"
    return text


def go_json(value: Any) -> str:
    """Compact JSON as Go's encoder writes it: sorted keys, HTML-safe escapes."""
    kind = type(value)
    if kind is str:
        return _go_string(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is float:
        return go_float(value)
    if value is None:
        return "null"
    if kind is dict:
        return "{" + ",".join(_go_string(k) + ":" + go_json(value[k]) for k in sorted(value)) + "}"
    if kind is list:
        return "[" + ",".join(go_json(v) for v in value) + "]"
    raise PathError(f"unsupported value of type {kind.__name__}")


