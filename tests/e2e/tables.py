"""Read the aligned tables `kubectl get` prints into rows keyed by column name.

kubectl pads columns with at least three spaces, while a header may hold a
single space ("ACCESS MODES") and a cell may be empty (an unbound PV's CLAIM).
So cells are cut at the positions where header names start, not split on
whitespace. Only header/row layout is interpreted; values stay strings.
"""

from __future__ import annotations

import re

_HEADER_GAP = re.compile(r"\S+(?: \S+)*")


def columns(output: str) -> list[str]:
    """The column names of the first table line in `output`."""
    return [match.group() for match in _HEADER_GAP.finditer(_lines(output)[0])]


def rows(output: str) -> list[dict[str, str]]:
    """Every row of the table in `output`, as {column name: stripped cell}."""
    lines = _lines(output)
    header = list(_HEADER_GAP.finditer(lines[0]))
    starts = [match.start() for match in header]
    ends = [*starts[1:], None]
    return [
        {
            match.group(): line[start:end].strip()
            for match, start, end in zip(header, starts, ends, strict=True)
        }
        for line in lines[1:]
    ]


def by_name(output: str) -> dict[str, dict[str, str]]:
    """The rows of `output` keyed by their NAME cell."""
    return {row["NAME"]: row for row in rows(output)}


def _lines(output: str) -> list[str]:
    lines = [line for line in output.splitlines() if line.strip()]
    if not lines:
        raise AssertionError("kubectl printed no table")
    return lines
