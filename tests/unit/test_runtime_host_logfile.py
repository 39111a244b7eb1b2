"""The CRI log format and rotation of the host runtime's container logs."""

from __future__ import annotations

import re
from pathlib import Path

from kubi.node.runtime.host.logfile import (
    CriLogWriter,
    format_timestamp,
    rotated_files,
    split_lines,
)

LINE = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) ([PF]) (.*)$")


def records(path: Path) -> list[tuple[str, str, str]]:
    out = []
    for line in path.read_bytes().splitlines():
        match = LINE.match(line)
        assert match, line
        out.append((match[1].decode(), match[2].decode(), match[3].decode()))
    return out


def test_timestamp_has_nanoseconds_in_utc() -> None:
    assert format_timestamp(1_700_000_000_123_456_789) == b"2023-11-14T22:13:20.123456789Z"
    assert format_timestamp(0) == b"1970-01-01T00:00:00.000000000Z"


def test_split_lines_keeps_the_unfinished_rest() -> None:
    assert split_lines(b"a\nbc\nd") == ([(b"F", b"a"), (b"F", b"bc")], b"d")
    assert split_lines(b"") == ([], b"")
    assert split_lines(b"\n") == ([(b"F", b"")], b"")


def test_split_lines_drops_a_terminal_carriage_return() -> None:
    assert split_lines(b"prompt\r\n") == ([(b"F", b"prompt")], b"")


def test_split_lines_cuts_long_lines_into_partials() -> None:
    recs, rest = split_lines(b"x" * 10 + b"\n", max_line=4)
    assert recs == [(b"P", b"xxxx"), (b"P", b"xxxx"), (b"F", b"xx")]
    assert rest == b""
    recs, rest = split_lines(b"y" * 9, max_line=4)
    assert recs == [(b"P", b"yyyy"), (b"P", b"yyyy")] and rest == b"y"


def test_writer_interleaves_streams_and_flushes_at_end(tmp_path: Path) -> None:
    path = tmp_path / "c" / "0.log"
    writer = CriLogWriter(str(path))
    writer.write("stdout", b"hel")
    writer.write("stderr", b"oops\n")
    writer.write("stdout", b"lo\nwor")
    writer.close()
    assert records(path) == [("stderr", "F", "oops"), ("stdout", "F", "hello"),
                             ("stdout", "F", "wor")]


def test_writer_appends_to_an_existing_log(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    for word in (b"one\n", b"two\n"):
        writer = CriLogWriter(str(path))
        writer.write("stdout", word)
        writer.close()
    assert [r[2] for r in records(path)] == ["one", "two"]


def test_rotation_keeps_max_files(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    writer = CriLogWriter(str(path), max_bytes=200, max_files=3)
    for i in range(40):
        writer.write("stdout", f"line {i:03d} {'x' * 40}\n".encode())
    writer.close()
    rotated = rotated_files(str(path))
    assert len(rotated) == 2
    assert path.stat().st_size < 200 + 100
    # The newest lines are in the live file, older ones in the newest rotation.
    last = records(path)[-1][2]
    assert last.startswith("line 039")
    assert records(Path(rotated[-1]))[-1][2] < records(path)[0][2]
