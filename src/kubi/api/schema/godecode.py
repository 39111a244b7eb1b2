"""The error texts of upstream's Go decoding, for the values that decode specially.

When the API server decodes a body into its Go types, a few kinds of value go
through their own parsers: base64 for `[]byte` fields (Secret data), the
quantity grammar (`resources.limits`), RFC 3339 times (`creationTimestamp`).
Clients see those parsers' error texts in 400 responses, so this module
reproduces the same acceptance rules and the same messages, working on the
already-parsed JSON values. Each check returns None when the value is fine.
"""

from __future__ import annotations

import calendar
from typing import Any

from kubi.api.errors import go_quote

QUANTITY_FORMAT_ERROR = (
    "quantities must match the regular expression "
    "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)
QUANTITY_SUFFIX_ERROR = "unable to parse quantity's suffix"

_DECIMAL_SUFFIXES = frozenset({"n", "u", "m", "", "k", "M", "G", "T", "P", "E"})
_BINARY_SUFFIXES = frozenset({"Ki", "Mi", "Gi", "Ti", "Pi", "Ei"})
_SUFFIX_CHARS = frozenset("eEinumkKMGTP")
_DIGITS = frozenset("0123456789")
_BASE64 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def json_kind(value: Any) -> str:
    """How Go's decoder names a JSON value in `cannot unmarshal <kind>` errors."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def number_text(value: Any) -> str:
    """The literal of a number; a float that is whole keeps its `.0`, as typed JSON would."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


# ---- base64 ([]byte fields) ----------------------------------------------------------


def base64_error(text: str) -> str | None:
    """Go's standard (padded) base64 decoding: the offset of the first bad byte."""
    data = text.encode()
    size, pos = len(data), 0
    while pos < size:
        pos, problem = _base64_quantum(data, pos)
        if problem is not None:
            return f"illegal base64 data at input byte {problem}"
    return None


def _base64_quantum(data: bytes, pos: int) -> tuple[int, int | None]:
    """Decode one 4-character group from `pos`; returns (next position, bad offset)."""
    size, filled = len(data), 0
    while filled < 4:
        if pos == size:
            if filled == 0:
                return pos, None
            # A group cut short: padded base64 always needs all four characters.
            return pos, pos - filled
        char = chr(data[pos])
        pos += 1
        if char in _BASE64:
            filled += 1
            continue
        if char in "\r\n":
            continue
        if char != "=" or filled < 2:
            return pos, pos - 1
        if filled == 2:
            pos = _skip_newlines(data, pos)
            if pos == size:
                return pos, size
            if chr(data[pos]) != "=":
                return pos, pos - 1
            pos += 1
        pos = _skip_newlines(data, pos)
        return size, (pos if pos < size else None)
    return pos, None


def _skip_newlines(data: bytes, pos: int) -> int:
    while pos < len(data) and data[pos] in b"\r\n":
        pos += 1
    return pos


# ---- quantities -------------------------------------------------------------------------


def quantity_error(value: Any) -> str | None:
    """Why `value` is not a quantity (`500m`, `1Gi`, `2`, `1e3`), or None."""
    if isinstance(value, str):
        text = value.strip()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        text = number_text(value)
    else:
        # Objects, arrays and booleans reach the quantity parser as raw JSON text.
        return QUANTITY_FORMAT_ERROR
    if not text:
        return QUANTITY_FORMAT_ERROR
    suffix = _quantity_suffix(text)
    if suffix is None:
        return QUANTITY_FORMAT_ERROR
    if suffix in _DECIMAL_SUFFIXES or suffix in _BINARY_SUFFIXES:
        return None
    if len(suffix) > 1 and suffix[0] in "eE" and _is_go_int(suffix[1:]):
        return None
    return QUANTITY_SUFFIX_ERROR


def _quantity_suffix(text: str) -> str | None:
    """Split off the numeric part as upstream's scanner does; None if malformed."""
    pos, end = 0, len(text)
    if text[0] in "+-":
        pos = 1
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    if pos < end and text[pos] == ".":
        pos += 1
        while pos < end and text[pos] in _DIGITS:
            pos += 1
    start = pos
    while pos < end and text[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < end and text[pos] in "+-":
        pos += 1
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    return text[start:] if pos == end else None


def _is_go_int(text: str) -> bool:
    digits = text[1:] if text[:1] in ("+", "-") else text
    return bool(digits) and all(c in _DIGITS for c in digits) and -(2**63) <= int(text) < 2**63


# ---- RFC 3339 times ---------------------------------------------------------------------

RFC3339 = "2006-01-02T15:04:05Z07:00"
RFC3339_MICRO = "2006-01-02T15:04:05.000000Z07:00"
_CHUNKS = (("", "2006"), ("-", "01"), ("-", "02"), ("T", "15"), (":", "04"), (":", "05"))


# Times seen to parse, per layout: objects repeat the same few timestamps (every
# pod written in one second shares them), so most checks are one lookup.
_VALID_TIMES: tuple[dict[str, None], dict[str, None]] = ({}, {})
_VALID_TIMES_KEPT = 4096


def time_error(text: str, micro: bool = False) -> str | None:
    """Why `text` does not parse with Go's RFC 3339 layout (or the microsecond one)."""
    valid = _VALID_TIMES[micro]
    if text in valid:
        return None
    problem = _time_error(text, micro)
    if problem is None:
        if len(valid) >= _VALID_TIMES_KEPT:
            valid.clear()
        valid[text] = None
    return problem


def _time_error(text: str, micro: bool) -> str | None:
    layout = RFC3339_MICRO if micro else RFC3339
    chunks = _CHUNKS + ((("", ".000000"),) if micro else ()) + (("", "Z07:00"),)
    value, fields = text, {}
    for prefix, element in chunks:
        if not value.startswith(prefix):
            return _parse_error(layout, text, prefix, value)
        value = value[len(prefix):]
        parsed = _time_element(element, value, micro)
        if parsed is None:
            return _parse_error(layout, text, element, value)
        number, value, out_of_range = parsed
        if out_of_range:
            return f"parsing time {go_quote(text)}: {out_of_range} out of range"
        fields[element] = number
    if value:
        return f"parsing time {go_quote(text)}: extra text: {go_quote(value)}"
    year, month, day = fields["2006"], fields["01"], fields["02"]
    if day < 1 or day > calendar.monthrange(year, month)[1]:
        return f"parsing time {go_quote(text)}: day out of range"
    return None


def _parse_error(layout: str, text: str, element: str, rest: str) -> str:
    return (
        f"parsing time {go_quote(text)} as {go_quote(layout)}: "
        f"cannot parse {go_quote(rest)} as {go_quote(element)}"
    )


def _time_element(element: str, value: str, micro: bool) -> tuple[int, str, str] | None:
    """Parse one layout element: (number, rest, out-of-range name) or None if malformed."""
    if element == "2006":
        if len(value) < 4 or not value[:4].isascii() or not value[:4].isdigit():
            return None
        return int(value[:4]), value[4:], ""
    if element in ("01", "02", "04", "05", "15"):
        got = _two_digits(value, fixed=element != "15")
        if got is None:
            return None
        number, rest = got
        limits = {"01": ("month", 1, 12), "15": ("hour", 0, 23),
                  "04": ("minute", 0, 59), "05": ("second", 0, 59)}
        if element in limits:
            name, low, high = limits[element]
            if not low <= number <= high:
                return number, rest, name
        if element == "05" and not micro:
            # The layout has no fraction, yet Go accepts one after the seconds (the
            # microsecond layout parses its own, so there the seconds leave it be).
            rest = _skip_fraction(rest)
        return number, rest, ""
    if element == ".000000":
        if len(value) < 7 or value[0] not in ".," or not value[1:7].isdigit():
            return None
        return 0, value[7:], ""
    return _zone(value)


def _skip_fraction(rest: str) -> str:
    if len(rest) >= 2 and rest[0] in ".," and rest[1] in _DIGITS:
        end = 2
        while end < len(rest) and rest[end] in _DIGITS:
            end += 1
        return rest[end:]
    return rest


def _two_digits(value: str, fixed: bool) -> tuple[int, str] | None:
    if not value or value[0] not in _DIGITS:
        return None
    if len(value) < 2 or value[1] not in _DIGITS:
        return None if fixed else (int(value[0]), value[1:])
    return int(value[:2]), value[2:]


def _zone(value: str) -> tuple[int, str, str] | None:
    if value.startswith("Z"):
        return 0, value[1:], ""
    if len(value) < 6 or value[3] != ":" or value[0] not in "+-":
        return None
    hours, minutes = _two_digits(value[1:3], True), _two_digits(value[4:6], True)
    if hours is None or minutes is None:
        return None
    if hours[0] > 24:
        return 0, value[6:], "time zone offset hour"
    if minutes[0] > 60:
        return 0, value[6:], "time zone offset minute"
    return 0, value[6:], ""
