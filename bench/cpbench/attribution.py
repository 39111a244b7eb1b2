"""Where each process's main thread spends a phase, by component, from py-spy samples.

`Sampler` runs `py-spy record --idle --format raw` against one PID (the
benchmark's own children only) for the length of a phase. `attribute` then
assigns every main-thread sample to one bucket by the first rule whose marker
appears in its stack: in the API server, the kind of request being served
(creates, status writes, bindings, watch delivery, the watch cache's decoding
of each write); in the components process, the component whose code is on
the stack (scheduler, simulated nodes, each controller) or the informers'
decoding of watch streams. Samples of a thread waiting in epoll count as idle,
so the shares add up to the wall time of the phase.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

IDLE = "idle"

API_RULES: tuple[tuple[str, str], ...] = (
    ("(kubi/apiserver/watch.py", "watch delivery"),
    ("(kubi/apiserver/cache.py", "watch cache (decoding writes, fan-out)"),
    ("bind (kubi/apiserver/subresources.py", "pods/binding"),
    ("handle (kubi/apiserver/subresources.py", "status writes"),
    ("Registry.create ", "creates"),
    ("Registry.patch ", "patches"),
    ("Registry.update", "updates"),
    ("Registry.delete", "deletes"),
    ("_list (kubi/apiserver", "lists"),
    ("_get (kubi/apiserver", "gets"),
    ("(kubi/store/", "store"),
    ("(aiohttp/", "HTTP and TLS"),
    ("(ssl.py", "HTTP and TLS"),
    ("(asyncio/sslproto.py", "HTTP and TLS"),
)

COMPONENT_RULES: tuple[tuple[str, str], ...] = (
    ("(kubi/scheduler/", "scheduler"),
    ("(kubi/node/", "simulated nodes"),
    ("(kubi/controllers/replicaset", "ReplicaSet controller"),
    ("(kubi/controllers/deployment/", "Deployment controller"),
    ("(kubi/controllers/statefulset/", "StatefulSet controller"),
    ("(kubi/controllers/garbagecollector", "garbage collector"),
    ("(kubi/controllers/gc_graph", "garbage collector"),
    ("(kubi/controllers/node", "node controllers"),
    ("(kubi/controllers/taint", "node controllers"),
    ("(kubi/controllers/event", "event recorder"),
    ("(kubi/controllers/", "other controllers"),
    ("Informer", "informers (watch decoding)"),
    ("(kubi/client/", "client requests"),
)


class Sampler:
    """py-spy recording one process, idle samples included."""

    def __init__(self, pid: int, out: Path, rate: int = 100) -> None:
        self.pid = pid
        self.out = out
        self.rate = rate
        self._proc: subprocess.Popen[bytes] | None = None

    def begin(self) -> None:
        self.out.unlink(missing_ok=True)
        self._proc = subprocess.Popen(
            ["py-spy", "record", "--pid", str(self.pid), "--format", "raw", "--threads",
             "--idle", "--nonblocking", "--rate", str(self.rate), "-o", str(self.out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)  # attaching takes a moment

    def end(self) -> str:
        """Stop sampling; the raw stacks, or "" when py-spy recorded nothing."""
        if self._proc is None:
            return ""
        self._proc.send_signal(signal.SIGINT)
        try:
            self._proc.wait(30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        return self.out.read_text() if self.out.exists() else ""


def attribute(raw: str, rules: tuple[tuple[str, str], ...]) -> Counter[str]:
    """Main-thread samples per bucket, from py-spy's raw (collapsed) output."""
    shares: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not count.isdigit() or "MainThread" not in frames[0]:
            continue
        shares[_bucket(frames, rules)] += int(count)
    return shares


def _bucket(frames: list[str], rules: tuple[tuple[str, str], ...]) -> str:
    if frames[-1].startswith(("EpollSelector.select", "select (selectors")):
        return IDLE
    stack = ";".join(frames)
    for marker, bucket in rules:
        if marker in stack:
            return bucket
    return "event loop and other"


def format_shares(label: str, shares: Counter[str]) -> str:
    total = sum(shares.values())
    if not total:
        return f"  {label}: no samples (is py-spy installed?)"
    parts = ", ".join(f"{bucket} {100 * n / total:.0f}%" for bucket, n in shares.most_common())
    return f"  {label} main thread: {parts}"
