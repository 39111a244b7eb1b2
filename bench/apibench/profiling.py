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


@dataclass
class Profile:
    label: str
    tool: str
    total: float  # samples, or seconds for cProfile
    own: Counter[str] = field(default_factory=Counter)
    cumulative: Counter[str] = field(default_factory=Counter)
    threads: Counter[str] = field(default_factory=Counter)
    error: str = ""


class Profiler(Protocol):
    def begin(self) -> None: ...

    def end(self, label: str) -> Profile: ...


def _function(frame: str) -> str:
    """'handle (kubi/apiserver/handlers.py:85)' -> 'handle (kubi/apiserver/handlers.py)'."""
    return _LINE_NUMBER.sub(")", frame.strip())


def fold_raw_stacks(text: str, label: str) -> Profile:
    """Fold py-spy's raw output ('thread;frame;frame N' per line, root first)."""
    profile = Profile(label, "py-spy", 0)
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = frames[0] if frames[0].startswith("thread ") else ""
        if thread:
            frames = frames[1:]
            profile.threads[re.sub(r"^thread \(\d+\): ", "", thread)] += count
        if not frames:
            continue
        profile.total += count
        functions = [_function(f) for f in frames]
        profile.own[functions[-1]] += count
        for function in set(functions):
            profile.cumulative[function] += count
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
    return profile


def _short_path(filename: str) -> str:
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
    if profile.threads:
        share = sum(profile.threads.values())
        lines.append("threads: " + ", ".join(
            f"{name} {100 * n / share:.0f}%" for name, n in profile.threads.most_common(6)))
    for title, counter in (("own time", profile.own), ("cumulative time", profile.cumulative)):
        lines.append(f"top {top} by {title} (% of all {'samples' if profile.tool == 'py-spy' else 'time'}):")
        for function, amount in counter.most_common(top):
            lines.append(f"  {100 * amount / profile.total:5.1f}%  {function}")
    return "\n".join(lines)
