"""Pod statuses before events: the node's events wait while its pods start.

Writing an event costs the API server about as much as writing a pod's
status, and a pod start records three (Pulled, Created, Started). Nobody
waits for events, while clients do wait for the statuses: on a node that
starts fifty pods at once, a hundred and fifty event writes would take the
API server's time (and the node's) from the status writes. So while any pod
worker is in the middle of a sync, or a status write is pending, the events
the workers record queue here, in order; they go to the broadcaster (which
writes them one by one, as before) once the node is quiet again, and after
`max_hold` seconds at the latest, so that a node that never rests still
reports its events. An event keeps the time it was recorded at.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

MAX_HOLD = 2.0
# How often to look again whether pending status writes are done.
RECHECK = 0.01


class EventHold:
    def __init__(self, submit: Callable[[dict[str, Any]], None], *,
                 statuses_pending: Callable[[], bool], max_hold: float = MAX_HOLD) -> None:
        self._submit = submit
        self._statuses_pending = statuses_pending
        self.max_hold = max_hold
        self._held: list[dict[str, Any]] = []
        self._syncing = 0
        self._deadline: asyncio.TimerHandle | None = None
        self._recheck: asyncio.TimerHandle | None = None

    def add(self, event: dict[str, Any]) -> None:
        if not self._held and self._quiet():
            self._submit(event)
            return
        self._held.append(event)
        if self._deadline is None:
            self._deadline = asyncio.get_running_loop().call_later(self.max_hold, self.release)
        if self._syncing == 0 and self._recheck is None:
            self._release_when_quiet()

    def sync_started(self) -> None:
        self._syncing += 1

    def sync_ended(self) -> None:
        self._syncing -= 1
        if self._syncing == 0 and self._recheck is None:
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
        return self._syncing == 0 and not self._statuses_pending()

    def _release_when_quiet(self) -> None:
        self._recheck = None
        if not self._held or self._syncing:
            return
        if self._statuses_pending():
            self._recheck = asyncio.get_running_loop().call_later(
                RECHECK, self._release_when_quiet)
            return
        self.release()
