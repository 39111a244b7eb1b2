"""From raw measurements to the printed report: pure functions on plain data.

A `Row` is one measured phase (operation, target, concurrency) aggregated
over the client workers: rate over the wall time from the agreed start to the
last worker's finish, nearest-rank p50/p99, and the CPU the client and the
server used, in cores. `bound_by` reads those CPU figures to say what limited
the rate; `Target` compares a figure with its goal. Nothing here fails the
run: a missed target is printed as MISS and the exit status stays 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from apibench.load import WorkerResult


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of unsorted values; nan when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Row:
    op: str
    target: str
    concurrency: int
    procs: int
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    client_cpu: float  # cores
    server_cpu: float  # cores
    first_error: str = ""
    other_cpu: float = 0.0  # cores busy outside the server and the client: noise

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def server_us(self) -> float:
        """Server CPU per request in µs: comparable even where the client was the limit."""
        return 1e6 * self.server_cpu / self.rate if self.rate > 0 else math.nan


def aggregate(op: str, target: str, concurrency: int, start_at: float,
              results: Sequence[WorkerResult], server_cpu_seconds: float,
              busy_seconds: float = 0.0) -> Row:
    """One row from the workers' results; `busy_seconds` is the whole machine's
    CPU time over the phase, so that what others used shows as `other_cpu`."""
    latencies = [lat for r in results for lat in r.latencies]
    seconds = max((r.finished for r in results), default=start_at) - start_at
    errors = sum(r.errors for r in results)
    return Row(
        op=op, target=target, concurrency=concurrency, procs=len(results),
        requests=len(latencies), errors=errors, seconds=seconds,
        p50_ms=1000 * percentile(latencies, 50), p99_ms=1000 * percentile(latencies, 99),
        client_cpu=sum(r.cpu for r in results) / seconds if seconds > 0 else 0.0,
        server_cpu=server_cpu_seconds / seconds if seconds > 0 else 0.0,
        first_error=next((r.first_error for r in results if r.first_error), ""),
        other_cpu=other_cpu(busy_seconds, server_cpu_seconds + sum(r.cpu for r in results),
                            seconds),
    )


def other_cpu(busy_seconds: float, ours_seconds: float, seconds: float) -> float:
    """Cores used by processes outside the measurement (never below zero)."""
    if seconds <= 0:
        return 0.0
    return max(0.0, busy_seconds - ours_seconds) / seconds


def bound_by(row: Row, cpus: int) -> str:
    """What limited a phase's rate, judged from where the CPU went."""
    if row.op.startswith("watch"):
        return "paced creates"
    if row.concurrency == 1:
        return "latency (1 in flight)"
    if row.server_cpu >= 0.9:
        return "server CPU" if row.server_cpu < 1.3 else "server CPU (threads)"
    if row.client_cpu >= 0.9 * row.procs:
        return "client CPU"
    if row.server_cpu + row.client_cpu + row.other_cpu >= 0.85 * cpus:
        return "machine CPU (shared)"
    return "waiting (latency, I/O)"


def watch_delays(received: Iterable[Sequence[tuple[str, float]]],
                 reference: dict[str, float]) -> list[float]:
    """Delay of every (watcher, event) pair after the event's reference instant."""
    delays: list[float] = []
    for events in received:
        for name, arrived in events:
            if name in reference:
                delays.append(arrived - reference[name])
    return delays


def missing_pairs(received: Sequence[Sequence[tuple[str, float]]], names: Iterable[str]) -> int:
    """(watcher, event) pairs that never arrived."""
    wanted = set(names)
    return sum(len(wanted - {name for name, _ in events}) for events in received)


HEADER = (f"{'operation':<22}{'target':<7}{'clients':>8}{'procs':>6}{'requests':>9}"
          f"{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>7}{'client CPU':>11}"
          f"{'server CPU':>11}{'other CPU':>10}{'srv µs/req':>11}  bound by")


def format_row(row: Row, cpus: int) -> str:
    return (f"{row.op:<22}{row.target:<7}{row.concurrency:>8}{row.procs:>6}{row.requests:>9}"
            f"{row.rate:>9.0f}{row.p50_ms:>9.2f}{row.p99_ms:>9.2f}{row.errors:>7}"
            f"{100 * row.client_cpu:>10.0f}%{100 * row.server_cpu:>10.0f}%"
            f"{100 * row.other_cpu:>9.0f}%{row.server_us:>11.0f}  {bound_by(row, cpus)}")


@dataclass(frozen=True)
class Target:
    what: str
    value: float
    goal: float
    unit: str
    upstream: str
    higher_is_better: bool = True

    @property
    def met(self) -> bool:
        if math.isnan(self.value):
            return False
        return self.value >= self.goal if self.higher_is_better else self.value <= self.goal

    def format(self) -> str:
        sign = "≥" if self.higher_is_better else "≤"
        mark = "PASS" if self.met else "MISS"
        return (f"  {mark}  {self.what:<34}{self.value:>9.1f} {self.unit:<9}"
                f"goal {sign} {self.goal:g} {self.unit:<9} upstream here: {self.upstream}")


def ratio(numerator: float, denominator: float) -> str:
    if denominator <= 0 or math.isnan(numerator) or math.isnan(denominator):
        return "n/a"
    return f"{numerator / denominator:.2f}"
