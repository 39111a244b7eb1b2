"""The three patch formats a PATCH request can carry, as pure functions on JSON.

`jsonpatch` (RFC 6902 operation lists), `mergepatch` (RFC 7386 merge
documents) and `strategic` (Kubernetes' strategic merge patch, driven by the
merge keys and strategies in the schema). None of them mutates its inputs,
except a document handed over with `in_place`.
Every failure is a `PatchError` that knows the HTTP status upstream answers
with and the message its Status carries, so the server can report it as is.
"""

from __future__ import annotations

from typing import Any

import orjson

# The Status message upstream sends for a 422 it builds without details.
GENERIC_UNPROCESSABLE = "the server rejected our request due to an error in our request"


class PatchError(ValueError):
    """A patch that cannot be applied.

    `str(error)` is the precise reason; `code` is the HTTP status upstream
    answers with and `message` the text its Status carries, which for some
    failures is a generic sentence rather than the reason.
    """

    def __init__(self, reason: str, *, code: int = 422, message: str | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.message = reason if message is None else message


def copy_json(value: Any) -> Any:
    """A deep copy of a JSON value (dicts, lists and scalars only): a round trip
    through orjson, many times faster than walking it; integers beyond 64 bits,
    which orjson refuses, take the walk."""
    try:
        return orjson.loads(orjson.dumps(value))
    except orjson.JSONEncodeError:
        return _copy_walk(value)


def _copy_walk(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        return {key: _copy_walk(item) for key, item in value.items()}
    if kind is list:
        return [_copy_walk(item) for item in value]
    return value


def json_equal(left: Any, right: Any) -> bool:
    """Equality as JSON documents: `1` and `1.0`, or `1` and `true`, differ."""
    if type(left) is not type(right):
        return False
    if type(left) is dict:
        return left.keys() == right.keys() and all(json_equal(v, right[k]) for k, v in left.items())
    if type(left) is list:
        return len(left) == len(right) and all(json_equal(a, b) for a, b in zip(left, right, strict=True))
    return bool(left == right)
