"""Container output written in the CRI log format, with rotation.

Each line is `<timestamp> <stream> <tag> <content>`: the timestamp in UTC
with nanoseconds, the stream `stdout` or `stderr`, and the tag `F` for a full
line or `P` for a piece of a line longer than the line limit (16 KiB, as
containerd's default), whose remaining pieces follow. A line is written once
its newline arrives; what is left without one when the stream ends is
written as a full line. When the file passes `max_bytes` it is renamed with
a timestamp suffix and a new one begun, keeping `max_files` files in all (the
kubelet's defaults: 10 MiB and 5).
"""

from __future__ import annotations

import contextlib
import glob
import os
import time

MAX_BYTES = 10 * 1024 * 1024
MAX_FILES = 5
MAX_LINE = 16 * 1024


def format_timestamp(ns: int) -> bytes:
    seconds, nanos = divmod(ns, 1_000_000_000)
    return (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z").encode()


def split_lines(buffer: bytes, max_line: int = MAX_LINE) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """Cut `buffer` into (tag, content) records; returns them and the unfinished rest.

    A newline ends a full line (a carriage return before it is dropped, as a
    tty writes both); a run longer than `max_line` without one is emitted in
    partial pieces.
    """
    records: list[tuple[bytes, bytes]] = []
    start = 0
    while True:
        end = buffer.find(b"\n", start)
        if end < 0 or end - start > max_line:
            if len(buffer) - start > max_line:
                records.append((b"P", buffer[start:start + max_line]))
                start += max_line
                continue
            return records, buffer[start:]
        line = buffer[start:end]
        if line.endswith(b"\r"):
            line = line[:-1]
        records.append((b"F", line))
        start = end + 1


class CriLogWriter:
    """Appends one container's stdout and stderr to its log file."""

    def __init__(self, path: str, *, max_bytes: int = MAX_BYTES, max_files: int = MAX_FILES,
                 max_line: int = MAX_LINE) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.max_files = max(1, max_files)
        self.max_line = max_line
        self._pending: dict[str, bytes] = {"stdout": b"", "stderr": b""}
        try:
            self._fd = self._open()
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            self._fd = self._open()
        self._size = os.fstat(self._fd).st_size

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)

    def write(self, stream: str, data: bytes) -> None:
        records, rest = split_lines(self._pending[stream] + data, self.max_line)
        self._pending[stream] = rest
        self._emit(stream, records)

    def flush(self) -> None:
        """The stream ended: what is left becomes a last full line."""
        for stream, rest in self._pending.items():
            if rest:
                self._pending[stream] = b""
                self._emit(stream, [(b"F", rest.removesuffix(b"\r"))])

    def _emit(self, stream: str, records: list[tuple[bytes, bytes]]) -> None:
        if not records:
            return
        prefix = format_timestamp(time.time_ns()) + b" " + stream.encode() + b" "
        chunk = b"".join(prefix + tag + b" " + content + b"\n" for tag, content in records)
        os.write(self._fd, chunk)
        self._size += len(chunk)
        if self._size >= self.max_bytes:
            self._rotate()

    def _rotate(self) -> None:
        os.close(self._fd)
        suffix = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        target = f"{self.path}.{suffix}"
        n = 1
        while os.path.exists(target):
            target, n = f"{self.path}.{suffix}.{n}", n + 1
        os.rename(self.path, target)
        for old in rotated_files(self.path)[: -(self.max_files - 1) or None]:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(old)
        self._fd = self._open()
        self._size = 0

    def close(self) -> None:
        self.flush()
        os.close(self._fd)


def rotated_files(path: str) -> list[str]:
    """The rotated files of a log, oldest first."""
    return sorted(glob.glob(glob.escape(path) + ".*"), key=lambda p: (os.path.getmtime(p), p))
