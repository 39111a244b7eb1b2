"""The server side of a SPDY/3.1 connection: streams the client opens, over any byte pipe.

`Session.run` reads frames until the pipe ends. For each SYN_STREAM it asks
`accept(headers)`: a refusal (a reason string) resets the stream, as the
kubelet does; otherwise it answers with SYN_REPLY and hands the `Stream` to
`opened`. Streams are half-closed independently (FIN in each direction), and
a RST_STREAM from either side ends one at once. Client PINGs (odd ids) are
echoed; a GOAWAY stops new streams.

Flow control is deliberately not enforced: Go's spdystream, which kubectl
uses, never sends WINDOW_UPDATE and ignores windows, so honouring the 64 KiB
initial window would stall every forwarded connection. Backpressure comes
from the pipe instead: a stream buffers a bounded number of DATA frames, and
the reader waits (as spdystream does) when its consumer falls behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Protocol

from kubi.node.agent.spdy import frames as f

log = logging.getLogger(__name__)

# DATA frames buffered per stream before the session stops reading the pipe.
_INBOX_FRAMES = 64
# Larger writes go out as several DATA frames.
_MAX_DATA_FRAME = 1 << 16


class Pipe(Protocol):
    """Where the session's bytes travel: a raw connection, or a WebSocket."""

    async def read(self) -> bytes: ...  # b"" once the peer is gone
    async def write(self, data: bytes) -> None: ...
    async def close(self) -> None: ...


class StreamClosed(Exception):
    """Writing to a stream that was reset, already finished, or whose session ended."""


class Stream:
    def __init__(self, session: Session, stream_id: int, headers: f.Headers, *,
                 remote_closed: bool) -> None:
        self.session = session
        self.id = stream_id
        self.headers = headers
        self.remote_closed = remote_closed
        self.local_closed = False
        self.was_reset = False
        self._eof = False
        self._discarding = False
        # Set when the stream is reset by either side, or its session ends.
        self.reset_seen = asyncio.Event()
        self._inbox: asyncio.Queue[bytes] = asyncio.Queue(_INBOX_FRAMES)
        if remote_closed:
            self._inbox.put_nowait(b"")

    def header(self, name: str) -> str:
        values = self.headers.get(name.lower())
        return values[0] if values else ""

    async def read(self) -> bytes:
        """The next bytes from the client; b"" after its FIN or a reset."""
        if self._eof or self.was_reset:
            return b""
        data = await self._inbox.get()
        if not data or self.was_reset:
            self._eof = True
            return b""
        return data

    def discard(self) -> None:
        """Nobody reads this stream any more: drop what arrives instead of
        holding up the whole connection behind a full buffer."""
        self._discarding = True
        self._drain()

    async def write(self, data: bytes) -> None:
        if self.local_closed or self.was_reset or self.session.ended:
            raise StreamClosed(f"stream {self.id} is closed")
        view = memoryview(data)
        for start in range(0, len(view), _MAX_DATA_FRAME):
            await self.session.send(f.encode_data(self.id, bytes(view[start:start +
                                                                       _MAX_DATA_FRAME])))

    async def close(self) -> None:
        """Half-close: the client reads EOF once what was written before arrives."""
        if self.local_closed or self.was_reset or self.session.ended:
            return
        self.local_closed = True
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.session.send(f.encode_data(self.id, fin=True))
        self.session.forget_if_done(self)

    async def reset(self, status: int = f.CANCEL) -> None:
        if self.was_reset:
            return
        self.mark_reset()
        if not self.session.ended:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.session.send(f.encode_rst_stream(self.id, status))

    # ---- called by the session

    async def deliver(self, data: bytes, fin: bool) -> None:
        if self.remote_closed or self.was_reset:
            return
        if data and not self._discarding:
            await self._inbox.put(data)
        if fin:
            self.remote_closed = True
            if not self._discarding:
                await self._inbox.put(b"")

    def mark_reset(self) -> None:
        self.was_reset = True
        self.reset_seen.set()
        self.remote_closed = self.local_closed = True
        # Drop what the consumer will never read, and wake it.
        self._drain()
        self._inbox.put_nowait(b"")
        self.session.forget_if_done(self)

    def _drain(self) -> None:
        while not self._inbox.empty():
            self._inbox.get_nowait()


Accept = Callable[[f.Headers], str | None]
Opened = Callable[[Stream], None]


class Session:
    def __init__(self, pipe: Pipe, *, accept: Accept, opened: Opened) -> None:
        self.pipe = pipe
        self.accept = accept
        self.opened = opened
        self.streams: dict[int, Stream] = {}
        self.ended = False
        self.going_away = False
        self._last_id = 0
        self._parser = f.FrameParser()
        self._compressor = f.HeaderCompressor()
        self._write_lock = asyncio.Lock()

    async def send(self, data: bytes) -> None:
        async with self._write_lock:
            await self.pipe.write(data)

    async def _send_reply(self, stream_id: int) -> None:
        # Compress and write under one lock: header blocks share a zlib stream,
        # so they must reach the client in the order they were compressed.
        async with self._write_lock:
            await self.pipe.write(f.encode_syn_reply(self._compressor, stream_id, {}))

    def forget_if_done(self, stream: Stream) -> None:
        if stream.was_reset or (stream.local_closed and stream.remote_closed):
            self.streams.pop(stream.id, None)

    async def run(self) -> None:
        """Serve until the client goes away or breaks the protocol."""
        try:
            while True:
                data = await self.pipe.read()
                if not data:
                    return
                for frame in self._parser.feed(data):
                    await self._handle(frame)
        except f.ProtocolError as exc:
            log.info("spdy: ending the connection: %s", exc)
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.send(f.encode_goaway(self._last_id, f.GOAWAY_PROTOCOL_ERROR))
        except (ConnectionError, RuntimeError) as exc:
            log.debug("spdy: connection lost: %s", exc)
        finally:
            self._end()

    async def close(self) -> None:
        """Tell the client no more streams are accepted, then drop the connection."""
        if not self.ended:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.send(f.encode_goaway(self._last_id))
        self._end()
        await self.pipe.close()

    def _end(self) -> None:
        self.ended = True
        for stream in list(self.streams.values()):
            stream.mark_reset()
        self.streams.clear()

    async def _handle(self, frame: f.Frame) -> None:
        if isinstance(frame, f.DataFrame):
            stream = self.streams.get(frame.stream_id)
            # Data for a stream already reset (by either side) is dropped quietly.
            if stream is not None:
                await stream.deliver(frame.data, frame.fin)
                self.forget_if_done(stream)
            return
        if frame.type == f.SYN_STREAM:
            await self._syn_stream(frame)
        elif frame.type == f.RST_STREAM:
            stream = self.streams.get(frame.stream_id)
            if stream is not None:
                stream.mark_reset()
        elif frame.type == f.HEADERS:
            stream = self.streams.get(frame.stream_id)
            if stream is not None and frame.fin:
                await stream.deliver(b"", True)
                self.forget_if_done(stream)
        elif frame.type == f.PING:
            if frame.value % 2 == 1:
                await self.send(f.encode_ping(frame.value))
        elif frame.type == f.GOAWAY:
            self.going_away = True
        # SETTINGS and WINDOW_UPDATE need no answer (see the module docstring).

    async def _syn_stream(self, frame: f.ControlFrame) -> None:
        sid = frame.stream_id
        if sid % 2 == 0 or sid <= self._last_id:
            # Client streams are odd and increasing; anything else is refused.
            await self.send(f.encode_rst_stream(sid, f.PROTOCOL_ERROR))
            return
        self._last_id = sid
        if self.going_away:
            await self.send(f.encode_rst_stream(sid, f.REFUSED_STREAM))
            return
        reason = self.accept(frame.headers)
        if reason is not None:
            log.info("spdy: stream %d rejected: %s", sid, reason)
            await self.send(f.encode_rst_stream(sid, f.CANCEL))
            return
        stream = Stream(self, sid, frame.headers, remote_closed=frame.fin)
        if frame.flags & f.FLAG_UNIDIRECTIONAL:
            stream.local_closed = True
        self.streams[sid] = stream
        await self._send_reply(sid)
        self.opened(stream)
