"""Field selectors: `field=value`, `field==value`, `field!=value`, joined by commas.

The grammar is upstream's: terms are split on unescaped commas and sorted as
strings; each term splits at the first `!=`, `==` or `=`; the value may escape
`\\`, `,` and `=` with a backslash, and any other escape or a bare `,` or `=` in
the value is an error. No whitespace is trimmed. Matching compares against a
flat map of field values, where a missing field reads as the empty string, so
`spec.nodeName=` selects unscheduled pods.
"""

from __future__ import annotations

from collections.abc import Mapping

from kubi.api.selectors._labels import SelectorParseError

_OPERATORS = ("!=", "==", "=")


class FieldSelector:
    """A conjunction of (field, operator, value) terms; the operator is `=` or `!=`."""

    def __init__(self, requirements: list[tuple[str, str, str]] | None = None) -> None:
        self.requirements: list[tuple[str, str, str]] = list(requirements or [])

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, fields: Mapping[str, str]) -> bool:
        for field, operator, value in self.requirements:
            equal = fields.get(field, "") == value
            if equal != (operator == "="):
                return False
        return True

    def requires_exact_match(self, field: str) -> str | None:
        """The value an `=` term demands of this field, if there is one."""
        for name, operator, value in self.requirements:
            if name == field and operator == "=":
                return value
        return None

    def __str__(self) -> str:
        return ",".join(f"{f}{op}{escape_value(v)}" for f, op, v in self.requirements)

    def __repr__(self) -> str:
        return f"FieldSelector({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FieldSelector):
            return NotImplemented
        return self.requirements == other.requirements


def parse_field_selector(text: str) -> FieldSelector:
    """Parse a field selector; raise SelectorParseError with upstream's message."""
    requirements: list[tuple[str, str, str]] = []
    for term in sorted(_split_terms(text)):
        if not term:
            continue
        split = _split_term(term)
        if split is None:
            raise SelectorParseError(f"invalid selector: '{text}'; can't understand '{term}'")
        field, operator, raw = split
        requirements.append((field, "!=" if operator == "!=" else "=", unescape_value(raw)))
    return FieldSelector(requirements)


def escape_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def unescape_value(value: str) -> str:
    if not any(ch in value for ch in "\\,="):
        return value
    out: list[str] = []
    escaped = False
    for ch in value:
        if escaped:
            if ch not in "\\,=":
                raise SelectorParseError(f"invalid field selector: invalid escape sequence: \\{ch}")
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in ",=":
            # Go prints the rune as its number.
            raise SelectorParseError(
                f"invalid field selector: unescaped character in value: {ord(ch)}"
            )
        else:
            out.append(ch)
    if escaped:
        raise SelectorParseError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_terms(text: str) -> list[str]:
    if not text:
        return []
    terms: list[str] = []
    start, escaped = 0, False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    for i in range(len(term)):
        for operator in _OPERATORS:
            if term.startswith(operator, i):
                return term[:i], operator, term[i + len(operator) :]
    return None
