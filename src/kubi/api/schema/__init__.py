"""The API schema: upstream's v1.33 definitions as a lazily linked tree of nodes.

`scripts/gen_schema.py` distils upstream's OpenAPI definitions into
`data/schema-v1.33.json.gz`. This module reads that file once, on first use,
and wraps each definition in a `Node` whose children (`properties`, `items`,
`additional`) are linked only when first touched, so recursive definitions
cost nothing until walked. On top of the tree sit the three checks the API
server runs on every write body before anything else looks at it, shaped after
how upstream's Go decoder treats the same JSON: `check_types` (the first
`json: cannot unmarshal ...` error), `find_unknown_fields` (the paths a strict
decode names) and `prune_unknown` (what a lenient decode silently drops).
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import orjson

from kubi.api.schema import godecode

_DATA_FILE = Path(__file__).parent.parent / "data" / "schema-v1.33.json.gz"

INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
TIME = "io.k8s.apimachinery.pkg.apis.meta.v1.Time"
MICRO_TIME = "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime"

# Objects whose Go types take any JSON at all (raw bytes kept verbatim).
_OPAQUE = frozenset({
    "io.k8s.apimachinery.pkg.runtime.RawExtension",
    "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1",
    "io.k8s.apimachinery.pkg.apis.meta.v1.Patch",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceSubresourceStatus",
})

# Go names of string and map types that upstream declares as named types; the
# decoder's type errors print these rather than the underlying `string`.
_GO_NAMED: dict[tuple[str, str], str] = {
    ("io.k8s.api.core.v1.ResourceRequirements", "limits"): "v1.ResourceList",
    ("io.k8s.api.core.v1.ResourceRequirements", "requests"): "v1.ResourceList",
    ("io.k8s.api.core.v1.Container", "imagePullPolicy"): "v1.PullPolicy",
    ("io.k8s.api.core.v1.Container", "terminationMessagePolicy"): "v1.TerminationMessagePolicy",
    ("io.k8s.api.core.v1.ContainerPort", "protocol"): "v1.Protocol",
    ("io.k8s.api.core.v1.ServicePort", "protocol"): "v1.Protocol",
    ("io.k8s.api.core.v1.PodSpec", "restartPolicy"): "v1.RestartPolicy",
    ("io.k8s.api.core.v1.PodSpec", "dnsPolicy"): "v1.DNSPolicy",
    ("io.k8s.api.core.v1.ServiceSpec", "type"): "v1.ServiceType",
    ("io.k8s.api.core.v1.ServiceSpec", "sessionAffinity"): "v1.ServiceAffinity",
    ("io.k8s.api.core.v1.Secret", "type"): "v1.SecretType",
    ("io.k8s.api.apps.v1.DeploymentStrategy", "type"): "v1.DeploymentStrategyType",
    ("io.k8s.api.apps.v1.StatefulSetSpec", "podManagementPolicy"): "v1.PodManagementPolicyType",
}

# How a node decodes; the checks dispatch on these small ints.
ANY, STRUCT, MAP, ARRAY, STRING, BYTES, INTEGER, NUMBER, BOOLEAN, INTSTR, QTY, TIMESTAMP = range(12)
_INT_RANGE = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
_PRIMITIVE_GO = {STRING: "string", BYTES: "[]uint8", NUMBER: "float64", BOOLEAN: "bool"}
_LAZY = frozenset({"properties", "additional", "items", "go_type", "deep"})
MAX_UNKNOWN = 100

_raw: dict[str, dict[str, Any]] | None = None
_nodes: dict[str, Node] = {}
_by_gvk: dict[tuple[str, str, str], str] = {}


class Node:
    """One schema node. Children are linked on first access, so cycles are fine."""

    __slots__ = (
        "_go_name",
        "_raw",
        "additional",
        "code",
        "deep",
        "format",
        "go_type",
        "gvks",
        "items",
        "list_map_keys",
        "list_type",
        "map_type",
        "name",
        "patch_merge_key",
        "patch_strategy",
        "preserve_unknown",
        "properties",
        "required",
        "type",
    )

    name: str | None  # the definition this node is (or refers to), if any
    properties: dict[str, Node]
    additional: Node | None
    items: Node | None
    go_type: str  # the Go type name upstream's decoder errors print
    deep: bool  # whether a value here can hold struct fields (unknown-field checks)

    def __init__(self, raw: dict[str, Any], name: str | None = None) -> None:
        self._raw = raw
        self.name = name
        self._go_name: str | None = None
        self.format: str | None = raw.get("format")
        self.required: tuple[str, ...] = tuple(raw.get("required", ()))
        self.patch_merge_key: str | None = raw.get("x-kubernetes-patch-merge-key")
        strategy = raw.get("x-kubernetes-patch-strategy")
        self.patch_strategy: tuple[str, ...] = tuple(strategy.split(",")) if strategy else ()
        self.list_type: str | None = raw.get("x-kubernetes-list-type")
        self.list_map_keys: tuple[str, ...] = tuple(raw.get("x-kubernetes-list-map-keys", ()))
        self.map_type: str | None = raw.get("x-kubernetes-map-type")
        gvks = raw.get("x-kubernetes-group-version-kind", ())
        self.gvks: tuple[dict[str, str], ...] = tuple(gvks)
        self.preserve_unknown = bool(raw.get("x-kubernetes-preserve-unknown-fields")) or (
            name in _OPAQUE
        )
        self.code, self.type = self._classify(raw)
        if name == QUANTITY:
            self.format = "quantity"

    def _classify(self, raw: dict[str, Any]) -> tuple[int, str]:
        name, kind = self.name, raw.get("type")
        if name == INT_OR_STRING:
            return INTSTR, "int-or-string"
        if name == QUANTITY:
            return QTY, "string"
        if name in (TIME, MICRO_TIME):
            return TIMESTAMP, "string"
        if self.preserve_unknown:
            return ANY, kind or "any"
        if kind == "object" or "properties" in raw:
            return (MAP if "additionalProperties" in raw else STRUCT), "object"
        if kind == "array":
            return ARRAY, "array"
        if kind == "string":
            return (BYTES if raw.get("format") == "byte" else STRING), "string"
        if kind == "integer":
            return INTEGER, "integer"
        if kind == "number":
            return NUMBER, "number"
        if kind == "boolean":
            return BOOLEAN, "boolean"
        return ANY, "any"

    def __getattr__(self, attr: str) -> Any:
        # Only reached for slots not yet set: link the children, then answer.
        if attr not in _LAZY:
            raise AttributeError(attr)
        self._link()
        return object.__getattribute__(self, attr)

    def _link(self) -> None:
        raw, code = self._raw, self.code
        props: dict[str, Node] = {}
        if code == STRUCT:
            for field, sub in raw.get("properties", {}).items():
                child = _node_for(sub)
                named = _GO_NAMED.get((self.name or "", field))
                if named:
                    child._go_name = named
                props[field] = child
        self.properties = props
        self.additional = _node_for(raw["additionalProperties"]) if code == MAP else None
        self.items = _node_for(raw["items"]) if code == ARRAY and "items" in raw else None
        if code == STRUCT:
            self.deep = True
        elif code in (MAP, ARRAY):
            inner = self.additional or self.items
            self.deep = inner is not None and inner.deep
        else:
            self.deep = False
        self.go_type = self._go_name or self._compute_go_type()

    def _compute_go_type(self) -> str:
        code = self.code
        if code == STRUCT or (code == ANY and self.name):
            return _go_qualified(self.name) if self.name else "struct {}"
        if code == MAP:
            return "map[string]" + (self.additional.go_type if self.additional else "interface {}")
        if code == ARRAY:
            return "[]" + (self.items.go_type if self.items else "interface {}")
        if code == INTEGER:
            return self.format or "int64"
        if code in (INTSTR, QTY, TIMESTAMP):
            return _go_qualified(self.name or "")
        return _PRIMITIVE_GO.get(code, "interface {}")

    def child(self, name: str) -> Node | None:
        """The schema of `name` inside this node: a struct field or a map value."""
        if self.code == STRUCT:
            return self.properties.get(name)
        if self.code == MAP:
            return self.additional
        return None

    def __repr__(self) -> str:
        return f"Node({self.name or self.type})"


def _go_qualified(definition_name: str) -> str:
    """`io.k8s.api.apps.v1.DeploymentSpec` → `v1.DeploymentSpec`, as Go prints types."""
    parts = definition_name.split(".")
    return f"{parts[-2]}.{parts[-1]}" if len(parts) >= 2 else definition_name


def _node_for(raw: dict[str, Any]) -> Node:
    ref = raw.get("$ref")
    if ref is None:
        return Node(raw)
    if len(raw) == 1:
        return definition(ref)
    # A reference with field-level extensions (patch strategy on the field):
    # a node of its own, shaped like the target but carrying the extensions.
    merged = dict(_definitions()[ref])
    merged.update((k, v) for k, v in raw.items() if k != "$ref")
    return Node(merged, ref)


def _definitions() -> dict[str, dict[str, Any]]:
    global _raw
    if _raw is None:
        doc = orjson.loads(gzip.decompress(_DATA_FILE.read_bytes()))
        _raw = doc["definitions"]
        for name, raw in _raw.items():
            for gvk in raw.get("x-kubernetes-group-version-kind", ()):
                _by_gvk.setdefault((gvk["group"], gvk["version"], gvk["kind"]), name)
    return _raw


def definitions_data() -> dict[str, dict[str, Any]]:
    """The compact definitions as stored (read-only by convention): for OpenAPI."""
    return _definitions()


def definition(name: str) -> Node:
    """The node of definition `name`, e.g. `io.k8s.api.apps.v1.Deployment`; KeyError if none."""
    node = _nodes.get(name)
    if node is None:
        node = _nodes[name] = Node(_definitions()[name], name)
    return node


def definition_name(group: str, version: str, kind: str) -> str | None:
    """The definition upstream tags with this group/version/kind, if any."""
    _definitions()
    return _by_gvk.get((group, version, kind))


def for_kind(group: str, version: str, kind: str) -> Node | None:
    name = definition_name(group, version, kind)
    return definition(name) if name else None


# ---- decode-time checks -------------------------------------------------------------


def find_unknown_fields(node: Node, obj: Any) -> list[str]:
    """Paths of fields the schema does not know, as a strict decode names them.

    Paths join field names and map keys with `.` and add `[i]` for list items
    (`spec.template.spec.containers[0].imagex`); duplicates are reported once and
    at most 100 are kept, as upstream does.
    """
    found: list[str] = []
    _walk_unknown(node, obj, "", found, prune=False)
    return found


def prune_unknown(node: Node, obj: Any) -> None:
    """Drop, in place, every field the schema does not know (a lenient decode)."""
    _walk_unknown(node, obj, "", [], prune=True)


def _walk_unknown(node: Node, value: Any, path: str, found: list[str], prune: bool) -> None:
    code = node.code
    if code == STRUCT:
        if type(value) is not dict:
            return
        props = node.properties
        unknown: list[str] | None = None
        for key, sub in value.items():
            child = props.get(key)
            if child is None:
                if prune:
                    unknown = unknown or []
                    unknown.append(key)
                elif len(found) < MAX_UNKNOWN:
                    where = f"{path}.{key}" if path else key
                    if where not in found:
                        found.append(where)
            elif sub is not None and child.deep:
                _walk_unknown(child, sub, f"{path}.{key}" if path else key, found, prune)
        if unknown:
            for key in unknown:
                del value[key]
    elif code == MAP:
        inner = node.additional
        if type(value) is dict and inner is not None and inner.deep:
            for key, sub in value.items():
                _walk_unknown(inner, sub, f"{path}.{key}" if path else key, found, prune)
    elif code == ARRAY:
        inner = node.items
        if type(value) is list and inner is not None and inner.deep:
            for index, sub in enumerate(value):
                _walk_unknown(inner, sub, f"{path}[{index}]", found, prune)


class _Abort(Exception):
    """An error from a custom Go unmarshaler: it ends decoding at once."""


def check_types(node: Node, obj: Any) -> str | None:
    """The error text upstream's JSON decoder gives for `obj`, or None if it decodes.

    Like the Go decoder, type mismatches are remembered and decoding goes on, so
    the first one in document order is reported, unless a value with its own
    unmarshaler (quantity, int-or-string, time) fails, which stops at once.
    """
    saved: list[str] = []
    try:
        _check(node, obj, "", "", saved)
    except _Abort as failure:
        return str(failure)
    return saved[0] if saved else None


def _check(node: Node, value: Any, struct: str, field: str, saved: list[str]) -> None:
    if value is None:
        return
    code, kind = node.code, type(value)
    if code == STRUCT:
        if kind is not dict:
            _mismatch(saved, value, node.go_type, struct, field)
            return
        props = node.properties
        name = (node.name or "").rsplit(".", 1)[-1]
        for key, sub in value.items():
            child = props.get(key)
            if child is not None and sub is not None:
                _check(child, sub, name, f"{field}.{key}" if field else key, saved)
    elif code == MAP:
        if kind is not dict:
            _mismatch(saved, value, node.go_type, struct, field)
        elif node.additional is not None:
            for sub in value.values():
                _check(node.additional, sub, struct, field, saved)
    elif code == ARRAY:
        if kind is not list:
            _mismatch(saved, value, node.go_type, struct, field)
        elif node.items is not None:
            for sub in value:
                _check(node.items, sub, struct, field, saved)
    elif code == STRING:
        if kind is not str:
            _mismatch(saved, value, node.go_type, struct, field)
    elif code == INTEGER:
        if kind is int:
            low, high = _INT_RANGE.get(node.format or "int64", _INT_RANGE["int64"])
            if not low <= value <= high:
                _mismatch(saved, value, node.go_type, struct, field, literal=True)
        else:
            _mismatch(saved, value, node.go_type, struct, field, literal=kind is float)
    elif code == NUMBER:
        if kind is not int and kind is not float:
            _mismatch(saved, value, node.go_type, struct, field)
    elif code == BOOLEAN:
        if kind is not bool:
            _mismatch(saved, value, node.go_type, struct, field)
    elif code == BYTES:
        if kind is not str:
            _mismatch(saved, value, node.go_type, struct, field)
        elif not saved:
            problem = godecode.base64_error(value)
            if problem:
                saved.append(problem)
    elif code == INTSTR:
        _check_int_or_string(value, struct, field)
    elif code == QTY:
        problem = godecode.quantity_error(value)
        if problem:
            raise _Abort(problem)
    elif code == TIMESTAMP:
        if kind is not str:
            raise _Abort(_type_error(value, "string", struct, field))
        problem = godecode.time_error(value, micro=node.name == MICRO_TIME)
        if problem:
            raise _Abort(problem)


def _check_int_or_string(value: Any, struct: str, field: str) -> None:
    kind = type(value)
    if kind is str:
        return
    low, high = _INT_RANGE["int32"]
    if kind is int and low <= value <= high:
        return
    literal = kind is int or kind is float
    raise _Abort(_type_error(value, "int32", struct, field, literal=literal))


def _mismatch(
    saved: list[str], value: Any, go_type: str, struct: str, field: str, literal: bool = False
) -> None:
    if not saved:
        saved.append(_type_error(value, go_type, struct, field, literal=literal))


def _type_error(value: Any, go_type: str, struct: str, field: str, literal: bool = False) -> str:
    what = godecode.json_kind(value)
    if literal:
        what = f"number {godecode.number_text(value)}"
    if struct or field:
        where = f"Go struct field {struct}.{field}"
        return f"json: cannot unmarshal {what} into {where} of type {go_type}"
    return f"json: cannot unmarshal {what} into Go value of type {go_type}"


def drop_empty_collections(node: Node, obj: Any) -> None:
    """Remove optional maps and lists that are empty, in place.

    Upstream decodes every body into Go structs, whose `omitempty` maps and
    slices vanish when empty; so `annotations: {}` or `nodeSelector: {}` is the
    same object as one without them, and a patch that adds one changes nothing.
    Required fields (e.g. a PodSpec's `containers`) and structs (`emptyDir: {}`)
    are kept, as Go keeps them.
    """
    if node.code == STRUCT and type(obj) is dict:
        props = node.properties
        required = node.required
        for key in list(obj):
            value = obj[key]
            child = props.get(key)
            if child is None:
                continue
            kind = type(value)
            if kind is dict:
                if not value and child.code == MAP and key not in required:
                    del obj[key]
                elif value and child.deep:
                    drop_empty_collections(child, value)
            elif kind is list:
                if not value and key not in required:
                    del obj[key]
                elif child.items is not None and child.items.deep:
                    for item in value:
                        drop_empty_collections(child.items, item)
    elif node.code == MAP and type(obj) is dict and node.additional is not None:
        if node.additional.deep:
            for value in obj.values():
                drop_empty_collections(node.additional, value)
    elif node.code == ARRAY and type(obj) is list and node.items is not None:
        if node.items.deep:
            for item in obj:
                drop_empty_collections(node.items, item)
