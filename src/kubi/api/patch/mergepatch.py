"""JSON merge patch (RFC 7386): a partial document merged into the target.

Objects merge key by key and `null` deletes a key; anything else (lists
included) replaces the target's value whole, with the nulls inside new values
dropped. As in the library upstream's API server uses, a patch that is `null`
or a bare scalar is rejected with 400 `Invalid JSON Patch`, and a patch that
is a list simply becomes the document. `create_merge_patch` is the inverse:
the smallest merge patch that turns one object into another.
"""

from __future__ import annotations

from typing import Any

from kubi.api.patch import PatchError, copy_json, json_equal

BAD_PATCH = "Invalid JSON Patch"
BAD_DOCUMENT = "Invalid JSON Document"


def apply_merge_patch(doc: Any, patch: Any, *, in_place: bool = False) -> Any:
    """The document with `patch` merged in; raises PatchError (400) for a bad patch.
    With `in_place`, `doc` is the caller's own copy and may be changed."""
    if patch is None or not isinstance(patch, (dict, list)):
        raise PatchError(BAD_PATCH, code=400)
    if doc is None:
        raise PatchError(BAD_DOCUMENT, code=400)
    if isinstance(patch, list):
        return _without_nulls(patch)
    if not isinstance(doc, dict):
        return _without_nulls(patch)
    result = doc if in_place else copy_json(doc)
    _merge_into(result, patch)
    return result


def _merge_into(target: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
            continue
        current = target.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            _merge_into(current, value)
        elif isinstance(current, dict):
            # A non-object replacing an object is taken as it is.
            target[key] = copy_json(value)
        else:
            target[key] = _without_nulls(value)


def _without_nulls(value: Any) -> Any:
    """A copy of `value` with every null-valued object key removed, at any depth."""
    kind = type(value)
    if kind is dict:
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if kind is list:
        return [_without_nulls(item) for item in value]
    return value


def create_merge_patch(original: Any, modified: Any) -> dict[str, Any]:
    """The merge patch that turns `original` into `modified` (both objects)."""
    if not isinstance(original, dict) or not isinstance(modified, dict):
        raise PatchError(BAD_DOCUMENT, code=400)
    return _diff(original, modified)


def _category(value: Any) -> type:
    # Numbers are one type to the JSON decoder upstream uses (float64).
    if type(value) is int:
        return float
    return type(value)


def _diff(original: dict[str, Any], modified: dict[str, Any]) -> dict[str, Any]:
    patch: dict[str, Any] = {}
    for key, new in modified.items():
        if key not in original:
            patch[key] = copy_json(new)
            continue
        old = original[key]
        if _category(old) is not _category(new):
            patch[key] = copy_json(new)
        elif isinstance(new, dict):
            nested = _diff(old, new)
            if nested:
                patch[key] = nested
        elif isinstance(new, (int, float)) and not isinstance(new, bool):
            if old != new:
                patch[key] = new
        elif not json_equal(old, new):
            patch[key] = copy_json(new)
    for key in original:
        if key not in modified:
            patch[key] = None
    return patch
