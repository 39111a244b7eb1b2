"""Stream sessions for exec and attach, as the agent's streaming server uses them.

An exec session owns the command's stdio on this side: a pty master for a
tty, pipes otherwise, read and written without blocking through the event
loop. Its exit code arrives on the connection to the launcher. An attach
session talks frames with the pod's shim (protocol.py), which fans the
container's output out to every attacher and feeds their input in.
Port forwarding connects to the pod's loopback from a socket created inside
the pod's network namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import functools
import json
import os
import socket
import struct
import termios
from collections.abc import Awaitable, Callable
from typing import Any

from kubi.node.runtime.base import RuntimeError_
from kubi.node.runtime.host import linux, protocol

_CHUNK = 65536


async def _wait_fd(fd: int, *, write: bool) -> None:
    loop = asyncio.get_running_loop()
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    if write:
        loop.add_writer(fd, wake)
    else:
        loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        if write:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)


async def read_fd(fd: int) -> bytes:
    """Read what is there; b"" at end (a pty master reports the end as EIO)."""
    while True:
        try:
            return os.read(fd, _CHUNK)
        except BlockingIOError:
            await _wait_fd(fd, write=False)
        except OSError as exc:
            if exc.errno == errno.EIO:
                return b""
            raise


async def write_fd(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            await _wait_fd(fd, write=True)
            continue
        view = view[n:]


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def set_window_size(fd: int, width: int, height: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


Connect = Callable[[dict[str, Any], list[int]],
                  Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


class ExecSession:
    """A command started in a container by `HostRuntime.exec`."""

    @classmethod
    async def start(cls, connect: Connect, request: dict[str, Any], *, tty: bool,
                    stdin: bool) -> ExecSession:
        """Send the exec request with the command's end of its stdio (a pty slave,
        or pipes) and keep our end; raises RuntimeError_ if it cannot start."""
        if tty:
            master, slave = os.openpty()
            ours, theirs = [master], [slave]
        else:
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            in_r, in_w = os.pipe() if stdin else (os.open(os.devnull, os.O_RDONLY), -1)
            ours = [fd for fd in (in_w, out_r, err_r) if fd >= 0]
            theirs = [in_r, out_w, err_w]
        try:
            reader, writer = await connect(request, theirs)
        except BaseException:
            _close_all(ours)
            raise
        finally:
            _close_all(theirs)
        line = await reader.readline()
        reply = json.loads(line) if line else {"error": "the launcher gave no answer"}
        if "error" in reply:
            writer.close()
            _close_all(ours)
            raise RuntimeError_(reply["error"])
        if tty:
            return cls(reader, writer, stdin=ours[0], stdout=ours[0], stderr=None, tty=True)
        return cls(reader, writer, stdin=in_w if stdin else None, stdout=out_r, stderr=err_r,
                   tty=False)

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                 stdin: int | None, stdout: int, stderr: int | None, tty: bool) -> None:
        self._reader = reader
        self._writer = writer
        self._stdin = stdin
        self._stdout = stdout
        self._stderr = stderr
        self._tty = tty
        self._exit_code: int | None = None
        for fd in {stdin, stdout, stderr} - {None}:
            assert fd is not None
            os.set_blocking(fd, False)

    async def write_stdin(self, data: bytes) -> None:
        if self._stdin is not None and data:
            await write_fd(self._stdin, data)

    async def close_stdin(self) -> None:
        fd, self._stdin = self._stdin, None
        if fd is None:
            return
        if self._tty:
            # The pty stays open for output; ^D is a terminal's end of input.
            with contextlib.suppress(OSError):
                await write_fd(fd, b"\x04")
        else:
            os.close(fd)

    async def read_stdout(self) -> bytes:
        return await read_fd(self._stdout)

    async def read_stderr(self) -> bytes:
        if self._stderr is None:
            return b""
        return await read_fd(self._stderr)

    async def resize(self, width: int, height: int) -> None:
        if self._tty:
            with contextlib.suppress(OSError):
                set_window_size(self._stdout, width, height)

    async def wait(self) -> int:
        while self._exit_code is None:
            line = await self._reader.readline()
            if not line:
                raise RuntimeError_("the exec session ended without an exit code")
            message = json.loads(line)
            if "exit_code" in message:
                self._exit_code = int(message["exit_code"])
        return self._exit_code

    async def close(self) -> None:
        # Hanging up on the launcher kills the command if it still runs.
        self._writer.close()
        fds = {self._stdin, self._stdout, self._stderr} - {None}
        self._stdin = None
        for fd in fds:
            assert fd is not None
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()


class AttachSession:
    """A connection to a running container's stdio through its shim."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                 tty: bool) -> None:
        self._writer = writer
        self._tty = tty
        self._stdout: asyncio.Queue[bytes] = asyncio.Queue()
        self._stderr: asyncio.Queue[bytes] = asyncio.Queue()
        self._exit: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pump = asyncio.ensure_future(self._read_frames(reader))

    @classmethod
    async def open(cls, sandbox_id: str, container_id: str, *, tty: bool,
                   stdin: bool) -> AttachSession:
        try:
            reader, writer = await asyncio.open_unix_connection(
                protocol.pod_address(sandbox_id))
        except OSError as exc:
            raise RuntimeError_(f"cannot attach to container {container_id}: {exc}") from exc
        writer.write(protocol.encode({"op": "attach", "container_id": container_id})
                     + protocol.frame(protocol.HELLO, json.dumps({"stdin": stdin}).encode()))
        return cls(reader, writer, tty=tty)

    async def _read_frames(self, reader: asyncio.StreamReader) -> None:
        buffer = bytearray()
        try:
            while True:
                data = await reader.read(_CHUNK)
                if not data:
                    break
                buffer += data
                for kind, payload in protocol.parse_frames(buffer):
                    if kind == protocol.STDOUT:
                        self._stdout.put_nowait(payload)
                    elif kind == protocol.STDERR:
                        self._stderr.put_nowait(payload)
                    elif kind == protocol.EXIT and not self._exit.done():
                        self._exit.set_result(protocol.EXIT_PAYLOAD.unpack(payload)[0])
        except OSError:
            pass
        finally:
            self._stdout.put_nowait(b"")
            self._stderr.put_nowait(b"")
            if not self._exit.done():
                self._exit.set_exception(
                    RuntimeError_("the attach session ended before the container exited"))

    async def write_stdin(self, data: bytes) -> None:
        if data:
            self._writer.write(protocol.frame(protocol.STDIN, data))
            await self._writer.drain()

    async def close_stdin(self) -> None:
        self._writer.write(protocol.frame(protocol.STDIN_CLOSE))
        with contextlib.suppress(OSError):
            await self._writer.drain()

    async def read_stdout(self) -> bytes:
        return await _next(self._stdout)

    async def read_stderr(self) -> bytes:
        if self._tty:
            return b""
        return await _next(self._stderr)

    async def resize(self, width: int, height: int) -> None:
        self._writer.write(protocol.frame(protocol.RESIZE,
                                          protocol.RESIZE_PAYLOAD.pack(width, height)))
        with contextlib.suppress(OSError):
            await self._writer.drain()

    async def wait(self) -> int:
        return await asyncio.shield(self._exit)

    async def close(self) -> None:
        self._writer.close()
        self._pump.cancel()
        with contextlib.suppress(BaseException):
            await self._pump
        if not self._exit.done():
            self._exit.cancel()
        elif not self._exit.cancelled():
            self._exit.exception()  # marks a stored error as seen
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()


async def _next(queue: asyncio.Queue[bytes]) -> bytes:
    data = await queue.get()
    if not data:
        # Leave the end marker for any later reader.
        queue.put_nowait(b"")
    return data


async def connect_loopback(netns: str | None, port: int
                           ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to `port` on localhost of the network namespace at `netns` (the
    node's when None), over IPv4 first, then IPv6, as port-forwarding does."""
    loop = asyncio.get_running_loop()
    error: OSError | None = None
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        make = functools.partial(socket.socket, family, socket.SOCK_STREAM)
        sock = linux.call_in_netns(netns, make) if netns else make()
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, (host, port))
        except OSError as exc:
            sock.close()
            error = exc
            continue
        return await asyncio.open_connection(sock=sock)
    assert error is not None
    raise error
