"""tmpfs mounts for memory-backed volumes (and bind mounts for disk-backed
emptyDirs), through mount(2) and umount2(2) directly.

Calling libc avoids a `mount` process per volume and gives errno-precise
failures. Whether a directory already carries a mount (so setup is idempotent
and teardown knows to unmount) is read from /proc/self/mountinfo, which, unlike
comparing device numbers, also sees bind mounts. All of this needs root (or
CAP_SYS_ADMIN); callers decide beforehand whether tmpfs is available.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os

_MNT_DETACH = 2
_MS_BIND = 0x1000
_libc: ctypes.CDLL | None = None


def _lib() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return _libc


def _check(result: int, what: str, path: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what} {path}: {os.strerror(code)}", path)


def mount_tmpfs(path: str, size_bytes: int | None = None) -> None:
    options = f"size={size_bytes}" if size_bytes else ""
    _check(_lib().mount(b"tmpfs", os.fsencode(path), b"tmpfs", ctypes.c_ulong(0),
                        ctypes.c_char_p(options.encode() if options else None)),
           "mount tmpfs on", path)


def bind(source: str, target: str) -> None:
    _check(_lib().mount(os.fsencode(source), os.fsencode(target), None,
                        ctypes.c_ulong(_MS_BIND), None),
           f"bind {source} on", target)


def unmount(path: str) -> None:
    """Unmount `path`; a busy mount is detached lazily rather than left behind."""
    result = _lib().umount2(os.fsencode(path), 0)
    if result != 0 and ctypes.get_errno() == errno.EBUSY:
        result = _lib().umount2(os.fsencode(path), _MNT_DETACH)
    _check(result, "unmount", path)


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo.
    out, i = [], 0
    while i < len(field):
        digits = field[i + 1:i + 4]
        if field[i] == "\\" and len(digits) == 3 and digits.isdigit():
            out.append(chr(int(digits, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mount_type(path: str) -> str | None:
    """The filesystem type mounted exactly at `path`, or None if it is no mount point."""
    target = os.path.realpath(path)
    found: str | None = None
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                fields = left.split()
                if len(fields) >= 5 and _unescape(fields[4]) == target:
                    # The last entry wins: it is the mount on top.
                    found = right.split()[0] if right else ""
    except FileNotFoundError:
        return None
    return found


def is_mount_point(path: str) -> bool:
    return mount_type(path) is not None
