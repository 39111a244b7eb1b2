"""CRI log files: parsing, tail, since, limitBytes, timestamps, follow, rotation."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from kubi.node.agent.logs import (
    LogOptions,
    format_timestamp,
    options_from_query,
    parse_line,
    read_log,
    tail_offset,
)
from tests.unit.test_agent_fakes import append

LINES = [
    "2024-05-01T10:00:00.100000000Z stdout F line 0\n",
    "2024-05-01T10:00:01.000000000Z stderr F line 1\n",
    "2024-05-01T10:00:02.500000000Z stdout P part-\n",
    "2024-05-01T10:00:02.600000000Z stdout F ial\n",
    "2024-05-01T10:00:03.000000000Z stdout F line 3\n",
]
T_LINE_1 = 1714557601.0


async def collect(path: Path, opts: LogOptions, **kw: object) -> bytes:
    return b"".join([chunk async for chunk in read_log(str(path), opts, **kw)])  # type: ignore[arg-type]


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    path = tmp_path / "0.log"
    path.write_text("".join(LINES))
    return path


def test_parse_line() -> None:
    record = parse_line(LINES[2].rstrip("\n").encode())
    assert record is not None
    assert (record.stream, record.partial, record.content) == ("stdout", True, b"part-")
    assert parse_line(b"garbage") is None
    assert parse_line(b"2024-05-01T10:00:00Z stdout F") is not None


def test_format_timestamp_drops_trailing_zeros() -> None:
    assert format_timestamp("2024-05-01T10:00:00.100000000Z") == "2024-05-01T10:00:00.1Z"
    assert format_timestamp("2024-05-01T10:00:00.000000000Z") == "2024-05-01T10:00:00Z"
    assert format_timestamp("2024-05-01T12:00:00.5+02:00") == "2024-05-01T10:00:00.5Z"


async def test_plain_read_strips_prefixes_and_joins_partials(log_file: Path) -> None:
    assert await collect(log_file, LogOptions()) == b"line 0\nline 1\npart-ial\nline 3\n"


async def test_timestamps(log_file: Path) -> None:
    out = await collect(log_file, LogOptions(timestamps=True, tail_lines=1))
    assert out == b"2024-05-01T10:00:03Z line 3\n"


async def test_tail_lines(log_file: Path) -> None:
    assert await collect(log_file, LogOptions(tail_lines=2)) == b"ial\nline 3\n"
    assert await collect(log_file, LogOptions(tail_lines=0)) == b""
    assert await collect(log_file, LogOptions(tail_lines=100)) == \
        b"line 0\nline 1\npart-ial\nline 3\n"


def test_tail_offset() -> None:
    assert tail_offset(b"a\nb\nc\n", 2) == 2
    assert tail_offset(b"a\nb\nc", 1) == 4
    assert tail_offset(b"a\n", 5) == 0


async def test_since(log_file: Path) -> None:
    out = await collect(log_file, LogOptions(since=T_LINE_1))
    assert out == b"line 1\npart-ial\nline 3\n"


async def test_limit_bytes(log_file: Path) -> None:
    assert await collect(log_file, LogOptions(limit_bytes=9)) == b"line 0\nli"


async def test_missing_file_is_empty(tmp_path: Path) -> None:
    assert await collect(tmp_path / "nope.log", LogOptions()) == b""


async def test_follow_until_the_container_stops(log_file: Path) -> None:
    running = True
    chunks: list[bytes] = []

    async def follow() -> None:
        async for chunk in read_log(str(log_file), LogOptions(follow=True, tail_lines=1),
                                    running=lambda: running, poll=0.01):
            chunks.append(chunk)

    task = asyncio.create_task(follow())
    await asyncio.sleep(0.05)
    append(str(log_file), "2024-05-01T10:00:04Z stdout F later\n")
    await asyncio.sleep(0.05)
    running = False
    await asyncio.wait_for(task, 1)
    assert b"".join(chunks) == b"line 3\nlater\n"


async def test_follow_reopens_a_rotated_file(log_file: Path) -> None:
    running = True
    chunks: list[bytes] = []

    async def follow() -> None:
        async for chunk in read_log(str(log_file), LogOptions(follow=True, tail_lines=0),
                                    running=lambda: running, poll=0.01):
            chunks.append(chunk)

    task = asyncio.create_task(follow())
    await asyncio.sleep(0.05)
    os.rename(log_file, str(log_file) + ".20240501-100005")
    log_file.write_text("2024-05-01T10:00:05Z stdout F after rotation\n")
    await asyncio.sleep(0.05)
    running = False
    await asyncio.wait_for(task, 1)
    assert b"".join(chunks) == b"after rotation\n"


def test_options_from_query() -> None:
    opts = options_from_query({"follow": "true", "tailLines": "5", "sinceSeconds": "60",
                               "timestamps": "true", "previous": "true",
                               "limitBytes": "10"}, now=1000.0)
    assert (opts.follow, opts.tail_lines, opts.since, opts.timestamps, opts.previous,
            opts.limit_bytes) == (True, 5, 940.0, True, True, 10)
    opts = options_from_query({"sinceTime": "2024-05-01T10:00:01Z"}, now=0)
    assert opts.since == T_LINE_1
    with pytest.raises(ValueError):
        options_from_query({"tailLines": "x"}, now=0)
    with pytest.raises(ValueError):
        options_from_query({"sinceSeconds": "1", "sinceTime": "2024-05-01T10:00:01Z"}, now=0)
    assert options_from_query({"follow": "false"}, now=0).follow is False
