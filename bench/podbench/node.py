"""This machine as a node: `kubi up` as root and the processes it runs.

`NodeCluster` is `SimCluster` without simulated nodes, so `kubi up` runs this
machine as its node: beside the API server and the components child it
supervises the agent, which starts the host runtime's launcher (a fork
server in its own session, parent of every pod's holder, also the pod's
shim). The processes are found through /proc (children files and command
lines) and measured there: CPU seconds, RSS, and PSS for the launcher's
forks, which share most of their pages with it.
"""

from __future__ import annotations

import os
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from apibench.servers import cpu_seconds, rss_mb
from cpbench.cluster import POLL, ClusterError, SimCluster

AGENT_PORT = 10250
LAUNCHER_MODULE = "kubi.node.runtime.host.launcher"


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def cmdline(pid: int) -> list[str]:
    try:
        return [p.decode() for p in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if p]
    except OSError:
        return []


def children(pid: int) -> list[int]:
    found: list[int] = []
    for path in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(p) for p in path.read_text().split()]
        except OSError:
            continue
    return found


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        for child in children(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


def pss_mb(pid: int) -> float:
    """Proportional set size: shared pages counted once across the processes sharing them."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0.0
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass(frozen=True)
class RuntimeMemory:
    """The launcher and its holders, the pods' shims (containers left out)."""

    processes: int
    pss_mb: float


class NodeCluster(SimCluster):
    """`kubi up` with this machine as its only node."""

    def __init__(self, work: Path) -> None:
        super().__init__(work, sim_nodes=0)

    def agent_pid(self, timeout: float = 10.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for child in children(self.pid):
                argv = cmdline(child)
                if "kubi" in argv and "agent" in argv:
                    return child
            time.sleep(POLL)
        raise ClusterError("kubi up runs no agent (not root, or --no-controllers?)")

    def launcher_pids(self) -> list[int]:
        """The launcher serving this cluster and its forks (the pods' holders)."""
        state = str(self.data_dir / "agent" / "runtime")
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                argv = cmdline(int(entry.name))
                if LAUNCHER_MODULE in argv and state in argv:
                    found.append(int(entry.name))
        return found

    def agent_rss_mb(self) -> float:
        return rss_mb(self.agent_pid())

    def runtime_memory(self) -> RuntimeMemory:
        pids = self.launcher_pids()
        return RuntimeMemory(len(pids), sum(pss_mb(pid) for pid in pids))

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of each process on the pod start path."""
        spent = {"API server": cpu_seconds(self.pid),
                 "components": cpu_seconds(self.components_pid()),
                 "agent": cpu_seconds(self.agent_pid())}
        launcher = 0.0
        for pid in self.launcher_pids():
            try:
                launcher += cpu_seconds(pid)
            except OSError:
                continue  # a fork that just exited
        spent["launcher+forks"] = launcher
        return spent


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_table() -> dict[tuple[int, int], tuple[str, float]]:
    """Every process, keyed by PID and start time: its command name and CPU
    seconds, its reaped children's included.

    A process's own time comes from schedstat, in nanoseconds, summed over
    its threads (the API server's store writer, the agent's file system
    threads): the tick-based utime and stime of `stat` miss most of what a
    process spends in bursts of a few milliseconds, which is how a pod's
    shim works. Reaped children only show in `stat`."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            own = sum(int((task / "schedstat").read_text().split()[0])
                      for task in (entry / "task").iterdir()) / 1e9
        except (OSError, ValueError, IndexError):
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        key = (int(entry.name), int(fields[19]))
        table[key] = (comm, own + sum(int(f) for f in fields[13:15]) / _CLOCK_TICKS)
    return table


def cpu_by_process(before: dict[tuple[int, int], tuple[str, float]],
                   after: dict[tuple[int, int], tuple[str, float]],
                   roles: dict[int, str]) -> dict[str, float]:
    """CPU seconds spent between two tables, by role (known PIDs) or command name.

    Kernel threads appear by name without their number and current work
    ("kworker/u8"); a fork that exited is counted in its parent once reaped.
    """
    spent: dict[str, float] = {}
    for key, (comm, seconds) in after.items():
        previous = before.get(key)
        name = roles.get(key[0]) or re.sub(r"[:/]?\d+([-:].*)?$", "", comm)
        if name.startswith("python"):
            name = "other Python processes"
        used = max(0.0, seconds - (previous[1] if previous is not None else 0.0))
        spent[name] = spent.get(name, 0.0) + used
    return spent
