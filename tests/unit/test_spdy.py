"""SPDY/3.1 framing and the server session, against bytes kubectl really sends.

`SpdyClient` is a small client side written for these tests (and the
port-forward tests): it opens streams, sends data, and collects what the
server answers per stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from kubi.node.agent.spdy import frames as f
from kubi.node.agent.spdy.session import Session, Stream, StreamClosed

# What kubectl 1.33 sent through the WebSocket tunnel for two forwarded HTTP
# requests: SYN_STREAM error/data pairs with compressed headers, the error
# stream's immediate FIN, the request bytes, and a RST_STREAM of each data stream.
KUBECTL_CAPTURE = bytes.fromhex(
    "800300010000003e0000000100000000000078f9e3c6a7c202253a48f95b044eea160616060c0c0c9c45"
    "90f8ca04a5634603704a2c294a4dcc851636aca9a0a800000000ffff0000000101000000800300010000"
    "001a00000003000000000000826a26a418543225a25b02000000ffff000000030000001c474554202f69"
    "6e6465782e68746d6c20485454502f312e300d0a0d0a8003000300000008000000030000000580030001"
    "000000180000000500000000000082eac5612c7ef71802000000ffff0000000501000000800300010000"
    "001700000007000000000000c2aa199735687a01000000ffff000000070000001c474554202f696e6465"
    "782e68746d6c20485454502f312e300d0a0d0a80030003000000080000000700000005"
)
REQUEST = b"GET /index.html HTTP/1.0\r\n\r\n"


# ---------------------------------------------------------------- test client


@dataclass
class ClientStream:
    data: bytearray = field(default_factory=bytearray)
    replied: bool = False
    fin: bool = False
    reset: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class SpdyClient:
    """The client half of a connection; `send` and `receive` move raw bytes."""

    def __init__(self, send: Callable[[bytes], Awaitable[None]],
                 receive: Callable[[], Awaitable[bytes]]) -> None:
        self._send = send
        self._receive = receive
        self._compressor = f.HeaderCompressor()
        self._parser = f.FrameParser()
        self._next_id = 1
        self.streams: dict[int, ClientStream] = {}
        self.control: list[f.ControlFrame] = []
        self.control_changed = asyncio.Event()
        self.closed = asyncio.Event()
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            while data := await self._receive():
                for frame in self._parser.feed(data):
                    self._dispatch(frame)
        finally:
            self.closed.set()
            for stream in self.streams.values():
                stream.changed.set()

    def _dispatch(self, frame: f.Frame) -> None:
        stream = self.streams.get(frame.stream_id) if frame.stream_id else None
        if isinstance(frame, f.DataFrame):
            assert stream is not None, f"data for unknown stream {frame.stream_id}"
            stream.data += frame.data
            stream.fin = stream.fin or frame.fin
        elif frame.type == f.SYN_REPLY and stream is not None:
            stream.replied = True
        elif frame.type == f.RST_STREAM and stream is not None:
            stream.reset = frame.value
        else:
            self.control.append(frame)
            self.control_changed.set()
        if stream is not None:
            stream.changed.set()

    async def open(self, headers: dict[str, str], *, fin: bool = False,
                   sid: int | None = None) -> int:
        if sid is None:
            sid = self._next_id
            self._next_id += 2
        self.streams[sid] = ClientStream()
        await self._send(f.encode_syn_stream(self._compressor, sid,
                                             {k: [v] for k, v in headers.items()}, fin=fin))
        return sid

    async def send_data(self, sid: int, data: bytes = b"", *, fin: bool = False) -> None:
        await self._send(f.encode_data(sid, data, fin=fin))

    async def send_raw(self, data: bytes) -> None:
        await self._send(data)

    async def wait(self, sid: int, done: Callable[[ClientStream], bool],
                   timeout: float = 5.0) -> ClientStream:
        stream = self.streams[sid]

        async def until() -> None:
            while not done(stream):
                if self.closed.is_set():
                    raise AssertionError(f"connection closed; stream {sid} is {stream}")
                stream.changed.clear()
                await stream.changed.wait()

        await asyncio.wait_for(until(), timeout)
        return stream

    async def finished(self, sid: int, timeout: float = 5.0) -> ClientStream:
        """Wait for the server's FIN or RST on `sid`."""
        return await self.wait(sid, lambda s: s.fin or bool(s.reset), timeout)

    async def control_frame(self, kind: int, timeout: float = 5.0) -> f.ControlFrame:
        async def until() -> f.ControlFrame:
            while True:
                for frame in self.control:
                    if frame.type == kind:
                        self.control.remove(frame)
                        return frame
                self.control_changed.clear()
                await self.control_changed.wait()

        return await asyncio.wait_for(until(), timeout)

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


class MemoryPipe:
    """The server's side of an in-memory connection."""

    def __init__(self) -> None:
        self.to_server: asyncio.Queue[bytes] = asyncio.Queue()
        self.to_client: asyncio.Queue[bytes] = asyncio.Queue()
        self.closed = False

    async def read(self) -> bytes:
        return await self.to_server.get()

    async def write(self, data: bytes) -> None:
        if self.closed:
            raise ConnectionResetError("pipe closed")
        self.to_client.put_nowait(data)

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.to_client.put_nowait(b"")

    def client(self) -> SpdyClient:
        async def send(data: bytes) -> None:
            self.to_server.put_nowait(data)

        return SpdyClient(send, self.to_client.get)

    def hang_up(self) -> None:
        self.to_server.put_nowait(b"")


# ---------------------------------------------------------------- frames


def test_dictionary_is_the_spdy3_one() -> None:
    assert len(f.DICTIONARY) == 1423
    assert zlib.adler32(f.DICTIONARY) == 3821447106
    assert f.DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert f.DICTIONARY.endswith(b"utf-,*,enq=0.")


def test_parses_what_kubectl_sends_even_byte_by_byte() -> None:
    parser = f.FrameParser()
    frames: list[f.Frame] = []
    for i in range(len(KUBECTL_CAPTURE)):
        frames += parser.feed(KUBECTL_CAPTURE[i:i + 1])
    kinds = [("data", x.stream_id) if isinstance(x, f.DataFrame) else (x.type, x.stream_id)
             for x in frames]
    assert kinds == [(f.SYN_STREAM, 1), ("data", 1), (f.SYN_STREAM, 3), ("data", 3),
                     (f.RST_STREAM, 3), (f.SYN_STREAM, 5), ("data", 5), (f.SYN_STREAM, 7),
                     ("data", 7), (f.RST_STREAM, 7)]
    first = frames[0]
    assert isinstance(first, f.ControlFrame)
    assert first.headers == {"port": ["8080"], "requestid": ["0"], "streamtype": ["error"]}
    assert first.version == 3 and not first.fin
    assert isinstance(frames[1], f.DataFrame) and frames[1].fin and frames[1].data == b""
    assert isinstance(frames[3], f.DataFrame) and frames[3].data == REQUEST
    assert isinstance(frames[4], f.ControlFrame) and frames[4].value == f.CANCEL
    later = frames[7]
    assert isinstance(later, f.ControlFrame)
    assert later.headers == {"streamtype": ["data"], "port": ["8080"], "requestid": ["1"]}


def test_header_blocks_share_one_compression_stream() -> None:
    compressor, decompressor = f.HeaderCompressor(), f.HeaderDecompressor()
    first = {"Port": ["8080"], "streamtype": ["data"]}
    second = {"x-many": ["a", "b"], "port": ["8080"]}
    one, two = compressor.compress(first), compressor.compress(second)
    assert decompressor.decompress(one) == {"port": ["8080"], "streamtype": ["data"]}
    assert decompressor.decompress(two) == second
    # The second block leans on the first: alone it cannot be read.
    with pytest.raises(f.ProtocolError):
        f.HeaderDecompressor().decompress(two)


def test_uncompressed_block_layout() -> None:
    assert f.encode_header_block({"A": ["x", "y"]}) == \
        struct.pack(">I", 1) + struct.pack(">I", 1) + b"a" + struct.pack(">I", 3) + b"x\x00y"
    assert f.decode_header_block(f.encode_header_block({})) == {}
    with pytest.raises(f.ProtocolError):
        f.decode_header_block(struct.pack(">II", 1, 50) + b"short")


def test_control_frames_round_trip() -> None:
    compressor = f.HeaderCompressor()
    wire = (f.encode_syn_reply(compressor, 3, {"a": ["b"]}, fin=True)
            + f.encode_rst_stream(5, f.REFUSED_STREAM) + f.encode_ping(7)
            + f.encode_goaway(9, f.GOAWAY_PROTOCOL_ERROR) + f.encode_settings({4: 100, 7: 65536})
            + f.encode_window_update(3, 1000) + f.encode_data(3, b"xyz", fin=True))
    reply, rst, ping, goaway, settings, window, data = f.FrameParser().feed(wire)
    assert isinstance(reply, f.ControlFrame) and reply.type == f.SYN_REPLY
    assert (reply.stream_id, reply.headers, reply.fin) == (3, {"a": ["b"]}, True)
    assert isinstance(rst, f.ControlFrame) and (rst.stream_id, rst.value) == (5, f.REFUSED_STREAM)
    assert isinstance(ping, f.ControlFrame) and ping.value == 7
    assert isinstance(goaway, f.ControlFrame) and \
        (goaway.stream_id, goaway.value) == (9, f.GOAWAY_PROTOCOL_ERROR)
    assert isinstance(settings, f.ControlFrame) and settings.settings == {4: 100, 7: 65536}
    assert isinstance(window, f.ControlFrame) and (window.stream_id, window.value) == (3, 1000)
    assert data == f.DataFrame(3, b"xyz", f.FLAG_FIN)


def test_unknown_control_frames_are_skipped_and_short_ones_refused() -> None:
    unknown = struct.pack(">HHI", 0x8003, 0x00FF, 2) + b"zz"
    assert f.FrameParser().feed(unknown + f.encode_ping(1)) == \
        [f.ControlFrame(f.PING, value=1)]
    short_rst = struct.pack(">HHI", 0x8003, f.RST_STREAM, 2) + b"zz"
    with pytest.raises(f.ProtocolError):
        f.FrameParser().feed(short_rst)


# ---------------------------------------------------------------- session


@dataclass
class Served:
    pipe: MemoryPipe
    client: SpdyClient
    session: Session
    opened: list[Stream]
    task: asyncio.Task[None]


@pytest.fixture
async def served() -> Served:
    pipe = MemoryPipe()
    opened: list[Stream] = []

    def accept(headers: f.Headers) -> str | None:
        return "refused" if headers.get("refuse") else None

    session = Session(pipe, accept=accept, opened=opened.append)
    task = asyncio.ensure_future(session.run())
    client = pipe.client()
    yield Served(pipe, client, session, opened, task)
    pipe.hang_up()
    await asyncio.wait_for(task, 5)
    await client.close()


async def test_streams_are_answered_and_carry_data_both_ways(served: Served) -> None:
    client = served.client
    sid = await client.open({"name": "x"})
    await client.wait(sid, lambda s: s.replied)
    [stream] = served.opened
    assert (stream.id, stream.header("NAME")) == (1, "x")
    await client.send_data(sid, b"hello ")
    await client.send_data(sid, b"world", fin=True)
    assert await stream.read() == b"hello "
    assert await stream.read() == b"world"
    assert await stream.read() == b""
    assert await stream.read() == b""
    await stream.write(b"back")
    await stream.close()
    got = await client.finished(sid)
    assert (bytes(got.data), got.fin, got.reset) == (b"back", True, 0)
    assert sid not in served.session.streams
    with pytest.raises(StreamClosed):
        await stream.write(b"late")


async def test_a_refused_stream_is_reset_and_bad_ids_are_protocol_errors(
        served: Served) -> None:
    client = served.client
    sid = await client.open({"refuse": "yes"})
    assert (await client.finished(sid)).reset == f.CANCEL
    assert served.opened == []
    # Stream ids from the client are odd and increasing.
    even = await client.open({}, sid=2)
    assert (await client.finished(even)).reset == f.PROTOCOL_ERROR
    again = await client.open({}, sid=1)
    assert (await client.finished(again)).reset == f.PROTOCOL_ERROR
    assert served.opened == []


async def test_client_reset_wakes_the_reader_and_stops_writes(served: Served) -> None:
    client = served.client
    sid = await client.open({})
    await client.wait(sid, lambda s: s.replied)
    [stream] = served.opened
    reading = asyncio.ensure_future(stream.read())
    await asyncio.sleep(0)
    await client.send_raw(f.encode_rst_stream(sid, f.CANCEL))
    assert await asyncio.wait_for(reading, 5) == b""
    assert stream.was_reset and stream.reset_seen.is_set()
    with pytest.raises(StreamClosed):
        await stream.write(b"x")
    # Data after the reset is dropped without complaint.
    await client.send_data(sid, b"late")
    await client.send_raw(f.encode_ping(3))
    await client.control_frame(f.PING)


async def test_pings_from_the_client_are_echoed_and_goaway_stops_new_streams(
        served: Served) -> None:
    client = served.client
    await client.send_raw(f.encode_ping(2))  # even ids are the server's own: no answer
    await client.send_raw(f.encode_ping(5))
    assert (await client.control_frame(f.PING)).value == 5
    assert not [c for c in client.control if c.type == f.PING]
    await client.send_raw(f.encode_settings({7: 1 << 20}) + f.encode_window_update(0, 10))
    await client.send_raw(f.encode_goaway(0))
    sid = await client.open({})
    assert (await client.finished(sid)).reset == f.REFUSED_STREAM


async def test_a_full_stream_waits_for_its_reader_unless_discarded(served: Served) -> None:
    client = served.client
    sid = await client.open({})
    await client.wait(sid, lambda s: s.replied)
    [stream] = served.opened
    for i in range(100):
        await client.send_data(sid, b"%d," % i)
    await client.send_raw(f.encode_ping(1))
    await asyncio.sleep(0.05)
    assert not client.control  # the session is held up behind the full stream
    stream.discard()
    assert (await client.control_frame(f.PING)).value == 1


async def test_the_end_of_the_pipe_ends_every_stream(served: Served) -> None:
    client = served.client
    sid = await client.open({})
    await client.wait(sid, lambda s: s.replied)
    [stream] = served.opened
    served.pipe.hang_up()
    await asyncio.wait_for(served.task, 5)
    assert served.session.ended and stream.was_reset
    assert await stream.read() == b""
    with pytest.raises(StreamClosed):
        await stream.write(b"x")


async def test_a_broken_header_block_ends_the_connection(served: Served) -> None:
    client = served.client
    garbage = struct.pack(">IIBB", 1, 0, 0, 0) + b"\x78\x9c garbage"
    await client.send_raw(struct.pack(">HHI", 0x8003, f.SYN_STREAM, len(garbage)) + garbage)
    goaway = await client.control_frame(f.GOAWAY)
    assert goaway.value == f.GOAWAY_PROTOCOL_ERROR
    await asyncio.wait_for(served.task, 5)


async def test_close_sends_goaway_and_closes_the_pipe(served: Served) -> None:
    await served.session.close()
    assert (await served.client.control_frame(f.GOAWAY)).value == f.GOAWAY_OK
    assert served.pipe.closed
