"""Port forwarding over SPDY: the `portforward.k8s.io` stream pairs kubectl opens.

kubectl opens one SPDY connection and, per local connection it accepts, two
streams carrying the same `port` and `requestid` headers: `streamtype: error`
(which it half-closes at once and reads to its end) and `streamtype: data`.
When both of a request's streams are here, the agent connects to that port
on the pod's loopback through `connect` (the runtime's `port_forward`, made
inside the pod's network namespace) and copies bytes both ways until the pod
side ends or kubectl resets the data stream; a failure is written as text on
the error stream, which is then closed. A pair that stays incomplete for
`stream_timeout` is abandoned with a message, as the kubelet does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from kubi.node.agent.spdy import Headers, Pipe, Session, Stream, StreamClosed
from kubi.node.runtime.base import RuntimeError_

log = logging.getLogger(__name__)

PROTOCOL = "portforward.k8s.io"

STREAM_TYPE = "streamtype"
PORT = "port"
REQUEST_ID = "requestid"
DATA = "data"
ERROR = "error"

# The kubelet's default wait for the second stream of a pair.
STREAM_CREATION_TIMEOUT = 30.0
_READ_SIZE = 1 << 16

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]
Connect = Callable[[int], Awaitable[Connection]]


def check_stream(headers: Headers) -> str | None:
    """Why a new stream is refused, or None when its headers are acceptable."""
    port = (headers.get(PORT) or [""])[0]
    if not port:
        return f'"{PORT}" header is required'
    try:
        number = int(port, 10)
    except ValueError:
        return f'unable to parse "{port}" as a port: invalid syntax'
    if not 0 <= number <= 65535:
        return f'unable to parse "{port}" as a port: value out of range'
    if number < 1:
        return f'port "{port}" must be > 0'
    kind = (headers.get(STREAM_TYPE) or [""])[0]
    if not kind:
        return '"streamType" header is required'
    if kind not in (DATA, ERROR):
        return f'invalid stream type "{kind}"'
    return None


def request_id(stream: Stream) -> str:
    """The stream's request id; clients too old to send one get ids derived
    from the stream numbers (error stream n, data stream n+2), as the kubelet does."""
    given = stream.header(REQUEST_ID)
    if given:
        return given
    return str(stream.id if stream.header(STREAM_TYPE) == ERROR else stream.id - 2)


def describe(exc: BaseException) -> str:
    """An error in Go's words where it has them (`connect: connection refused`)."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"connect: {os.strerror(exc.errno).lower()}"
    return str(exc)


def forward_error(port: int, pod: str, uid: str, exc: BaseException) -> str:
    """What the client reads on the error stream when the pod's port cannot be reached."""
    return (f"error forwarding port {port} to pod {pod}, uid {uid}: failed to connect to "
            f'localhost:{port} inside namespace "{pod}": {describe(exc)}')


@dataclass
class _Pair:
    request_id: str
    data: Stream | None = None
    error: Stream | None = None
    timer: asyncio.TimerHandle | None = None


class PortForwarder:
    """Pairs one connection's streams by request id and forwards each pair."""

    def __init__(self, connect: Connect, *, pod: str, uid: str = "",
                 stream_timeout: float = STREAM_CREATION_TIMEOUT) -> None:
        self.connect = connect
        self.pod = pod
        self.uid = uid
        self.stream_timeout = stream_timeout
        self.pairs: dict[str, _Pair] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    def opened(self, stream: Stream) -> None:
        rid = request_id(stream)
        pair = self.pairs.get(rid)
        if pair is None:
            pair = self.pairs[rid] = _Pair(rid)
            pair.timer = asyncio.get_running_loop().call_later(
                self.stream_timeout, self._timed_out, pair)
        kind = stream.header(STREAM_TYPE)
        if (pair.data if kind == DATA else pair.error) is not None:
            message = f"error processing stream for request {rid}: {kind} stream already assigned"
            log.info("port-forward to %s: %s", self.pod, message)
            self._spawn(self._refuse(stream, pair, message))
            return
        if kind == DATA:
            pair.data = stream
        else:
            pair.error = stream
        if pair.data is not None and pair.error is not None:
            self._settle(pair)
            self._spawn(self._forward(pair.data, pair.error))

    def _settle(self, pair: _Pair) -> None:
        if pair.timer is not None:
            pair.timer.cancel()
        self.pairs.pop(pair.request_id, None)

    def _timed_out(self, pair: _Pair) -> None:
        self._settle(pair)
        message = f"(request={pair.request_id}) timed out waiting for streams"
        log.info("port-forward to %s: %s", self.pod, message)
        self._spawn(self._abandon(pair, message))

    def _spawn(self, work: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _refuse(self, stream: Stream, pair: _Pair, message: str) -> None:
        if pair.error is not None:
            await _write_quietly(pair.error, message)
        await stream.reset()

    async def _abandon(self, pair: _Pair, message: str) -> None:
        if pair.error is not None:
            await _write_quietly(pair.error, message)
        for stream in (pair.error, pair.data):
            if stream is not None:
                await stream.reset()

    async def _forward(self, data: Stream, error: Stream) -> None:
        port = int(data.header(PORT))
        try:
            try:
                reader, writer = await self.connect(port)
            except (OSError, RuntimeError_) as exc:
                message = forward_error(port, self.pod, self.uid, exc)
                log.info("port-forward: %s", message)
                await _write_quietly(error, message)
                return
            try:
                await _copy(data, reader, writer)
            finally:
                writer.close()
        finally:
            data.discard()
            await error.close()
            await data.close()

    async def close(self) -> None:
        """The connection is gone: stop every forward and drop unpaired streams."""
        for pair in list(self.pairs.values()):
            self._settle(pair)
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _write_quietly(stream: Stream, message: str) -> None:
    with contextlib.suppress(StreamClosed, ConnectionError, RuntimeError):
        await stream.write(message.encode())


async def _copy(data: Stream, reader: asyncio.StreamReader,
                writer: asyncio.StreamWriter) -> None:
    """Both directions until the pod's side ends, or kubectl resets the stream."""

    async def inbound() -> None:
        while chunk := await data.read():
            writer.write(chunk)
            await writer.drain()
        if not data.was_reset and writer.can_write_eof():
            # kubectl's client finished sending; the pod still answers.
            writer.write_eof()

    async def outbound() -> None:
        while chunk := await reader.read(_READ_SIZE):
            await data.write(chunk)

    to_pod = asyncio.ensure_future(inbound())
    from_pod = asyncio.ensure_future(outbound())
    reset = asyncio.ensure_future(data.reset_seen.wait())
    try:
        await asyncio.wait({to_pod, from_pod, reset}, return_when=asyncio.FIRST_COMPLETED)
        if to_pod.done() and not from_pod.done() and not reset.done() \
                and to_pod.exception() is None:
            await asyncio.wait({from_pod, reset}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (to_pod, from_pod, reset):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError, StreamClosed,
                                     RuntimeError):
                await task


async def serve(pipe: Pipe, connect: Connect, *, pod: str, uid: str = "",
                stream_timeout: float = STREAM_CREATION_TIMEOUT) -> None:
    """One port-forward connection, from the first stream to the last byte."""
    forwarder = PortForwarder(connect, pod=pod, uid=uid, stream_timeout=stream_timeout)
    session = Session(pipe, accept=check_stream, opened=forwarder.opened)
    try:
        await session.run()
    finally:
        await forwarder.close()
        await session.close()
