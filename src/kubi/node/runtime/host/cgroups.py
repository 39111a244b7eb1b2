"""Control groups for containers: memory and cpu limits, OOM kills, cleanup.

Each container gets the group `<root>/<pod uid>/<container id>` (the kubelet
uses kubepods/pod<uid>/<container id>), under the hierarchy's root so that
limits are the container's own. Both layouts are handled: cgroup v2 (one
tree, controllers enabled through `cgroup.subtree_control`) and v1 (a tree
per controller: memory, cpu and pids here). The memory group also tells,
after the fact, whether the kernel's OOM killer struck (`oom_kill` in
memory.events or memory.oom_control), which is how OOMKilled is reported.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

CGROUP_MOUNT = Path("/sys/fs/cgroup")
CFS_PERIOD_US = 100_000
# The kernel refuses quotas below 1 ms.
MIN_CFS_QUOTA_US = 1_000
_V1_CONTROLLERS = ("memory", "cpu", "pids")


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _write_if_present(path: Path, value: str) -> None:
    """Set a controller file; absent when the machine lacks (or does not
    delegate) that controller, in which case the limit is not applied."""
    if path.exists():
        _write(path, value)


def _read_counter(path: Path, key: str) -> int:
    try:
        text = path.read_text()
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


class Cgroups:
    """The cgroup directories of one kubi installation (one `root` name)."""

    def __init__(self, root: str = "kubi", mount: Path = CGROUP_MOUNT) -> None:
        self.root = root
        self.mount = mount
        self.v2 = (mount / "cgroup.controllers").exists()
        # The hierarchies' mount points, looked up once: they do not move.
        self._base_dirs = ([mount] if self.v2 else
                           [mount / c for c in _V1_CONTROLLERS if (mount / c).is_dir()])
        self.available = os.geteuid() == 0 and bool(self._base_dirs)

    # ---- paths ---------------------------------------------------------------------

    def _bases(self) -> list[Path]:
        return self._base_dirs

    def dirs(self, relative: str) -> list[Path]:
        """The directories of group `relative` (below the root), one per hierarchy."""
        return [base / self.root / relative for base in self._bases()]

    def _memory_dir(self, relative: str) -> Path | None:
        if self.v2:
            return self.mount / self.root / relative
        base = self.mount / "memory"
        return base / self.root / relative if base.is_dir() else None

    def join_files(self, relative: str) -> list[str]:
        """The files a single-threaded process writes "0" into to join the group.

        With v1 these are the `tasks` files: moving the writing thread itself
        spares the kernel its global threadgroup lock, whose taking waits for
        an RCU grace period and holds back every fork on the machine meanwhile
        (10 ms and more; cgroup.procs costs that on each start). For a process
        of one thread the result is the same. v2 moves only whole processes."""
        name = "cgroup.procs" if self.v2 else "tasks"
        return [str(d / name) for d in self.dirs(relative)]

    # ---- lifecycle ---------------------------------------------------------------------

    def create(self, relative: str, *, memory_limit: int | None = None,
               cpu_millis: int | None = None) -> None:
        if not self.available:
            return
        if self.v2:
            self._enable_v2_controllers(relative)
        for d in self.dirs(relative):
            d.mkdir(parents=True, exist_ok=True)
        if memory_limit:
            self._set_memory(relative, memory_limit)
        if cpu_millis:
            self._set_cpu(relative, cpu_millis)

    def _enable_v2_controllers(self, relative: str) -> None:
        # v2 only offers a controller to a group whose parent delegates it.
        wanted = set((self.mount / "cgroup.controllers").read_text().split())
        wanted &= {"memory", "cpu", "pids"}
        parts = [self.root, *Path(relative).parts]
        current = self.mount
        for part in parts:
            enabled = set((current / "cgroup.subtree_control").read_text().split())
            missing = wanted - enabled
            if missing:
                with contextlib.suppress(OSError):
                    _write(current / "cgroup.subtree_control",
                           " ".join(f"+{c}" for c in sorted(missing)))
            current = current / part
            current.mkdir(exist_ok=True)

    def _set_memory(self, relative: str, limit: int) -> None:
        d = self._memory_dir(relative)
        if d is None:
            return
        if self.v2:
            _write_if_present(d / "memory.max", str(limit))
            with contextlib.suppress(OSError):
                _write_if_present(d / "memory.swap.max", "0")
            return
        _write_if_present(d / "memory.limit_in_bytes", str(limit))
        # Without swap accounting this file is absent; with it, no swapping either,
        # as the kubelet's default NoSwap behaviour.
        with contextlib.suppress(OSError):
            _write(d / "memory.memsw.limit_in_bytes", str(limit))

    def _set_cpu(self, relative: str, millis: int) -> None:
        quota = cpu_quota_us(millis)
        if self.v2:
            _write_if_present(self.mount / self.root / relative / "cpu.max",
                              f"{quota} {CFS_PERIOD_US}")
            return
        d = self.mount / "cpu" / self.root / relative
        if d.is_dir():
            _write(d / "cpu.cfs_period_us", str(CFS_PERIOD_US))
            _write(d / "cpu.cfs_quota_us", str(quota))

    def oom_kills(self, relative: str) -> int:
        """How many processes of the group the OOM killer has killed."""
        d = self._memory_dir(relative)
        if d is None:
            return 0
        if self.v2:
            return _read_counter(d / "memory.events", "oom_kill")
        return _read_counter(d / "memory.oom_control", "oom_kill")

    def members(self, relative: str) -> set[int]:
        """The group's processes as cgroup.procs lists them, in our PID namespace's
        numbers: 0 stands for one that has none there, such as a process of
        another PID namespace that is exiting right now."""
        found: set[int] = set()
        for d in self.dirs(relative):
            with contextlib.suppress(OSError):
                found.update(int(p) for p in (d / "cgroup.procs").read_text().split())
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
        for base in self._bases():
            self._remove_tree(base / self.root / relative)

    def remove_if_empty(self, relative: str) -> None:
        """Remove the group if no process or child group is left in it."""
        if not self.available:
            return
        for base in self._bases():
            with contextlib.suppress(OSError):
                (base / self.root / relative).rmdir()

    def _remove_tree(self, d: Path) -> None:
        if not d.is_dir():
            return
        for child in d.iterdir():
            if child.is_dir():
                self._remove_tree(child)
        with contextlib.suppress(OSError):
            d.rmdir()

    def remove_root(self) -> None:
        """Kill everything below the root group and remove the whole subtree."""
        if not self.available:
            return
        for base in self._bases():
            top = base / self.root
            if not top.is_dir():
                continue
            for d in sorted((p for p in top.rglob("*") if p.is_dir()),
                            key=lambda p: len(p.parts), reverse=True):
                self.kill_all(str(d.relative_to(top)))
                with contextlib.suppress(OSError):
                    d.rmdir()
            with contextlib.suppress(OSError):
                top.rmdir()
