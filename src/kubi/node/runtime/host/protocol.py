"""The little wire formats between the runtime, its launcher and the shims.

Requests to the launcher are one JSON object on a line, sometimes with file
descriptors attached (SCM_RIGHTS); answers are JSON lines back on the same
connection; so are requests to a pod's shim (podshim.py). Attaching to a
container speaks frames to its shim after that line: one byte of type,
four of length, then the payload. All sockets are abstract Unix
sockets (no files to clean up); the listening side serves only root and
its own user.
"""

from __future__ import annotations

import json
import os
import socket
import struct
from typing import Any

HEADER = struct.Struct("!BI")

# Frames from an attacher to the shim.
HELLO = 0      # payload: JSON {"stdin": bool}
STDIN = 1
STDIN_CLOSE = 2
RESIZE = 3     # payload: width, height as two unsigned shorts
# Frames from the shim to an attacher.
STDOUT = 1
STDERR = 2
EXIT = 3       # payload: the exit code as a signed int

RESIZE_PAYLOAD = struct.Struct("!HH")
EXIT_PAYLOAD = struct.Struct("!i")


def frame(kind: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(kind, len(payload)) + payload


def parse_frames(buffer: bytearray) -> list[tuple[int, bytes]]:
    """Take the complete frames off the front of `buffer`."""
    frames = []
    while len(buffer) >= HEADER.size:
        kind, length = HEADER.unpack_from(buffer)
        end = HEADER.size + length
        if len(buffer) < end:
            break
        frames.append((kind, bytes(buffer[HEADER.size:end])))
        del buffer[:end]
    return frames


def launcher_address(state_dir: str) -> str:
    """The launcher's abstract socket name, one per runtime state directory.

    Only the runtime calls this (it hands the launcher its names): hashlib,
    imported here, is not loaded into the launcher, whose forks pay for
    every mapping it has."""
    import hashlib

    digest = hashlib.sha256(state_dir.encode()).hexdigest()[:16]
    return f"\0kubi-launcher-{digest}"


def holder_address(state_dir: str) -> str:
    """Where the launcher takes requests for sandbox holders in new PID namespaces."""
    return launcher_address(state_dir) + "-holders"


def pod_address(sandbox_id: str) -> str:
    """The socket of a pod's shim (its sandbox holder)."""
    return f"\0kubi-pod-{sandbox_id}"


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def peer_allowed(sock: socket.socket) -> bool:
    """Only root, or the user the runtime itself runs as, may connect."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid in (0, os.getuid())


def read_line(sock: socket.socket, limit: int = 1 << 20, *, with_fds: bool = True
              ) -> tuple[bytes, list[int]]:
    """A blocking read of one line and any descriptors sent along with it
    (unless `with_fds` is false: a plain recv is cheaper in a fresh fork)."""
    data, fds = b"", []
    while not data.endswith(b"\n"):
        if with_fds:
            chunk, new_fds, _flags, _addr = socket.recv_fds(sock, 65536, 16)
            fds.extend(new_fds)
        else:
            chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
        if len(data) > limit:
            raise ValueError("request too large")
    return data, fds
