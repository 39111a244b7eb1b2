"""Shared, indexed informers: one list+watch per resource for all controllers.

`SharedInformers.get(resource, namespace)` hands every controller the same
`IndexedInformer` for a resource, so ten controllers watching pods cost one
watch and one cache. Controllers register their handlers and indexes while
they are built; the manager then starts every informer and waits for all of
them to sync before any worker runs, so a sync never acts on a partial cache.

Indexes keep lookups proportional to the answer, not to the cache: with
10,000 pods a ReplicaSet sync reads its own pods by owner UID instead of
scanning the namespace. Every informer has a `namespace` index; controllers
add their own with `add_index(name, fn)`, `fn` mapping an object to its keys.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from kubi.client.client import Client, Resource
from kubi.client.informer import Informer, object_key

IndexFunc = Callable[[dict[str, Any]], Iterable[str]]

NAMESPACE_INDEX = "namespace"


def _namespace_of(obj: dict[str, Any]) -> Iterable[str]:
    return (obj.get("metadata", {}).get("namespace", ""),)


class IndexedInformer(Informer):
    """An Informer whose cache is also reachable through named indexes."""

    def __init__(self, client: Client, resource: Resource, **kw: Any) -> None:
        super().__init__(client, resource, **kw)
        self._index_funcs: dict[str, IndexFunc] = {}
        self._indexes: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
        self._index_keys: dict[str, dict[str, tuple[str, ...]]] = {}
        # Registered before any controller's handlers, so the indexes are
        # already current whenever a controller handler runs.
        self.on_add(self._index_add)
        self.on_update(lambda old, new: self._index_add(new))
        self.on_delete(self._index_remove)
        self.add_index(NAMESPACE_INDEX, _namespace_of)

    def add_index(self, name: str, fn: IndexFunc) -> None:
        if name in self._index_funcs:
            return
        self._index_funcs[name] = fn
        self._indexes[name] = {}
        self._index_keys[name] = {}
        for obj in self.cache.values():
            self._index_one(name, object_key(obj), obj)

    def by_index(self, name: str, value: str) -> list[dict[str, Any]]:
        return list(self._indexes[name].get(value, {}).values())

    def items_by_index(self, name: str, value: str) -> list[tuple[str, dict[str, Any]]]:
        """by_index(name, value) with each object's key."""
        return list(self._indexes[name].get(value, {}).items())

    def count_by_index(self, name: str, value: str) -> int:
        """len(by_index(name, value)), without building the list."""
        return len(self._indexes[name].get(value, ()))

    def in_namespace(self, namespace: str) -> list[dict[str, Any]]:
        return self.by_index(NAMESPACE_INDEX, namespace)

    @property
    def has_synced(self) -> bool:
        return self.synced.is_set()

    # ---- maintenance

    def _index_add(self, obj: dict[str, Any]) -> None:
        key = object_key(obj)
        for name in self._index_funcs:
            self._index_one(name, key, obj)

    def _index_one(self, name: str, key: str, obj: dict[str, Any]) -> None:
        index = self._indexes[name]
        old_values = self._index_keys[name].get(key, ())
        new_values = tuple(self._index_funcs[name](obj))
        for value in old_values:
            if value not in new_values:
                bucket = index.get(value)
                if bucket is not None:
                    bucket.pop(key, None)
                    if not bucket:
                        del index[value]
        for value in new_values:
            index.setdefault(value, {})[key] = obj
        if new_values:
            self._index_keys[name][key] = new_values
        else:
            self._index_keys[name].pop(key, None)

    def _index_remove(self, obj: dict[str, Any]) -> None:
        key = object_key(obj)
        for name, index in self._indexes.items():
            for value in self._index_keys[name].pop(key, ()):
                bucket = index.get(value)
                if bucket is not None:
                    bucket.pop(key, None)
                    if not bucket:
                        del index[value]


class SharedInformers:
    """The registry of informers of one controller manager (or scheduler)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._informers: dict[tuple[Resource, str | None], IndexedInformer] = {}
        self._started = False

    def get(self, resource: Resource, namespace: str | None = None) -> IndexedInformer:
        key = (resource, namespace)
        informer = self._informers.get(key)
        if informer is None:
            informer = IndexedInformer(self.client, resource, namespace=namespace)
            self._informers[key] = informer
            if self._started:
                informer.start()
        return informer

    def __iter__(self) -> Any:
        return iter(self._informers.values())

    def start(self) -> None:
        self._started = True
        for informer in self._informers.values():
            informer.start()

    async def wait_for_sync(self, timeout: float | None = None) -> None:
        async with asyncio.timeout(timeout):
            await asyncio.gather(*(i.synced.wait() for i in self._informers.values()))

    async def stop(self) -> None:
        self._started = False
        await asyncio.gather(*(informer.stop() for informer in self._informers.values()))
