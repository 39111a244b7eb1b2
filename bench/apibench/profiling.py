"""Where the server spends its time during one load phase.

With py-spy installed, `PySpy` samples the running kubi process from outside
(no code change, little overhead) and the collapsed stacks are folded into
own and cumulative shares per function. Without it, kubi is started through
`apibench.profiled`, which switches cProfile on at SIGUSR1 and writes the
stats at SIGUSR2; `CProfile` sends those signals and reads the file. Both
produce the same `Profile`, printed as two top-N tables.
"""

from __future__ import annotations

import pstats
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

_LINE_NUMBER = re.compile(r":\d+\)$")


TRUNK_SHARE = 0.95


@dataclass
class Profile:
    label: str
    tool: str
    total: float  # samples, or seconds for cProfile
    own: Counter[str] = field(default_factory=Counter)
    cumulative: Counter[str] = field(default_factory=Counter)
    threads: Counter[str] = field(default_factory=Counter)
    # Frames under nearly every sample of a thread (runpy, click, the event
    # loop, thread bootstrap): they would fill the cumulative table and say nothing.
    trunk: set[str] = field(default_factory=set)
    error: str = ""


class Profiler(Protocol):
    def begin(self) -> None: ...

    def end(self, label: str) -> Profile: ...


def _function(frame: str) -> str:
    """'handle (kubi/apiserver/handlers.py:85)' -> 'handle (kubi/apiserver/handlers.py)'."""
    return _LINE_NUMBER.sub(")", frame.strip())


def area(function: str) -> str:
    """The package or module a function belongs to: 'kubi/store', 'aiohttp', 'ssl'."""
    path = function.rpartition(" (")[2].rstrip(")")
    parts = path.split("/")
    if parts[0] == "kubi" and len(parts) > 2:
        return "/".join(parts[:2])
    return parts[0].removesuffix(".py") or "?"


def _trunk(per_thread: dict[str, Counter[str]]) -> set[str]:
    trunk: set[str] = set()
    for counts in per_thread.values():
        if counts:
            widest = max(counts.values())
            trunk |= {f for f, n in counts.items() if n >= TRUNK_SHARE * widest}
    return trunk


def fold_raw_stacks(text: str, label: str) -> Profile:
    """Fold py-spy's raw output ('thread;frame;frame N' per line, root first)."""
    profile = Profile(label, "py-spy", 0)
    per_thread: dict[str, Counter[str]] = {}
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = ""
        if frames[0].startswith("thread "):
            thread = re.sub(r"^thread \(\d+\): ", "", frames.pop(0))
            profile.threads[thread] += count
        if not frames:
            continue
        profile.total += count
        functions = [_function(f) for f in frames]
        profile.own[functions[-1]] += count
        for function in set(functions):
            profile.cumulative[function] += count
            per_thread.setdefault(thread, Counter())[function] += count
    profile.trunk = _trunk(per_thread)
    return profile


class PySpy:
    def __init__(self, pid: int, work_dir: Path, rate: int = 250) -> None:
        self.pid = pid
        self.rate = rate
        self._out = work_dir / f"py-spy-{pid}.txt"
        self._proc: subprocess.Popen[bytes] | None = None

    def begin(self) -> None:
        self._out.unlink(missing_ok=True)
        self._proc = subprocess.Popen(
            ["py-spy", "record", "--pid", str(self.pid), "--format", "raw", "--threads",
             "--nonblocking", "--rate", str(self.rate), "-o", str(self._out)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        time.sleep(0.3)  # py-spy needs a moment to attach

    def end(self, label: str) -> Profile:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGINT)
        try:
            output, _ = self._proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            output, _ = self._proc.communicate()
        if not self._out.exists():
            return Profile(label, "py-spy", 0, error=output.decode(errors="replace")[-500:])
        return fold_raw_stacks(self._out.read_text(), label)


def cprofile_profile(stats: pstats.Stats, label: str) -> Profile:
    raw = stats.stats  # type: ignore[attr-defined]
    profile = Profile(label, "cProfile", 0)
    for (filename, line, name), (_, _, own, cumulative, _) in raw.items():
        function = f"{name} ({_short_path(filename)})"
        profile.own[function] += own
        profile.cumulative[function] = max(profile.cumulative[function], cumulative)
        profile.total += own
    profile.trunk = _trunk({"": profile.cumulative})
    return profile


def _short_path(filename: str) -> str:
    if filename == "~":  # cProfile's file name for C functions
        return "builtins"
    for marker in ("/site-packages/", "/src/", "/lib/python3."):
        if marker in filename:
            tail = filename.split(marker, 1)[1]
            return tail.split("/", 1)[1] if marker == "/lib/python3." else tail
    return filename


class CProfile:
    """Drives the signal switch of a kubi started through `apibench.profiled`."""

    def __init__(self, send_signal: Callable[[int], None], dump_dir: Path) -> None:
        self._send = send_signal
        self._dir = dump_dir
        self._dumps = 0

    def begin(self) -> None:
        self._send(signal.SIGUSR1)

    def end(self, label: str) -> Profile:
        self._dumps += 1
        path = self._dir / f"profile-{self._dumps}.prof"
        self._send(signal.SIGUSR2)
        deadline = time.monotonic() + 30
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not path.exists():
            return Profile(label, "cProfile", 0, error=f"kubi wrote no {path.name}")
        return cprofile_profile(pstats.Stats(str(path)), label)


def format_profile(profile: Profile, top: int = 25) -> str:
    lines = [f"--- profile of kubi during {profile.label} ({profile.tool}) ---"]
    if profile.error or not profile.total:
        lines.append(f"no samples: {profile.error or 'nothing recorded'}")
        return "\n".join(lines)
    unit = "samples" if profile.tool == "py-spy" else "time"
    if profile.threads:
        share = sum(profile.threads.values())
        lines.append("threads: " + ", ".join(
            f"{name} {100 * n / share:.0f}%" for name, n in profile.threads.most_common(6)))
    areas: Counter[str] = Counter()
    for function, amount in profile.own.items():
        areas[area(function)] += amount
    lines.append("own time by area: " + ", ".join(
        f"{name} {100 * n / profile.total:.0f}%" for name, n in areas.most_common(10)))
    lines.append(f"top {top} by own time (% of all {unit}):")
    for function, amount in profile.own.most_common(top):
        lines.append(f"  {100 * amount / profile.total:5.1f}%  {function}")
    lines.append(f"top {top} by cumulative time (% of all {unit}; "
                 f"{len(profile.trunk)} frames common to ~every sample left out):")
    branches = Counter({f: n for f, n in profile.cumulative.items() if f not in profile.trunk})
    for function, amount in branches.most_common(top):
        lines.append(f"  {100 * amount / profile.total:5.1f}%  {function}")
    return "\n".join(lines)
