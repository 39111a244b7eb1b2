"""The Linux system calls the host runtime needs that Python 3.11 lacks.

`setns`, `unshare`, `mount`, `umount2` and `prctl` are called through libc
with ctypes; the rest of the module reads /proc: a process's start time (so a
recorded pid is only trusted while it still names the same process) and the
mount table. Everything here is synchronous and cheap, so it is safe to call
both from the event loop and from a freshly forked child before exec.

Much of it runs in forks of the launcher (every pod's holder, every
container before its exec), where each page of the heap that Python
writes is first copied, some 3 µs apiece: reading /proc goes through
os.open and os.read rather than file objects, and signal dispositions are
set without the enum conversions of `signal.signal`, each of which would
cost such a fork a hundred copied pages.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # no stubs; see set_signal
import contextlib
import ctypes
import errno
import os
import signal
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MS_SLAVE = 0x80000
MS_SHARED = 0x100000

MNT_DETACH = 0x2

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36

# /proc/<pid>/ns/<name> for each namespace a pod can hold.
NAMESPACE_FLAGS = {
    "net": CLONE_NEWNET,
    "uts": CLONE_NEWUTS,
    "ipc": CLONE_NEWIPC,
    "pid": CLONE_NEWPID,
    "mnt": CLONE_NEWNS,
}

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                        ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                        ctypes.c_ulong]

T = TypeVar("T")


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def _bytes(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def setns(fd: int, nstype: int = 0) -> None:
    _check(_libc.setns(fd, nstype), "setns")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def mount(source: str | None, target: str, fstype: str | None = None, flags: int = 0,
          data: str | None = None) -> None:
    result = _libc.mount(_bytes(source), os.fsencode(target), _bytes(fstype), flags,
                         _bytes(data))
    _check(result, f"mount {target}")


def umount(target: str, flags: int = MNT_DETACH) -> None:
    _check(_libc.umount2(os.fsencode(target), flags), f"umount {target}")


def prctl(option: int, arg: int) -> None:
    _check(_libc.prctl(option, arg, 0, 0, 0), "prctl")


def set_process_name(name: str) -> None:
    """The name `ps` shows (comm) of the calling thread, at most 15 bytes."""
    fd = os.open("/proc/thread-self/comm", os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, name.encode()[:15])
    finally:
        os.close(fd)


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    prctl(PR_SET_PDEATHSIG, sig)


def become_subreaper() -> None:
    """Orphaned descendants are re-parented to us (and reaped by us), not to init."""
    prctl(PR_SET_CHILD_SUBREAPER, 1)


# ---- signals ------------------------------------------------------------------------


def set_signal(signum: int, handler: Callable[[int, Any], None] | int) -> None:
    """`signal.signal` without turning the previous handler into an enum member."""
    _signal.signal(signum, handler)


def default_signals(*signums: int) -> None:
    for signum in signums:
        _signal.signal(signum, _signal.SIG_DFL)


def unblock_signals() -> None:
    """Empty the calling thread's signal mask (an exec'd program keeps it)."""
    _signal.pthread_sigmask(_signal.SIG_SETMASK, ())


# ---- files --------------------------------------------------------------------------


def read_all(fd: int) -> bytes:
    """Everything left to read from `fd`, until end of file."""
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def read_file(path: str) -> bytes:
    """A whole file, with plain os calls (no file object to build in a fork)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return read_all(fd)
    finally:
        os.close(fd)


# ---- processes ----------------------------------------------------------------------


def reaped() -> Iterator[tuple[int, int]]:
    """(pid, wait status) of every child that has ended, without blocking."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        yield pid, status


def process_start_time(pid: int, *, zombie: bool = False) -> int | None:
    """Field 22 of /proc/<pid>/stat (clock ticks after boot); None when gone
    or, unless `zombie`, a zombie (dead, only waiting to be reaped; a parent
    reading its own unreaped child may ask for its start time all the same).

    A pid together with its start time names one process for good: pids are
    reused, start times of reused pids differ.
    """
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, ProcessLookupError):
        return None
    try:
        data = os.read(fd, 4096)
    except ProcessLookupError:
        return None
    finally:
        os.close(fd)
    # The command name may hold spaces and parentheses; fields resume after the last ')'.
    fields = data[data.rindex(b")") + 2:].split()
    if fields[0] == b"Z" and not zombie:
        return None
    return int(fields[19])


def process_alive(pid: int | None, start_time: int | None) -> bool:
    if not pid or start_time is None:
        return False
    return process_start_time(pid) == start_time


def signal_process(pid: int | None, start_time: int | None, sig: int) -> bool:
    """Signal the process only while it is still the one recorded; True if sent."""
    if not process_alive(pid, start_time):
        return False
    assert pid is not None
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def open_pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return None


# ---- namespaces -------------------------------------------------------------------


def open_namespaces(pid: int, start_time: int, names: list[str]) -> dict[str, int]:
    """Open /proc/<pid>/ns/<name> for each name, checking afterwards that `pid`
    was still the recorded process (else the fds could belong to a newcomer)."""
    fds: dict[str, int] = {}
    try:
        for name in names:
            fds[name] = os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC)
        if process_start_time(pid) != start_time:
            raise ProcessLookupError(errno.ESRCH, f"process {pid} is gone")
    except BaseException:
        for fd in fds.values():
            os.close(fd)
        raise
    return fds


@contextlib.contextmanager
def in_netns(path: str) -> Iterator[None]:
    """Run the body with the calling thread in the network namespace at `path`.

    Only this thread moves, and only for the body; sockets created meanwhile
    stay in that namespace for their whole life, which is how a connection
    into a pod is made from the node.
    """
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            setns(target, CLONE_NEWNET)
        finally:
            os.close(target)
        try:
            yield
        finally:
            setns(own, CLONE_NEWNET)
    finally:
        os.close(own)


def call_in_netns(path: str, fn: Callable[[], T]) -> T:
    with in_netns(path):
        return fn()


# ---- mounts -----------------------------------------------------------------------


def _unescape(field: str) -> str:
    # mountinfo writes space, tab, newline and backslash as \ooo.
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        code = field[i + 1:i + 4]
        if field[i] == "\\" and len(code) == 3 and code.isdigit():
            out.append(chr(int(code, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mount_points(pid: str = "self") -> list[tuple[str, str]]:
    """(mount point, optional fields such as `shared:5`) in mount order."""
    result = []
    with open(f"/proc/{pid}/mountinfo") as f:
        for line in f:
            parts = line.split()
            sep = parts.index("-")
            result.append((_unescape(parts[4]), " ".join(parts[6:sep])))
    return result


def is_mount_point(path: str) -> bool:
    path = os.path.realpath(path)
    return any(point == path for point, _ in mount_points())


def mounts_under(path: str) -> list[str]:
    """Mount points at or below `path`, deepest first (the order to unmount them)."""
    path = os.path.realpath(path)
    prefix = path.rstrip("/") + "/"
    found = [p for p, _ in mount_points() if p == path or p.startswith(prefix)]
    return sorted(set(found), key=lambda p: (p.count("/"), p), reverse=True)


def ensure_tmpfs(path: str, options: str = "mode=0700", *, executable: bool = False) -> None:
    """Make `path` a tmpfs with shared propagation, unless it is a mount point
    already: one an earlier run left keeps its content, which is how a
    restarted agent finds what its predecessor recorded. For what a reboot
    ends anyway (records of processes, links and mounts; pods' directories),
    as containerd keeps its state under /run.

    Mount namespaces created later copy the mounts below `path`; as these are
    shared, unmounting one on the node also removes its copies, so a pod's
    netns or tmpfs is not kept alive by another pod's container. Programs
    cannot be run from it unless `executable` (pods run scripts from their
    volumes)."""
    path = os.path.realpath(path)
    if not any(p == path for p, _ in mount_points()):
        flags = MS_NOSUID | MS_NODEV | (0 if executable else MS_NOEXEC)
        mount("tmpfs", path, "tmpfs", flags, options)
    mount(None, path, None, MS_SHARED)


def unmount_tree(path: str) -> None:
    """Detach every mount at or below `path`; missing ones are fine."""
    for point in mounts_under(path):
        with contextlib.suppress(OSError):
            umount(point, MNT_DETACH)
