"""Specification of the Store protocol, checked on SqliteStore and MemoryStore."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kubi.store import (
    CompactedError,
    KeyExistsError,
    KeyNotFoundError,
    MemoryStore,
    RevisionConflictError,
    SqliteStore,
    Store,
    StoreClosedError,
    StoreError,
    WatchEvent,
    _core,
)
from kubi.store._core import Batch, JournaledStore


@pytest.fixture(params=["sqlite", "memory"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JournaledStore]:
    s: JournaledStore
    if request.param == "sqlite":
        s = SqliteStore(tmp_path / "kubi.db")
    else:
        s = MemoryStore()
    await s.open()
    yield s
    await s.close()


async def collect(it: AsyncIterator[WatchEvent], until_revision: int) -> list[WatchEvent]:
    events: list[WatchEvent] = []
    async with asyncio.timeout(10):
        async for event in it:
            events.append(event)
            if event.revision >= until_revision:
                break
    return events


async def test_both_backends_satisfy_the_protocol(store: JournaledStore) -> None:
    assert isinstance(store, Store)


async def test_fresh_store_starts_at_revision_one_and_first_write_gets_two(
    store: JournaledStore,
) -> None:
    assert store.revision == 1
    assert await store.create("/registry/pods/default/a", b"{}") == 2
    assert store.revision == 2


async def test_create_get_update_delete(store: JournaledStore) -> None:
    key = "/registry/pods/default/a"
    created = await store.create(key, b"v1")
    kv = await store.get(key)
    assert kv is not None
    assert (kv.value, kv.create_revision, kv.mod_revision) == (b"v1", created, created)

    updated = await store.update(key, b"v2", expected_mod_revision=created)
    assert updated > created
    kv = await store.get(key)
    assert kv is not None
    assert (kv.value, kv.create_revision, kv.mod_revision) == (b"v2", created, updated)

    unconditional = await store.update(key, b"v3", expected_mod_revision=None)
    assert unconditional > updated

    deleted_at, deleted = await store.delete(key, expected_mod_revision=unconditional)
    assert deleted_at > unconditional
    assert deleted.value == b"v3"
    assert await store.get(key) is None


async def test_create_of_existing_key_fails(store: JournaledStore) -> None:
    await store.create("/a", b"1")
    with pytest.raises(KeyExistsError):
        await store.create("/a", b"2")
    kv = await store.get("/a")
    assert kv is not None and kv.value == b"1"


async def test_update_and_delete_of_missing_key_fail(store: JournaledStore) -> None:
    with pytest.raises(KeyNotFoundError):
        await store.update("/missing", b"x", expected_mod_revision=None)
    with pytest.raises(KeyNotFoundError):
        await store.delete("/missing")
    assert store.revision == 1


async def test_compare_and_swap_conflict_carries_current_value(store: JournaledStore) -> None:
    first = await store.create("/a", b"1")
    second = await store.update("/a", b"2", expected_mod_revision=first)
    with pytest.raises(RevisionConflictError) as info:
        await store.update("/a", b"3", expected_mod_revision=first)
    assert info.value.current is not None
    assert info.value.current.mod_revision == second
    assert info.value.current.value == b"2"
    with pytest.raises(RevisionConflictError):
        await store.delete("/a", expected_mod_revision=first)
    assert store.revision == second


async def test_range_returns_sorted_prefix_matches_and_revision(store: JournaledStore) -> None:
    for name in ["c", "a", "b"]:
        await store.create(f"/registry/pods/default/{name}", name.encode())
    await store.create("/registry/services/default/a", b"s")
    items, revision = await store.range("/registry/pods/")
    assert [kv.key.rsplit("/", 1)[1] for kv in items] == ["a", "b", "c"]
    assert revision == store.revision == 5


async def test_values_must_be_bytes(store: JournaledStore) -> None:
    with pytest.raises(TypeError):
        await store.create("/a", "text")  # type: ignore[arg-type]


async def test_batch_validation_sees_earlier_writes_of_the_same_batch(
    store: JournaledStore,
) -> None:
    commits = store.commits
    base = store.revision
    results = await asyncio.gather(
        store.create("/a", b"1"),
        store.create("/a", b"again"),
        store.update("/a", b"2", expected_mod_revision=base + 1),
        store.update("/a", b"stale", expected_mod_revision=base),
        store.delete("/a"),
        store.update("/a", b"gone", expected_mod_revision=None),
        return_exceptions=True,
    )
    assert results[0] == base + 1
    assert isinstance(results[1], KeyExistsError)
    assert results[2] == base + 2
    assert isinstance(results[3], RevisionConflictError)
    assert results[4][0] == base + 3  # type: ignore[index]
    assert isinstance(results[5], KeyNotFoundError)
    assert store.commits == commits + 1
    assert await store.get("/a") is None


async def test_concurrent_creates_are_group_committed(store: JournaledStore) -> None:
    commits = store.commits
    revisions = await asyncio.gather(*(store.create(f"/k/{i}", b"x") for i in range(500)))
    assert sorted(revisions) == list(range(2, 502))
    assert store.commits - commits <= 10


async def test_revisions_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "kubi.db"
    store = SqliteStore(path)
    await store.open()
    await store.create("/a", b"1")
    rev = await store.create("/b", b"2")
    await store.delete("/b")
    last = store.revision
    await store.close()

    store = SqliteStore(path)
    await store.open()
    try:
        assert store.revision == last
        kv = await store.get("/a")
        assert kv is not None and kv.value == b"1"
        assert await store.get("/b") is None
        assert await store.create("/b", b"3") > last > rev
        events = await store.events_since(1)
        assert [e.revision for e in events] == list(range(2, store.revision + 1))
    finally:
        await store.close()


async def test_closed_store_rejects_calls(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "kubi.db")
    with pytest.raises(StoreClosedError):
        await store.get("/a")
    await store.open()
    await store.close()
    with pytest.raises(StoreClosedError):
        await store.create("/a", b"1")


async def test_watch_replays_history_then_follows_live_without_gap_or_duplicate(
    store: JournaledStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_core, "HISTORY_CHUNK", 7)
    for i in range(50):
        await store.create(f"/w/{i}", b"0")
    start = store.revision - 30

    async def writers() -> None:
        async def one(i: int) -> None:
            key = f"/w/{i % 50}"
            current = await store.get(key)
            if current is None:
                await store.create(key, b"new")
            elif i % 7 == 0:
                await store.delete(key)
            else:
                await store.update(key, str(i).encode(), expected_mod_revision=None)

        # Eight concurrent writers per round, on distinct keys.
        for round_ in range(50):
            await asyncio.gather(*(one(round_ * 8 + k) for k in range(8)))

    async def consume() -> list[WatchEvent]:
        events: list[WatchEvent] = []
        async with asyncio.timeout(10):
            async for event in store.watch("/w/", start):
                events.append(event)
                if event.key == "/w/zz-done":
                    return events
        return events

    consumer = asyncio.create_task(consume())
    await asyncio.sleep(0)
    await writers()
    done = await store.create("/w/zz-done", b"")
    events = await consumer
    assert [e.revision for e in events] == list(range(start + 1, done + 1))


async def test_watch_event_fields(store: JournaledStore) -> None:
    watch = store.watch("/a", store.revision)
    created = await store.create("/a", b"1")
    updated = await store.update("/a", b"2", expected_mod_revision=None)
    deleted, _ = await store.delete("/a")
    events = await collect(watch, deleted)
    assert events == [
        WatchEvent("PUT", "/a", b"1", None, created, created),
        WatchEvent("PUT", "/a", b"2", b"1", updated, created),
        WatchEvent("DELETE", "/a", None, b"2", deleted, created),
    ]


async def test_watch_filters_by_prefix(store: JournaledStore) -> None:
    await store.create("/registry/pods/a", b"1")
    await store.create("/registry/services/a", b"1")
    watch = store.watch("/registry/pods/", 1)
    await store.create("/registry/services/b", b"1")
    last = await store.create("/registry/pods/b", b"1")
    events = await collect(watch, last)
    assert [e.key for e in events] == ["/registry/pods/a", "/registry/pods/b"]


async def test_slow_watcher_falls_back_to_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_core, "WATCH_BUFFER", 5)
    store = SqliteStore(tmp_path / "kubi.db")
    await store.open()
    try:
        watch = store.watch("/", store.revision)
        first = await store.create("/k/first", b"x")
        assert (await anext(watch)).revision == first
        for i in range(40):
            await store.create(f"/k/{i}", b"x")
        events = await collect(watch, store.revision)
        assert [e.revision for e in events] == list(range(first + 1, store.revision + 1))
        await watch.aclose()
    finally:
        await store.close()


async def test_watch_ends_when_store_closes(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "kubi.db")
    await store.open()
    watch = store.watch("/", store.revision)
    pending = asyncio.ensure_future(anext(watch))
    await asyncio.sleep(0)
    await store.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(pending, 5)


async def test_compaction_keeps_values_and_rejects_older_watches(store: JournaledStore) -> None:
    for i in range(10):
        await store.create(f"/k/{i}", b"x")
    await store.compact(6)
    assert store.compact_revision == 6
    items, _ = await store.range("/k/")
    assert len(items) == 10
    with pytest.raises(CompactedError) as info:
        await anext(store.watch("/k/", 5))
    assert (info.value.compact_revision, info.value.current_revision) == (6, 11)
    with pytest.raises(CompactedError):
        await store.events_since(0)
    assert [e.revision for e in await store.events_since(6)] == list(range(7, 12))
    with pytest.raises(StoreError):
        await store.compact(store.revision + 1)


async def test_compaction_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "kubi.db"
    store = SqliteStore(path)
    await store.open()
    for i in range(5):
        await store.create(f"/k/{i}", b"x")
    await store.compact(4)
    await store.close()
    store = SqliteStore(path)
    await store.open()
    try:
        assert store.compact_revision == 4
        with pytest.raises(CompactedError):
            await store.events_since(3)
    finally:
        await store.close()


async def test_automatic_compaction_keeps_the_last_rows(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "kubi.db", keep_history=20)
    await store.open()
    try:
        for i in range(100):
            await store.create(f"/k/{i}", b"x")
        kept = store.revision - store.compact_revision
        assert 20 <= kept < 20 + 2 + 1
        assert len(await store.events_since(store.compact_revision)) == kept
        items, _ = await store.range("/k/")
        assert len(items) == 100
    finally:
        await store.close()


class FailingStore(MemoryStore):
    fail = False

    async def _persist_batch(self, batch: Batch) -> None:
        if self.fail:
            raise OSError("disk full")
        await super()._persist_batch(batch)


async def test_failed_commit_fails_callers_and_changes_nothing() -> None:
    store = FailingStore()
    await store.open()
    await store.create("/a", b"1")
    store.fail = True
    results = await asyncio.gather(
        store.create("/b", b"1"), store.delete("/a"), return_exceptions=True
    )
    assert all(isinstance(r, StoreError) for r in results)
    assert store.revision == 2
    assert await store.get("/a") is not None
    store.fail = False
    assert await store.create("/b", b"1") == 3
    await store.close()


_CRASH_WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from kubi.store import SqliteStore

    async def main(path):
        store = SqliteStore(path)
        await store.open()

        async def worker(w):
            i = 0
            while True:
                key = f"/k/{w}/{i}"
                await store.create(key, b"x" * 300)
                sys.stdout.write(key + "\\n")
                sys.stdout.flush()
                i += 1

        await asyncio.gather(*(worker(w) for w in range(8)))

    asyncio.run(main(sys.argv[1]))
    """
)


def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "kubi.db"
    child = subprocess.Popen(
        [sys.executable, "-c", _CRASH_WRITER, str(path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    acknowledged: list[str] = []
    try:
        assert child.stdout is not None
        deadline = time.monotonic() + 30
        while len(acknowledged) < 500 and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            acknowledged.append(line)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        rest, _ = child.communicate(timeout=10)
    acknowledged.extend(rest.splitlines(keepends=True))
    keys = [line.rstrip("\n") for line in acknowledged if line.endswith("\n")]
    assert child.returncode == -signal.SIGKILL
    assert len(keys) >= 500

    async def verify() -> None:
        store = SqliteStore(path)
        await store.open()
        try:
            missing = [key for key in keys if await store.get(key) is None]
            assert missing == []
            items, _ = await store.range("/k/")
            assert store.revision == len(items) + 1
        finally:
            await store.close()

    asyncio.run(verify())


async def test_compaction_during_replay_is_reported_not_skipped(
    store: JournaledStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_core, "HISTORY_CHUNK", 2)
    for i in range(10):
        await store.create(f"/k/{i}", b"x")
    watch = store.watch("/k/", 1)
    assert (await anext(watch)).revision == 2
    assert (await anext(watch)).revision == 3
    await store.compact(8)
    with pytest.raises(CompactedError):
        await anext(watch)
