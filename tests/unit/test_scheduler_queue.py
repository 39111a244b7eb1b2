"""The scheduling queue: order, backoff, parking and the events that move pods."""

from __future__ import annotations

import asyncio

import pytest

from kubi.scheduler.nodeinfo import PodInfo
from kubi.scheduler.queue import (
    ASSIGNED_POD_ADD,
    ASSIGNED_POD_DELETE,
    NODE_ADD,
    QueueClosed,
    SchedulingQueue,
)
from tests.unit.scheduler_fixtures import make_pod


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def info(name: str, priority: int = 0, **kw) -> PodInfo:
    return PodInfo(make_pod(name, priority=priority, **kw))


def drain(queue: SchedulingQueue) -> list[str]:
    names = []
    while (queued := queue.pop_nowait()) is not None:
        names.append(queued.pod.name)
        queue.done(queued.key)
    return names


def test_priority_first_then_arrival():
    clock = Clock()
    queue = SchedulingQueue(clock=clock)
    for name, priority in (("a", 0), ("b", 10), ("c", 0), ("d", 10)):
        queue.add(info(name, priority))
        clock.now += 1
    assert drain(queue) == ["b", "d", "a", "c"]


def test_backoff_doubles_from_one_second_up_to_ten():
    queue = SchedulingQueue(clock=Clock())
    queued = queue.pop_nowait() or None
    assert queued is None
    queue.add(info("p"))
    queued = queue.pop_nowait()
    durations = []
    for _ in range(6):
        queued.unschedulable_count += 1
        durations.append(queue.backoff_duration(queued))
    assert durations == [1, 2, 4, 8, 10, 10]


def test_unschedulable_pods_wait_for_a_relevant_event():
    clock = Clock()
    queue = SchedulingQueue(clock=clock)
    queue.add(info("p"))
    queued = queue.pop_nowait()
    queue.requeue_unschedulable(queued, {"NodeResourcesFit"})
    assert queue.where("default/p") == "unschedulable"
    assert queue.move_all(ASSIGNED_POD_ADD) == 0  # affinity/spread events do not free cpu
    clock.now += 0.5
    assert queue.move_all(ASSIGNED_POD_DELETE) == 1
    assert queue.where("default/p") == "backoff"  # still inside its 1 s backoff
    clock.now += 1
    assert queue.flush_backoff_completed() == 1
    assert drain(queue) == ["p"]


def test_event_after_backoff_goes_straight_to_active():
    clock = Clock()
    queue = SchedulingQueue(clock=clock)
    queue.add(info("p"))
    queue.requeue_unschedulable(queue.pop_nowait(), {"TaintToleration"})
    clock.now += 5
    assert queue.move_all(NODE_ADD) == 1
    assert queue.where("default/p") == "active"


def test_event_during_the_attempt_sends_the_pod_to_backoff():
    queue = SchedulingQueue(clock=Clock())
    queue.add(info("p"))
    queued = queue.pop_nowait()
    queue.move_all(NODE_ADD)  # e.g. a node was added while we were deciding
    queue.requeue_unschedulable(queued, {"NodeResourcesFit"})
    assert queue.where("default/p") == "backoff"


def test_parked_pods_are_retried_after_five_minutes():
    clock = Clock()
    queue = SchedulingQueue(clock=clock)
    queue.add(info("p"))
    queue.requeue_unschedulable(queue.pop_nowait(), {"NodeAffinity"})
    clock.now += 299
    assert queue.flush_unschedulable_leftover() == 0
    clock.now += 2
    assert queue.flush_unschedulable_leftover() == 1
    assert queue.where("default/p") == "active"


def test_a_changed_pod_leaves_the_unschedulable_pool():
    clock = Clock()
    queue = SchedulingQueue(clock=clock)
    queue.add(info("p"))
    queue.requeue_unschedulable(queue.pop_nowait(), {"TaintToleration"})
    queue.update(info("p"))  # nothing changed: stays parked
    assert queue.where("default/p") == "unschedulable"
    clock.now += 2
    queue.update(info("p", tolerations=[{"operator": "Exists"}]))
    assert queue.where("default/p") == "active"


def test_errors_back_off_by_consecutive_errors():
    clock = Clock()
    queue = SchedulingQueue(clock=clock)
    queue.add(info("p"))
    queued = queue.pop_nowait()
    queue.requeue_error(queued)
    assert queue.where("default/p") == "backoff"
    assert queue.backoff_duration(queued) == 1
    clock.now += 1
    queue.flush_backoff_completed()
    queued = queue.pop_nowait()
    queue.requeue_error(queued)
    assert queue.backoff_duration(queued) == 2


def test_delete_and_priority_update():
    queue = SchedulingQueue(clock=Clock())
    queue.add(info("a"))
    queue.add(info("b"))
    queue.delete("default/a")
    queue.add(info("c"))
    queue.update(info("c", priority=5))
    assert drain(queue) == ["c", "b"]


def test_in_flight_updates_are_kept_for_the_requeue():
    queue = SchedulingQueue(clock=Clock())
    queue.add(info("p"))
    queued = queue.pop_nowait()
    queue.add(info("p", labels={"v": "2"}))
    assert queue.where("default/p") == "in-flight"
    queue.requeue_unschedulable(queued, {"NodeAffinity"})
    assert queued.pod.labels == {"v": "2"}
    assert queue.where("default/p") == "backoff"


async def test_pop_waits_for_work_and_close_wakes_it():
    queue = SchedulingQueue()
    waiter = asyncio.create_task(queue.pop())
    await asyncio.sleep(0)
    assert not waiter.done()
    queue.add(info("p"))
    assert (await asyncio.wait_for(waiter, 1)).pod.name == "p"
    closing = asyncio.create_task(queue.pop())
    await asyncio.sleep(0)
    queue.close()
    with pytest.raises(QueueClosed):
        await asyncio.wait_for(closing, 1)
