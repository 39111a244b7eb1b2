"""JSON patch (RFC 6902): an ordered list of add/remove/replace/move/copy/test.

Semantics follow the library upstream's API server uses, including its
leniencies: `replace` of a missing object key adds it, negative array indices
count from the end, and `test` of a missing key passes against `null`. A patch
that is not a list of operation objects is a 400; an operation that does not
apply is a 422 whose Status message is upstream's generic sentence (the precise
reason stays in `str(error)`); more than 10000 operations is a 413, and copies
may add at most 3 MiB to the document, as upstream's defaults allow.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from kubi.api.patch import GENERIC_UNPROCESSABLE, PatchError, copy_json, json_equal

MAX_OPERATIONS = 10000
MAX_COPY_BYTES = 3 * 1024 * 1024
_INDEX = re.compile(r"[+-]?[0-9]+")
_MISSING = "missing value"
_BAD_INDEX = "invalid index referenced"


class JSONPatchError(PatchError):
    """A JSON patch that is malformed (400) or does not apply (422)."""

    def __init__(self, reason: str, *, code: int = 422, message: str | None = None) -> None:
        if message is None and code == 422:
            message = GENERIC_UNPROCESSABLE
        super().__init__(reason, code=code, message=message)


class _Failed(Exception):
    """A step failed; the operation wraps the reason in its own words."""


def apply_json_patch(doc: Any, ops: Any) -> Any:
    """The document after applying `ops` in order; raises JSONPatchError."""
    if not isinstance(ops, list):
        raise JSONPatchError(_decode_error(ops, "jsonpatch.Patch"), code=400)
    for op in ops:
        if not isinstance(op, dict):
            raise JSONPatchError(_decode_error(op, "jsonpatch.Operation"), code=400)
    if len(ops) > MAX_OPERATIONS:
        reason = (f"The allowed maximum operations in a JSON patch is {MAX_OPERATIONS}, "
                  f"got {len(ops)}")
        raise JSONPatchError(reason, code=413)
    state = _State(copy_json(doc))
    for op in ops:
        kind = op.get("op")
        handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
        if handler is None:
            raise JSONPatchError(f"Unexpected kind: {kind if isinstance(kind, str) else 'unknown'}")
        handler(state, op)
    return state.root


def _decode_error(value: Any, go_type: str) -> str:
    what = {dict: "object", str: "string", bool: "bool", list: "array"}.get(type(value), "number")
    if value is None:
        what = "null"
    return f"json: cannot unmarshal {what} into Go value of type {go_type}"


class _State:
    def __init__(self, root: Any) -> None:
        self.root = root
        self.copied = 0


# ---- locating ---------------------------------------------------------------------------


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _locate(root: Any, path: str) -> tuple[Any, str] | None:
    """The container holding the last token of `path`, and that token; None if absent."""
    tokens = path.split("/")
    if len(tokens) < 2:
        return None
    node = root
    for token in tokens[1:-1]:
        try:
            node = _get(node, _unescape(token))
        except _Failed:
            return None
        if not isinstance(node, (dict, list)):
            return None
    if not isinstance(node, (dict, list)):
        return None
    return node, _unescape(tokens[-1])


def _index(key: str) -> int:
    if not _INDEX.fullmatch(key):
        raise _Failed(f'strconv.Atoi: parsing "{key}": invalid syntax')
    number = int(key)
    if not -(2**63) <= number < 2**63:
        raise _Failed(f'strconv.Atoi: parsing "{key}": value out of range')
    return number


def _position(key: str, size: int) -> int:
    """An existing position in a list of `size`; negative counts from the end."""
    index = _index(key)
    if index < 0:
        if index < -size:
            raise _Failed(f"Unable to access invalid index: {index}: {_BAD_INDEX}")
        index += size
    if index >= size:
        raise _Failed(f"Unable to access invalid index: {index}: {_BAD_INDEX}")
    return index


def _get(container: Any, key: str) -> Any:
    if isinstance(container, dict):
        return container.get(key)
    return container[_position(key, len(container))]


def _add(container: Any, key: str, value: Any) -> None:
    if isinstance(container, dict):
        container[key] = value
        return
    if key == "-":
        container.append(value)
        return
    try:
        index = _index(key)
    except _Failed as failure:
        raise _Failed(f"value was not a proper array index: '{key}': {failure}") from None
    size = len(container) + 1
    if index >= size or index < -size:
        raise _Failed(f"Unable to access invalid index: {index}: {_BAD_INDEX}")
    container.insert(index + size if index < 0 else index, value)


def _remove(container: Any, key: str) -> None:
    if isinstance(container, dict):
        if key not in container:
            raise _Failed(f"Unable to remove nonexistent key: {key}: {_MISSING}")
        del container[key]
        return
    del container[_position(key, len(container))]


def _string(op: dict[str, Any], field: str) -> str | None:
    value = op.get(field)
    return value if isinstance(value, str) else None


# ---- operations -------------------------------------------------------------------------


def _op_add(state: _State, op: dict[str, Any]) -> None:
    path = _string(op, "path")
    if path is None:
        raise JSONPatchError(f"add operation failed to decode path: {_MISSING}")
    found = _locate(state.root, path)
    if found is None:
        raise JSONPatchError(
            f'add operation does not apply: doc is missing path: "{path}": {_MISSING}')
    try:
        _add(found[0], found[1], copy_json(op.get("value")))
    except _Failed as failure:
        raise JSONPatchError(f"error in add for path: '{path}': {failure}") from None


def _op_remove(state: _State, op: dict[str, Any]) -> None:
    path = _string(op, "path")
    if path is None:
        raise JSONPatchError(f"remove operation failed to decode path: {_MISSING}")
    found = _locate(state.root, path)
    if found is None:
        raise JSONPatchError(
            f'remove operation does not apply: doc is missing path: "{path}": {_MISSING}')
    try:
        _remove(*found)
    except _Failed as failure:
        raise JSONPatchError(f"error in remove for path: '{path}': {failure}") from None


def _op_replace(state: _State, op: dict[str, Any]) -> None:
    path = _string(op, "path")
    if path is None:
        raise JSONPatchError(f"replace operation failed to decode path: {_MISSING}")
    value = copy_json(op.get("value"))
    if path == "":
        if not isinstance(value, (dict, list)):
            raise JSONPatchError("replace operation value must be object or array")
        state.root = value
        return
    found = _locate(state.root, path)
    if found is None:
        raise JSONPatchError(
            f"replace operation does not apply: doc is missing path: {path}: {_MISSING}")
    container, key = found
    try:
        _get(container, key)
    except _Failed:
        raise JSONPatchError(
            f"replace operation does not apply: doc is missing key: {path}: {_MISSING}") from None
    if isinstance(container, dict):
        container[key] = value
    else:
        container[_position(key, len(container))] = value


def _op_move(state: _State, op: dict[str, Any]) -> None:
    source = _string(op, "from")
    if source is None:
        raise JSONPatchError(
            f"move operation failed to decode from: operation, missing from field: {_MISSING}")
    found = _locate(state.root, source)
    if found is None:
        raise JSONPatchError(
            f"move operation does not apply: doc is missing from path: {source}: {_MISSING}")
    container, key = found
    try:
        value = _get(container, key)
        _remove(container, key)
    except _Failed as failure:
        raise JSONPatchError(f"error in move for path: '{key}': {failure}") from None
    path = _string(op, "path")
    if path is None:
        raise JSONPatchError(f"move operation failed to decode path: {_MISSING}")
    target = _locate(state.root, path)
    if target is None:
        raise JSONPatchError(
            f"move operation does not apply: doc is missing destination path: {path}: {_MISSING}")
    try:
        _add(target[0], target[1], value)
    except _Failed as failure:
        raise JSONPatchError(f"error in move for path: '{path}': {failure}") from None


def _op_copy(state: _State, op: dict[str, Any]) -> None:
    source = _string(op, "from")
    if source is None:
        raise JSONPatchError(
            f"copy operation failed to decode from: operation, missing from field: {_MISSING}")
    found = _locate(state.root, source)
    if found is None:
        raise JSONPatchError(
            f"copy operation does not apply: doc is missing from path: {source}: {_MISSING}")
    try:
        value = _get(*found)
    except _Failed as failure:
        raise JSONPatchError(f"error in copy for from: '{source}': {failure}") from None
    path = _string(op, "path")
    if path is None:
        raise JSONPatchError(f"copy operation failed to decode path: {_MISSING}")
    target = _locate(state.root, path)
    if target is None:
        raise JSONPatchError(
            f"copy operation does not apply: doc is missing destination path: {path}: {_MISSING}")
    state.copied += len(orjson.dumps(value))
    if state.copied > MAX_COPY_BYTES:
        raise JSONPatchError(
            "Unable to complete the copy, the accumulated size increase of copy is "
            f"{state.copied}, exceeding the limit {MAX_COPY_BYTES}")
    try:
        _add(target[0], target[1], copy_json(value))
    except _Failed as failure:
        raise JSONPatchError(f"error while adding value during copy: {failure}") from None


def _op_test(state: _State, op: dict[str, Any]) -> None:
    path = _string(op, "path")
    if path is None:
        raise JSONPatchError(f"test operation failed to decode path: {_MISSING}")
    expected = op.get("value")
    if path == "":
        actual = state.root
    else:
        found = _locate(state.root, path)
        if found is None:
            raise JSONPatchError(
                f"test operation does not apply: is missing path: {path}: {_MISSING}")
        try:
            actual = _get(*found)
        except _Failed as failure:
            raise JSONPatchError(f"error in test for path: '{path}': {failure}") from None
    # A missing key and an explicit null are the same to upstream here.
    if actual is None and expected is None:
        return
    if actual is None or "value" not in op or not json_equal(actual, expected):
        raise JSONPatchError(f"testing value {path} failed: test failed")


_HANDLERS = {
    "add": _op_add,
    "remove": _op_remove,
    "replace": _op_replace,
    "move": _op_move,
    "copy": _op_copy,
    "test": _op_test,
}
