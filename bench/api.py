"""API server benchmark: kubi against the Python HTTP floor and the disk.

Starts its own `kubi up` on a temporary data dir (timing start to /readyz and
reading idle RSS), then drives it from separate client processes with create,
get and list of 1 KiB ConfigMaps at 1, 8 and 64 concurrent clients, and
measures how fast a watch event reaches 100 watchers. In the same run the same
client drives a bare aiohttp TLS server answering a fixed 201/200 (the floor
any Python server shares), and a raw SQLite loop measures one durable insert
per transaction. Prints the table, the ratios and the targets (informational:
a miss never fails the run). `--profile` samples kubi during the 64-client
create and get phases and prints its hot spots.

    python bench/api.py [--procs 2] [--scale 1.0] [--profile] [--profiler auto]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson
from apibench.load import CREATE, GET, LIST, Phase, WorkerPool, configmap, new_session, warm_up
from apibench.profiling import CProfile, Profile, Profiler, PySpy, format_profile
from apibench.report import (
    HEADER,
    Row,
    Target,
    aggregate,
    format_row,
    missing_pairs,
    other_cpu,
    percentile,
    ratio,
    watch_delays,
)
from apibench.servers import (
    FloorProcess,
    KubiProcess,
    ServerError,
    cpu_seconds,
    free_port,
    machine_busy_seconds,
    rss_mb,
)
from store_raw import raw_insert_rate

NAMESPACE, WATCH_NAMESPACE = "bench", "bench-watch"
SETTLE_SECONDS = 2.0
PHASE_SECONDS, LIST_SECONDS = 8.0, 5.0
WATCHERS, WATCH_EVENTS, WATCH_RATE = 100, 200, 50.0


@dataclass(frozen=True)
class Plan:
    concurrency: int
    creates: int
    gets: int
    lists: int


PLANS = (Plan(1, 400, 2000, 200), Plan(8, 3000, 8000, 500), Plan(64, 8000, 24000, 1000))


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.cpus = os.cpu_count() or 1
        self.rows: list[Row] = []
        self.check_rows: list[Row] = []
        self.profiles: list[Profile] = []
        self.facts: dict[str, float] = {}
        self.kubi = self._kubi_process()
        self.profiler: Profiler | None = None
        self.pool: WorkerPool | None = None
        self.floor: FloorProcess | None = None
        self._run = 0

    def _kubi_process(self) -> KubiProcess:
        data_dir, port = self.work / "data", self.args.port or free_port()
        if not self.args.profile or self._profiler_tool() == "py-spy":
            return KubiProcess(data_dir, port)
        wrapper = Path(__file__).resolve().parent / "apibench" / "profiled.py"
        env = {**os.environ, "KUBI_BENCH_PROFILE_DIR": str(self.work)}
        return KubiProcess(data_dir, port, command=[sys.executable, str(wrapper)], env=env)

    def _profiler_tool(self) -> str:
        if self.args.profiler != "auto":
            return self.args.profiler
        return "py-spy" if shutil.which("py-spy") else "cprofile"

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.kubi.port}"

    # ------------------------------------------------------------ the run

    def run(self) -> None:
        self.facts["startup_s"] = self.kubi.start()
        time.sleep(SETTLE_SECONDS)
        self.facts["idle_rss_mb"] = rss_mb(self.kubi.pid)
        progress(f"kubi ready in {self.facts['startup_s']:.2f}s, idle RSS "
                 f"{self.facts['idle_rss_mb']:.0f} MB; raw SQLite inserts...")
        self.facts["sqlite_per_s"] = raw_insert_rate(self.work / "raw.db", 3.0, b"x" * 1024)
        if self.args.profile:
            tool = self._profiler_tool()
            self.profiler = (PySpy(self.kubi.pid, self.work) if tool == "py-spy"
                             else CProfile(self.kubi.signal, self.work))
        asyncio.run(self._create_namespaces())
        self.pool = WorkerPool(2, self.kubi.kubeconfig)
        procs, other = self.args.procs, 3 - self.args.procs
        for plan in self._plans():
            self._kubi_phases(plan, procs, self.rows, profile=plan.concurrency == 64)
        self._watch_phase()
        self._kubi_phases(self._plans()[-1], other, self.check_rows, lists=False)
        self.floor = FloorProcess(self.kubi.data_dir / "pki", free_port())
        self.floor.start()
        for plan in self._plans():
            self._floor_phases(plan, procs, self.rows)
        self._floor_phases(self._plans()[-1], other, self.check_rows)
        self.floor.stop()
        self._restart()

    def _plans(self) -> list[Plan]:
        scale = self.args.scale
        return [Plan(p.concurrency, max(p.concurrency, round(p.creates * scale)),
                     max(p.concurrency, round(p.gets * scale)),
                     max(p.concurrency, round(p.lists * scale))) for p in PLANS]

    def _kubi_phases(self, plan: Plan, procs: int, into: list[Row], *, profile: bool = False,
                     lists: bool = True) -> None:
        procs = min(procs, plan.concurrency)
        assert self.pool is not None
        self.pool.open(self.base, plan.concurrency, procs)
        self._run += 1
        prefix = f"cm{self._run}-c{plan.concurrency}-p{procs}"
        phases = [("create", Phase(CREATE, NAMESPACE, plan.creates, PHASE_SECONDS, prefix)),
                  ("get", Phase(GET, NAMESPACE, plan.gets, PHASE_SECONDS))]
        if lists:
            phases.append(("list (limit=500)", Phase(LIST, NAMESPACE, plan.lists, LIST_SECONDS)))
        for label, phase in phases:
            profiled = profile and self.profiler is not None and phase.op != LIST
            if profiled:
                assert self.profiler is not None
                self.profiler.begin()
            row = self._measure(label, "kubi", self.kubi.pid, phase, plan.concurrency, procs)
            into.append(row)
            if profiled:
                assert self.profiler is not None
                self.profiles.append(self.profiler.end(f"{label} at {plan.concurrency} clients"))
                row.op += " *"

    def _floor_phases(self, plan: Plan, procs: int, into: list[Row]) -> None:
        assert self.pool is not None and self.floor is not None
        procs = min(procs, plan.concurrency)
        base = f"https://127.0.0.1:{self.floor.port}"
        self.pool.open(base, plan.concurrency, procs)
        for label, phase in (("POST -> 201", Phase(CREATE, NAMESPACE, plan.gets, PHASE_SECONDS)),
                             ("GET -> 200", Phase(GET, NAMESPACE, plan.gets, PHASE_SECONDS))):
            into.append(self._measure(label, "floor", self.floor.pid, phase, plan.concurrency, procs))

    def _measure(self, label: str, target: str, pid: int, phase: Phase, concurrency: int,
                 procs: int) -> Row:
        assert self.pool is not None
        cpu, busy = cpu_seconds(pid), machine_busy_seconds()
        start_at, results = self.pool.run(phase, concurrency, procs)
        row = aggregate(label, target, concurrency, start_at, results, cpu_seconds(pid) - cpu,
                        machine_busy_seconds() - busy)
        progress(format_row(row, self.cpus))
        if row.first_error:
            progress(f"  first error: {row.first_error}")
        return row

    async def _create_namespaces(self) -> None:
        async with self._session() as session:
            for name in (NAMESPACE, WATCH_NAMESPACE):
                body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
                async with session.post(self.base + "/api/v1/namespaces", json=body) as resp:
                    if resp.status not in (201, 409):
                        raise ServerError(f"cannot create namespace {name}: HTTP {resp.status} "
                                          f"{(await resp.text())[:300]}")

    def _session(self) -> aiohttp.ClientSession:
        from kubi.client.client import KubeConfig

        return new_session(KubeConfig.load(self.kubi.kubeconfig).ssl_context(), 16)

    # ------------------------------------------------------------ watch

    def _watch_phase(self) -> None:
        assert self.pool is not None
        collection = f"{self.base}/api/v1/namespaces/{WATCH_NAMESPACE}/configmaps"
        rv = asyncio.run(self._resource_version(collection))
        events = max(10, round(WATCH_EVENTS * self.args.scale))
        names = [f"watched-{i}" for i in range(events)]
        sent: dict[str, float] = {}
        answered: dict[str, float] = {}
        window = events / WATCH_RATE
        cpu, busy = cpu_seconds(self.kubi.pid), machine_busy_seconds()
        received, client_cpu = self.pool.watch(
            f"{collection}?watch=true&resourceVersion={rv}", watchers=WATCHERS,
            expected=events, seconds=window + 10,
            while_watching=lambda: asyncio.run(self._paced_creates(collection, names, sent,
                                                                   answered)))
        server_cpu = cpu_seconds(self.kubi.pid) - cpu
        other = other_cpu(machine_busy_seconds() - busy, server_cpu + client_cpu, window)
        missing = missing_pairs(received, names)
        self.facts["watch_created"] = len(answered)
        for label, reference in (("watch (after send)", sent), ("watch (after reply)", answered)):
            delays = watch_delays(received, reference)
            row = Row(label, "kubi", WATCHERS, self.pool.size, len(delays), missing, window,
                      1000 * percentile(delays, 50), 1000 * percentile(delays, 99),
                      client_cpu / window, server_cpu / window, other_cpu=other)
            self.rows.append(row)
            progress(format_row(row, self.cpus))

    async def _resource_version(self, collection: str) -> str:
        async with self._session() as session, \
                session.get(collection, params={"limit": "1"}) as resp:
            return str(orjson.loads(await resp.read())["metadata"]["resourceVersion"])

    async def _paced_creates(self, collection: str, names: list[str], sent: dict[str, float],
                             answered: dict[str, float]) -> None:
        async with self._session() as session:
            await warm_up(session, self.base, 4)
            start = time.monotonic()

            async def create(i: int, name: str) -> None:
                await asyncio.sleep(max(0.0, start + i / WATCH_RATE - time.monotonic()))
                sent[name] = time.monotonic()
                async with session.post(collection, data=orjson.dumps(configmap(name)),
                                        headers={"Content-Type": "application/json"}) as resp:
                    await resp.read()
                    if resp.status == 201:
                        answered[name] = time.monotonic()

            await asyncio.gather(*(create(i, n) for i, n in enumerate(names)))

    # ------------------------------------------------------------ restart

    def _restart(self) -> None:
        self.facts["loaded_rss_mb"] = rss_mb(self.kubi.pid)
        self.facts["objects"] = self.facts.get("watch_created", 0) + sum(
            r.requests for r in self.rows + self.check_rows
            if r.target == "kubi" and r.op.startswith("create"))
        self.facts["shutdown_s"] = self.kubi.stop()
        self.profiler = None
        self.kubi = KubiProcess(self.kubi.data_dir, self.kubi.port)
        self.facts["restart_s"] = self.kubi.start()
        time.sleep(SETTLE_SECONDS / 2)
        self.facts["restart_rss_mb"] = rss_mb(self.kubi.pid)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
        if self.floor is not None:
            self.floor.stop()
        self.kubi.stop()


def progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def find(rows: list[Row], op: str, target: str, concurrency: int) -> Row | None:
    return next((r for r in rows if r.op.rstrip(" *") == op and r.target == target
                 and r.concurrency == concurrency), None)


def rate_of(row: Row | None) -> float:
    return row.rate if row is not None else math.nan


def us_of(row: Row | None) -> float:
    return row.server_us if row is not None else math.nan


def print_report(bench: Bench) -> None:
    facts, rows, cpus = bench.facts, bench.rows, bench.cpus
    print(f"\nkubi API benchmark: {cpus} CPUs, Python {platform.python_version()}, "
          f"aiohttp {aiohttp.__version__}, client in {bench.args.procs} process(es) "
          f"(one aiohttp session each, concurrency split evenly)")
    print(f"kubi up -> /readyz 200: {facts['startup_s']:.2f} s (fresh data dir); "
          f"idle RSS {facts['idle_rss_mb']:.1f} MB")
    print(f"raw SQLite, one durable insert per transaction (WAL, synchronous=FULL): "
          f"{facts['sqlite_per_s']:.0f} inserts/s\n")
    print(HEADER)
    for row in rows:
        print(format_row(row, cpus))
    print("CPU is in % of one core over the phase: client from getrusage in the client "
          "processes, server from /proc/<pid>/stat (all threads), other = the rest of the "
          "machine's busy time (/proc/stat), i.e. noise from unrelated processes;\n"
          "srv µs/req = server CPU per request, which compares kubi with the floor even "
          "where the client was the limit.")
    if any(r.op.endswith(" *") for r in rows):
        print("* measured while the profiler sampled kubi (slower than unprofiled)")
    print(f"watch: {WATCHERS} watchers, {max(10, round(WATCH_EVENTS * bench.args.scale))} creates "
          f"at {WATCH_RATE:g}/s; 'errors' counts (watcher, event) pairs never delivered")
    other = 3 - bench.args.procs
    print(f"\nclient check: the 64-client phases again from {other} client process(es)")
    print(HEADER)
    for row in bench.check_rows:
        print(format_row(row, cpus))

    create, get = find(rows, "create", "kubi", 64), find(rows, "get", "kubi", 64)
    post, fetch = find(rows, "POST -> 201", "floor", 64), find(rows, "GET -> 200", "floor", 64)
    watch = find(rows, "watch (after send)", "kubi", WATCHERS)
    print("\nratios at 64 clients:")
    print(f"  kubi creates/s / floor POSTs/s        {ratio(rate_of(create), rate_of(post))}")
    print(f"  kubi gets/s / floor GETs/s            {ratio(rate_of(get), rate_of(fetch))}")
    print(f"  kubi creates/s / raw SQLite inserts/s {ratio(rate_of(create), facts['sqlite_per_s'])}")
    print(f"  server CPU per create / per floor POST {ratio(us_of(create), us_of(post))}")
    print(f"  server CPU per get / per floor GET     {ratio(us_of(get), us_of(fetch))}")
    print(f"\nrestart with {facts['objects']:.0f} ConfigMaps: stop took {facts['shutdown_s']:.2f} s, "
          f"up -> /readyz {facts['restart_s']:.2f} s, RSS {facts['restart_rss_mb']:.1f} MB "
          f"(RSS under load was {facts['loaded_rss_mb']:.1f} MB)")
    targets = [
        Target("creates/s, 64 clients", rate_of(create), 2400, "/s", "2,391/s"),
        Target("gets/s, 64 clients", rate_of(get), 5500, "/s", "5,493/s"),
        Target("create p99, 64 clients", create.p99_ms if create else math.nan, 50, "ms",
               "68 ms", higher_is_better=False),
        Target(f"watch event to {WATCHERS} watchers p99", watch.p99_ms if watch else math.nan,
               50, "ms", "n/a", higher_is_better=False),
        Target("kubi up -> /readyz", facts["startup_s"], 1.0, "s", "3.4 s",
               higher_is_better=False),
        Target("idle RSS", facts["idle_rss_mb"], 80, "MB", "372 MB", higher_is_better=False),
    ]
    print("\ntargets (informational):")
    for target in targets:
        print(target.format())
    for profile in bench.profiles:
        print()
        print(format_profile(profile))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--procs", type=int, choices=(1, 2), default=1,
                        help="client processes for the main table (the other count is "
                             "measured too, as a client check)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply every request count (0.1 for a quick smoke run)")
    parser.add_argument("--port", type=int, default=0, help="kubi's port (default: a free one)")
    parser.add_argument("--profile", action="store_true",
                        help="profile kubi during the 64-client create and get phases")
    parser.add_argument("--profiler", choices=("auto", "py-spy", "cprofile"), default="auto")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kubi-bench-") as tmp:
        bench = Bench(args, Path(tmp))
        try:
            bench.run()
        except (ServerError, RuntimeError, OSError) as exc:
            print(f"benchmark could not run: {exc}", file=sys.stderr)
            return 1
        finally:
            bench.close()
        print_report(bench)
    return 0


if __name__ == "__main__":
    sys.exit(main())
