"""Events after the work they describe: a hold in front of the broadcaster.

Writing an event costs the API server about as much as writing a pod's
status or binding, and nobody waits for events while clients do wait for
the rest. When fifty pods are created at once, the scheduler records fifty
Scheduled events and their node three events per pod (Pulled, Created,
Started); written as they come, they take the API server's time from the
bindings and statuses the pods' owners are waiting for. So a component
puts its events here, and they wait, in order, until the component is
quiet, and after `max_hold` seconds at the latest, so that a component
that never rests still reports. An event keeps the time it was recorded at.

Quiet means, for the node agent, that no pod worker is in the middle of a
sync (`work_started`/`work_ended`) and no status write is pending (`busy`);
for the scheduler, that it has recorded no event for `settle` seconds: its
bindings are done in a few milliseconds, and the pods they placed are
still starting on their nodes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

MAX_HOLD = 2.0
# How often to look again whether a busy component has become quiet.
RECHECK = 0.01


def _never() -> bool:
    return False


class EventHold:
    def __init__(self, submit: Callable[[dict[str, Any]], None], *,
                 busy: Callable[[], bool] = _never, settle: float = 0.0,
                 max_hold: float = MAX_HOLD) -> None:
        self._submit = submit
        self._busy = busy
        self.settle = settle
        self.max_hold = max_hold
        self._held: list[dict[str, Any]] = []
        self._working = 0
        self._last_added = 0.0
        self._deadline: asyncio.TimerHandle | None = None
        self._recheck: asyncio.TimerHandle | None = None

    def add(self, event: dict[str, Any]) -> None:
        if not self._held and not self.settle and self._quiet():
            self._submit(event)
            return
        loop = asyncio.get_running_loop()
        self._last_added = loop.time()
        self._held.append(event)
        if self._deadline is None:
            self._deadline = loop.call_later(self.max_hold, self.release)
        if self._working == 0 and self._recheck is None:
            self._release_when_quiet()

    def work_started(self) -> None:
        self._working += 1

    def work_ended(self) -> None:
        self._working -= 1
        if self._working == 0 and self._recheck is None:
            self._release_when_quiet()

    def release(self) -> None:
        """Hand every held event to the broadcaster now."""
        for handle in (self._deadline, self._recheck):
            if handle is not None:
                handle.cancel()
        self._deadline = self._recheck = None
        held, self._held = self._held, []
        for event in held:
            self._submit(event)

    def _quiet(self) -> bool:
        return self._working == 0 and not self._busy()

    def _release_when_quiet(self) -> None:
        """Release now if quiet, else look again later; work_ended looks again
        by itself, so nothing is scheduled while work is under way."""
        self._recheck = None
        if not self._held or self._working:
            return
        loop = asyncio.get_running_loop()
        if self._busy():
            self._recheck = loop.call_later(RECHECK, self._release_when_quiet)
            return
        unsettled = self._last_added + self.settle - loop.time()
        if unsettled > 0:
            self._recheck = loop.call_later(unsettled, self._release_when_quiet)
            return
        self.release()
