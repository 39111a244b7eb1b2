"""Writing pod statuses to the API server: latest wins, bounded, in the background.

A runtime calls `set_status(key, uid, status)` whenever a pod's status may have
changed, and carries on. Like the kubelet's status manager, only the latest
status of a pod is kept: if a pod went Pending → Running before its Pending
status was written, only Running is. A fixed pool of workers (64 by default)
drains a queue of pod keys, never two workers on one pod, so order per pod is
kept and the server sees bounded concurrency however many pods move at once.

Each write is a strategic merge patch of `pods/status` against the freshest
copy known (the informer's, or the server's answer to our last patch), with
the pod's uid as a precondition, so a pod recreated under the same name is
never written by mistake. `wrote(key, pod)` recognises the informer's echo
of our own write, which a runtime need not sync again for. `delete_pod` asks
for the kubelet's last step: once the final status is written, delete the pod
with gracePeriodSeconds 0 and the uid precondition.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from kubi.api.errors import StatusError
from kubi.api.meta import format_time
from kubi.client.client import Client, Resource
from kubi.node.status import merge_status, status_patch

log = logging.getLogger(__name__)

PODS = Resource("", "v1", "pods", True, "Pod")
WORKERS = 64
RETRY_DELAY = 1.0

PodLookup = Callable[[str], dict[str, Any] | None]


@dataclass
class _Want:
    uid: str
    status: dict[str, Any] | None
    delete: bool = False
    version: int = 0


def _rv(pod: dict[str, Any]) -> int:
    try:
        return int(pod["metadata"].get("resourceVersion") or 0)
    except ValueError:
        return 0


class PodStatusManager:
    def __init__(self, client: Client, *, lookup: PodLookup, workers: int = WORKERS,
                 may_write: Callable[[dict[str, Any]], bool] = lambda pod: True,
                 clock: Callable[[], float] = time.time,
                 retry_delay: float = RETRY_DELAY) -> None:
        self.client = client
        self.lookup = lookup
        self.may_write = may_write
        self.clock = clock
        self.retry_delay = retry_delay
        self.writes = 0
        self.deletes = 0
        self._workers = workers
        self._wants: dict[str, _Want] = {}
        self._latest: dict[str, dict[str, Any]] = {}
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._busy: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._versions = 0
        # The resourceVersion our last status write of each pod produced, until
        # its echo comes back through the informer (see `wrote`).
        self._written: dict[str, int] = {}

    # ---- what runtimes call

    def set_status(self, key: str, uid: str, status: dict[str, Any]) -> None:
        want = self._want(key, uid)
        want.status = status
        self._enqueue(key)

    def delete_pod(self, key: str, uid: str) -> None:
        """Delete the pod once its latest status has been written."""
        self._want(key, uid).delete = True
        self._enqueue(key)

    def forget(self, key: str) -> None:
        self._wants.pop(key, None)
        self._latest.pop(key, None)
        self._written.pop(key, None)

    def wrote(self, key: str, pod: dict[str, Any]) -> bool:
        """Whether `pod` is exactly the version our last status write of it
        made: the informer's echo of that write, which a runtime need not act
        on. Each write is recognised once; any later version clears it."""
        written = self._written.get(key)
        if written is None:
            return False
        version = _rv(pod)
        if version >= written:
            del self._written[key]
        return version == written

    def _want(self, key: str, uid: str) -> _Want:
        self._versions += 1
        want = self._wants.get(key)
        if want is None or want.uid != uid:
            want = self._wants[key] = _Want(uid, None)
        want.version = self._versions
        return want

    def _enqueue(self, key: str) -> None:
        if key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    # ---- lifecycle

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._work(), name=f"pod-status-{i}")
                           for i in range(self._workers)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def pending(self) -> bool:
        """Whether a status write (or deletion) is queued or under way."""
        return bool(self._queued or self._busy)

    async def flush(self) -> None:
        """Wait until every queued status and deletion has been handled."""
        await self._queue.join()

    # ---- the workers

    async def _work(self) -> None:
        while True:
            key = await self._queue.get()
            self._queued.discard(key)
            try:
                if key in self._busy:
                    # Another worker holds this pod; it requeues when done.
                    continue
                self._busy.add(key)
                try:
                    retry = await self._sync(key)
                finally:
                    self._busy.discard(key)
                if retry:
                    asyncio.get_running_loop().call_later(self.retry_delay, self._enqueue, key)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("writing status of pod %s failed", key)
            finally:
                self._queue.task_done()

    def _base(self, key: str, uid: str) -> dict[str, Any] | None:
        """The freshest copy of the pod we know, or None when it is gone."""
        cached = self.lookup(key)
        latest = self._latest.get(key)
        if latest is not None and (latest["metadata"].get("uid") != uid or
                                   (cached is not None and _rv(cached) >= _rv(latest))):
            self._latest.pop(key, None)
            latest = None
        pod = latest or cached
        if pod is None or pod["metadata"].get("uid") != uid:
            return None
        return pod

    async def _sync(self, key: str) -> bool:
        """Write what is wanted for `key`; True to try again later."""
        want = self._wants.get(key)
        if want is None:
            return False
        pod = self._base(key, want.uid)
        if pod is None:
            self.forget(key)
            return False
        if not self.may_write(pod):
            return False
        version = want.version
        namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        try:
            if want.status is not None:
                merged = merge_status(pod.get("status") or {}, want.status,
                                      format_time(self.clock()))
                patch = status_patch(pod, merged)
                if patch is not None:
                    written = self._latest[key] = await self.client.patch(
                        PODS, name, patch, namespace, subresource="status",
                        patch_type="strategic")
                    self._written[key] = _rv(written)
                    self.writes += 1
            if want.delete:
                await self.client.delete(PODS, name, namespace, grace_period_seconds=0,
                                         preconditions={"uid": want.uid})
                self.deletes += 1
        except StatusError as err:
            if err.code == 404:
                self.forget(key)
                return False
            if err.code == 409 or err.code == 429 or err.code >= 500:
                self._latest.pop(key, None)
                return True
            log.warning("pod %s: status rejected: %s", key, err)
            self.forget(key)
            return False
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            log.debug("pod %s: status write will be retried: %r", key, exc)
            return True
        if want.delete:
            self.forget(key)
        elif self._wants.get(key) is want and want.version == version:
            # Done with this pod for now; by its next change the informer will
            # have caught up, so our own copy need not be kept.
            del self._wants[key]
            self._latest.pop(key, None)
        elif key in self._wants:
            self._enqueue(key)
        return False
