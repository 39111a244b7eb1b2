"""Label selectors: requirements, matching, canonical printing, the structured form.

A `LabelSelector` is a conjunction of `Requirement`s kept sorted by key, or the
selector that matches nothing (what a missing `metav1.LabelSelector` means).
It prints in upstream's canonical form, multi-value sets sorted, which the
Scale subresource's status.selector and `kubectl get -o wide` show.
`new_requirement` validates keys, values and operand counts as upstream's
NewRequirement does and fails with its aggregated field errors;
`selector_from_label_selector` converts matchLabels and matchExpressions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kubi.api.errors import FieldError, aggregate, go_quote, invalid

# Operators, spelled as upstream's selection package spells them.
EXISTS, DOES_NOT_EXIST = "exists", "!"
EQUALS, DOUBLE_EQUALS, NOT_EQUALS = "=", "==", "!="
IN, NOT_IN, GREATER_THAN, LESS_THAN = "in", "notin", "gt", "lt"
_BINARY = (IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GREATER_THAN, LESS_THAN)
_STRUCTURED_OPERATORS = {
    "In": IN,
    "NotIn": NOT_IN,
    "Exists": EXISTS,
    "DoesNotExist": DOES_NOT_EXIST,
}


class SelectorParseError(ValueError):
    """A selector that cannot be parsed; the message is upstream's wording."""


@dataclass(frozen=True)
class Requirement:
    """One condition on one label key."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.operator in (IN, EQUALS, DOUBLE_EQUALS):
            return present and labels[self.key] in self.values
        if self.operator in (NOT_IN, NOT_EQUALS):
            # Objects without the key satisfy "not equal" and "not in".
            return not present or labels[self.key] not in self.values
        if self.operator == EXISTS:
            return present
        if self.operator == DOES_NOT_EXIST:
            return not present
        if self.operator in (GREATER_THAN, LESS_THAN) and present and len(self.values) == 1:
            actual, bound = _go_int(labels[self.key]), _go_int(self.values[0])
            if actual is None or bound is None:
                return False
            return actual > bound if self.operator == GREATER_THAN else actual < bound
        return False

    def __str__(self) -> str:
        if self.operator == EXISTS:
            return self.key
        if self.operator == DOES_NOT_EXIST:
            return "!" + self.key
        values = ",".join(sorted(self.values)) if len(self.values) > 1 else "".join(self.values)
        if self.operator in (IN, NOT_IN):
            return f"{self.key} {self.operator} ({values})"
        symbol = {GREATER_THAN: ">", LESS_THAN: "<"}.get(self.operator, self.operator)
        return f"{self.key}{symbol}{values}"


class LabelSelector:
    """A conjunction of requirements; or the selector that matches nothing."""

    def __init__(self, requirements: Iterable[Requirement] = (), *, nothing: bool = False) -> None:
        self.requirements: tuple[Requirement, ...] = tuple(
            sorted(requirements, key=lambda r: r.key)
        )
        self.nothing = nothing

    @property
    def empty(self) -> bool:
        """True when the selector restricts nothing (it matches every object)."""
        return not self.nothing and not self.requirements

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.nothing:
            return False
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    def __repr__(self) -> str:
        return "LabelSelector(<nothing>)" if self.nothing else f"LabelSelector({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LabelSelector):
            return NotImplemented
        return (self.nothing, self.requirements) == (other.nothing, other.requirements)

    def __hash__(self) -> int:
        return hash((self.nothing, self.requirements))


def selector_from_set(labels: Mapping[str, str] | None) -> LabelSelector:
    """Equality on every pair (a Service or ReplicationController selector); empty matches all."""
    return LabelSelector(Requirement(k, EQUALS, (v,)) for k, v in (labels or {}).items())


def selector_from_label_selector(obj: Mapping[str, Any] | None) -> LabelSelector:
    """Convert a `metav1.LabelSelector` as upstream's LabelSelectorAsSelector does.

    None selects nothing, `{}` selects everything. Raises SelectorParseError for
    an unknown operator or an invalid key or value.
    """
    if obj is None:
        return LabelSelector(nothing=True)
    match_labels = obj.get("matchLabels") or {}
    expressions = obj.get("matchExpressions") or []
    requirements = [
        new_requirement(key, EQUALS, [match_labels[key]]) for key in sorted(match_labels)
    ]
    for expression in expressions:
        operator = _STRUCTURED_OPERATORS.get(expression.get("operator"))
        if operator is None:
            raise SelectorParseError(
                f"{go_quote(str(expression.get('operator', '')))} is not a valid label selector operator"
            )
        values = list(expression.get("values") or [])
        requirements.append(new_requirement(expression.get("key", ""), operator, values))
    return LabelSelector(requirements)


def format_label_selector(obj: Mapping[str, Any] | None) -> str:
    """Upstream's FormatLabelSelector: the canonical string, `<none>` or `<error>`."""
    try:
        text = str(selector_from_label_selector(obj))
    except SelectorParseError:
        return "<error>"
    return text or "<none>"


# -- validation --------------------------------------------------------------------

_QNAME = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QNAME_RE = re.compile(_QNAME)
_LABEL_VALUE = f"({_QNAME})?"
_LABEL_VALUE_RE = re.compile(_LABEL_VALUE)
_DNS_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN = _DNS_LABEL + "(\\." + _DNS_LABEL + ")*"
_DNS_SUBDOMAIN_RE = re.compile(_DNS_SUBDOMAIN)
_QNAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character"
)
_DNS_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character"
)


def _regex_error(message: str, pattern: str, *examples: str) -> str:
    shown = " or ".join(f"'{example}', " for example in examples)
    return f"{message} (e.g. {shown}regex used for validation is '{pattern}')"


def _qualified_name_errors(value: str) -> list[str]:
    """A label key: `[DNS subdomain/]name`, the name at most 63 characters."""
    errors: list[str] = []
    parts = value.split("/")
    if len(parts) > 2:
        return [
            "a qualified name "
            + _regex_error(_QNAME_MSG, _QNAME, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errors.append("prefix part must be non-empty")
        else:
            if len(prefix) > 253:
                errors.append("prefix part must be no more than 253 characters")
            if not _DNS_SUBDOMAIN_RE.fullmatch(prefix):
                errors.append(
                    "prefix part " + _regex_error(_DNS_SUBDOMAIN_MSG, _DNS_SUBDOMAIN, "example.com")
                )
    if not name:
        errors.append("name part must be non-empty")
    elif len(name) > 63:
        errors.append("name part must be no more than 63 characters")
    if not _QNAME_RE.fullmatch(name):
        errors.append(
            "name part " + _regex_error(_QNAME_MSG, _QNAME, "MyName", "my.name", "123-abc")
        )
    return errors


def _label_value_errors(value: str) -> list[str]:
    errors: list[str] = []
    if len(value) > 63:
        errors.append("must be no more than 63 characters")
    if not _LABEL_VALUE_RE.fullmatch(value):
        errors.append(_regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE, "MyValue", "my_value", "12345"))
    return errors


class _NilStrings:
    """How Go prints an empty values list that was never allocated."""

    def __str__(self) -> str:
        return "[]string(nil)"


def new_requirement(key: str, operator: str, values: list[str]) -> Requirement:
    """Build a requirement, validating it as upstream's NewRequirement does."""
    errors: list[FieldError] = []
    key_errors = _qualified_name_errors(key)
    if key_errors:
        errors.append(invalid("key", key, "; ".join(key_errors)))
    shown: Any = values if values else _NilStrings()
    if operator in (IN, NOT_IN) and not values:
        errors.append(
            invalid("values", shown, "for 'in', 'notin' operators, values set can't be empty")
        )
    elif operator in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS) and len(values) != 1:
        errors.append(
            invalid("values", shown, "exact-match compatibility requires one single value")
        )
    elif operator in (EXISTS, DOES_NOT_EXIST) and values:
        errors.append(
            invalid("values", shown, "values set must be empty for exists and does not exist")
        )
    elif operator in (GREATER_THAN, LESS_THAN):
        if len(values) != 1:
            errors.append(
                invalid("values", shown, "for 'Gt', 'Lt' operators, exactly one value is required")
            )
        for i, value in enumerate(values):
            if _go_int(value) is None:
                errors.append(
                    invalid(
                        f"values[{i}]",
                        value,
                        "for 'Gt', 'Lt' operators, the value must be an integer",
                    )
                )
    for i, value in enumerate(values):
        value_errors = _label_value_errors(value)
        if value_errors:
            errors.append(invalid(f"values[{i}][{key}]", value, "; ".join(value_errors)))
    if errors:
        raise SelectorParseError(aggregate(errors))
    return Requirement(key, operator, tuple(values))


def _go_int(text: str) -> int | None:
    """Parse a base-10 int64 the way Go's strconv.ParseInt accepts it."""
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        return None
    number = int(text)
    return number if -(1 << 63) <= number < (1 << 63) else None
