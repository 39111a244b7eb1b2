"""Event recording: naming, references, correlation, and the background writer."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from kubi.api.errors import StatusError
from kubi.client.client import Resource
from kubi.controllers.eventcorrelator import EventCorrelator
from kubi.controllers.events import EventBroadcaster, object_reference
from tests.unit.controllers_fakeapi import FakeAPI

RS = {
    "apiVersion": "apps/v1",
    "kind": "ReplicaSet",
    "metadata": {"name": "web", "namespace": "demo", "uid": "u-1", "resourceVersion": "42"},
}


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def make_event(message: str = "Created pod: web-abcde", reason: str = "SuccessfulCreate",
               name: str = "web") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{name}.1", "namespace": "demo"},
        "involvedObject": {"kind": "ReplicaSet", "namespace": "demo", "name": name,
                           "uid": "u-1", "apiVersion": "apps/v1"},
        "reason": reason,
        "message": message,
        "source": {"component": "replicaset-controller"},
        "firstTimestamp": "2024-01-01T00:00:00Z",
        "lastTimestamp": "2024-01-01T00:00:00Z",
        "count": 1,
        "type": "Normal",
        "reportingComponent": "replicaset-controller",
        "reportingInstance": "",
    }


# ---- the correlator


def test_first_event_is_created_as_is() -> None:
    result = EventCorrelator(clock=Clock()).correlate(make_event())
    assert not result.skip and result.patch is None
    assert result.event["count"] == 1


def test_identical_event_becomes_a_count_patch_of_the_first() -> None:
    correlator = EventCorrelator(clock=Clock())
    first = correlator.correlate(make_event())
    correlator.update_state({**first.event, "metadata": {**first.event["metadata"],
                                                         "resourceVersion": "7"}})
    again = make_event()
    again["metadata"]["name"] = "web.2"
    again["lastTimestamp"] = "2024-01-01T00:05:00Z"
    second = correlator.correlate(again)
    assert second.event["metadata"]["name"] == "web.1"
    assert second.event["count"] == 2
    assert second.event["firstTimestamp"] == "2024-01-01T00:00:00Z"
    assert second.patch == {"count": 2, "lastTimestamp": "2024-01-01T00:05:00Z",
                            "message": "Created pod: web-abcde"}
    assert correlator.correlate(make_event()).event["count"] == 3


def test_ten_similar_events_are_combined() -> None:
    correlator = EventCorrelator(clock=Clock())
    results = [correlator.correlate(make_event(f"Created pod: web-{i}")) for i in range(12)]
    assert all(r.patch is None for r in results[:9])
    combined = results[9]
    assert combined.event["message"] == "(combined from similar events): Created pod: web-9"
    assert combined.event["reason"] == "SuccessfulCreate"
    assert combined.patch is None
    # Later similar events update the combined event instead of creating more.
    assert results[10].event["metadata"]["name"] == combined.event["metadata"]["name"]
    assert results[10].event["count"] == 2
    assert results[10].patch is not None
    assert results[10].patch["message"] == "(combined from similar events): Created pod: web-10"


def test_aggregation_window_restarts_after_ten_minutes() -> None:
    clock = Clock()
    correlator = EventCorrelator(clock=clock)
    for i in range(9):
        correlator.correlate(make_event(f"m{i}"))
    clock.now += 601
    result = correlator.correlate(make_event("m9"))
    assert result.event["message"] == "m9"


def test_spam_filter_allows_a_burst_of_25_then_one_per_five_minutes() -> None:
    clock = Clock()
    correlator = EventCorrelator(clock=clock)
    results = [correlator.correlate(make_event(f"m{i}")) for i in range(30)]
    assert [r.skip for r in results] == [False] * 25 + [True] * 5
    clock.now += 300
    assert not correlator.correlate(make_event("later")).skip
    assert correlator.correlate(make_event("later again")).skip
    # Another object has its own budget.
    assert not correlator.correlate(make_event("x", name="other")).skip


# ---- the recorder and the writer


def test_object_reference_uses_given_kind_for_list_items() -> None:
    bare = {"metadata": {"name": "web", "namespace": "demo", "uid": "u", "resourceVersion": "3"}}
    ref = object_reference(bare, kind="ReplicaSet", api_version="apps/v1")
    assert ref == {"kind": "ReplicaSet", "namespace": "demo", "name": "web", "uid": "u",
                   "apiVersion": "apps/v1", "resourceVersion": "3"}


async def test_recorder_builds_events_like_client_go() -> None:
    api = FakeAPI()
    broadcaster = EventBroadcaster(api)  # type: ignore[arg-type]
    recorder = broadcaster.recorder("replicaset-controller")
    recorder.event(RS, "Normal", "SuccessfulCreate", "Created pod: web-x2f9k")
    recorder.event({"metadata": {"name": "n1", "uid": "u-n"}}, "Warning", "NodeNotReady", "down",
                   kind="Node", api_version="v1")
    broadcaster.start()
    await asyncio.wait_for(broadcaster.flush(), 2)
    await broadcaster.stop()
    events = api.items("events")
    by_reason = {e["reason"]: e for e in events}
    created = by_reason["SuccessfulCreate"]
    assert re.fullmatch(r"web\.[0-9a-f]+", created["metadata"]["name"])
    assert created["metadata"]["namespace"] == "demo"
    assert created["involvedObject"] == {"kind": "ReplicaSet", "namespace": "demo",
                                         "name": "web", "uid": "u-1", "apiVersion": "apps/v1",
                                         "resourceVersion": "42"}
    assert created["source"] == {"component": "replicaset-controller"}
    assert created["reportingComponent"] == "replicaset-controller"
    assert created["reportingInstance"] == ""
    assert created["type"] == "Normal" and created["count"] == 1
    assert created["firstTimestamp"] == created["lastTimestamp"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", created["firstTimestamp"])
    # Cluster-scoped objects get their events in the default namespace.
    assert by_reason["NodeNotReady"]["metadata"]["namespace"] == "default"


async def test_event_names_are_unique_even_when_recorded_back_to_back() -> None:
    broadcaster = EventBroadcaster(FakeAPI())  # type: ignore[arg-type]
    recorder = broadcaster.recorder("c")
    names = {recorder.make_event({"name": "x"}, "Normal", "R", "m")["metadata"]["name"]
             for _ in range(1000)}
    assert len(names) == 1000


async def test_repeated_event_is_patched_not_duplicated() -> None:
    api = FakeAPI()
    broadcaster = EventBroadcaster(api)  # type: ignore[arg-type]
    recorder = broadcaster.recorder("replicaset-controller")
    broadcaster.start()
    for _ in range(3):
        recorder.event(RS, "Warning", "FailedCreate", "Error creating: quota exceeded")
    await asyncio.wait_for(broadcaster.flush(), 2)
    await broadcaster.stop()
    events = api.items("events")
    assert len(events) == 1
    assert events[0]["count"] == 3
    assert api.count("create", "events") == 1 and api.count("patch", "events") == 2


async def test_patch_of_a_vanished_event_creates_it_again() -> None:
    api = FakeAPI()
    broadcaster = EventBroadcaster(api)  # type: ignore[arg-type]
    recorder = broadcaster.recorder("c")
    broadcaster.start()
    recorder.event(RS, "Normal", "R", "m")
    await asyncio.wait_for(broadcaster.flush(), 2)
    api.objects.clear()
    recorder.event(RS, "Normal", "R", "m")
    await asyncio.wait_for(broadcaster.flush(), 2)
    await broadcaster.stop()
    [event] = api.items("events")
    assert event["count"] == 2


async def test_a_full_queue_drops_instead_of_blocking() -> None:
    broadcaster = EventBroadcaster(FakeAPI(), max_queued=2)  # type: ignore[arg-type]
    recorder = broadcaster.recorder("c")
    for i in range(5):
        recorder.event(RS, "Normal", "R", f"m{i}")
    assert broadcaster.dropped == 3


async def test_rejected_events_are_not_retried_but_transport_errors_are() -> None:
    api = FakeAPI()
    attempts: list[str] = []

    def failure(verb: str, res: Resource, obj: dict[str, Any] | None) -> Exception | None:
        if verb != "create" or res.plural != "events":
            return None
        attempts.append(obj["reason"] if obj else "")
        if obj and obj["reason"] == "Bad":
            return StatusError(422, "Invalid", "nope")
        if obj and obj["reason"] == "Flaky" and attempts.count("Flaky") < 3:
            return ConnectionResetError("reset")
        return None

    api.fail(failure)
    broadcaster = EventBroadcaster(api, retry_sleep=0.01)  # type: ignore[arg-type]
    recorder = broadcaster.recorder("c")
    broadcaster.start()
    recorder.event(RS, "Normal", "Bad", "m")
    recorder.event(RS, "Normal", "Flaky", "m")
    await asyncio.wait_for(broadcaster.flush(), 2)
    await broadcaster.stop()
    assert attempts.count("Bad") == 1
    assert attempts.count("Flaky") == 3
    assert [e["reason"] for e in api.items("events")] == ["Flaky"]


async def test_unknown_event_type_is_refused() -> None:
    broadcaster = EventBroadcaster(FakeAPI())  # type: ignore[arg-type]
    broadcaster.recorder("c").event(RS, "Info", "R", "m")
    assert broadcaster._queue.qsize() == 0
