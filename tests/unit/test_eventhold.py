"""Events held back while a component is busy: order, release when quiet or
settled, a deadline."""

from __future__ import annotations

import asyncio
from typing import Any

from kubi.controllers.eventhold import EventHold


def event(reason: str) -> dict[str, Any]:
    return {"reason": reason}


class Node:
    def __init__(self, max_hold: float = 5.0) -> None:
        self.written: list[str] = []
        self.statuses_pending = False
        self.hold = EventHold(lambda e: self.written.append(e["reason"]),
                              busy=lambda: self.statuses_pending, max_hold=max_hold)


async def test_a_quiet_node_records_at_once() -> None:
    node = Node()
    node.hold.add(event("Pulled"))
    assert node.written == ["Pulled"]


async def test_events_wait_for_the_syncs_and_keep_their_order() -> None:
    node = Node()
    node.hold.work_started()
    node.hold.work_started()
    for reason in ("Pulled", "Created", "Started"):
        node.hold.add(event(reason))
    node.hold.work_ended()
    assert node.written == []
    node.hold.work_ended()
    assert node.written == ["Pulled", "Created", "Started"]
    node.hold.add(event("Killing"))
    assert node.written[-1] == "Killing"


async def test_events_wait_for_pending_status_writes() -> None:
    node = Node()
    node.hold.work_started()
    node.hold.add(event("Started"))
    node.statuses_pending = True
    node.hold.work_ended()
    await asyncio.sleep(0.05)
    assert node.written == []
    node.statuses_pending = False
    await asyncio.sleep(0.05)
    assert node.written == ["Started"]


async def test_an_event_recorded_between_syncs_waits_for_status_writes() -> None:
    node = Node()
    node.statuses_pending = True
    node.hold.add(event("Unhealthy"))
    assert node.written == []
    node.statuses_pending = False
    await asyncio.sleep(0.05)
    assert node.written == ["Unhealthy"]


async def test_a_busy_node_still_records_within_the_deadline() -> None:
    node = Node(max_hold=0.05)
    node.hold.work_started()
    node.hold.add(event("Pulled"))
    await asyncio.sleep(0.1)
    assert node.written == ["Pulled"]
    node.hold.add(event("Created"))
    node.hold.release()
    assert node.written == ["Pulled", "Created"]
    node.hold.work_ended()


class Scheduler:
    def __init__(self, settle: float, max_hold: float = 5.0) -> None:
        self.written: list[str] = []
        self.hold = EventHold(lambda e: self.written.append(e["reason"]), settle=settle,
                              max_hold=max_hold)


async def test_events_wait_until_none_came_for_the_settle_time() -> None:
    scheduler = Scheduler(settle=0.1)
    scheduler.hold.add(event("Scheduled"))
    assert scheduler.written == []
    await asyncio.sleep(0.06)
    scheduler.hold.add(event("FailedScheduling"))
    await asyncio.sleep(0.06)
    # 0.12 s after the first, but only 0.06 s after the last.
    assert scheduler.written == []
    await asyncio.sleep(0.08)
    assert scheduler.written == ["Scheduled", "FailedScheduling"]


async def test_a_component_that_never_settles_still_records_within_the_deadline() -> None:
    scheduler = Scheduler(settle=0.05, max_hold=0.15)
    for _ in range(8):
        scheduler.hold.add(event("Scheduled"))
        await asyncio.sleep(0.03)
    assert len(scheduler.written) >= 4
