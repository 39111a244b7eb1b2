"""The work queue: deduplication, exclusivity, delays, backoff and shutdown."""

from __future__ import annotations

import asyncio

import pytest

from kubi.controllers.workqueue import ItemExponentialBackoff, QueueShutDown, WorkQueue


async def get_now(q: WorkQueue[str]) -> str:
    return await asyncio.wait_for(q.get(), 1.0)


async def test_keys_are_deduplicated_while_queued() -> None:
    q: WorkQueue[str] = WorkQueue()
    for key in ("a", "b", "a", "a", "c", "b"):
        q.add(key)
    assert len(q) == 3
    assert [await get_now(q) for _ in range(3)] == ["a", "b", "c"]


async def test_a_key_in_processing_is_not_handed_out_again() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    assert await get_now(q) == "a"
    q.add("a")
    assert len(q) == 0 and q.processing == 1
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(q.get(), 0.05)
    q.done("a")
    assert len(q) == 1
    assert await get_now(q) == "a"


async def test_done_without_new_add_does_not_requeue() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    key = await get_now(q)
    q.done(key)
    assert len(q) == 0 and q.processing == 0


async def test_many_adds_during_processing_requeue_once() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    await get_now(q)
    q.add("a")
    q.add("a")
    q.done("a")
    assert len(q) == 1


async def test_concurrent_workers_never_share_a_key() -> None:
    q: WorkQueue[str] = WorkQueue()
    active: set[str] = set()
    overlaps: list[str] = []
    handled: list[str] = []

    async def worker() -> None:
        while True:
            try:
                key = await q.get()
            except QueueShutDown:
                return
            if key in active:
                overlaps.append(key)
            active.add(key)
            await asyncio.sleep(0.001)
            handled.append(key)
            active.discard(key)
            q.done(key)

    workers = [asyncio.create_task(worker()) for _ in range(4)]
    for round_ in range(20):
        for key in ("x", "y", "z"):
            q.add(key)
        await asyncio.sleep(0.0005 * (round_ % 3))
    while len(q) or q.processing:
        await asyncio.sleep(0.005)
    q.shutdown()
    await asyncio.wait_for(asyncio.gather(*workers), 1.0)
    assert overlaps == []
    assert set(handled) == {"x", "y", "z"}


async def test_blocked_getter_wakes_on_add() -> None:
    q: WorkQueue[str] = WorkQueue()
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.add("k")
    assert await asyncio.wait_for(getter, 1.0) == "k"


async def test_cancelled_getter_does_not_swallow_a_wakeup() -> None:
    q: WorkQueue[str] = WorkQueue()
    first = asyncio.create_task(q.get())
    second = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.add("k")
    first.cancel()  # cancelled after being woken, before it ran
    await asyncio.gather(first, return_exceptions=True)
    assert await asyncio.wait_for(second, 1.0) == "k"


async def test_add_after_delays_the_key() -> None:
    q: WorkQueue[str] = WorkQueue()
    loop = asyncio.get_running_loop()
    start = loop.time()
    q.add_after("k", 0.05)
    assert len(q) == 0 and q.waiting == 1
    assert await get_now(q) == "k"
    assert loop.time() - start >= 0.045
    assert q.waiting == 0


async def test_add_after_keeps_the_earliest_deadline() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add_after("k", 10.0)
    q.add_after("k", 0.01)  # earlier: replaces
    q.add_after("k", 20.0)  # later: ignored
    assert q.waiting == 1
    assert await get_now(q) == "k"


async def test_add_after_without_delay_adds_now() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add_after("k", 0)
    assert len(q) == 1


async def test_delayed_key_joins_a_queued_duplicate() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("k")
    q.add_after("k", 0.01)
    await asyncio.sleep(0.03)
    assert len(q) == 1


def test_backoff_doubles_from_5ms_and_caps_at_1000s() -> None:
    limiter: ItemExponentialBackoff[str] = ItemExponentialBackoff()
    delays = [limiter.when("k") for _ in range(5)]
    assert delays == pytest.approx([0.005, 0.01, 0.02, 0.04, 0.08])
    for _ in range(100):
        last = limiter.when("k")
    assert last == 1000.0
    assert limiter.num_requeues("k") == 105
    assert limiter.when("other") == pytest.approx(0.005)  # per key, no shared bucket
    limiter.forget("k")
    assert limiter.num_requeues("k") == 0
    assert limiter.when("k") == pytest.approx(0.005)


def test_backoff_survives_a_huge_failure_count() -> None:
    limiter: ItemExponentialBackoff[str] = ItemExponentialBackoff()
    limiter._failures["k"] = 5000
    assert limiter.when("k") == 1000.0


async def test_add_rate_limited_uses_the_backoff() -> None:
    q: WorkQueue[str] = WorkQueue(rate_limiter=ItemExponentialBackoff(0.01, 1.0))
    q.add_rate_limited("k")
    assert q.num_requeues("k") == 1 and len(q) == 0
    assert await get_now(q) == "k"
    q.done("k")
    q.add_rate_limited("k")
    assert q.num_requeues("k") == 2
    q.forget("k")
    assert q.num_requeues("k") == 0


async def test_shutdown_drains_then_raises() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    q.add_after("b", 10.0)
    q.shutdown()
    q.add("c")
    assert q.waiting == 0
    assert await get_now(q) == "a"
    with pytest.raises(QueueShutDown):
        await get_now(q)
    assert q.shutting_down


async def test_shutdown_releases_blocked_getters() -> None:
    q: WorkQueue[str] = WorkQueue()
    getters = [asyncio.create_task(q.get()) for _ in range(3)]
    await asyncio.sleep(0)
    q.shutdown()
    results = await asyncio.wait_for(asyncio.gather(*getters, return_exceptions=True), 1.0)
    assert all(isinstance(r, QueueShutDown) for r in results)


async def test_add_after_shutdown_is_ignored() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.shutdown()
    q.add_after("k", 0.01)
    q.add_rate_limited("k")
    assert q.waiting == 0 and len(q) == 0
