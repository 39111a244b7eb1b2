"""Kubernetes resource quantities (`100m`, `1.5Gi`, `2e3`, `500Mi`): exact values
and upstream's canonical spelling.

A `Quantity` holds its amount as an exact `Fraction` and remembers the suffix
family it was written in (DecimalSI, BinarySI or DecimalExponent), because the
canonical form upstream serializes depends on both: `1.5Gi` becomes `1536Mi`,
`1000m` becomes `1`, `0.5` becomes `500m`, `1.1Ki` (not a whole number) falls
back to `1126400m`. Parsing rounds any non-zero amount up (away from zero) to a
whole number of nano-units, as upstream does, so that a tiny request is never
silently zero.
"""

from __future__ import annotations

import functools
from fractions import Fraction
from typing import Any

DECIMAL_SI = "DecimalSI"
BINARY_SI = "BinarySI"
DECIMAL_EXPONENT = "DecimalExponent"

SPLIT_RE = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
ERR_FORMAT_WRONG = f"quantities must match the regular expression '{SPLIT_RE}'"
ERR_NUMERIC = "unable to parse numeric part of quantity"
ERR_SUFFIX = "unable to parse quantity's suffix"

_DEC_SUFFIXES = {
    "n": -9,
    "u": -6,
    "m": -3,
    "": 0,
    "k": 3,
    "M": 6,
    "G": 9,
    "T": 12,
    "P": 15,
    "E": 18,
}
_BIN_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DEC_BY_EXP = {e: s for s, e in _DEC_SUFFIXES.items()}
_BIN_BY_EXP = {e: s for s, e in _BIN_SUFFIXES.items()}
_SUFFIX_CHARS = set("eEinumkKMGTP")
_NANO = Fraction(1, 10**9)
# BinarySI amounts are capped, as upstream caps them, at the largest int64.
_MAX_BINARY = Fraction(2**63 - 1)


@functools.total_ordering
class Quantity:
    """An exact resource amount plus the suffix family it is written in."""

    __slots__ = ("amount", "format")

    def __init__(self, amount: Fraction | int, format: str = DECIMAL_SI) -> None:
        self.amount = Fraction(amount)
        self.format = format

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Quantity):
            return self.amount == other.amount
        return NotImplemented

    def __lt__(self, other: Quantity) -> bool:
        return self.amount < other.amount

    def __hash__(self) -> int:
        return hash(self.amount)

    def __repr__(self) -> str:
        return f"Quantity({str(self)!r})"

    def __add__(self, other: Quantity) -> Quantity:
        fmt = other.format if self.amount == 0 else self.format
        return Quantity(self.amount + other.amount, fmt)

    def __sub__(self, other: Quantity) -> Quantity:
        fmt = other.format if self.amount == 0 else self.format
        return Quantity(self.amount - other.amount, fmt)

    def is_zero(self) -> bool:
        return self.amount == 0

    def sign(self) -> int:
        return (self.amount > 0) - (self.amount < 0)

    def scaled_value(self, exponent: int) -> int:
        """The amount in units of 10**exponent, rounded away from zero."""
        return _round_away(self.amount / Fraction(10) ** exponent)

    def value(self) -> int:
        return self.scaled_value(0)

    def milli_value(self) -> int:
        return self.scaled_value(-3)

    def __str__(self) -> str:
        if self.amount == 0:
            return "0"
        fmt = self.format
        if fmt == BINARY_SI:
            if -1024 < self.amount < 1024:
                fmt = DECIMAL_SI
            elif self.amount.denominator != 1:
                # A fractional binary amount would be rounded; show it exactly instead.
                fmt = DECIMAL_SI
        if fmt == BINARY_SI:
            mantissa, power = _strip_factor(int(self.amount), 1024)
            suffix = _BIN_BY_EXP.get(power * 10)
            if suffix is None:
                return str(int(self.amount))
            return f"{mantissa}{suffix}"
        mantissa, exponent = _canonical_decimal(self.amount)
        if fmt == DECIMAL_EXPONENT:
            return f"{mantissa}e{exponent}" if exponent else str(mantissa)
        suffix = _DEC_BY_EXP.get(exponent)
        if suffix is None:
            return f"{mantissa}e{exponent}"
        return f"{mantissa}{suffix}"


def _round_away(value: Fraction) -> int:
    whole = value.numerator // value.denominator
    if value == whole:
        return whole
    # Floor division already moved a negative amount away from zero.
    return whole + 1 if value > 0 else whole


def _strip_factor(value: int, base: int) -> tuple[int, int]:
    times = 0
    if value == 0:
        return 0, 0
    while value % base == 0:
        value //= base
        times += 1
    return value, times


def _canonical_decimal(amount: Fraction) -> tuple[int, int]:
    """An integer mantissa and an exponent that is a multiple of 3 (toward minus infinity)."""
    exponent = 0
    # Amounts are whole nano-units after parsing, so this loop stops by 1e-9.
    while amount.denominator != 1:
        amount *= 10
        exponent -= 1
    mantissa, times = _strip_factor(int(amount), 10)
    exponent += times
    while exponent % 3:
        mantissa *= 10
        exponent -= 1
    return mantissa, exponent


def _split(text: str) -> tuple[bool, str, str, str]:
    """Split into (positive, integer digits, fraction digits, suffix) as upstream scans it."""
    pos, end = 0, len(text)
    positive = True
    if text[:1] in ("-", "+"):
        positive = text[0] == "+"
        pos = 1
    while pos < end and text[pos] == "0":
        pos += 1
    if pos >= end:
        return positive, "0", "", ""
    start = pos
    while pos < end and text[pos].isdigit() and text[pos].isascii():
        pos += 1
    num = text[start:pos] or "0"
    denom = ""
    if pos < end and text[pos] == ".":
        pos += 1
        start = pos
        while pos < end and text[pos].isdigit() and text[pos].isascii():
            pos += 1
        denom = text[start:pos]
    suffix_start = pos
    while pos < end and text[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < end and text[pos] in "+-":
        pos += 1
    while pos < end and text[pos] in "0123456789":
        pos += 1
    if pos < end:
        raise ValueError(ERR_FORMAT_WRONG)
    return positive, num, denom, text[suffix_start:]


def _interpret_suffix(suffix: str) -> tuple[int, int, str]:
    if suffix in _DEC_SUFFIXES:
        return 10, _DEC_SUFFIXES[suffix], DECIMAL_SI
    if suffix in _BIN_SUFFIXES:
        return 2, _BIN_SUFFIXES[suffix], BINARY_SI
    if len(suffix) > 1 and suffix[0] in "eE":
        exp_text = suffix[1:]
        body = exp_text[1:] if exp_text[:1] in "+-" else exp_text
        if body.isdigit() and len(body) < 19:
            return 10, int(exp_text), DECIMAL_EXPONENT
    raise ValueError(ERR_SUFFIX)


def parse_quantity(text: Any) -> Quantity:
    """Parse a quantity as written in a manifest (a string, or a JSON number)."""
    if not isinstance(text, str):
        # JSON numbers are spelled as they were written; anything else fails to parse.
        text = str(text) if isinstance(text, (int, float)) and not isinstance(text, bool) else "?"
    if not text:
        raise ValueError(ERR_FORMAT_WRONG)
    if text == "0":
        return Quantity(0, DECIMAL_SI)
    positive, num, denom, suffix = _split(text)
    base, exponent, fmt = _interpret_suffix(suffix)
    amount = Fraction(int(num + denom), 10 ** len(denom))
    if base == 10:
        amount *= Fraction(10) ** exponent
    else:
        amount *= 2**exponent
    if amount.denominator != 1:
        amount = Fraction(_round_away(amount / _NANO)) * _NANO
    if fmt == BINARY_SI:
        amount = min(amount, _MAX_BINARY)
        if 0 < amount < 1:
            fmt = DECIMAL_SI
    return Quantity(amount if positive else -amount, fmt)


def canonical(text: Any) -> str:
    """The canonical spelling of a quantity (raises ValueError when it does not parse)."""
    return str(parse_quantity(text))


def is_quantity(text: Any) -> bool:
    try:
        parse_quantity(text)
    except ValueError:
        return False
    return True
