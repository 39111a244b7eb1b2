"""The watch cache: every object in memory, fed by one watch on the store.

At start the cache reads the whole store once (`range`) and then follows the
store's change stream in revision order. Reads (get, list) and watches are
served from here, never from disk; writes go to the store and the writer then
waits until the cache has applied its revision (`wait_for`), so a client reads
its own writes.

Objects are kept as `Entry`: the decoded dict (treated as immutable: anyone
who wants to change it works on a copy) and its JSON bytes, encoded once and
shared by every GET, list and watch event that sends this version.

Each resource keeps a bounded history of changes so that a watch can resume
from a recent resourceVersion; one older than the history gets 410 Expired.
Watchers get their events by a synchronous fan-out at apply time, so a snapshot
and the registration of a watcher happen atomically with respect to changes.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import orjson

from kubi.api import catalog
from kubi.api.errors import Gone

log = logging.getLogger(__name__)

HISTORY_PER_RESOURCE = 50_000
# A watcher that falls this far behind is closed; its client re-lists (as upstream).
WATCHER_QUEUE_LIMIT = 100_000


class Entry:
    """One version of one object: the dict and, lazily, its JSON bytes.

    Once a newer version replaces it, an entry is `release`d: it keeps only its
    JSON, which is what history replays send, and decodes the dict again on the
    rare reads of an old version (filtered replays, a write racing another).
    The dict form of an object is several times the size of its JSON, and the
    history holds tens of thousands of old versions.
    """

    __slots__ = ("_json", "_obj", "rv")

    def __init__(self, obj: dict, rv: int, raw: bytes | None = None) -> None:
        self._obj: dict | None = obj
        self.rv = rv
        self._json = raw

    @property
    def obj(self) -> dict:
        obj = self._obj
        if obj is None:
            return orjson.loads(self._json)  # type: ignore[arg-type]
        return obj

    @property
    def json(self) -> bytes:
        if self._json is None:
            self._json = orjson.dumps(self._obj)
        return self._json

    def copy(self) -> dict:
        """A deep, mutable copy of the object."""
        return orjson.loads(self.json)

    def release(self) -> None:
        """Keep only the JSON form (see the class's docstring)."""
        if self._obj is not None:
            if self._json is None:
                self._json = orjson.dumps(self._obj)
            self._obj = None

    @property
    def namespace(self) -> str:
        return self.obj["metadata"].get("namespace", "")

    @property
    def name(self) -> str:
        return self.obj["metadata"]["name"]


@dataclass(slots=True)
class Change:
    type: str  # ADDED | MODIFIED | DELETED
    rv: int
    entry: Entry  # the new state; for DELETED the last state, stamped with the delete's rv
    prev: Entry | None


Filter = Callable[[Entry], bool]


class Watcher:
    """One watch stream's queue. `None` in the queue means the stream must end.

    A watch started from a resourceVersion gets only changes after it, also
    when that version is newer than what the cache has applied yet (a client
    that read it from another server): the changes up to it are not sent, as
    upstream's cache watchers skip them.
    """

    def __init__(self, namespace: str | None, match: Filter | None, after: int = 0) -> None:
        self.namespace = namespace
        self.match = match
        self.after = after
        self.queue: asyncio.Queue[tuple[str, Entry] | None] = asyncio.Queue()
        self.closed = False

    def _matches(self, entry: Entry | None) -> bool:
        if entry is None:
            return False
        if self.namespace is not None and entry.namespace != self.namespace:
            return False
        return self.match is None or self.match(entry)

    def offer(self, change: Change) -> None:
        """Translate a change for this watcher's selection, as upstream does:
        an object moving into the selection is ADDED, out of it DELETED."""
        if self.closed or change.rv <= self.after:
            return
        if change.type == "DELETED":
            if self._matches(change.entry):
                self._put(("DELETED", change.entry))
            return
        now = self._matches(change.entry)
        before = self._matches(change.prev) if change.prev is not None else False
        if now and before:
            self._put(("MODIFIED", change.entry))
        elif now:
            self._put(("ADDED", change.entry))
        elif before:
            self._put(("DELETED", change.entry))

    def _put(self, item: tuple[str, Entry]) -> None:
        if self.queue.qsize() >= WATCHER_QUEUE_LIMIT:
            log.warning("closing a watcher that fell %d events behind", WATCHER_QUEUE_LIMIT)
            self.close()
            return
        self.queue.put_nowait(item)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.queue.put_nowait(None)


@dataclass
class ResourceCache:
    """All objects under one storage prefix, by namespace and name."""

    prefix: str
    namespaced: bool
    by_ns: dict[str, dict[str, Entry]] = field(default_factory=dict)
    history: deque[Change] = field(default_factory=lambda: deque(maxlen=HISTORY_PER_RESOURCE))
    # A watch can resume from any rv >= floor.
    floor: int = 0
    watchers: set[Watcher] = field(default_factory=set)
    count: int = 0

    def split(self, key: str) -> tuple[str, str]:
        rest = key[len(self.prefix):]
        if self.namespaced:
            ns, _, name = rest.partition("/")
            return ns, name
        return "", rest

    def get(self, namespace: str, name: str) -> Entry | None:
        bucket = self.by_ns.get(namespace)
        return bucket.get(name) if bucket else None

    def entries(self, namespace: str | None = None) -> Iterator[Entry]:
        """Entries sorted by namespace, then name (the store's key order)."""
        if namespace is not None:
            bucket = self.by_ns.get(namespace, {})
            for name in sorted(bucket):
                yield bucket[name]
            return
        for ns in sorted(self.by_ns):
            bucket = self.by_ns[ns]
            for name in sorted(bucket):
                yield bucket[name]

    def apply(self, key: str, change_type: str, entry: Entry) -> Change:
        ns, name = self.split(key)
        bucket = self.by_ns.setdefault(ns, {})
        prev = bucket.get(name)
        if change_type == "DELETED":
            if prev is not None:
                del bucket[name]
                self.count -= 1
            if not bucket:
                del self.by_ns[ns]
        else:
            if prev is None:
                self.count += 1
            bucket[name] = entry
        kind = change_type if change_type == "DELETED" else ("MODIFIED" if prev else "ADDED")
        change = Change(kind, entry.rv, entry, prev)
        if len(self.history) == self.history.maxlen:
            self.floor = self.history[0].rv
        self.history.append(change)
        for watcher in list(self.watchers):
            watcher.offer(change)
            if watcher.closed:
                self.watchers.discard(watcher)
        if prev is not None:
            prev.release()
        if change_type == "DELETED":
            entry.release()  # only the history holds it now
        return change

    def since(self, rv: int) -> Iterable[Change]:
        if rv < self.floor:
            raise Gone(f"too old resource version: {rv} ({self.floor})")
        # History is in rv order; skip from the left until past rv.
        if not self.history or self.history[-1].rv <= rv:
            return ()
        return [c for c in self.history if c.rv > rv]


class WatchCache:
    """The cache of every resource, following one store watch."""

    def __init__(self, store) -> None:  # store: kubi.store.Store
        self.store = store
        self.rev = 0
        self._resources: dict[str, ResourceCache] = {}
        self._waiters: list[tuple[int, asyncio.Future]] = []
        self._task: asyncio.Task | None = None
        # Objects this process is writing, by key: (the bytes written, the dict
        # they encode), so the write's event needs no decoding.
        self._writing: dict[str, tuple[bytes, dict]] = {}
        for rt in catalog.RESOURCES:
            if rt.storage_prefix not in self._resources:
                self._resources[rt.storage_prefix] = ResourceCache(rt.storage_prefix, rt.namespaced)

    def resource(self, rt: catalog.ResourceType) -> ResourceCache:
        return self._resources[rt.storage_prefix]

    def _for_key(self, key: str) -> ResourceCache | None:
        # "/registry/<resource>/..." → the prefix up to the second slash after registry.
        end = key.find("/", 10)
        if end < 0:
            return None
        return self._resources.get(key[: end + 1])

    async def start(self) -> None:
        kvs, rev = await self.store.range("/registry/")
        for kv in kvs:
            res = self._for_key(kv.key)
            if res is None:
                continue
            entry = _decode(kv.value, kv.mod_revision)
            ns, name = res.split(kv.key)
            res.by_ns.setdefault(ns, {})[name] = entry
            res.count += 1
        self.rev = rev
        for res in self._resources.values():
            res.floor = rev
        await self._load_history(rev)
        self._task = asyncio.create_task(self._follow(rev), name="watch-cache")

    async def _load_history(self, rev: int) -> None:
        """Recent history from the store, so a watch can resume across a restart."""
        events_since = getattr(self.store, "events_since", None)
        if events_since is None:
            return
        start = max(getattr(self.store, "compact_revision", 0), rev - HISTORY_PER_RESOURCE, 0)
        try:
            events = await events_since(start)
        except Exception:  # compacted or unsupported: resume only from `rev`
            return
        if not events:
            return
        floor = events[0].revision - 1
        for ev in events:
            if ev.revision > rev:
                break
            res = self._for_key(ev.key)
            if res is None:
                continue
            if ev.type == "DELETE":
                entry = _decode(ev.prev_value, ev.revision) if ev.prev_value else None
                if entry is None:
                    continue
                change = Change("DELETED", ev.revision, entry, entry)
            else:
                entry = _decode(ev.value, ev.revision)
                prev = _decode(ev.prev_value, ev.revision) if ev.prev_value else None
                change = Change("MODIFIED" if prev else "ADDED", ev.revision, entry, prev)
            res.history.append(change)
        for res in self._resources.values():
            res.floor = floor

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        for res in self._resources.values():
            for w in list(res.watchers):
                w.close()
            res.watchers.clear()

    async def _follow(self, rev: int) -> None:
        async for ev in self.store.watch("/registry/", rev):
            self._apply(ev)

    def expect_write(self, key: str, raw: bytes, obj: dict) -> None:
        """`obj` (what `raw` decodes to, without its resourceVersion) is about to
        be written at `key`; its caller hands it over and must not change it.
        When the store's event carries these very bytes, the cache takes `obj`
        instead of decoding them. A write that fails leaves a stale hint, which
        the next event of the key discards."""
        self._writing[key] = (raw, obj)

    def _apply(self, ev) -> None:
        res = self._for_key(ev.key)
        writing = self._writing.pop(ev.key, None) if self._writing else None
        if res is not None:
            if ev.type == "DELETE":
                last = res.get(*res.split(ev.key))
                if last is not None:
                    obj = dict(last.obj)
                    meta = dict(obj["metadata"])
                    meta["resourceVersion"] = str(ev.revision)
                    obj["metadata"] = meta
                    res.apply(ev.key, "DELETED", Entry(obj, ev.revision))
            elif writing is not None and writing[0] is ev.value:
                obj = writing[1]
                obj["metadata"]["resourceVersion"] = str(ev.revision)
                res.apply(ev.key, "PUT", Entry(obj, ev.revision))
            else:
                res.apply(ev.key, "PUT", _decode(ev.value, ev.revision))
        self.rev = ev.revision
        if self._waiters:
            ready = [w for w in self._waiters if w[0] <= self.rev]
            if ready:
                self._waiters = [w for w in self._waiters if w[0] > self.rev]
                for _, fut in ready:
                    if not fut.done():
                        fut.set_result(None)

    async def wait_for(self, rev: int, timeout: float = 10.0) -> None:
        """Return once the cache has applied revision `rev`."""
        if self.rev >= rev:
            return
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._waiters.append((rev, fut))
        await asyncio.wait_for(fut, timeout)

    def watch(
        self,
        rt: catalog.ResourceType,
        *,
        namespace: str | None,
        match: Filter | None,
        since: int | None,
    ) -> tuple[Watcher, list[tuple[str, Entry]]]:
        """Register a watcher; returns it with the events to send first.

        `since=None` means "from now, starting with the current state as ADDED
        events" (resourceVersion "" or "0"); otherwise the changes after `since`.
        """
        res = self.resource(rt)
        watcher = Watcher(namespace, match, since or 0)
        initial: list[tuple[str, Entry]] = []
        if since is None:
            for entry in res.entries(namespace):
                if watcher._matches(entry):
                    initial.append(("ADDED", entry))
        else:
            for change in res.since(since):
                watcher.offer(change)
            # offer() queued the replayed changes; hand them back as the first batch.
            while not watcher.queue.empty():
                item = watcher.queue.get_nowait()
                if item is not None:
                    initial.append(item)
        res.watchers.add(watcher)
        return watcher, initial

    def unwatch(self, rt: catalog.ResourceType, watcher: Watcher) -> None:
        self.resource(rt).watchers.discard(watcher)
        watcher.closed = True


def _decode(raw: bytes, rv: int) -> Entry:
    obj = orjson.loads(raw)
    obj["metadata"]["resourceVersion"] = str(rv)
    return Entry(obj, rv)
