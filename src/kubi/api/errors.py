"""API errors as Kubernetes reports them.

Two layers, as upstream has them. `FieldError` is one problem at one field path
(`spec.replicas: Invalid value: -1: must be greater than or equal to 0`); a
validator returns a list of them. `StatusError` and its subclasses are what a
request fails with: each carries the HTTP code, the Status `reason` and the
message, and `to_status()` renders the `Status` object the API server sends.
Every failure of a request is converted to a Status in exactly one place (the
HTTP layer), so nothing else formats error bodies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Field error types: the text upstream prints, and the cause reason it reports.
REQUIRED = ("Required value", "FieldValueRequired")
INVALID = ("Invalid value", "FieldValueInvalid")
NOT_SUPPORTED = ("Unsupported value", "FieldValueNotSupported")
DUPLICATE = ("Duplicate value", "FieldValueDuplicate")
NOT_FOUND = ("Not found", "FieldValueNotFound")
FORBIDDEN = ("Forbidden", "FieldValueForbidden")
TOO_LONG = ("Too long", "FieldValueTooLong")
TOO_MANY = ("Too many", "FieldValueTooMany")
INTERNAL = ("Internal error", "InternalError")
TYPE_INVALID = ("Invalid value", "FieldValueTypeInvalid")

# Marks a FieldError whose bad value is not printed.
OMIT = object()


def go_repr(value: Any) -> str:
    """Render a bad value the way Go's `%#v` shows the common JSON shapes.

    Upstream prints maps of strings as `map[string]string{"a":"b"}` and string
    slices as `[]string{"a"}`; scalars are handled by FieldError itself.
    """
    if isinstance(value, dict):
        if all(isinstance(v, str) for v in value.values()):
            inner = ", ".join(f'"{k}":"{v}"' for k, v in sorted(value.items()))
            return "map[string]string{" + inner + "}"
        inner = ", ".join(f'"{k}":{go_repr(v)}' for k, v in sorted(value.items()))
        return "map[string]interface {}{" + inner + "}"
    if isinstance(value, list):
        if all(isinstance(v, str) for v in value):
            return "[]string{" + ", ".join(f'"{v}"' for v in value) + "}"
        return "[]interface {}{" + ", ".join(go_repr(v) for v in value) + "}"
    if isinstance(value, str):
        return go_quote(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def go_quote(text: str) -> str:
    """Go's `%q` for the strings that appear in paths and messages."""
    out = ['"']
    for ch in text:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\a":
            out.append("\\a")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        elif ch == "\v":
            out.append("\\v")
        elif not ch.isprintable():
            code = ord(ch)
            out.append(
                f"\\x{code:02x}"
                if code < 0x80
                else (f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
            )
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


@dataclass
class FieldError:
    """One validation problem at one field path (upstream's field.Error)."""

    type: tuple[str, str]
    field: str
    bad_value: Any = OMIT
    detail: str = ""

    def body(self) -> str:
        """The message without the field path, as in a Status cause."""
        label = self.type[0]
        if self.type in (REQUIRED, FORBIDDEN, TOO_LONG, INTERNAL) or self.bad_value is OMIT:
            text = label
        else:
            value = self.bad_value
            if isinstance(value, bool):
                text = f"{label}: {'true' if value else 'false'}"
            elif isinstance(value, (int, float)):
                text = f"{label}: {value}"
            elif isinstance(value, str):
                text = f"{label}: {go_quote(value)}"
            else:
                text = f"{label}: {go_repr(value)}"
        if self.detail:
            text += f": {self.detail}"
        return text

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}" if self.field else self.body()

    def cause(self) -> dict[str, str]:
        return {"reason": self.type[1], "message": self.body(), "field": self.field}


# Constructors named as upstream's field package names them.
def required(path: str, detail: str = "") -> FieldError:
    return FieldError(REQUIRED, path, OMIT, detail)


def invalid(path: str, value: Any, detail: str = "") -> FieldError:
    return FieldError(INVALID, path, value, detail)


def not_supported(path: str, value: Any, valid: list[str] | tuple[str, ...]) -> FieldError:
    detail = "supported values: " + ", ".join(go_quote(v) for v in valid) if valid else ""
    return FieldError(NOT_SUPPORTED, path, value, detail)


def duplicate(path: str, value: Any) -> FieldError:
    return FieldError(DUPLICATE, path, value)


def not_found(path: str, value: Any) -> FieldError:
    return FieldError(NOT_FOUND, path, value)


def forbidden(path: str, detail: str) -> FieldError:
    return FieldError(FORBIDDEN, path, OMIT, detail)


def too_long(path: str, value: Any, max_length: int) -> FieldError:
    return FieldError(TOO_LONG, path, value, f"may not be more than {max_length} bytes")


def too_many(path: str, actual: int, max_items: int) -> FieldError:
    return FieldError(TOO_MANY, path, actual, f"must have at most {max_items} items")


def type_invalid(path: str, value: Any, detail: str) -> FieldError:
    return FieldError(TYPE_INVALID, path, value, detail)


def aggregate(errors: list[FieldError]) -> str:
    """Join errors as upstream's utilerrors aggregate does: one alone, else `[a, b]`."""
    seen: list[str] = []
    for err in errors:
        text = str(err)
        if text not in seen:
            seen.append(text)
    if len(seen) == 1:
        return seen[0]
    return "[" + ", ".join(seen) + "]"


@dataclass
class StatusError(Exception):
    """A request failure that becomes a Kubernetes `Status` object."""

    code: int
    reason: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message

    def to_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
        }
        if self.reason:
            status["reason"] = self.reason
        status["code"] = self.code
        if self.details:
            status["details"] = self.details
        return status


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def _details(name: str, group: str, kind: str) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    if kind:
        details["kind"] = kind
    return details


class NotFound(StatusError):
    def __init__(self, resource: str, name: str, group: str = "") -> None:
        super().__init__(
            404,
            "NotFound",
            f'{_qualified(resource, group)} "{name}" not found',
            _details(name, group, resource),
        )


class AlreadyExists(StatusError):
    def __init__(self, resource: str, name: str, group: str = "") -> None:
        super().__init__(
            409,
            "AlreadyExists",
            f'{_qualified(resource, group)} "{name}" already exists',
            _details(name, group, resource),
        )


class Conflict(StatusError):
    def __init__(self, resource: str, name: str, group: str = "", why: str = "") -> None:
        why = why or (
            "the object has been modified; please apply your changes to the latest "
            "version and try again"
        )
        super().__init__(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": {why}',
            _details(name, group, resource),
        )


class Invalid(StatusError):
    """422: `Kind.group "name" is invalid: <aggregate>` with one cause per error."""

    def __init__(self, kind: str, name: str, errors: list[FieldError], group: str = "") -> None:
        qualified = f"{kind}.{group}" if group else kind
        message = f'{qualified} "{name}" is invalid'
        if errors:
            message += ": " + aggregate(errors)
        details = _details(name, group, kind)
        details["causes"] = [e.cause() for e in errors]
        super().__init__(422, "Invalid", message, details)
        self.errors = errors


class BadRequest(StatusError):
    def __init__(self, message: str) -> None:
        super().__init__(400, "BadRequest", message)


class Unauthorized(StatusError):
    def __init__(self, message: str = "Unauthorized") -> None:
        super().__init__(401, "Unauthorized", message)


class Forbidden(StatusError):
    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(403, "Forbidden", message, details or {})


class MethodNotAllowed(StatusError):
    def __init__(self, message: str) -> None:
        super().__init__(405, "MethodNotAllowed", message)


class NotAcceptable(StatusError):
    def __init__(self, message: str) -> None:
        super().__init__(406, "NotAcceptable", message)


class Gone(StatusError):
    """410 Expired: a watch or list asked for a revision that was compacted away."""

    def __init__(self, message: str) -> None:
        super().__init__(410, "Expired", message)


class RequestEntityTooLarge(StatusError):
    def __init__(self, message: str) -> None:
        super().__init__(413, "RequestEntityTooLarge", message)


class UnsupportedMediaType(StatusError):
    def __init__(self, content_type: str) -> None:
        super().__init__(
            415, "UnsupportedMediaType", f'the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf; got "{content_type}"'
        )


class TooManyRequests(StatusError):
    def __init__(self, message: str) -> None:
        super().__init__(429, "TooManyRequests", message)


class InternalError(StatusError):
    def __init__(self, message: str) -> None:
        super().__init__(
            500,
            "InternalError",
            f"Internal error occurred: {message}",
            {"causes": [{"message": message}]},
        )


class Timeout(StatusError):
    def __init__(self, message: str) -> None:
        super().__init__(504, "Timeout", message)
