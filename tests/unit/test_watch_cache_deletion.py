"""Deletion seen through name-selected watches, as `kubectl delete` waits for it.

kubectl deletes, reads the object back, lists it with
`fieldSelector=metadata.name=<name>&resourceVersion=0` and watches from the
list's resourceVersion until a DELETED event. These tests pin what the watch
cache owes that client: the final DELETED of a graceful deletion reaches a
name-selected watch opened from the list or from the DELETE's answer, also
when it is replayed from history entries that keep only their JSON, and a
successor under the same name comes after it as ADDED.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kubi.api import catalog, selectors
from kubi.apiserver.cache import Entry
from kubi.apiserver.rest import DeleteOptions, Registry, WriteOptions
from kubi.client.client import Client, Resource
from tests.unit.apiserver_fixtures import admin_client, memory_registry

PODS = catalog.lookup("", "v1", "pods")
POD_RESOURCE = Resource.of("v1", "pods")


@pytest.fixture
async def registry() -> AsyncIterator[Registry]:
    async with memory_registry() as reg:
        yield reg


def bound_pod(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox"}]}}


def named(name: str):
    """The predicate of `fieldSelector=metadata.name=<name>` on pods."""
    selector = selectors.parse_field_selector(f"metadata.name={name}")

    def match(entry: Entry) -> bool:
        return selector.matches(selectors.field_set("", "Pod", entry.obj))

    return match


def uid(entry: Entry) -> str:
    return entry.obj["metadata"]["uid"]


async def drained(queue: asyncio.Queue) -> list[tuple[str, Entry]]:
    await asyncio.sleep(0)
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items


def opts() -> WriteOptions:
    return WriteOptions(field_manager="test")


async def test_the_final_delete_reaches_a_watch_opened_from_the_list(registry: Registry) -> None:
    await registry.create(PODS, "default", bound_pod("web-0"), opts())
    marked, removed = await registry.delete(PODS, "default", "web-0", DeleteOptions())
    assert not removed
    # The DELETE's answer is already in the cache (read-your-writes).
    assert registry.cache.rev >= marked.rv
    list_rv = registry.cache.rev
    watcher, initial = registry.cache.watch(PODS, namespace="default", match=named("web-0"),
                                            since=list_rv)
    assert initial == []
    # Another pod's changes are not this watch's business.
    await registry.create(PODS, "default", bound_pod("web-1"), opts())
    _, removed = await registry.delete(PODS, "default", "web-0", DeleteOptions(grace_period=0))
    assert removed
    events = await drained(watcher.queue)
    assert [(t, e.name, uid(e)) for t, e in events] == [("DELETED", "web-0", uid(marked))]
    assert int(events[0][1].obj["metadata"]["resourceVersion"]) > list_rv
    registry.cache.unwatch(PODS, watcher)


async def test_a_watch_resumed_from_the_delete_answer_replays_the_delete_then_the_successor(
        registry: Registry) -> None:
    first = await registry.create(PODS, "default", bound_pod("web-0"), opts())
    marked, _ = await registry.delete(PODS, "default", "web-0", DeleteOptions())
    await registry.delete(PODS, "default", "web-0", DeleteOptions(grace_period=0))
    successor = await registry.create(PODS, "default", bound_pod("web-0"), opts())
    await registry.create(PODS, "default", bound_pod("web-1"), opts())
    # Every version but the successor's is superseded: history keeps their JSON only.
    history = registry.cache.resource(PODS).history
    assert all(c.entry._obj is None for c in history if c.rv < successor.rv)
    watcher, initial = registry.cache.watch(PODS, namespace="default", match=named("web-0"),
                                            since=marked.rv)
    assert [(t, uid(e)) for t, e in initial] == [("DELETED", uid(first)),
                                                 ("ADDED", uid(successor))]
    assert initial[0][1].obj["metadata"]["deletionTimestamp"]
    registry.cache.unwatch(PODS, watcher)


async def test_a_watch_from_a_version_the_cache_has_not_reached_skips_changes_up_to_it(
        registry: Registry) -> None:
    ahead = registry.cache.rev + 2
    watcher, initial = registry.cache.watch(PODS, namespace="default", match=None, since=ahead)
    assert initial == []
    for name in ("a", "b", "c"):
        await registry.create(PODS, "default", bound_pod(name), opts())
    events = await drained(watcher.queue)
    assert [(t, e.name) for t, e in events] == [("ADDED", "c")]
    registry.cache.unwatch(PODS, watcher)


async def next_event(stream: AsyncIterator[tuple[str, dict]]) -> tuple[str, dict]:
    while True:
        kind, obj = await asyncio.wait_for(anext(stream), 5)
        if kind != "BOOKMARK":
            return kind, obj


async def test_kubectl_delete_wait_sees_the_deleted_event_over_http(tmp_path: Path) -> None:
    client: Client
    async with admin_client(tmp_path) as client:
        await client.create(POD_RESOURCE, bound_pod("web-0"), "default")
        answer = await client.delete(POD_RESOURCE, "web-0", "default",
                                     propagation_policy="Background")
        assert answer["metadata"]["deletionTimestamp"]
        again = await client.get(POD_RESOURCE, "web-0", "default")
        assert again["metadata"]["uid"] == answer["metadata"]["uid"]
        listed = await client.list(POD_RESOURCE, "default", field_selector="metadata.name=web-0",
                                   limit=500, resource_version="0")
        assert [p["metadata"]["uid"] for p in listed["items"]] == [answer["metadata"]["uid"]]
        stream = client.watch(POD_RESOURCE, "default", field_selector="metadata.name=web-0",
                              resource_version=listed["metadata"]["resourceVersion"],
                              timeout_seconds=30)
        try:
            # The node's final delete, while kubectl watches.
            watching = asyncio.ensure_future(next_event(stream))
            await asyncio.sleep(0.05)
            await client.delete(POD_RESOURCE, "web-0", "default", grace_period_seconds=0)
            kind, obj = await watching
            assert (kind, obj["metadata"]["uid"]) == ("DELETED", answer["metadata"]["uid"])
        finally:
            await stream.aclose()
