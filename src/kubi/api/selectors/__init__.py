"""Label and field selectors, with upstream's grammar, semantics and messages.

Label selectors select by `metadata.labels` (`app=web,tier in (a,b),!canary`)
and also come in the structured `metav1.LabelSelector` form that workloads
carry; both become a `LabelSelector`. Field selectors select by a few
kind-specific attributes (`spec.nodeName=n1`); `field_set` computes those
attributes for an object, `supported_fields` and `field_label_error` say which
ones the API server accepts for a kind and how it refuses the others. Parse
failures raise SelectorParseError (a ValueError) worded as upstream words them.
"""

from kubi.api.selectors._fields import FieldSelector, parse_field_selector
from kubi.api.selectors._fieldsets import field_label_error, field_set, supported_fields
from kubi.api.selectors._label_parser import parse_label_selector
from kubi.api.selectors._labels import (
    LabelSelector,
    Requirement,
    SelectorParseError,
    format_label_selector,
    new_requirement,
    selector_from_label_selector,
    selector_from_set,
)

__all__ = [
    "FieldSelector",
    "LabelSelector",
    "Requirement",
    "SelectorParseError",
    "field_label_error",
    "field_set",
    "format_label_selector",
    "new_requirement",
    "parse_field_selector",
    "parse_label_selector",
    "selector_from_label_selector",
    "selector_from_set",
    "supported_fields",
]
