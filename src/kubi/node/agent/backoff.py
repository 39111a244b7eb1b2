"""CrashLoopBackOff arithmetic: when a container that exited may start again.

The kubelet keys one back-off per container (pod, uid, container name and
spec hash). The first exit restarts at once and arms 10 s; each later exit
inside the window doubles it, up to 5 min. A container that stayed up longer
than twice the maximum (10 min) since the last restart starts over at 10 s.
Example: exits at t=0, 1, 12, 33 restart at t=0, 11, 32, 73 (waits of 0, 10,
20 and 40 s).

`go_duration` spells a duration as Go's `time.Duration.String()` does, since
the waiting message carries it (`back-off 1m20s restarting failed ...`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

INITIAL = 10.0
MAXIMUM = 300.0


@dataclass
class _Entry:
    backoff: float
    last_update: float


class Backoff:
    def __init__(self, initial: float = INITIAL, maximum: float = MAXIMUM,
                 clock: Callable[[], float] = time.time) -> None:
        self.initial = initial
        self.maximum = maximum
        self.clock = clock
        self._entries: dict[str, _Entry] = {}

    def _expired(self, event_time: float, last_update: float) -> bool:
        return event_time - last_update > 2 * self.maximum

    def get(self, key: str) -> float:
        entry = self._entries.get(key)
        return entry.backoff if entry else 0.0

    def next(self, key: str, event_time: float) -> None:
        """Record a restart after an exit at `event_time`: arm or double the wait."""
        entry = self._entries.get(key)
        if entry is None or self._expired(event_time, entry.last_update):
            self._entries[key] = _Entry(self.initial, self.clock())
            return
        entry.backoff = min(entry.backoff * 2, self.maximum)
        entry.last_update = self.clock()

    def in_backoff_since(self, key: str, event_time: float) -> bool:
        """Whether a container that exited at `event_time` must still wait."""
        return self.remaining(key, event_time) > 0

    def remaining(self, key: str, event_time: float) -> float:
        """Seconds left to wait after an exit at `event_time` (0 when free to start)."""
        entry = self._entries.get(key)
        now = self.clock()
        if entry is None or self._expired(now, entry.last_update):
            return 0.0
        return max(0.0, entry.backoff - (now - event_time))

    def forget_prefix(self, prefix: str) -> None:
        """Drop every entry of one pod (keys start with its stable prefix)."""
        for key in [k for k in self._entries if k.startswith(prefix)]:
            del self._entries[key]


def pod_key_prefix(pod: dict[str, Any]) -> str:
    md = pod["metadata"]
    return f"{md['name']}_{md.get('namespace', '')}_{md.get('uid', '')}_"


def stable_key(pod: dict[str, Any], container_name: str, spec_hash: str) -> str:
    """The back-off key of one container, as the kubelet builds it."""
    return f"{pod_key_prefix(pod)}{container_name}_{spec_hash}"


def go_duration(seconds: float) -> str:
    """`seconds` as Go prints a time.Duration: 10s, 1m20s, 5m0s, 1h0m0s, 1.5s, 0s."""
    if seconds == 0:
        return "0s"
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{secs:.9f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{sign}{int(hours)}h{int(minutes)}m{text}"
    if minutes:
        return f"{sign}{int(minutes)}m{text}"
    if secs < 1:
        millis = secs * 1000
        if millis >= 1:
            return sign + f"{millis:.6f}".rstrip("0").rstrip(".") + "ms"
        return sign + f"{secs * 1e6:.3f}".rstrip("0").rstrip(".") + "µs"
    return sign + text
