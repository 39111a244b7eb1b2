"""Informers: a local cache of one resource kept current by list+watch.

An `Informer` lists once, then watches from the list's resourceVersion. It
resumes a closed watch from the last resourceVersion it saw (bookmarks keep
that fresh) and relists only when the server says that version is gone (410).
After a relist it reconciles its cache with the new list, emitting the adds,
updates and deletes that were missed, so handlers never see a gap.

Handlers are plain callables invoked in the informer's task, in event order;
they must not block. Controllers typically just enqueue a key.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from kubi.api.errors import StatusError
from kubi.client.client import Client, Resource

log = logging.getLogger(__name__)

Handler = Callable[[dict], None]
UpdateHandler = Callable[[dict, dict], None]


def object_key(obj: dict) -> str:
    """`namespace/name`, or `name` for cluster-scoped objects (client-go's key)."""
    md = obj["metadata"]
    ns = md.get("namespace")
    return f"{ns}/{md['name']}" if ns else md["name"]


class Informer:
    def __init__(
        self,
        client: Client,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        watch_timeout: int = 300,
    ) -> None:
        self.client = client
        self.resource = resource
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.watch_timeout = watch_timeout
        self.cache: dict[str, dict] = {}
        self.synced = asyncio.Event()
        self.resource_version = ""
        self._on_add: list[Handler] = []
        self._on_update: list[UpdateHandler] = []
        self._on_delete: list[Handler] = []
        self._task: asyncio.Task | None = None

    # ---- handlers

    def on_add(self, fn: Handler) -> None:
        self._on_add.append(fn)

    def on_update(self, fn: UpdateHandler) -> None:
        self._on_update.append(fn)

    def on_delete(self, fn: Handler) -> None:
        self._on_delete.append(fn)

    # ---- reads

    def get(self, key: str) -> dict | None:
        return self.cache.get(key)

    def list(self) -> list[dict]:
        return list(self.cache.values())

    # ---- lifecycle

    def start(self) -> asyncio.Task:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=f"informer-{self.resource.plural}")
        return self._task

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def wait_synced(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self.synced.wait(), timeout)

    async def run(self) -> None:
        backoff = 0.1
        while True:
            try:
                if not self.resource_version:
                    await self._relist()
                await self._watch()
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except StatusError as err:
                if err.code == 410:
                    self.resource_version = ""  # too old: list again
                    continue
                log.warning("informer %s: %s", self.resource.plural, err)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            except Exception as exc:  # connection trouble: retry with backoff
                log.debug("informer %s: %r", self.resource.plural, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _relist(self) -> None:
        items: list[dict] = []
        cont: str | None = None
        while True:
            page = await self.client.list(
                self.resource, self.namespace, label_selector=self.label_selector,
                field_selector=self.field_selector, limit=500, continue_=cont,
            )
            items.extend(page.get("items") or [])
            cont = page["metadata"].get("continue")
            if not cont:
                break
        fresh = {object_key(o): o for o in items}
        for key in list(self.cache):
            if key not in fresh:
                self._emit("DELETED", self.cache[key])
        for key, obj in fresh.items():
            self._emit("ADDED" if key not in self.cache else "MODIFIED", obj)
        self.resource_version = page["metadata"]["resourceVersion"]
        self.synced.set()

    async def _watch(self) -> None:
        async for kind, obj in self.client.watch(
            self.resource, self.namespace, resource_version=self.resource_version,
            label_selector=self.label_selector, field_selector=self.field_selector,
            timeout_seconds=self.watch_timeout,
        ):
            if kind == "ERROR":
                code = obj.get("code", 500)
                raise StatusError(code, obj.get("reason", ""), obj.get("message", ""))
            rv = obj.get("metadata", {}).get("resourceVersion")
            if kind != "BOOKMARK":
                self._emit(kind, obj)
            if rv:
                self.resource_version = rv

    def _emit(self, kind: str, obj: dict) -> None:
        key = object_key(obj)
        old = self.cache.get(key)
        try:
            if kind == "DELETED":
                self.cache.pop(key, None)
                for fn in self._on_delete:
                    fn(obj)
            elif old is None:
                self.cache[key] = obj
                for fn in self._on_add:
                    fn(obj)
            else:
                self.cache[key] = obj
                if old.get("metadata", {}).get("resourceVersion") != obj["metadata"].get(
                    "resourceVersion"
                ):
                    for up in self._on_update:
                        up(old, obj)
        except Exception:
            log.exception("informer %s: handler failed on %s", self.resource.plural, key)
