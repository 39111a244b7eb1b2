"""API views that share storage with another resource.

`events.k8s.io/v1` Events are the core/v1 Events in storage, seen through a
field mapping (`involvedObject` ↔ `regarding`, `message` ↔ `note`, ...), as
upstream stores both in one place. Reads convert each entry on the way out;
writes convert the body to the core shape and go through the core resource's
pipeline.
"""

from __future__ import annotations

from kubi.api import catalog
from kubi.api.catalog import ResourceType
from kubi.api.kinds.misc import core_event_to_events_v1, events_v1_to_core_event
from kubi.apiserver.cache import Entry

CORE_EVENTS = catalog.lookup("", "v1", "events")


def is_view(rt: ResourceType) -> bool:
    return rt.group == "events.k8s.io"


def storage_type(rt: ResourceType) -> ResourceType:
    """The resource whose storage and pipeline a view's writes go through."""
    assert CORE_EVENTS is not None
    return CORE_EVENTS if is_view(rt) else rt


def outbound(rt: ResourceType, entry: Entry) -> Entry:
    if not is_view(rt):
        return entry
    return Entry(core_event_to_events_v1(entry.obj), entry.rv)


def inbound(rt: ResourceType, obj: dict) -> dict:
    if not is_view(rt):
        return obj
    return events_v1_to_core_event(obj)
