"""The backend-independent engine behind SqliteStore and MemoryStore.

Current state lives in a dict in the event loop, so get and range never wait
on a thread or the disk. Writes are queued; one writer task takes everything
queued so far, checks it against the committed state plus the earlier writes
of the same batch, gives each accepted write the next revision, and hands the
whole batch to the backend to persist in one transaction (group commit). Only
after that commit does it update the dict, publish the events to watchers and
resolve the callers' futures: an acknowledged write is a persisted write, and
readers never see uncommitted data. Backends supply four hooks: load, persist
a batch, persist a compaction, and read a slice of the change log.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from kubi.store._watch import SubscriptionOverflow, WatchHub
from kubi.store.base import (
    CompactedError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    RevisionConflictError,
    StoreClosedError,
    StoreError,
    WatchEvent,
)

# Bounds the work (and the transaction) of one commit; more queued writes
# simply go into the next batch.
MAX_BATCH = 4096
# Rows fetched per read while a watch replays the log.
HISTORY_CHUNK = 1000
# Live events a watcher may leave unread before it is sent back to the log.
WATCH_BUFFER = 10_000


@dataclass(slots=True)
class _Write:
    kind: Literal["create", "update", "delete"]
    key: str
    value: bytes | None
    expected: int | None
    future: asyncio.Future[Any]


@dataclass(frozen=True, slots=True)
class Batch:
    """What one commit persists: final state of touched keys and the log rows."""

    changes: dict[str, KeyValue | None]
    events: list[WatchEvent]
    revision: int


@dataclass(frozen=True, slots=True)
class LoadedState:
    kv: dict[str, KeyValue]
    revision: int
    compact_revision: int


class JournaledStore(ABC):
    """A Store whose writes go through a single group-committing writer."""

    def __init__(self, *, keep_history: int | None = 100_000) -> None:
        if keep_history is not None and keep_history < 0:
            raise ValueError("keep_history must be >= 0")
        self._keep_history = keep_history
        self._kv: dict[str, KeyValue] = {}
        self._revision = 1
        self._compact_revision = 0
        self._commits = 0
        self._pending: list[_Write] = []
        self._wakeup = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._hub = WatchHub(WATCH_BUFFER)
        self._writer: asyncio.Task[None] | None = None
        self._open = False
        self._stopping = False

    # -- backend hooks -------------------------------------------------------

    @abstractmethod
    async def _load(self) -> LoadedState: ...

    @abstractmethod
    async def _persist_batch(self, batch: Batch) -> None: ...

    @abstractmethod
    async def _persist_compaction(self, revision: int) -> None: ...

    @abstractmethod
    async def _read_history(
        self, prefix: str, after: int, upto: int, limit: int
    ) -> list[WatchEvent]:
        """Logged events in (after, upto] under prefix, at most limit of them.

        Raises CompactedError when `after` is below the compacted revision as
        seen by the same read, so a concurrent compaction cannot leave a gap.
        """

    async def _release(self) -> None:
        """Free backend resources once the writer has stopped."""

    # -- lifecycle -----------------------------------------------------------

    async def open(self) -> None:
        if self._open:
            return
        state = await self._load()
        self._kv = state.kv
        self._revision = state.revision
        self._compact_revision = state.compact_revision
        # Loop-bound primitives are made here so a store can be reopened under
        # another event loop (as tests do).
        self._wakeup = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._hub = WatchHub(WATCH_BUFFER)
        self._stopping = False
        self._open = True
        self._writer = asyncio.create_task(self._run_writer(), name="kubi-store-writer")

    async def close(self) -> None:
        if not self._open:
            return
        self._open = False
        self._stopping = True
        self._wakeup.set()
        if self._writer is not None:
            await self._writer
            self._writer = None
        self._hub.close()
        await self._release()

    @property
    def revision(self) -> int:
        return self._revision

    @property
    def compact_revision(self) -> int:
        return self._compact_revision

    @property
    def commits(self) -> int:
        """Transactions committed by the writer since open (for tests and benchmarks)."""
        return self._commits

    # -- reads ---------------------------------------------------------------

    async def get(self, key: str) -> KeyValue | None:
        self._ensure_open()
        return self._kv.get(key)

    async def range(self, prefix: str) -> tuple[list[KeyValue], int]:
        self._ensure_open()
        kv = self._kv
        keys = sorted(key for key in kv if key.startswith(prefix))
        return [kv[key] for key in keys], self._revision

    # -- writes --------------------------------------------------------------

    async def create(self, key: str, value: bytes) -> int:
        result: int = await self._submit("create", key, value, None)
        return result

    async def update(self, key: str, value: bytes, *, expected_mod_revision: int | None) -> int:
        result: int = await self._submit("update", key, value, expected_mod_revision)
        return result

    async def delete(
        self, key: str, *, expected_mod_revision: int | None = None
    ) -> tuple[int, KeyValue]:
        result: tuple[int, KeyValue] = await self._submit(
            "delete", key, None, expected_mod_revision
        )
        return result

    async def _submit(
        self,
        kind: Literal["create", "update", "delete"],
        key: str,
        value: bytes | None,
        expected: int | None,
    ) -> Any:
        self._ensure_open()
        if value is not None and not isinstance(value, bytes):
            raise TypeError(f"store values are bytes, not {type(value).__name__}")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append(_Write(kind, key, value, expected, future))
        self._wakeup.set()
        return await future

    async def _run_writer(self) -> None:
        try:
            while True:
                if not self._pending:
                    if self._stopping:
                        return
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                writes = self._pending[:MAX_BATCH]
                del self._pending[:MAX_BATCH]
                await self._commit(writes)
                await self._auto_compact()
        finally:
            # Only reached with writes still queued if the writer was cancelled;
            # their callers must not wait forever.
            for write in self._pending:
                if not write.future.done():
                    write.future.set_exception(StoreClosedError())
            self._pending.clear()

    async def _commit(self, writes: list[_Write]) -> None:
        try:
            batch, outcomes = self._plan(writes)
            if batch.events:
                async with self._write_lock:
                    await self._persist_batch(batch)
        except Exception as exc:  # noqa: BLE001 - any backend failure must reach the callers
            # Nothing of the batch is visible: fail every caller in it.
            error = exc if isinstance(exc, StoreError) else StoreError(f"commit failed: {exc!r}")
            for write in writes:
                if not write.future.done():
                    write.future.set_exception(error)
            return
        if batch.events:
            self._apply(batch)
        for future, outcome in outcomes:
            if future.done():
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

    def _plan(self, writes: list[_Write]) -> tuple[Batch, list[tuple[asyncio.Future[Any], object]]]:
        """Check each write against committed state plus earlier writes of the batch."""
        changes: dict[str, KeyValue | None] = {}
        events: list[WatchEvent] = []
        outcomes: list[tuple[asyncio.Future[Any], object]] = []
        revision = self._revision
        for write in writes:
            if write.future.done():
                continue  # the caller gave up before the write was applied
            key = write.key
            current = changes[key] if key in changes else self._kv.get(key)
            outcome: object
            if write.kind == "create":
                if current is not None:
                    outcomes.append((write.future, KeyExistsError(key)))
                    continue
                revision += 1
                assert write.value is not None
                changes[key] = KeyValue(key, write.value, revision, revision)
                events.append(WatchEvent("PUT", key, write.value, None, revision, revision))
                outcome = revision
            else:
                if current is None:
                    outcomes.append((write.future, KeyNotFoundError(key)))
                    continue
                if write.expected is not None and write.expected != current.mod_revision:
                    outcomes.append(
                        (write.future, RevisionConflictError(key, write.expected, current))
                    )
                    continue
                revision += 1
                created = current.create_revision
                if write.kind == "update":
                    assert write.value is not None
                    changes[key] = KeyValue(key, write.value, created, revision)
                    events.append(
                        WatchEvent("PUT", key, write.value, current.value, revision, created)
                    )
                    outcome = revision
                else:
                    changes[key] = None
                    events.append(WatchEvent("DELETE", key, None, current.value, revision, created))
                    outcome = (revision, current)
            outcomes.append((write.future, outcome))
        return Batch(changes, events, revision), outcomes

    def _apply(self, batch: Batch) -> None:
        kv = self._kv
        for key, value in batch.changes.items():
            if value is None:
                kv.pop(key, None)
            else:
                kv[key] = value
        self._revision = batch.revision
        self._commits += 1
        self._hub.publish(batch.events)

    # -- compaction ----------------------------------------------------------

    async def compact(self, revision: int) -> None:
        self._ensure_open()
        if revision > self._revision:
            raise StoreError(
                f"cannot compact at {revision}: beyond the current revision {self._revision}"
            )
        async with self._write_lock:
            if revision <= self._compact_revision:
                return
            await self._persist_compaction(revision)
            self._compact_revision = revision

    async def _auto_compact(self) -> None:
        """Keep about keep_history log rows, trimming in steps of a tenth of that.

        Each write takes exactly one revision, so the log holds exactly
        revision - compact_revision rows and no count query is needed. Trimming
        only once a tenth has piled up keeps each delete small and infrequent.
        """
        keep = self._keep_history
        if keep is None:
            return
        step = max(1, keep // 10)
        if self._revision - self._compact_revision < keep + step:
            return
        try:
            await self.compact(self._revision - keep)
        except StoreError:
            pass  # retried after the next batch; the log just stays longer meanwhile

    # -- watch ---------------------------------------------------------------

    async def events_since(self, from_revision: int, *, prefix: str = "") -> list[WatchEvent]:
        self._ensure_open()
        self._check_not_compacted(from_revision)
        upto = self._revision
        events: list[WatchEvent] = []
        position = from_revision
        while position < upto:
            chunk = await self._read_history(prefix, position, upto, HISTORY_CHUNK)
            events.extend(chunk)
            if len(chunk) < HISTORY_CHUNK:
                break
            position = chunk[-1].revision
        return events

    async def watch(self, prefix: str, from_revision: int) -> AsyncIterator[WatchEvent]:
        """Replay the log after from_revision, then follow live commits.

        The subscription is registered in the same event-loop step that reads
        the committed revision, so every event up to that revision is in the
        log and every later one reaches the subscription: the seam between
        replay and live has neither gap nor overlap.
        """
        self._ensure_open()
        position = from_revision
        while self._open:  # a watcher sent back to the log stops if the store closed meanwhile
            self._check_not_compacted(position)
            subscription = self._hub.subscribe(prefix)
            try:
                upto = self._revision
                while position < upto:
                    chunk = await self._read_history(prefix, position, upto, HISTORY_CHUNK)
                    for event in chunk:
                        position = event.revision
                        yield event
                    if len(chunk) < HISTORY_CHUNK:
                        position = upto
                while True:
                    live = await subscription.next()
                    if live is None:
                        return
                    if live.revision > position:
                        position = live.revision
                        yield live
            except SubscriptionOverflow:
                continue
            finally:
                self._hub.unsubscribe(subscription)

    # -- helpers -------------------------------------------------------------

    def _check_not_compacted(self, revision: int) -> None:
        if revision < self._compact_revision:
            raise CompactedError(revision, self._compact_revision, self._revision)

    def _ensure_open(self) -> None:
        if not self._open:
            raise StoreClosedError()
