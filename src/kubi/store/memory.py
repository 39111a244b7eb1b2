"""MemoryStore: the Store protocol with nothing on disk, for tests.

It runs the same engine as SqliteStore (queued writes, batch validation,
revisions, watch replay and compaction), so components tested against it see
exactly the semantics they get in production; only persistence is a no-op and
the change log is a list kept in revision order. State is lost on close.
"""

from __future__ import annotations

import bisect

from kubi.store._core import Batch, JournaledStore, LoadedState
from kubi.store.base import CompactedError, WatchEvent


class MemoryStore(JournaledStore):
    """A non-durable Store; reopening after close keeps the data of this instance."""

    def __init__(self, *, keep_history: int | None = 100_000) -> None:
        super().__init__(keep_history=keep_history)
        self._log: list[WatchEvent] = []

    async def _load(self) -> LoadedState:
        return LoadedState(dict(self._kv), self._revision, self._compact_revision)

    async def _persist_batch(self, batch: Batch) -> None:
        self._log.extend(batch.events)

    async def _persist_compaction(self, revision: int) -> None:
        del self._log[: bisect.bisect_right(self._log, revision, key=_revision_of)]

    async def _read_history(
        self, prefix: str, after: int, upto: int, limit: int
    ) -> list[WatchEvent]:
        if after < self._compact_revision:
            raise CompactedError(after, self._compact_revision, self._revision)
        start = bisect.bisect_right(self._log, after, key=_revision_of)
        events: list[WatchEvent] = []
        for index in range(start, len(self._log)):
            event = self._log[index]
            if event.revision > upto or len(events) >= limit:
                break
            if event.key.startswith(prefix):
                events.append(event)
        return events


def _revision_of(event: WatchEvent) -> int:
    return event.revision
