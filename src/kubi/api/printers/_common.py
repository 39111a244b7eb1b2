"""Building blocks shared by the per-group Table printers.

A `Printer` pairs the column definitions of one resource with a function that
turns one object (plain JSON-shaped dict, as stored) into the row's cells. The
helpers here are the small formatting rules several printers share: ages,
label maps and selectors, container lists, access-mode abbreviations and the
"a,b,c + N more..." lists. All of them read dicts defensively, because a
stored object carries only the fields that were set.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubi.api.printers.duration import human_duration
from kubi.api.quantity import canonical

Obj = Mapping[str, Any]
CellsFn = Callable[[Obj, datetime], list[Any]]
ConditionsFn = Callable[[Obj], "list[dict[str, Any]] | None"]

NONE = "<none>"
UNSET = "<unset>"
UNKNOWN = "<unknown>"


@dataclass(frozen=True)
class Column:
    """One `meta.k8s.io/v1` TableColumnDefinition."""

    name: str
    type: str = "string"
    description: str = ""
    priority: int = 0
    format: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        }


@dataclass(frozen=True)
class Printer:
    columns: tuple[Column, ...]
    cells: CellsFn
    conditions: ConditionsFn | None = None


NAME = Column("Name", format="name", description="Name of the object, unique within its scope.")
AGE = Column("Age", description="Time elapsed since the object was created.")


def wide(name: str, description: str = "", type: str = "string") -> Column:
    """A column kubectl shows only with `-o wide`."""
    return Column(name, type=type, description=description, priority=1)


def metadata(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def name_of(obj: Obj) -> str:
    return metadata(obj).get("name") or ""


def section(obj: Obj, key: str) -> Obj:
    """`obj[key]` as a mapping, treating a missing or null value as empty."""
    value = obj.get(key)
    return value if isinstance(value, Mapping) else {}


def items(obj: Obj, key: str) -> list[Any]:
    value = obj.get(key)
    return value if isinstance(value, list) else []


# RFC 3339 with optional fraction; Python's parser accepts at most six digits.
_TIMESTAMP = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def parse_time(value: Any) -> datetime | None:
    """Parse a metav1.Time or MicroTime; None for missing, unparsable or zero times."""
    if isinstance(value, datetime):
        parsed = value if value.tzinfo else value.replace(tzinfo=UTC)
    elif isinstance(value, str):
        match = _TIMESTAMP.match(value.strip())
        if not match:
            return None
        base, fraction, zone = match.groups()
        fraction = (fraction or "")[:7]
        zone = "+00:00" if zone == "Z" else zone
        try:
            parsed = datetime.fromisoformat(base + fraction + zone)
        except ValueError:
            return None
    else:
        return None
    # Go's zero time (year 1) is how an unset timestamp looks once decoded.
    return None if parsed.year <= 1 else parsed


def since(value: Any, now: datetime) -> str:
    """Elapsed time from a timestamp to `now`, `<unknown>` when it is unset."""
    moment = parse_time(value)
    if moment is None:
        return UNKNOWN
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return human_duration((now - moment).total_seconds())


def age(obj: Obj, now: datetime) -> str:
    return since(metadata(obj).get("creationTimestamp"), now)


def rfc3339(value: Any) -> str:
    """A timestamp in UTC, second precision; unset prints as Go's zero time."""
    moment = parse_time(value)
    if moment is None:
        return "0001-01-01T00:00:00Z"
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_labels(labels: Mapping[str, str] | None) -> str:
    """`k=v,k2=v2` sorted by key, `<none>` when empty (labels.FormatLabels)."""
    if not labels:
        return NONE
    return ",".join(f"{key}={labels[key]}" for key in sorted(labels))


def _requirement(key: str, operator: str, values: list[str]) -> str | None:
    if operator == "Exists" and not values:
        return key
    if operator == "DoesNotExist" and not values:
        return "!" + key
    if operator in ("In", "NotIn") and values:
        word = "in" if operator == "In" else "notin"
        return f"{key} {word} ({','.join(sorted(values))})"
    return None


def selector_string(selector: Mapping[str, Any] | None) -> str | None:
    """A LabelSelector in kubectl's selector syntax; None when it is malformed.

    Requirements are ordered by key (stable for equal keys), match labels read
    `k=v`, set-based expressions `k in (a,b)`, `k notin (a)`, `k`, `!k`.
    """
    if not selector:
        return ""
    parts: list[tuple[str, str]] = []
    for key, value in (selector.get("matchLabels") or {}).items():
        parts.append((key, f"{key}={value}"))
    for expression in selector.get("matchExpressions") or []:
        key = expression.get("key") or ""
        text = _requirement(key, expression.get("operator") or "", expression.get("values") or [])
        if text is None:
            return None
        parts.append((key, text))
    parts.sort(key=lambda part: part[0])
    return ",".join(text for _, text in parts)


def format_label_selector(selector: Mapping[str, Any] | None) -> str:
    """metav1.FormatLabelSelector: `<none>` when empty, `<error>` when malformed."""
    text = selector_string(selector)
    if text is None:
        return "<error>"
    return text or NONE


def container_cells(containers: Iterable[Obj]) -> tuple[str, str]:
    """Comma-joined container names and images, for the wide Containers/Images cells."""
    listed = list(containers)
    names = ",".join(container.get("name") or "" for container in listed)
    images = ",".join(container.get("image") or "" for container in listed)
    return names, images


def template_containers(workload: Obj) -> list[Obj]:
    template = section(section(workload, "spec"), "template")
    return items(section(template, "spec"), "containers")


_ACCESS_MODES = (
    ("ReadWriteOnce", "RWO"),
    ("ReadOnlyMany", "ROX"),
    ("ReadWriteMany", "RWX"),
    ("ReadWriteOncePod", "RWOP"),
)


def access_modes(modes: Iterable[str] | None) -> str:
    """Abbreviated access modes in the fixed upstream order, duplicates dropped."""
    present = set(modes or ())
    return ",".join(short for mode, short in _ACCESS_MODES if mode in present)


def list_with_more(values: Iterable[str], limit: int = 3) -> str:
    """The first `limit` values, then ` + N more...`; `<unset>` for an empty list."""
    listed = list(values)
    shown = ",".join(listed[:limit])
    if len(listed) > limit:
        return f"{shown} + {len(listed) - limit} more..."
    return shown or UNSET


def quantity_text(value: Any) -> str:
    """A quantity in canonical spelling; a missing one prints as zero, like Go's zero value."""
    if value is None:
        return "0"
    try:
        return canonical(value)
    except ValueError:
        return str(value)


def int_field(obj: Obj, key: str, default: int = 0) -> int:
    value = obj.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else default
