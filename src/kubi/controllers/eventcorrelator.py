"""Event correlation as client-go's record package does it, as pure decisions.

Before an Event is written, `EventCorrelator.correlate` decides how, in three
steps that run in upstream's order:

1. aggregation: when 10 events that differ only in message arrive about the
   same object within 10 minutes, later ones collapse into a single event
   whose message reads "(combined from similar events): <latest message>";
2. de-duplication: an event identical to one already written (same source,
   object, type, reason and message) becomes a patch of that event's `count`,
   `lastTimestamp` and `message` instead of a new object;
3. spam filtering: a source gets a burst of 25 events per object, refilled at
   one every 5 minutes; events beyond that are dropped.

State lives in bounded LRU maps (4096 keys each). The clock is injectable so
tests can move time.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from kubi.api.meta import format_time

V = TypeVar("V")

LRU_CACHE_ENTRIES = 4096
AGGREGATE_MAX_EVENTS = 10
AGGREGATE_INTERVAL_SECONDS = 600
SPAM_BURST = 25
SPAM_QPS = 1.0 / 300.0
AGGREGATE_MESSAGE_PREFIX = "(combined from similar events): "

Clock = Callable[[], float]


class LRU(Generic[V]):
    """A small least-recently-used map."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[str, V] = OrderedDict()

    def get(self, key: str) -> V | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: str, value: V) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.size:
            self._data.popitem(last=False)


def event_key(event: dict[str, Any]) -> str:
    """Identity of an event for de-duplication (upstream's getEventKey)."""
    ref = event.get("involvedObject") or {}
    source = event.get("source") or {}
    return "".join([
        source.get("component", ""), source.get("host", ""),
        ref.get("kind", ""), ref.get("namespace", ""), ref.get("name", ""),
        ref.get("fieldPath", ""), ref.get("uid", ""), ref.get("apiVersion", ""),
        event.get("type", ""), event.get("reason", ""), event.get("message", ""),
    ])


def spam_key(event: dict[str, Any]) -> str:
    """Identity of a source talking about one object (upstream's getSpamKey)."""
    ref = event.get("involvedObject") or {}
    source = event.get("source") or {}
    return "".join([
        source.get("component", ""), source.get("host", ""),
        ref.get("kind", ""), ref.get("namespace", ""), ref.get("name", ""),
        ref.get("uid", ""), ref.get("apiVersion", ""),
    ])


def aggregate_keys(event: dict[str, Any]) -> tuple[str, str]:
    """(group of similar events, what tells them apart): all but the message."""
    ref = event.get("involvedObject") or {}
    source = event.get("source") or {}
    group = "".join([
        source.get("component", ""), source.get("host", ""),
        ref.get("kind", ""), ref.get("namespace", ""), ref.get("name", ""),
        ref.get("uid", ""), ref.get("apiVersion", ""),
        event.get("type", ""), event.get("reason", ""),
        event.get("reportingComponent", ""), event.get("reportingInstance", ""),
    ])
    return group, event.get("message", "")


@dataclass
class TokenBucket:
    """Tokens refill continuously at `rate` per second up to `burst`."""

    rate: float
    burst: int
    tokens: float
    last: float

    def try_accept(self, now: float) -> bool:
        self.tokens = min(float(self.burst), self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass
class _AggregateRecord:
    local_keys: set[str] = field(default_factory=set)
    last_timestamp: float = 0.0


@dataclass
class _Observation:
    count: int
    first_timestamp: str
    name: str
    resource_version: str


@dataclass
class Correlation:
    """What to write: `event` as is, or `patch` applied to the existing `event`."""

    event: dict[str, Any]
    patch: dict[str, Any] | None = None
    skip: bool = False


def event_name(object_name: str, nanos: int) -> str:
    """`<object name>.<hex nanoseconds>`, as upstream names events."""
    return f"{object_name}.{nanos:x}"


class EventCorrelator:
    def __init__(self, *, clock: Clock = time.time, nanos: Callable[[], int] = time.time_ns,
                 burst: int = SPAM_BURST, qps: float = SPAM_QPS,
                 max_events: int = AGGREGATE_MAX_EVENTS,
                 max_interval: float = AGGREGATE_INTERVAL_SECONDS,
                 cache_size: int = LRU_CACHE_ENTRIES) -> None:
        self._clock = clock
        self._nanos = nanos
        self._burst = burst
        self._qps = qps
        self._max_events = max_events
        self._max_interval = max_interval
        self._spam: LRU[TokenBucket] = LRU(cache_size)
        self._aggregates: LRU[_AggregateRecord] = LRU(cache_size)
        self._observed: LRU[_Observation] = LRU(cache_size)

    def correlate(self, event: dict[str, Any]) -> Correlation:
        aggregated, key = self._aggregate(event)
        observed, patch = self._observe(aggregated, key)
        if not self._allow(observed):
            return Correlation(observed, skip=True)
        return Correlation(observed, patch)

    def update_state(self, written: dict[str, Any]) -> None:
        """Remember the server's copy of a written event (its name, count, version)."""
        self._observed.put(event_key(written), _Observation(
            count=written.get("count") or 1,
            first_timestamp=written.get("firstTimestamp") or "",
            name=written["metadata"]["name"],
            resource_version=written["metadata"].get("resourceVersion", ""),
        ))

    # ---- the three steps

    def _aggregate(self, event: dict[str, Any]) -> tuple[dict[str, Any], str]:
        now = self._clock()
        group, local = aggregate_keys(event)
        record = self._aggregates.get(group)
        if record is None or now - record.last_timestamp > self._max_interval:
            record = _AggregateRecord()
        record.local_keys.add(local)
        record.last_timestamp = now
        self._aggregates.put(group, record)
        if len(record.local_keys) < self._max_events:
            return event, event_key(event)
        # Keep the set from growing past the threshold, as upstream does.
        record.local_keys.pop()
        stamp = format_time(now)
        combined = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": event_name(event["involvedObject"].get("name", ""), self._nanos()),
                "namespace": event["metadata"]["namespace"],
            },
            "involvedObject": event["involvedObject"],
            "reason": event.get("reason", ""),
            "message": AGGREGATE_MESSAGE_PREFIX + event.get("message", ""),
            "source": event.get("source", {}),
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "type": event.get("type", ""),
            "eventTime": None,
            "reportingComponent": "",
            "reportingInstance": "",
        }
        return combined, group

    def _observe(self, event: dict[str, Any],
                 key: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
        previous = self._observed.get(key)
        patch = None
        if previous is not None and previous.count > 0:
            event = {**event, "metadata": {**event["metadata"], "name": previous.name,
                                           "resourceVersion": previous.resource_version},
                     "firstTimestamp": previous.first_timestamp,
                     "count": previous.count + 1}
            # The two-way patch upstream computes between the event with count,
            # lastTimestamp and message blanked and the event itself.
            patch = {"count": event["count"], "lastTimestamp": event["lastTimestamp"],
                     "message": event.get("message", "")}
        self._observed.put(key, _Observation(
            count=event.get("count") or 1,
            first_timestamp=event.get("firstTimestamp") or "",
            name=event["metadata"]["name"],
            resource_version=event["metadata"].get("resourceVersion", ""),
        ))
        return event, patch

    def _allow(self, event: dict[str, Any]) -> bool:
        now = self._clock()
        key = spam_key(event)
        bucket = self._spam.get(key)
        if bucket is None:
            bucket = TokenBucket(self._qps, self._burst, float(self._burst), now)
        allowed = bucket.try_accept(now)
        self._spam.put(key, bucket)
        return allowed
