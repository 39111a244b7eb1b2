"""SqliteStore: the embedded, durable Store backend.

One SQLite file in WAL mode with synchronous=FULL, so a COMMIT returns only
once the change is on disk. Tables: `kv` (current value per key), `history`
(one row per revision: the change log that watches replay) and a single `meta`
row (current and compacted revision, so revisions keep rising across restarts).

Reads are served from the engine's in-memory dict (see _core): the API server
keeps everything in memory anyway, and a dict lookup beats any SQLite read and
never leaves the event loop. The file is only read at open, and by watches that
replay the log. SQLite work runs on two dedicated threads, each with its own
connection: the writer (every write and compaction, in order) and a reader for
log replay, which WAL lets proceed while the writer commits.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from kubi.store._core import Batch, JournaledStore, LoadedState
from kubi.store.base import CompactedError, KeyValue, StoreClosedError, WatchEvent

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    create_revision INTEGER NOT NULL,
    mod_revision INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    revision INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    type TEXT NOT NULL,
    value BLOB,
    prev_value BLOB,
    create_revision INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    revision INTEGER NOT NULL,
    compact_revision INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta (id, revision, compact_revision) VALUES (1, 1, 0);
"""

_UPSERT_KV = (
    "INSERT INTO kv (key, value, create_revision, mod_revision) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
    "create_revision = excluded.create_revision, mod_revision = excluded.mod_revision"
)
_DELETE_KV = "DELETE FROM kv WHERE key = ?"
_INSERT_HISTORY = (
    "INSERT INTO history (revision, key, type, value, prev_value, create_revision) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
_HISTORY_COLUMNS = "type, key, value, prev_value, revision, create_revision"


def _connect(path: str) -> sqlite3.Connection:
    # Autocommit mode: transactions are opened explicitly with BEGIN.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        conn.close()
        raise sqlite3.OperationalError(f"cannot enable WAL on {path} (got {mode})")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA busy_timeout = 5000")
    # After a burst, let checkpoints shrink the WAL back instead of keeping its peak size.
    conn.execute(f"PRAGMA journal_size_limit = {64 * 1024 * 1024}")
    return conn


def _in_transaction(conn: sqlite3.Connection, body: Callable[[], None], mode: str) -> None:
    conn.execute(f"BEGIN {mode}")
    try:
        body()
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class SqliteStore(JournaledStore):
    """A durable Store in one SQLite file, written with group commit."""

    def __init__(self, path: str | os.PathLike[str], *, keep_history: int | None = 100_000):
        super().__init__(keep_history=keep_history)
        self._path = str(path)
        self._writer_thread: ThreadPoolExecutor | None = None
        self._reader_thread: ThreadPoolExecutor | None = None
        self._write_conn: sqlite3.Connection | None = None
        self._read_conn: sqlite3.Connection | None = None

    @property
    def path(self) -> str:
        return self._path

    async def _on(self, executor: ThreadPoolExecutor | None, fn: Callable[[], T]) -> T:
        if executor is None:
            raise StoreClosedError()
        return await asyncio.get_running_loop().run_in_executor(executor, fn)

    # -- hooks ---------------------------------------------------------------

    async def _load(self) -> LoadedState:
        Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        self._writer_thread = ThreadPoolExecutor(1, thread_name_prefix="kubi-sqlite-writer")
        self._reader_thread = ThreadPoolExecutor(1, thread_name_prefix="kubi-sqlite-reader")
        try:
            state = await self._on(self._writer_thread, self._load_sync)
            self._read_conn = await self._on(self._reader_thread, lambda: _connect(self._path))
        except BaseException:
            await self._release()
            raise
        return state

    def _load_sync(self) -> LoadedState:
        conn = _connect(self._path)
        self._write_conn = conn
        conn.executescript(_SCHEMA)
        revision, compact_revision = conn.execute(
            "SELECT revision, compact_revision FROM meta WHERE id = 1"
        ).fetchone()
        kv = {
            row[0]: KeyValue(row[0], row[1], row[2], row[3])
            for row in conn.execute("SELECT key, value, create_revision, mod_revision FROM kv")
        }
        return LoadedState(kv, revision, compact_revision)

    async def _persist_batch(self, batch: Batch) -> None:
        await self._on(self._writer_thread, lambda: self._persist_batch_sync(batch))

    def _persist_batch_sync(self, batch: Batch) -> None:
        conn = self._writer_conn()
        upserts = [
            (kv.key, kv.value, kv.create_revision, kv.mod_revision)
            for kv in batch.changes.values()
            if kv is not None
        ]
        deletes = [(key,) for key, kv in batch.changes.items() if kv is None]
        rows = [
            (e.revision, e.key, e.type, e.value, e.prev_value, e.create_revision)
            for e in batch.events
        ]

        def body() -> None:
            if upserts:
                conn.executemany(_UPSERT_KV, upserts)
            if deletes:
                conn.executemany(_DELETE_KV, deletes)
            conn.executemany(_INSERT_HISTORY, rows)
            conn.execute("UPDATE meta SET revision = ? WHERE id = 1", (batch.revision,))

        _in_transaction(conn, body, "IMMEDIATE")

    async def _persist_compaction(self, revision: int) -> None:
        def run() -> None:
            conn = self._writer_conn()

            def body() -> None:
                conn.execute("DELETE FROM history WHERE revision <= ?", (revision,))
                conn.execute("UPDATE meta SET compact_revision = ? WHERE id = 1", (revision,))

            _in_transaction(conn, body, "IMMEDIATE")

        await self._on(self._writer_thread, run)

    async def _read_history(
        self, prefix: str, after: int, upto: int, limit: int
    ) -> list[WatchEvent]:
        return await self._on(
            self._reader_thread, lambda: self._read_history_sync(prefix, after, upto, limit)
        )

    def _read_history_sync(
        self, prefix: str, after: int, upto: int, limit: int
    ) -> list[WatchEvent]:
        conn = self._read_conn
        if conn is None:
            raise StoreClosedError()
        if prefix:
            query = (
                f"SELECT {_HISTORY_COLUMNS} FROM history WHERE revision > ? AND revision <= ? "
                "AND substr(key, 1, ?) = ? ORDER BY revision LIMIT ?"
            )
            params: tuple[object, ...] = (after, upto, len(prefix), prefix, limit)
        else:
            query = (
                f"SELECT {_HISTORY_COLUMNS} FROM history WHERE revision > ? AND revision <= ? "
                "ORDER BY revision LIMIT ?"
            )
            params = (after, upto, limit)
        events: list[WatchEvent] = []

        # meta and history are read in one snapshot, so a compaction committed
        # meanwhile either shows in compact_revision or has not removed rows yet.
        def body() -> None:
            current, compacted = conn.execute(
                "SELECT revision, compact_revision FROM meta WHERE id = 1"
            ).fetchone()
            if after < compacted:
                raise CompactedError(after, compacted, current)
            events.extend(WatchEvent(*row) for row in conn.execute(query, params))

        _in_transaction(conn, body, "DEFERRED")
        return events

    async def _release(self) -> None:
        for executor, attr in (
            (self._reader_thread, "_read_conn"),
            (self._writer_thread, "_write_conn"),
        ):
            if executor is None:
                continue
            conn: sqlite3.Connection | None = getattr(self, attr)
            if conn is not None:
                await asyncio.get_running_loop().run_in_executor(executor, conn.close)
                setattr(self, attr, None)
            executor.shutdown(wait=True)
        self._reader_thread = None
        self._writer_thread = None

    def _writer_conn(self) -> sqlite3.Connection:
        if self._write_conn is None:
            raise StoreClosedError()
        return self._write_conn
