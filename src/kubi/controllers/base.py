"""The shape every controller shares: handlers feed keys, workers sync them.

Informer handlers only compute keys and `queue.add` them; they never block.
`run(workers)` starts that many workers, each looping `get` → `sync(key)` →
`done`. A sync that raises is retried with the key's exponential backoff; a
sync that succeeds clears the key's failure history. Because the queue never
hands one key to two workers, `sync` may assume it is alone on its object.
Cancelling `run` shuts the queue down and waits for the workers to finish.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

import aiohttp

from kubi.api.errors import StatusError
from kubi.controllers.workqueue import QueueShutDown, WorkQueue

log = logging.getLogger(__name__)


class Controller(Protocol):
    """What the manager runs: a name, a default worker count, and `run`."""

    name: str
    workers: int

    async def run(self, workers: int) -> None: ...


class QueueController:
    """A controller driven by a WorkQueue of `namespace/name` keys."""

    name = "controller"
    workers = 1

    def __init__(self) -> None:
        self.queue: WorkQueue[str] = WorkQueue(name=self.name)

    async def sync(self, key: str) -> None:
        raise NotImplementedError

    async def run(self, workers: int | None = None) -> None:
        count = workers or self.workers
        log.info("starting %s with %d workers", self.name, count)
        tasks = [asyncio.create_task(self._worker(), name=f"{self.name}-worker-{i}")
                 for i in range(count)]
        try:
            await asyncio.gather(*tasks)
        finally:
            self.queue.shutdown()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            log.info("stopped %s", self.name)

    async def _worker(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except QueueShutDown:
                return
            try:
                await self.sync(key)
            except asyncio.CancelledError:
                raise
            except (TimeoutError, StatusError, aiohttp.ClientError, OSError) as err:
                log.info("%s: sync %r failed: %s", self.name, key, err or type(err).__name__)
                self.queue.add_rate_limited(key)
            except Exception:
                log.exception("%s: sync %r failed", self.name, key)
                self.queue.add_rate_limited(key)
            else:
                self.queue.forget(key)
            finally:
                self.queue.done(key)
