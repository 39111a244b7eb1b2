"""Container logs in the CRI format: parsing, selecting and following them.

The runtime writes each container attempt's output to its own file, one
record a line: `<RFC3339Nano time> <stdout|stderr> <P|F> <content>`, where P
marks a partial line continued by the next record. Reading for `kubectl
logs` strips the prefix (or keeps the time with `timestamps`, reformatted as
Go prints RFC3339Nano), starts at the last `tailLines` records, skips records
older than `sinceSeconds`/`sinceTime`, stops after `limitBytes`, and with
`follow` keeps reading as the file grows until the container stops — reopening
the path when the runtime rotated the file underneath.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import BinaryIO

from kubi.api.meta import parse_time

CHUNK = 64 * 1024
FOLLOW_POLL = 0.1


@dataclass
class LogRecord:
    timestamp: str
    stream: str
    partial: bool
    content: bytes


def parse_timestamp(text: str) -> tuple[float, int]:
    """(whole seconds since the epoch, nanoseconds) of an RFC3339Nano time."""
    main, nanos = text, 0
    zone = ""
    if text.endswith("Z"):
        main, zone = text[:-1], "+00:00"
    else:
        for sign in ("+", "-"):
            at = text.rfind(sign)
            if at > 10:
                main, zone = text[:at], text[at:]
                break
    if "." in main:
        main, frac = main.split(".", 1)
        nanos = int((frac + "000000000")[:9])
    when = dt.datetime.fromisoformat(main + (zone or "+00:00"))
    return float(int(when.timestamp())), nanos


def format_timestamp(text: str) -> str:
    """`text` as Go formats time.RFC3339Nano in UTC: trailing zeros of the fraction dropped."""
    seconds, nanos = parse_timestamp(text)
    base = dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{nanos:09d}".rstrip("0")
    return f"{base}.{frac}Z" if frac else f"{base}Z"


def parse_line(line: bytes) -> LogRecord | None:
    """One CRI log record (without its trailing newline); None if malformed."""
    parts = line.split(b" ", 3)
    if len(parts) < 3:
        return None
    stamp, stream, tag = parts[0], parts[1], parts[2]
    content = parts[3] if len(parts) == 4 else b""
    if stream not in (b"stdout", b"stderr") or not tag:
        return None
    try:
        parse_timestamp(stamp.decode())
    except ValueError:
        return None
    return LogRecord(stamp.decode(), stream.decode(), tag.split(b":", 1)[0] == b"P", content)


def render(record: LogRecord, timestamps: bool) -> bytes:
    prefix = (format_timestamp(record.timestamp) + " ").encode() if timestamps else b""
    return prefix + record.content + (b"" if record.partial else b"\n")


@dataclass
class LogOptions:
    follow: bool = False
    tail_lines: int | None = None
    since: float | None = None
    timestamps: bool = False
    limit_bytes: int | None = None
    previous: bool = False


def _flag(query: Mapping[str, str], key: str) -> bool:
    """A boolean query parameter: present and not "false"/"0"."""
    return key in query and query[key].lower() not in ("false", "0")


def _positive_int(query: Mapping[str, str], key: str, minimum: int) -> int | None:
    if key not in query:
        return None
    try:
        value = int(query[key])
    except ValueError:
        raise ValueError(f"invalid value for {key}: {query[key]!r}") from None
    if value < minimum:
        raise ValueError(f"{key} must be at least {minimum}")
    return value


def options_from_query(query: Mapping[str, str], now: float) -> LogOptions:
    """The log options of a `containerLogs` request; ValueError for bad parameters."""
    opts = LogOptions(follow=_flag(query, "follow"), timestamps=_flag(query, "timestamps"),
                      previous=_flag(query, "previous"))
    opts.tail_lines = _positive_int(query, "tailLines", 0)
    opts.limit_bytes = _positive_int(query, "limitBytes", 1)
    since_seconds = _positive_int(query, "sinceSeconds", 1)
    if since_seconds is not None and query.get("sinceTime"):
        raise ValueError("at most one of sinceTime or sinceSeconds may be specified")
    if since_seconds is not None:
        opts.since = now - since_seconds
    elif query.get("sinceTime"):
        opts.since = parse_time(query["sinceTime"])
        if opts.since is None:
            raise ValueError(f"invalid value for sinceTime: {query['sinceTime']!r}")
    return opts


def tail_offset(data: bytes, lines: int) -> int:
    """Where the last `lines` lines of `data` begin."""
    if lines <= 0:
        return len(data)
    end = len(data)
    if data.endswith(b"\n"):
        end -= 1
    for _ in range(lines):
        at = data.rfind(b"\n", 0, end)
        if at < 0:
            return 0
        end = at
    return end + 1


def _tail_start(fd: int, size: int, lines: int) -> int:
    """Offset of the last `lines` lines of an open file, reading backwards in chunks."""
    pos, data = size, b""
    while pos > 0:
        step = min(CHUNK, pos)
        pos -= step
        data = os.pread(fd, step, pos) + data
        if data.count(b"\n") > lines:
            break
    return pos + tail_offset(data, lines)


async def read_log(path: str, opts: LogOptions, *,
                   running: Callable[[], bool] = lambda: False,
                   poll: float = FOLLOW_POLL) -> AsyncIterator[bytes]:
    """The selected output of the log at `path`, chunk by chunk."""
    try:
        fh = await asyncio.to_thread(open, path, "rb")
    except FileNotFoundError:
        return
    left = opts.limit_bytes
    try:
        size = os.fstat(fh.fileno()).st_size
        if opts.tail_lines is not None:
            fh.seek(_tail_start(fh.fileno(), size, opts.tail_lines))
        pending = b""
        while True:
            chunk = fh.read(CHUNK)
            if chunk:
                pending += chunk
                lines = pending.split(b"\n")
                pending = lines.pop()
                out = b"".join(_select(lines, opts))
                if left is not None:
                    out = out[:left]
                    left -= len(out)
                if out:
                    yield out
                if left is not None and left <= 0:
                    return
                continue
            if not opts.follow:
                return
            if _rotated(fh, path):
                fh.close()
                try:
                    fh = await asyncio.to_thread(open, path, "rb")
                except FileNotFoundError:
                    return
                pending = b""
                continue
            if not running():
                # One last look: the process may have written before it exited.
                chunk = fh.read(CHUNK)
                if chunk:
                    fh.seek(-len(chunk), os.SEEK_CUR)
                    continue
                return
            await asyncio.sleep(poll)
    finally:
        fh.close()


def _select(lines: list[bytes], opts: LogOptions) -> list[bytes]:
    out = []
    for line in lines:
        record = parse_line(line)
        if record is None:
            continue
        if opts.since is not None and _precise_time(record) < opts.since:
            continue
        out.append(render(record, opts.timestamps))
    return out


def _precise_time(record: LogRecord) -> float:
    seconds, nanos = parse_timestamp(record.timestamp)
    return seconds + nanos / 1e9


def _rotated(fh: BinaryIO, path: str) -> bool:
    """The path now names another file, or the file was truncated under us."""
    try:
        current = os.stat(path)
    except FileNotFoundError:
        return False
    return current.st_ino != os.fstat(fh.fileno()).st_ino or current.st_size < fh.tell()
