"""The cluster under test: one `kubi up --sim-nodes N` and the process it supervises.

`SimCluster` starts kubi on a private data dir and a free loopback port, waits
for /readyz, and finds the components child (controller manager, scheduler
and simulated nodes in one process) through /proc/<pid>/task/*/children, so
CPU time and memory can be read per process. `Usage` snapshots are taken at
the edges of a phase; `Spent` is their difference, in cores. Only the PID the
benchmark started is signalled; kubi stops its own child.
"""

from __future__ import annotations

import signal
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from apibench.servers import cpu_seconds, free_port, machine_busy_seconds, readyz_ok, rss_mb

POLL = 0.05


class ClusterError(RuntimeError):
    """kubi did not start as the benchmark needs it."""


@dataclass(frozen=True)
class Usage:
    """CPU seconds consumed so far, per process and by the whole machine."""

    at: float
    api: float
    components: float
    machine: float


@dataclass(frozen=True)
class Spent:
    """What a phase cost: wall seconds, and cores kept busy on average."""

    seconds: float
    api_cores: float
    components_cores: float
    other_cores: float

    @classmethod
    def between(cls, before: Usage, after: Usage) -> Spent:
        seconds = max(after.at - before.at, 1e-9)
        api = after.api - before.api
        components = after.components - before.components
        other = max(0.0, after.machine - before.machine - api - components)
        return cls(seconds, api / seconds, components / seconds, other / seconds)

    def format(self) -> str:
        return (f"API server {self.api_cores * 100:4.0f}% of a core "
                f"({self.api_cores * self.seconds:5.1f} CPU s), components "
                f"{self.components_cores * 100:4.0f}% "
                f"({self.components_cores * self.seconds:5.1f} CPU s), "
                f"rest of the machine {self.other_cores * 100:3.0f}%")


def memory_mb(pid: int, field: str) -> float:
    """A memory figure from /proc/<pid>/status (VmRSS, VmHWM, ...), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


class SimCluster:
    """`kubi up --sim-nodes N`, owned by the benchmark from start to stop."""

    def __init__(self, work: Path, sim_nodes: int) -> None:
        self.work = work
        self.data_dir = work / "data"
        self.kubeconfig = work / "kubeconfig.yaml"
        self.log_path = work / "kubi.out"
        self.sim_nodes = sim_nodes
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise ClusterError("kubi is not running")
        return self._proc.pid

    def start(self, timeout: float = 60.0) -> float:
        """Start kubi; return the seconds until /readyz answers 200."""
        self.work.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        argv = [sys.executable, "-m", "kubi", "up", "--data-dir", str(self.data_dir),
                "--port", str(self.port), "--bind-address", "127.0.0.1",
                "--kubeconfig", str(self.kubeconfig), "--sim-nodes", str(self.sim_nodes)]
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # /readyz is public; the CA does not exist yet
        started = time.monotonic()
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True)
        while not (readyz_ok(self.port, context) and self.kubeconfig.exists()):
            if self._proc.poll() is not None:
                raise ClusterError(f"kubi up exited with {self._proc.returncode}")
            if time.monotonic() - started > timeout:
                self.stop()
                raise ClusterError(f"kubi was not ready within {timeout:.0f}s")
            time.sleep(POLL)
        return time.monotonic() - started

    def components_pid(self, timeout: float = 10.0) -> int:
        """The child running the controllers, scheduler and simulated nodes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for child in self._children():
                try:
                    cmdline = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                if b"components" in cmdline:
                    return child
            time.sleep(POLL)
        raise ClusterError("kubi up runs no components process")

    def _children(self) -> list[int]:
        pids: list[int] = []
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            try:
                pids += [int(p) for p in (task / "children").read_text().split()]
            except OSError:
                continue
        return pids

    def usage(self) -> Usage:
        return Usage(time.monotonic(), cpu_seconds(self.pid),
                     cpu_seconds(self.components_pid()), machine_busy_seconds())

    def memory(self) -> dict[str, tuple[float, float]]:
        """(RSS, peak RSS) in MiB of the API server and of the components process."""
        return {name: (rss_mb(pid), memory_mb(pid, "VmHWM"))
                for name, pid in (("API server", self.pid),
                                  ("components", self.components_pid()))}

    def stop(self, timeout: float = 20.0) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
