"""Recording core/v1 Events without making controllers wait.

`EventRecorder.event(obj, type, reason, message)` builds the Event the way
client-go's record package does (name `<object>.<hex nanoseconds>`, the
involvedObject reference, source and reporting component, first and last
timestamp, count 1) and drops it into the `EventBroadcaster`'s bounded queue;
when the queue is full the event is dropped, never waited for. One background
task drains the queue: it correlates each event (see eventcorrelator), then
creates it, or patches the existing one when it repeats. Transport failures are
retried (12 tries, 10 s apart, the first wait randomized); a rejection by the
server is final.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from kubi.api.errors import StatusError
from kubi.api.meta import format_time
from kubi.client.client import Client, Resource
from kubi.controllers.eventcorrelator import Correlation, EventCorrelator, event_name

log = logging.getLogger(__name__)

DROP_LOG_INTERVAL = 10.0

NORMAL = "Normal"
WARNING = "Warning"

MAX_QUEUED_EVENTS = 1000
MAX_TRIES_PER_EVENT = 12
RETRY_SLEEP = 10.0

EVENTS = Resource("", "v1", "events", True, "Event")

# The Status cause the API server reports when a namespace is being deleted.
NAMESPACE_TERMINATING_CAUSE = "NamespaceTerminating"


def object_reference(obj: dict[str, Any], *, kind: str | None = None,
                     api_version: str | None = None) -> dict[str, str]:
    """An ObjectReference to `obj`; kind and apiVersion for objects from lists, which lack them."""
    md = obj.get("metadata") or {}
    ref = {
        "kind": kind or obj.get("kind", ""),
        "namespace": md.get("namespace", ""),
        "name": md.get("name", ""),
        "uid": md.get("uid", ""),
        "apiVersion": api_version or obj.get("apiVersion", ""),
        "resourceVersion": md.get("resourceVersion", ""),
    }
    return {k: v for k, v in ref.items() if v}


def has_status_cause(err: StatusError, cause: str) -> bool:
    causes = (err.details or {}).get("causes") or []
    return any(c.get("reason") == cause or c.get("type") == cause for c in causes)


class _UniqueNanos:
    """Nanosecond timestamps that never repeat, so event names never collide."""

    def __init__(self) -> None:
        self._last = 0

    def __call__(self) -> int:
        now = time.time_ns()
        self._last = now if now > self._last else self._last + 1
        return self._last


class EventBroadcaster:
    """The queue and the writer task shared by every recorder of a process."""

    def __init__(self, client: Client, *, correlator: EventCorrelator | None = None,
                 max_queued: int = MAX_QUEUED_EVENTS, retry_sleep: float = RETRY_SLEEP,
                 clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.nanos = _UniqueNanos()
        self.clock = clock
        self.correlator = correlator or EventCorrelator(clock=clock, nanos=self.nanos)
        self.retry_sleep = retry_sleep
        self.dropped = 0
        self._dropped_logged = (0, float("-inf"))  # (count, monotonic time) at the last log
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(max_queued)
        self._task: asyncio.Task[None] | None = None

    def recorder(self, component: str, host: str = "", *,
                 submit: Callable[[dict[str, Any]], None] | None = None) -> EventRecorder:
        """A recorder for `component`; its events go to `submit` (an EventHold's
        add, say) when given, else straight into this broadcaster's queue."""
        return EventRecorder(self, component=component, host=host, submit=submit)

    def submit(self, event: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1
            # Under a flood, one line every ten seconds says how many went.
            count, at = self._dropped_logged
            now = time.monotonic()
            if now - at >= DROP_LOG_INTERVAL:
                log.error("too many queued events: dropped %d (the last: %s event about %s)",
                          self.dropped - count, event.get("reason"),
                          event["involvedObject"].get("name"))
                self._dropped_logged = (self.dropped, now)

    # ---- lifecycle

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="event-broadcaster")

    async def flush(self) -> None:
        """Wait until every queued event has been written or given up on."""
        await self._queue.join()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    # ---- the writer

    async def _run(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                await self._record(event)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("recording event %s failed", event["metadata"]["name"])
            finally:
                self._queue.task_done()

    async def _record(self, event: dict[str, Any]) -> None:
        result = self.correlator.correlate(event)
        if result.skip:
            return
        for attempt in range(1, MAX_TRIES_PER_EVENT + 1):
            if await self._write(result):
                return
            if attempt == MAX_TRIES_PER_EVENT:
                break
            # Randomize the first wait so clients do not retry in lockstep.
            delay = self.retry_sleep * (random.random() if attempt == 1 else 1.0)
            await asyncio.sleep(delay)
        log.error("unable to write event %s (retry limit exceeded)", event["metadata"]["name"])

    async def _write(self, result: Correlation) -> bool:
        """True when the event is written or must be abandoned, False to retry."""
        event = result.event
        namespace = event["metadata"]["namespace"]
        try:
            written = None
            if result.patch is not None and event.get("count", 1) > 1:
                try:
                    written = await self.client.patch(
                        EVENTS, event["metadata"]["name"], result.patch, namespace,
                        patch_type="strategic")
                except StatusError as err:
                    if err.code != 404:
                        raise
            if written is None:
                fresh = {**event, "metadata": {k: v for k, v in event["metadata"].items()
                                               if k != "resourceVersion"}}
                written = await self.client.create(EVENTS, fresh, namespace)
        except StatusError as err:
            if err.reason == "AlreadyExists" or has_status_cause(err, NAMESPACE_TERMINATING_CAUSE):
                log.debug("server rejected event %s: %s", event["metadata"]["name"], err)
            else:
                log.warning("server rejected event %s: %s", event["metadata"]["name"], err)
            return True
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
            log.warning("unable to write event %s (will retry): %r", event["metadata"]["name"], exc)
            return False
        self.correlator.update_state(written)
        return True


class EventRecorder:
    """Records events on behalf of one component, e.g. `replicaset-controller`."""

    def __init__(self, broadcaster: EventBroadcaster, *, component: str, host: str = "",
                 submit: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.broadcaster = broadcaster
        self.component = component
        self.host = host
        self.submit = submit or broadcaster.submit

    def event(self, obj: dict[str, Any], event_type: str, reason: str, message: str, *,
              kind: str | None = None, api_version: str | None = None) -> None:
        if event_type not in (NORMAL, WARNING):
            log.error("unsupported event type %r", event_type)
            return
        ref = object_reference(obj, kind=kind, api_version=api_version)
        self.submit(self.make_event(ref, event_type, reason, message))

    def make_event(self, ref: dict[str, str], event_type: str, reason: str,
                   message: str) -> dict[str, Any]:
        stamp = format_time(self.broadcaster.clock())
        source = {"component": self.component}
        if self.host:
            source["host"] = self.host
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": event_name(ref.get("name", ""), self.broadcaster.nanos()),
                "namespace": ref.get("namespace") or "default",
            },
            "involvedObject": ref,
            "reason": reason,
            "message": message,
            "source": source,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "type": event_type,
            "eventTime": None,
            "reportingComponent": self.component,
            "reportingInstance": self.host,
        }
