"""Durable write rate of SqliteStore against the disk's own limit.

(a) the baseline: raw sqlite3 inserts, one row per durable transaction (WAL,
synchronous=FULL), i.e. one fsync per write, the rate a naive store would get;
(b) SqliteStore.create with 64 concurrent writers, where group commit puts
many writes behind each fsync. Prints both rates and their ratio. Each phase
runs for a fixed time budget, so the whole run stays well under 30 seconds.

    python bench/store_raw.py [--seconds 5] [--writers 64] [--value-size 1024]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
from pathlib import Path

from kubi.store import SqliteStore


def raw_insert_rate(path: Path, seconds: float, value: bytes) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO kv VALUES (?, ?)", (f"/bench/{count}", value))
        conn.execute("COMMIT")
        count += 1
    elapsed = time.perf_counter() - start
    conn.close()
    return count / elapsed


async def store_create_rate(
    path: Path, seconds: float, writers: int, value: bytes
) -> tuple[float, float]:
    """Creates per second, and the mean number of writes per commit."""
    store = SqliteStore(path)
    await store.open()
    count = 0
    deadline = time.perf_counter() + seconds

    async def writer(index: int) -> None:
        nonlocal count
        n = 0
        while time.perf_counter() < deadline:
            await store.create(f"/bench/{index}/{n}", value)
            n += 1
            count += 1

    start = time.perf_counter()
    try:
        await asyncio.gather(*(writer(i) for i in range(writers)))
        elapsed = time.perf_counter() - start
        per_commit = count / max(1, store.commits)
    finally:
        await store.close()
    return count / elapsed, per_commit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="time budget per phase")
    parser.add_argument("--writers", type=int, default=64)
    parser.add_argument("--value-size", type=int, default=1024)
    args = parser.parse_args()
    value = b"x" * args.value_size

    with tempfile.TemporaryDirectory(prefix="kubi-bench-") as tmp:
        raw = raw_insert_rate(Path(tmp) / "raw.db", args.seconds, value)
        ours, per_commit = asyncio.run(
            store_create_rate(Path(tmp) / "store.db", args.seconds, args.writers, value)
        )
    print(f"raw sqlite, 1 row per durable txn : {raw:10.0f} writes/s")
    print(
        f"SqliteStore, {args.writers} writers           : {ours:10.0f} writes/s"
        f"  ({per_commit:.1f} writes per commit)"
    )
    print(f"ratio store / raw                 : {ours / raw:10.2f}x")


if __name__ == "__main__":
    main()
