"""Watch streams: newline-delimited JSON events over a chunked response.

A watch starts with the current state as ADDED events when the client gave
no resourceVersion (or "0"), or with the changes after the one it gave; one
older than the cache's history ends at once with an ERROR event carrying a
410 Expired Status, as upstream does. The stream then carries the changes as
they are applied to the watch cache, BOOKMARK events when the client allows
them, and closes at `timeoutSeconds` (default: a random 30 to 60 minutes, as
upstream spreads its watch timeouts).

JSON events are built from the cached bytes of the object; Table events
(`kubectl get -w`) are encoded per stream because only the first one carries
the column definitions.
"""

from __future__ import annotations

import asyncio
import random
import time

import orjson
from aiohttp import web

from kubi.api.errors import BadRequest, Gone
from kubi.apiserver import negotiation, views
from kubi.apiserver.cache import Entry
from kubi.apiserver.request import RequestInfo, flag, int_param

BOOKMARK_INTERVAL = 60.0


async def serve(request: web.Request, registry, info: RequestInfo) -> web.StreamResponse:
    from kubi.apiserver.handlers import build_filter

    rt = info.rt
    fmt = negotiation.negotiate(request.headers.get("Accept"))
    match = build_filter(rt, request)
    rv_text = request.query.get("resourceVersion") or ""
    if rv_text in ("", "0"):
        since = None
    else:
        try:
            since = int(rv_text)
        except ValueError:
            raise BadRequest(f"invalid resource version: {rv_text}") from None
    timeout = int_param(request, "timeoutSeconds")
    if timeout is None or timeout <= 0:
        timeout = int(1800 * (1 + random.random()))
    bookmarks = flag(request, "allowWatchBookmarks")
    initial_end = flag(request, "sendInitialEvents")
    if initial_end and since is not None:
        since = None  # sendInitialEvents replays state, not history
    namespace = info.namespace if rt.namespaced else None
    if info.name:
        raise BadRequest("watch of a single object is done with a fieldSelector on metadata.name")

    response = web.StreamResponse(
        status=200,
        headers={"Content-Type": fmt.content_type if fmt.kind != "yaml" else "application/json",
                 "Cache-Control": "no-cache, private"},
    )
    response.enable_chunked_encoding()
    try:
        watcher, initial = registry.cache.watch(rt, namespace=namespace, match=match, since=since)
    except Gone as exc:
        await response.prepare(request)
        await response.write(orjson.dumps({"type": "ERROR", "object": exc.to_status()}) + b"\n")
        return response
    encoder = _Encoder(rt, fmt, request.query.get("includeObject", "Metadata"))
    try:
        await response.prepare(request)
        chunk = b"".join(encoder.event(t, e) for t, e in initial)
        if initial_end and bookmarks:
            chunk += encoder.bookmark(registry.cache.rev, initial_end=True)
        if chunk:
            await response.write(chunk)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            wait = min(left, BOOKMARK_INTERVAL) if bookmarks else left
            try:
                if watcher.queue.empty():
                    async with asyncio.timeout(wait):
                        item = await watcher.queue.get()
                else:
                    item = watcher.queue.get_nowait()
            except TimeoutError:
                if bookmarks and time.monotonic() < deadline:
                    await response.write(encoder.bookmark(registry.cache.rev))
                continue
            if item is None:
                break
            parts = [encoder.event(*item)]
            # Drain what is already queued into one write.
            while not watcher.queue.empty() and len(parts) < 512:
                nxt = watcher.queue.get_nowait()
                if nxt is None:
                    watcher.closed = True
                    break
                parts.append(encoder.event(*nxt))
            await response.write(b"".join(parts))
            if watcher.closed and watcher.queue.empty():
                break
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        registry.cache.unwatch(rt, watcher)
    return response


class _Encoder:
    """Encodes one stream's events in its negotiated format."""

    def __init__(self, rt, fmt: negotiation.Format, include: str) -> None:
        self.rt = rt
        self.fmt = fmt
        self.include = include
        self.headers_sent = False

    def event(self, kind: str, entry: Entry) -> bytes:
        entry = views.outbound(self.rt, entry)
        if self.fmt.kind == negotiation.TABLE:
            table = negotiation.table(self.rt, [entry], {"resourceVersion": str(entry.rv)},
                                      self.include, headers=not self.headers_sent)
            self.headers_sent = True
            return orjson.dumps({"type": kind, "object": table}) + b"\n"
        if self.fmt.kind == negotiation.PARTIAL:
            return orjson.dumps({"type": kind, "object": {
                "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                "metadata": entry.obj.get("metadata", {})}}) + b"\n"
        return b'{"type":"' + kind.encode() + b'","object":' + entry.json + b"}\n"

    def bookmark(self, rv: int, initial_end: bool = False) -> bytes:
        md: dict = {"resourceVersion": str(rv)}
        if initial_end:
            md["annotations"] = {"k8s.io/initial-events-end": "true"}
        obj = {"kind": self.rt.kind, "apiVersion": self.rt.api_version, "metadata": md}
        return orjson.dumps({"type": "BOOKMARK", "object": obj}) + b"\n"
