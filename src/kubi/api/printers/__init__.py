"""Server-side printing: the columns and cells of `meta.k8s.io/v1` Tables.

kubectl asks the API server for a Table and prints its cells verbatim, so
what `kubectl get` shows is decided here. Printers are registered per
(group, plural) in the per-group modules and reproduce upstream v1.33's
built-in printers; cells always include the wide (priority 1) columns,
because the server renders for `-o wide` and kubectl hides what it does not
need. Resources without a printer get the generic columns every upstream
API server falls back to: Name and Created At.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kubi.api.printers import apps, core, events, other, pod
from kubi.api.printers._common import NAME, Column, Obj, Printer, metadata, name_of, rfc3339
from kubi.api.printers.duration import human_duration

__all__ = [
    "column_definitions",
    "has_printer",
    "human_duration",
    "row_cells",
    "row_conditions",
]

_PRINTERS: dict[tuple[str, str], Printer] = {
    **pod.PRINTERS,
    **core.PRINTERS,
    **events.PRINTERS,
    **apps.PRINTERS,
    **other.PRINTERS,
}

_CREATED_AT = Column("Created At", type="date", description="When the object was created.")


def _default_cells(obj: Obj, now: datetime) -> list[Any]:
    return [name_of(obj), rfc3339(metadata(obj).get("creationTimestamp"))]


_DEFAULT = Printer((NAME, _CREATED_AT), _default_cells)


def _printer(group: str, plural: str) -> Printer:
    return _PRINTERS.get((group, plural), _DEFAULT)


def has_printer(group: str, plural: str) -> bool:
    """Whether the resource has its own columns rather than the generic ones."""
    return (group, plural) in _PRINTERS


def column_definitions(group: str, plural: str) -> list[dict[str, Any]]:
    """The Table's `columnDefinitions` for a resource, wide columns included."""
    return [column.as_dict() for column in _printer(group, plural).columns]


def row_cells(group: str, plural: str, obj: Obj, now: datetime) -> list[Any]:
    """One row's cells, in column order; ages are measured up to `now`."""
    return _printer(group, plural).cells(obj, now)


def row_conditions(group: str, plural: str, obj: Obj) -> list[dict[str, Any]] | None:
    """A row's `conditions`, or None when the row carries none."""
    conditions = _printer(group, plural).conditions
    return conditions(obj) if conditions is not None else None
