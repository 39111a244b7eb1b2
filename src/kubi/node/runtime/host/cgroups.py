"""Control groups for containers: memory and cpu limits, OOM kills, cleanup.

Each container gets the group `<root>/<pod uid>/<container id>` (the kubelet
uses kubepods/pod<uid>/<container id>), under the hierarchy's root so that
limits are the container's own. Both layouts are handled: cgroup v2 (one
tree, controllers enabled through `cgroup.subtree_control`) and v1 (a tree
per controller: memory, cpu and pids here). The memory group also tells,
after the fact, whether the kernel's OOM killer struck (`oom_kill` in
memory.events or memory.oom_control), which is how OOMKilled is reported.

Paths are plain strings joined by hand: each pod's shim makes its
containers' groups in a fresh fork, where every module it touches for the
first time (pathlib is a large one) costs copied pages.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from typing import TYPE_CHECKING

from kubi.node.runtime.host import linux

if TYPE_CHECKING:
    from pathlib import Path

CGROUP_MOUNT = "/sys/fs/cgroup"
CFS_PERIOD_US = 100_000
# The kernel refuses quotas below 1 ms.
MIN_CFS_QUOTA_US = 1_000
_V1_CONTROLLERS = ("memory", "cpu", "pids")


def _write(path: str, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _read(path: str) -> str:
    return linux.read_file(path).decode()


def _write_if_present(path: str, value: str) -> None:
    """Set a controller file; absent when the machine lacks (or does not
    delegate) that controller, in which case the limit is not applied."""
    with contextlib.suppress(FileNotFoundError):
        _write(path, value)


def _mkdirs(path: str) -> None:
    """`os.makedirs(path, exist_ok=True)`, in one call when the parent exists."""
    try:
        os.mkdir(path)
    except FileExistsError:
        pass
    except FileNotFoundError:
        os.makedirs(path, exist_ok=True)


def _read_counter(path: str, key: str) -> int:
    try:
        text = _read(path)
    except OSError:
        return 0
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == key:
            return int(value)
    return 0


def cpu_quota_us(millis: int, period_us: int = CFS_PERIOD_US) -> int:
    """CFS quota for a cpu limit in millicores: 500m is half of each period."""
    return max(MIN_CFS_QUOTA_US, millis * period_us // 1000)


_HIERARCHIES: dict[str, tuple[bool, list[str]]] = {}


def hierarchies(mount: str = CGROUP_MOUNT) -> tuple[bool, list[str]]:
    """Whether `mount` holds cgroup v2, and the directories of its hierarchies
    (the mount itself, or one per v1 controller kubi uses). Looked up once per
    process: they do not move, and the launcher looks before it forks any
    pod's shim, which then need not."""
    found = _HIERARCHIES.get(mount)
    if found is None:
        v2 = os.path.exists(f"{mount}/cgroup.controllers")
        bases = [mount] if v2 else [f"{mount}/{c}" for c in _V1_CONTROLLERS
                                    if os.path.isdir(f"{mount}/{c}")]
        found = _HIERARCHIES[mount] = (v2, bases)
    return found


class Cgroups:
    """The cgroup directories of one kubi installation (one `root` name)."""

    def __init__(self, root: str = "kubi", mount: str | Path = CGROUP_MOUNT) -> None:
        self.root = root
        self.mount = str(mount)
        self.v2, self._base_dirs = hierarchies(self.mount)
        self._memory_base = (self.mount if self.v2 else
                             next((b for b in self._base_dirs if b.endswith("/memory")), None))
        self.available = os.geteuid() == 0 and bool(self._base_dirs)

    # ---- paths ---------------------------------------------------------------------

    def dirs(self, relative: str) -> list[str]:
        """The directories of group `relative` (below the root), one per hierarchy."""
        return [f"{base}/{self.root}/{relative}" for base in self._base_dirs]

    def _memory_dir(self, relative: str) -> str | None:
        if self._memory_base is None:
            return None
        return f"{self._memory_base}/{self.root}/{relative}"

    def join_files(self, relative: str) -> list[str]:
        """The files a single-threaded process writes "0" into to join the group.

        With v1 these are the `tasks` files: moving the writing thread itself
        spares the kernel its global threadgroup lock, whose taking waits for
        an RCU grace period and holds back every fork on the machine meanwhile
        (10 ms and more; cgroup.procs costs that on each start). For a process
        of one thread the result is the same. v2 moves only whole processes."""
        name = "cgroup.procs" if self.v2 else "tasks"
        return [f"{d}/{name}" for d in self.dirs(relative)]

    # ---- lifecycle ---------------------------------------------------------------------

    def create(self, relative: str, *, memory_limit: int | None = None,
               cpu_millis: int | None = None) -> None:
        if not self.available:
            return
        if self.v2:
            self._enable_v2_controllers(relative)
        for d in self.dirs(relative):
            _mkdirs(d)
        if memory_limit:
            self._set_memory(relative, memory_limit)
        if cpu_millis:
            self._set_cpu(relative, cpu_millis)

    def _enable_v2_controllers(self, relative: str) -> None:
        # v2 only offers a controller to a group whose parent delegates it.
        wanted = set(_read(f"{self.mount}/cgroup.controllers").split())
        wanted &= {"memory", "cpu", "pids"}
        parts = [self.root, *(p for p in relative.split("/") if p)]
        current = self.mount
        for part in parts:
            enabled = set(_read(f"{current}/cgroup.subtree_control").split())
            missing = wanted - enabled
            if missing:
                with contextlib.suppress(OSError):
                    _write(f"{current}/cgroup.subtree_control",
                           " ".join(f"+{c}" for c in sorted(missing)))
            current = f"{current}/{part}"
            with contextlib.suppress(FileExistsError):
                os.mkdir(current)

    def _set_memory(self, relative: str, limit: int) -> None:
        d = self._memory_dir(relative)
        if d is None:
            return
        if self.v2:
            _write_if_present(f"{d}/memory.max", str(limit))
            with contextlib.suppress(OSError):
                _write_if_present(f"{d}/memory.swap.max", "0")
            return
        _write_if_present(f"{d}/memory.limit_in_bytes", str(limit))
        # Without swap accounting this file is absent; with it, no swapping either,
        # as the kubelet's default NoSwap behaviour.
        with contextlib.suppress(OSError):
            _write(f"{d}/memory.memsw.limit_in_bytes", str(limit))

    def _set_cpu(self, relative: str, millis: int) -> None:
        quota = cpu_quota_us(millis)
        if self.v2:
            _write_if_present(f"{self.mount}/{self.root}/{relative}/cpu.max",
                              f"{quota} {CFS_PERIOD_US}")
            return
        d = f"{self.mount}/cpu/{self.root}/{relative}"
        if os.path.isdir(d):
            _write(f"{d}/cpu.cfs_period_us", str(CFS_PERIOD_US))
            _write(f"{d}/cpu.cfs_quota_us", str(quota))

    def oom_kills(self, relative: str) -> int:
        """How many processes of the group the OOM killer has killed."""
        d = self._memory_dir(relative)
        if d is None:
            return 0
        if self.v2:
            return _read_counter(f"{d}/memory.events", "oom_kill")
        return _read_counter(f"{d}/memory.oom_control", "oom_kill")

    def members(self, relative: str) -> set[int]:
        """The group's processes as cgroup.procs lists them, in our PID namespace's
        numbers: 0 stands for one that has none there, such as a process of
        another PID namespace that is exiting right now."""
        found: set[int] = set()
        for d in self.dirs(relative):
            with contextlib.suppress(OSError):
                found.update(int(p) for p in _read(f"{d}/cgroup.procs").split())
        return found

    def kill_all(self, relative: str, timeout: float = 5.0) -> None:
        """SIGKILL whatever still runs in the group and wait until it is empty."""
        deadline = time.monotonic() + timeout
        while True:
            members = self.members(relative)
            if not members or time.monotonic() > deadline:
                return
            # Never signal 0: os.kill(0, ...) would hit our own process group.
            for pid in members - {0}:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.005)

    def remove(self, relative: str) -> None:
        """Remove the group, killing what is left in it."""
        if not self.available:
            return
        self.kill_all(relative)
        for d in self.dirs(relative):
            self._remove_tree(d)

    def remove_if_empty(self, relative: str) -> None:
        """Remove the group if no process or child group is left in it."""
        if not self.available:
            return
        for d in self.dirs(relative):
            with contextlib.suppress(OSError):
                os.rmdir(d)

    def _remove_tree(self, d: str) -> None:
        try:
            children = [e.path for e in os.scandir(d) if e.is_dir(follow_symlinks=False)]
        except (FileNotFoundError, NotADirectoryError):
            return
        for child in children:
            self._remove_tree(child)
        with contextlib.suppress(OSError):
            os.rmdir(d)

    def remove_root(self) -> None:
        """Kill everything below the root group and remove the whole subtree."""
        if not self.available:
            return
        for base in self._base_dirs:
            top = f"{base}/{self.root}"
            if not os.path.isdir(top):
                continue
            # Deepest groups first: a group is removable once its children are gone.
            for d, _, _ in sorted(os.walk(top), key=lambda entry: entry[0].count("/"),
                                  reverse=True):
                if d != top:
                    self.kill_all(os.path.relpath(d, top))
                with contextlib.suppress(OSError):
                    os.rmdir(d)
