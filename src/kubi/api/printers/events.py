"""The event printer, for core `v1` events and their `events.k8s.io/v1` view.

Upstream prints both API views of an event through one printer that reads
the core shape, because the API server converts `events.k8s.io` objects to
it first. `core_event_view` does that renaming (`regarding` becomes
`involvedObject`, `note` becomes `message`, the `deprecated*` fields lose
their prefix, `reportingController` becomes `reportingComponent`).

LAST SEEN prefers the series' last observation, then `lastTimestamp`, then
FIRST SEEN, which itself is `firstTimestamp` or else `eventTime`. COUNT is
the series count, or `count`, or 1 for a singleton event of the new API.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kubi.api.printers._common import (
    Column,
    Obj,
    Printer,
    int_field,
    name_of,
    parse_time,
    section,
    since,
    wide,
)

COLUMNS = (
    Column("Last Seen", description="Time since the event was last observed."),
    Column("Type", description="Normal or Warning."),
    Column("Reason", description="Short machine-readable cause of the event."),
    Column("Object", description="The object the event is about."),
    wide("Subobject", "Field path within the object, such as a container."),
    wide("Source", "Component (and host) that reported the event."),
    Column("Message", description="Human-readable description of the event."),
    wide("First Seen", "Time since the event was first observed."),
    wide("Count", "How many times the event has occurred."),
    Column("Name", format="name", priority=1, description="Name of the event object."),
)

# events.k8s.io/v1 field → core/v1 field, for fields that only changed name.
_RENAMED = {
    "regarding": "involvedObject",
    "note": "message",
    "deprecatedCount": "count",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "reportingController": "reportingComponent",
}


def core_event_view(event: Obj) -> dict[str, Any]:
    """An `events.k8s.io/v1` Event in the field names of a core `v1` Event."""
    return {_RENAMED.get(key, key): value for key, value in event.items()}


def _first_seen(event: Obj, now: datetime) -> str:
    if parse_time(event.get("firstTimestamp")) is not None:
        return since(event.get("firstTimestamp"), now)
    return since(event.get("eventTime"), now)


def _source(event: Obj) -> str:
    source = section(event, "source")
    component = source.get("component") or event.get("reportingComponent") or ""
    host = source.get("host") or event.get("reportingInstance") or ""
    return f"{component}, {host}" if host else component


def _target(involved: Obj) -> str:
    kind = (involved.get("kind") or "").lower()
    name = involved.get("name") or ""
    return f"{kind}/{name}" if name else kind


def event_cells(event: Obj, now: datetime) -> list[Any]:
    first_seen = _first_seen(event, now)
    last_seen = first_seen
    if parse_time(event.get("lastTimestamp")) is not None:
        last_seen = since(event.get("lastTimestamp"), now)

    count = int_field(event, "count")
    if event.get("series") is not None:
        series = section(event, "series")
        last_seen = since(series.get("lastObservedTime"), now)
        count = int_field(series, "count")
    elif count == 0:
        count = 1

    involved = section(event, "involvedObject")
    return [
        last_seen,
        event.get("type") or "",
        event.get("reason") or "",
        _target(involved),
        involved.get("fieldPath") or "",
        _source(event),
        (event.get("message") or "").strip(),
        first_seen,
        count,
        name_of(event),
    ]


def _events_v1_cells(event: Obj, now: datetime) -> list[Any]:
    return event_cells(core_event_view(event), now)


PRINTERS: dict[tuple[str, str], Printer] = {
    ("", "events"): Printer(COLUMNS, event_cells),
    ("events.k8s.io", "events"): Printer(COLUMNS, _events_v1_cells),
}
