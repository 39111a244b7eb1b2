"""Decode Kubernetes protobuf request bodies into JSON-shaped objects.

A body is `k8s\\0` then a `runtime.Unknown` (typeMeta, raw); `raw` is read by the
table in `_proto_fields` into the dict that JSON-encoding the same Go object gives.
Presence: Go always writes non-pointer scalars and writes pointers only when set,
so a present pointer is kept whatever its value (`replicas: 0`), a non-pointer
`omitempty` field is dropped at its zero value, other fields and present messages
(`spec: {}`) are kept. Unlike Go's `null`s, empty lists and maps are omitted, as is
a zero Time, IntOrString, Quantity or Duration held outside a pointer.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from kubi.api._proto_fields import MESSAGES, VERSIONS

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"

_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5
# Named slices (meta.v1.Verbs, ExtraValue) travel as a message holding `items`.
_LIST_WRAPPERS = {
    name for name, fields in MESSAGES.items() if fields.get(1, ("",) * 4)[3] == "list"
}
_VARINTS = {"bool", "int32", "int64"}
_MASK64 = (1 << 64) - 1


class ProtobufError(ValueError):
    """A body that is not a well-formed Kubernetes protobuf object."""


def is_protobuf(content_type: str) -> bool:
    """True when a Content-Type names the Kubernetes protobuf encoding."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == MEDIA_TYPE


def decode_object(body: bytes) -> dict[str, Any]:
    """Decode a `k8s\\0`-prefixed body into the object's JSON dict.

    The result carries `apiVersion` and `kind` from the envelope. Raises
    ProtobufError (a ValueError) when the body is malformed or its kind has no
    known schema.
    """
    if not body.startswith(MAGIC):
        raise ProtobufError("protobuf body does not start with the k8s magic prefix")
    # The envelope's contentEncoding and contentType are left empty by clients
    # and ignored by upstream servers, so they are not read.
    envelope = _fields(memoryview(body)[len(MAGIC) :], "runtime.Unknown")
    type_meta = _fields(envelope.get(1, [b""])[-1], "runtime.TypeMeta")
    api_version = _text(type_meta.get(1, [b""])[-1])
    kind = _text(type_meta.get(2, [b""])[-1])
    if not api_version or not kind:
        raise ProtobufError("protobuf envelope has no apiVersion or kind")
    obj = _decode_message(_message_for(api_version, kind), envelope.get(2, [b""])[-1])
    return {"apiVersion": api_version, "kind": kind, **obj}


def _message_for(api_version: str, kind: str) -> str:
    package = VERSIONS.get(api_version)
    # Options kinds (DeleteOptions, ...) are registered in every group version.
    for candidate in (f"{package}.{kind}", f"meta.v1.{kind}"):
        if candidate in MESSAGES:
            return candidate
    raise ProtobufError(f"no protobuf schema for kind {kind!r} in {api_version!r}")


# -- wire format ------------------------------------------------------------


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtobufError("protobuf message is truncated inside a varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result & _MASK64, pos
        shift += 7
        if shift >= 70:
            raise ProtobufError("protobuf varint is longer than 10 bytes")


def _read(data: memoryview, message: str) -> list[tuple[int, int, Any]]:
    """Split a message into (field number, wire type, value) in wire order."""
    out: list[tuple[int, int, Any]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: Any
        if number == 0:
            raise ProtobufError(f"protobuf field number 0 in {message}")
        if wire == _VARINT:
            value, pos = _varint(data, pos)
        elif wire == _BYTES:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise ProtobufError(f"protobuf field {number} of {message} overruns the message")
            value, pos = data[pos : pos + size], pos + size
        elif wire in (_FIXED64, _FIXED32):
            width = 8 if wire == _FIXED64 else 4
            if pos + width > len(data):
                raise ProtobufError(f"protobuf field {number} of {message} is truncated")
            value, pos = bytes(data[pos : pos + width]), pos + width
        else:
            raise ProtobufError(f"unsupported protobuf wire type {wire} in {message}")
        out.append((number, wire, value))
    return out


def _fields(data: bytes | memoryview, message: str) -> dict[int, list[Any]]:
    """Group the length-delimited fields of a small fixed message by number."""
    grouped: dict[int, list[Any]] = {}
    for number, wire, value in _read(memoryview(data), message):
        if wire != _BYTES:
            raise ProtobufError(f"protobuf field {number} of {message} has wire type {wire}")
        grouped.setdefault(number, []).append(value)
    return grouped


def _text(value: bytes | memoryview) -> str:
    # Go's JSON encoder replaces invalid UTF-8 the same way.
    return bytes(value).decode("utf-8", errors="replace")


def _json(value: bytes | memoryview) -> Any:
    try:
        return orjson.loads(bytes(value))
    except orjson.JSONDecodeError as exc:
        raise ProtobufError(f"embedded JSON is invalid: {exc}") from None


# -- scalars ----------------------------------------------------------------


def _scalar(type_: str, wire: int, value: Any, where: str) -> Any:
    if type_ == "string":
        _expect(wire, _BYTES, where)
        return _text(value)
    if type_ == "bytes":
        _expect(wire, _BYTES, where)
        return base64.b64encode(bytes(value)).decode("ascii")
    _expect(wire, _VARINT, where)
    if type_ == "bool":
        return value != 0
    if type_ == "int32":
        value &= 0xFFFFFFFF
        return value - (1 << 32) if value & 0x80000000 else value
    if type_ == "int64":
        return value - (1 << 64) if value & (1 << 63) else value
    return value


def _expect(wire: int, expected: int, where: str) -> None:
    if wire != expected:
        raise ProtobufError(f"protobuf field {where} has wire type {wire}, expected {expected}")


def _packed(type_: str, data: memoryview, where: str) -> list[Any]:
    """Values of a packed repeated varint field (Go never packs, others may)."""
    values: list[Any] = []
    pos = 0
    while pos < len(data):
        raw, pos = _varint(data, pos)
        values.append(_scalar(type_, _VARINT, raw, where))
    return values


# -- messages ---------------------------------------------------------------


def _decode_message(message: str, data: bytes | memoryview) -> Any:
    """Decode one message by its table; custom-JSON types become their JSON value."""
    custom = _CUSTOM.get(message)
    if custom is not None:
        return custom(memoryview(data))
    schema = MESSAGES[message]
    fields = _collect(schema, memoryview(data), message)
    if message in _LIST_WRAPPERS:
        return fields.get(1, [])
    obj: dict[str, Any] = {}
    for number, value in fields.items():
        name, label, type_, presence = schema[number]
        if label != "opt":
            if value:
                obj[name] = value
            continue
        if type_ in MESSAGES:
            value = _decode_message(type_, value)
            if name == "":
                obj.update(value)  # an embedded Go struct, inlined in JSON
                continue
        if not _omitted(type_, presence, value):
            obj[name] = value
    return obj


def _collect(
    schema: dict[int, tuple[str, str, str, str]], data: memoryview, message: str
) -> dict[int, Any]:
    """Gather field values by number: lists, dicts, scalars and raw sub-messages.

    Occurrences of one singular message field are concatenated before they are
    decoded, because protobuf merges them; a singular scalar sent twice keeps
    the last value.
    """
    out: dict[int, Any] = {}
    for number, wire, value in _read(data, message):
        field = schema.get(number)
        if field is None:
            continue  # unknown fields are skipped, as the Go decoder does
        name, label, type_, _presence = field
        where = f"{number} ({name or type_}) of {message}"
        if label == "map":
            _expect(wire, _BYTES, where)
            key, item = _map_entry(type_, value, where)
            out.setdefault(number, {})[key] = item
        elif label == "rep":
            items = out.setdefault(number, [])
            if type_ in MESSAGES:
                _expect(wire, _BYTES, where)
                items.append(_decode_message(type_, value))
            elif wire == _BYTES and type_ in _VARINTS:
                items.extend(_packed(type_, value, where))
            else:
                items.append(_scalar(type_, wire, value, where))
        elif type_ in MESSAGES:
            _expect(wire, _BYTES, where)
            out.setdefault(number, bytearray()).extend(value)
        else:
            out[number] = _scalar(type_, wire, value, where)
    return out


def _omitted(type_: str, presence: str, value: Any) -> bool:
    if value is None:
        return True  # a zero Time or an empty raw extension: JSON null
    if presence == "ptr":
        return False
    if type_ in _CUSTOM:
        return value in (0, "0", "0s")
    return presence == "omit" and type_ not in MESSAGES and value in ("", 0, False)


def _map_entry(type_: str, data: memoryview, where: str) -> tuple[str, Any]:
    key, value, seen = "", None, False
    for number, wire, raw in _read(data, f"map entry of {where}"):
        if number == 1:
            key = _scalar("string", wire, raw, where)
        elif number == 2:
            seen = True
            if type_ in MESSAGES:
                _expect(wire, _BYTES, where)
                value = _decode_message(type_, raw)
            else:
                value = _scalar(type_, wire, raw, where)
    if not seen:
        value = _decode_message(type_, b"") if type_ in MESSAGES else _ZERO[type_]
    return key, value


_ZERO: dict[str, Any] = {"string": "", "bytes": "", "bool": False, "int32": 0, "int64": 0}


# -- messages with a custom JSON form ---------------------------------------


def _simple(data: memoryview, message: str, types: dict[int, str]) -> dict[int, Any]:
    """Scalar fields of a small message, last occurrence winning."""
    values: dict[int, Any] = {}
    for number, wire, raw in _read(data, message):
        if number in types:
            values[number] = _scalar(types[number], wire, raw, f"{number} of {message}")
    return values


def _utc(seconds: int, message: str) -> datetime:
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise ProtobufError(f"{message} seconds {seconds} out of range") from None


def _time(data: memoryview) -> str | None:
    # An unset Time travels as an empty message; its nanos never reach JSON.
    if not data:
        return None
    moment = _utc(_simple(data, "Time", {1: "int64"}).get(1, 0), "Time")
    return _rfc3339(moment) + "Z"


def _micro_time(data: memoryview) -> str | None:
    if not data:
        return None
    values = _simple(data, "MicroTime", {1: "int64", 2: "int32"})
    moment = _utc(values.get(1, 0), "MicroTime")
    return f"{_rfc3339(moment)}.{values.get(2, 0) // 1000:06d}Z"


def _rfc3339(moment: datetime) -> str:
    # strftime does not zero-pad years before 1000 everywhere; Go does.
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )


def _duration(data: memoryview) -> str:
    return go_duration(_simple(data, "Duration", {1: "int64"}).get(1, 0))


def go_duration(nanoseconds: int) -> str:
    """Format nanoseconds as Go's time.Duration prints them (`1h0m0s`, `1.5s`, `300ms`)."""
    if nanoseconds == 0:
        return "0s"
    sign, rest = ("-" if nanoseconds < 0 else ""), abs(nanoseconds)
    if rest < 1_000_000_000:
        for unit, scale in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if rest >= scale:
                return f"{sign}{_decimal(rest, scale)}{unit}"
    hours, rest = divmod(rest, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    text = f"{hours}h" if hours else ""
    if hours or minutes:
        text += f"{minutes}m"
    return f"{sign}{text}{_decimal(rest, 1_000_000_000)}s"


def _decimal(value: int, scale: int) -> str:
    whole, fraction = divmod(value, scale)
    if not fraction:
        return str(whole)
    digits = str(fraction).rjust(len(str(scale)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"


def _quantity(data: memoryview) -> str:
    return _simple(data, "Quantity", {1: "string"}).get(1) or "0"


def _int_or_string(data: memoryview) -> int | str:
    values = _simple(data, "IntOrString", {1: "int64", 2: "int32", 3: "string"})
    kind = values.get(1, 0)
    if kind == 0:
        return values.get(2, 0)
    if kind == 1:
        return values.get(3, "")
    raise ProtobufError(f"IntOrString has unknown type {kind}")


def _raw_json(data: memoryview) -> Any:
    raw = _fields(data, "RawExtension").get(1, [b""])[-1]
    if not raw:
        return None
    if bytes(raw[: len(MAGIC)]) == MAGIC:
        return decode_object(bytes(raw))
    return _json(raw)


_CUSTOM: dict[str, Callable[[memoryview], Any]] = {
    "meta.v1.Time": _time,
    "meta.v1.MicroTime": _micro_time,
    "meta.v1.Duration": _duration,
    "meta.v1.FieldsV1": _raw_json,
    "runtime.RawExtension": _raw_json,
    "api.resource.Quantity": _quantity,
    "api.resource.QuantityValue": _quantity,
    "intstr.IntOrString": _int_or_string,
}
