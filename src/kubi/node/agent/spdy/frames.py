"""SPDY/3.1 frames on the wire: parsing a byte stream into frames, and encoding them.

Every frame starts with eight bytes. A control frame sets the top bit, then
carries the version (3), its type, 8 bits of flags and a 24-bit length; a data
frame carries a 31-bit stream id instead of version and type. The frames that
name headers (SYN_STREAM, SYN_REPLY, HEADERS) hold a header block compressed by
one zlib stream per direction that lasts as long as the connection, primed with
the SPDY/3 dictionary: `HeaderCompressor` and `HeaderDecompressor` keep that
state, so frames must be encoded and decoded in the order they travel.
`FrameParser` takes bytes in whatever pieces they arrive (a TCP read, or a
WebSocket message carrying a few bytes of a frame) and yields whole frames.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

VERSION = 3

SYN_STREAM = 1
SYN_REPLY = 2
RST_STREAM = 3
SETTINGS = 4
PING = 6
GOAWAY = 7
HEADERS = 8
WINDOW_UPDATE = 9

FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02

# RST_STREAM status codes.
PROTOCOL_ERROR = 1
INVALID_STREAM = 2
REFUSED_STREAM = 3
UNSUPPORTED_VERSION = 4
CANCEL = 5
INTERNAL_ERROR = 6
FLOW_CONTROL_ERROR = 7
STREAM_IN_USE = 8
STREAM_ALREADY_CLOSED = 9
FRAME_TOO_LARGE = 11

# GOAWAY status codes.
GOAWAY_OK = 0
GOAWAY_PROTOCOL_ERROR = 1
GOAWAY_INTERNAL_ERROR = 2

MAX_LENGTH = (1 << 24) - 1
# A decompressed header block larger than this ends the connection.
MAX_HEADER_BLOCK = 1 << 20

Headers = dict[str, list[str]]


def _dictionary() -> bytes:
    """The SPDY/3 header dictionary: length-prefixed words, then a run of common values."""
    words = (
        "options head post put delete trace accept accept-charset accept-encoding "
        "accept-language accept-ranges age allow authorization cache-control connection "
        "content-base content-encoding content-language content-length content-location "
        "content-md5 content-range content-type date etag expect expires from host if-match "
        "if-modified-since if-none-match if-range if-unmodified-since last-modified location "
        "max-forwards pragma proxy-authenticate proxy-authorization range referer retry-after "
        "server te trailer transfer-encoding upgrade user-agent vary via warning "
        "www-authenticate method get status|200 OK|version HTTP/1.1 url public set-cookie "
        "keep-alive origin"
    )
    out = bytearray()
    for group in words.split("|"):
        # "200 OK" is the one word with a space; the bars keep it whole.
        for word in ([group] if group == "200 OK" else group.split()):
            out += struct.pack(">I", len(word)) + word.encode()
    codes = ("100101201202205206300302303304305306307402405406407408409410411412413414415"
             "416417502504505")
    reasons = ("203 Non-Authoritative Information204 No Content301 Moved Permanently"
               "400 Bad Request401 Unauthorized403 Forbidden404 Not Found"
               "500 Internal Server Error501 Not Implemented503 Service Unavailable")
    dates = ("Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
             "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT")
    values = ("chunked,text/html,image/png,image/jpg,image/gif,application/xml,"
              "application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
              "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.")
    return bytes(out) + (codes + reasons + dates + values).encode()


DICTIONARY = _dictionary()


class ProtocolError(Exception):
    """The peer broke the framing; the connection cannot continue."""


# ---- header blocks


def encode_header_block(headers: Headers) -> bytes:
    """The uncompressed block: a count, then each lower-cased name and its
    values joined by NUL, all with 32-bit length prefixes."""
    out = bytearray(struct.pack(">I", len(headers)))
    for name, values in headers.items():
        key = name.lower().encode()
        value = "\x00".join(values).encode()
        out += struct.pack(">I", len(key)) + key + struct.pack(">I", len(value)) + value
    return bytes(out)


def decode_header_block(block: bytes) -> Headers:
    headers: Headers = {}
    try:
        (count,) = struct.unpack_from(">I", block, 0)
        offset = 4
        for _ in range(count):
            (size,) = struct.unpack_from(">I", block, offset)
            name = block[offset + 4:offset + 4 + size].decode().lower()
            offset += 4 + size
            (size,) = struct.unpack_from(">I", block, offset)
            value = block[offset + 4:offset + 4 + size].decode()
            offset += 4 + size
            if offset > len(block):
                raise ProtocolError("truncated header block")
            headers.setdefault(name, []).extend(value.split("\x00"))
    except (struct.error, UnicodeDecodeError) as exc:
        raise ProtocolError(f"invalid header block: {exc}") from None
    return headers


class HeaderCompressor:
    def __init__(self) -> None:
        self._z = zlib.compressobj(zlib.Z_BEST_COMPRESSION, zlib.DEFLATED, 15, 9,
                                   zdict=DICTIONARY)

    def compress(self, headers: Headers) -> bytes:
        # A sync flush ends each block on a byte boundary, so the peer can
        # decode it without waiting for the next one.
        return self._z.compress(encode_header_block(headers)) + self._z.flush(zlib.Z_SYNC_FLUSH)


class HeaderDecompressor:
    def __init__(self) -> None:
        self._z = zlib.decompressobj(zdict=DICTIONARY)

    def decompress(self, data: bytes) -> Headers:
        try:
            block = self._z.decompress(data, MAX_HEADER_BLOCK)
        except zlib.error as exc:
            raise ProtocolError(f"header decompression failed: {exc}") from None
        if self._z.unconsumed_tail:
            raise ProtocolError("header block too large")
        return decode_header_block(block)


# ---- frames


@dataclass
class DataFrame:
    stream_id: int
    data: bytes
    flags: int = 0

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


@dataclass
class ControlFrame:
    """A decoded control frame; which fields mean something depends on `type`."""

    type: int
    flags: int = 0
    stream_id: int = 0
    associated_id: int = 0
    priority: int = 0
    headers: Headers = field(default_factory=dict)
    # RST_STREAM and GOAWAY status, PING id, WINDOW_UPDATE delta.
    value: int = 0
    settings: dict[int, int] = field(default_factory=dict)
    version: int = VERSION

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


Frame = DataFrame | ControlFrame


class FrameParser:
    """Bytes in, frames out. Header blocks are decompressed as they are parsed."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._headers = HeaderDecompressor()

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames: list[Frame] = []
        while len(self._buffer) >= 8:
            first, second = struct.unpack_from(">II", self._buffer, 0)
            length = second & MAX_LENGTH
            if len(self._buffer) < 8 + length:
                break
            payload = bytes(self._buffer[8:8 + length])
            del self._buffer[:8 + length]
            flags = second >> 24
            if first & 0x80000000:
                frame = self._control((first >> 16) & 0x7FFF, first & 0xFFFF, flags, payload)
                if frame is not None:
                    frames.append(frame)
            else:
                frames.append(DataFrame(first & 0x7FFFFFFF, payload, flags))
        return frames

    def _control(self, version: int, kind: int, flags: int,
                 payload: bytes) -> ControlFrame | None:
        frame = ControlFrame(kind, flags, version=version)
        try:
            if kind == SYN_STREAM:
                sid, assoc, prio = struct.unpack_from(">IIB", payload, 0)
                frame.stream_id, frame.associated_id = sid & 0x7FFFFFFF, assoc & 0x7FFFFFFF
                frame.priority = prio >> 5
                frame.headers = self._headers.decompress(payload[10:])
            elif kind in (SYN_REPLY, HEADERS):
                (sid,) = struct.unpack_from(">I", payload, 0)
                frame.stream_id = sid & 0x7FFFFFFF
                frame.headers = self._headers.decompress(payload[4:])
            elif kind in (RST_STREAM, WINDOW_UPDATE):
                sid, value = struct.unpack_from(">II", payload, 0)
                frame.stream_id, frame.value = sid & 0x7FFFFFFF, value & 0x7FFFFFFF
            elif kind == GOAWAY:
                sid, value = struct.unpack_from(">II", payload, 0)
                frame.stream_id, frame.value = sid & 0x7FFFFFFF, value
            elif kind == PING:
                (frame.value,) = struct.unpack_from(">I", payload, 0)
            elif kind == SETTINGS:
                (count,) = struct.unpack_from(">I", payload, 0)
                for i in range(count):
                    ident, value = struct.unpack_from(">II", payload, 4 + 8 * i)
                    frame.settings[ident & 0xFFFFFF] = value
            else:
                # Unknown control frames are skipped, as the protocol asks.
                return None
        except struct.error:
            raise ProtocolError(f"control frame of type {kind} is too short") from None
        return frame


def _control_header(kind: int, flags: int, length: int) -> bytes:
    if length > MAX_LENGTH:
        raise ValueError("frame too large")
    return struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | length)


def encode_data(stream_id: int, data: bytes = b"", *, fin: bool = False) -> bytes:
    if len(data) > MAX_LENGTH:
        raise ValueError("frame too large")
    flags = FLAG_FIN if fin else 0
    return struct.pack(">II", stream_id & 0x7FFFFFFF, (flags << 24) | len(data)) + data


def encode_syn_stream(compressor: HeaderCompressor, stream_id: int, headers: Headers, *,
                      fin: bool = False, priority: int = 0) -> bytes:
    block = compressor.compress(headers)
    body = struct.pack(">IIBB", stream_id, 0, (priority & 7) << 5, 0) + block
    return _control_header(SYN_STREAM, FLAG_FIN if fin else 0, len(body)) + body


def encode_syn_reply(compressor: HeaderCompressor, stream_id: int, headers: Headers, *,
                     fin: bool = False) -> bytes:
    body = struct.pack(">I", stream_id) + compressor.compress(headers)
    return _control_header(SYN_REPLY, FLAG_FIN if fin else 0, len(body)) + body


def encode_rst_stream(stream_id: int, status: int) -> bytes:
    return _control_header(RST_STREAM, 0, 8) + struct.pack(">II", stream_id, status)


def encode_ping(ping_id: int) -> bytes:
    return _control_header(PING, 0, 4) + struct.pack(">I", ping_id)


def encode_goaway(last_stream_id: int, status: int = GOAWAY_OK) -> bytes:
    return _control_header(GOAWAY, 0, 8) + struct.pack(">II", last_stream_id, status)


def encode_settings(settings: dict[int, int]) -> bytes:
    body = struct.pack(">I", len(settings)) + b"".join(
        struct.pack(">II", ident & 0xFFFFFF, value) for ident, value in settings.items())
    return _control_header(SETTINGS, 0, len(body)) + body


def encode_window_update(stream_id: int, delta: int) -> bytes:
    return _control_header(WINDOW_UPDATE, 0, 8) + struct.pack(">II", stream_id, delta)
