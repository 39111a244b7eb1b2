"""Specification of the API benchmark's parts (bench/api.py, bench/apibench/).

The arithmetic (percentiles, aggregation, verdicts, profile folding) is
checked on plain data; the client is checked end to end against the floor
server over real TLS with a client certificate, in-process and through the
worker processes. Nothing here measures speed.
"""

from __future__ import annotations

import asyncio
import cProfile
import math
import os
import pstats
import sys
import time
from pathlib import Path

import pytest
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from apibench import load, profiling, report, servers
from apibench.load import CREATE, GET, LIST, Phase, WorkerResult

# ------------------------------------------------------------------ report

def test_percentile_is_nearest_rank() -> None:
    values = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert report.percentile(values, 50) == 3.0
    assert report.percentile(values, 99) == 5.0
    assert report.percentile(values, 0) == 1.0
    assert report.percentile(list(range(1, 101)), 99) == 99
    assert math.isnan(report.percentile([], 50))


def test_aggregate_adds_workers_over_the_shared_wall_time() -> None:
    a = WorkerResult(latencies=[0.001] * 50, finished=10.5, cpu=0.25)
    b = WorkerResult(latencies=[0.003] * 50, errors=2, first_error="HTTP 500 on create",
                     finished=11.0, cpu=0.25)
    row = report.aggregate("create", "kubi", 8, 10.0, [a, b], server_cpu_seconds=0.8,
                           busy_seconds=1.5)
    assert row.requests == 100 and row.errors == 2 and row.procs == 2
    assert row.seconds == pytest.approx(1.0)
    assert row.rate == pytest.approx(100.0)
    assert row.p50_ms == pytest.approx(1.0) and row.p99_ms == pytest.approx(3.0)
    assert row.client_cpu == pytest.approx(0.5) and row.server_cpu == pytest.approx(0.8)
    assert row.first_error == "HTTP 500 on create"
    assert row.other_cpu == pytest.approx(0.2)
    assert row.server_us == pytest.approx(8000.0)


def test_other_cpu_is_what_the_machine_did_besides_us() -> None:
    assert report.other_cpu(3.0, 2.0, 2.0) == pytest.approx(0.5)
    # Tick rounding can make our share exceed the machine's: never negative.
    assert report.other_cpu(1.9, 2.0, 1.0) == 0.0
    assert report.other_cpu(1.0, 0.0, 0.0) == 0.0


def _row(concurrency: int = 64, procs: int = 1, client: float = 0.3, server: float = 0.3) -> report.Row:
    return report.Row("get", "kubi", concurrency, procs, 1000, 0, 1.0, 1.0, 2.0, client, server)


def test_bound_by_reads_where_the_cpu_went() -> None:
    assert report.bound_by(_row(concurrency=1), cpus=2) == "latency (1 in flight)"
    watch = report.Row("watch (after send)", "kubi", 100, 2, 1000, 0, 1.0, 1.0, 2.0, 0.9, 0.9)
    assert report.bound_by(watch, cpus=2) == "paced creates"
    assert report.bound_by(_row(server=0.97), cpus=2) == "server CPU"
    assert report.bound_by(_row(server=1.6), cpus=2) == "server CPU (threads)"
    assert report.bound_by(_row(client=0.95), cpus=2) == "client CPU"
    assert report.bound_by(_row(procs=2, client=0.95, server=0.8), cpus=2) == "machine CPU (shared)"
    assert report.bound_by(_row(), cpus=2) == "waiting (latency, I/O)"


def test_format_row_has_every_column() -> None:
    line = report.format_row(_row(server=0.97), cpus=2)
    assert line.split()[:5] == ["get", "kubi", "64", "1", "1000"]
    assert "97%" in line and line.endswith("server CPU")


def test_targets_pass_miss_and_direction() -> None:
    fast = report.Target("creates/s", 2500, 2400, "/s", "2,391/s")
    slow = report.Target("create p99", 70, 50, "ms", "68 ms", higher_is_better=False)
    unknown = report.Target("watch p99", math.nan, 50, "ms", "n/a", higher_is_better=False)
    assert fast.met and not slow.met and not unknown.met
    assert fast.format().lstrip().startswith("PASS") and "≥ 2400" in fast.format()
    assert slow.format().lstrip().startswith("MISS") and "≤ 50" in slow.format()


def test_ratio() -> None:
    assert report.ratio(2400, 10000) == "0.24"
    assert report.ratio(1, 0) == "n/a"
    assert report.ratio(math.nan, 3) == "n/a"


def test_watch_delays_and_missing_pairs() -> None:
    received = [[("a", 1.010), ("b", 2.030)], [("a", 1.020)]]
    sent = {"a": 1.0, "b": 2.0}
    delays = sorted(report.watch_delays(received, sent))
    assert delays == pytest.approx([0.010, 0.020, 0.030])
    assert report.missing_pairs(received, sent) == 1


# ------------------------------------------------------------------ profiling

def test_fold_raw_stacks_counts_own_and_cumulative_once_per_sample() -> None:
    raw = (
        "thread (1): MainThread;run (asyncio/base_events.py:10);handle (kubi/h.py:5);"
        "encode (kubi/e.py:3) 6\n"
        "thread (1): MainThread;run (asyncio/base_events.py:10);handle (kubi/h.py:7) 3\n"
        "thread (2): kubi-sqlite-writer;commit (kubi/store.py:9);commit (kubi/store.py:12) 1\n"
        "garbage line\n"
    )
    profile = profiling.fold_raw_stacks(raw, "create")
    assert profile.total == 10
    assert profile.own["encode (kubi/e.py)"] == 6
    assert profile.own["handle (kubi/h.py)"] == 3
    assert profile.cumulative["handle (kubi/h.py)"] == 9
    # A recursive function is counted once per sample, not once per frame.
    assert profile.cumulative["commit (kubi/store.py)"] == 1
    assert profile.threads == {"MainThread": 9, "kubi-sqlite-writer": 1}
    # Every main-thread sample runs under the loop: it says nothing, so it is left out.
    assert "run (asyncio/base_events.py)" in profile.trunk
    assert "handle (kubi/h.py)" in profile.trunk
    assert "encode (kubi/e.py)" not in profile.trunk
    text = profiling.format_profile(profile, top=2)
    assert "MainThread 90%" in text and "60.0%  encode (kubi/e.py)" in text
    assert "own time by area: kubi 100%" in text


def test_area_groups_functions_by_package() -> None:
    assert profiling.area("Registry.create (kubi/apiserver/rest.py)") == "kubi/apiserver"
    assert profiling.area("SSLObject.read (ssl.py)") == "ssl"
    assert profiling.area("RequestHandler.start (aiohttp/web_protocol.py)") == "aiohttp"
    assert profiling.area("uuid4 (uuid.py)") == "uuid"


def test_cprofile_stats_become_the_same_profile(tmp_path: Path) -> None:
    def busy() -> int:
        return sum(i * i for i in range(20000))

    profiler = cProfile.Profile()
    profiler.enable()
    busy()
    profiler.disable()
    profiler.dump_stats(str(tmp_path / "p.prof"))
    profile = profiling.cprofile_profile(pstats.Stats(str(tmp_path / "p.prof")), "get")
    assert profile.total > 0
    assert any(name.startswith("busy (") for name in profile.cumulative)
    assert "top 25 by own time" in profiling.format_profile(profile)


def test_format_profile_without_samples() -> None:
    empty = profiling.Profile("create", "py-spy", 0, error="permission denied")
    assert "no samples: permission denied" in profiling.format_profile(empty)


# ------------------------------------------------------------------ servers

def test_proc_readings_of_this_process() -> None:
    assert servers.rss_mb(os.getpid()) > 1
    assert servers.cpu_seconds(os.getpid()) > 0
    before = servers.machine_busy_seconds()
    sum(i * i for i in range(300000))
    assert servers.machine_busy_seconds() >= before > 0


@pytest.fixture
def cluster_dir(tmp_path: Path) -> Path:
    """A data dir with kubi's PKI and admin kubeconfig, as `kubi up` leaves it."""
    from kubi.apiserver.pki import PKI, serving_hosts
    from kubi.cli.kubeconfig import write_admin_kubeconfig

    pki = PKI(tmp_path / "pki")
    pki.ensure_ca()
    pki.issue("apiserver", common_name="kube-apiserver", server=True, hosts=serving_hosts())
    write_admin_kubeconfig(pki, tmp_path / "kubeconfig.yaml", "https://127.0.0.1:1")
    return tmp_path


def _client_tls(cluster_dir: Path):  # -> ssl.SSLContext
    from kubi.client.client import KubeConfig

    return KubeConfig.load(cluster_dir / "kubeconfig.yaml").ssl_context()


async def _serve(app: web.Application, cluster_dir: Path) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = servers.free_port()
    site = web.TCPSite(runner, "127.0.0.1", port,
                       ssl_context=servers.floor_tls_context(cluster_dir / "pki"))
    await site.start()
    return runner, f"https://127.0.0.1:{port}"


async def test_phases_against_the_floor_server_over_client_tls(cluster_dir: Path) -> None:
    runner, base = await _serve(servers.floor_app(), cluster_dir)
    created: list[str] = []
    try:
        async with load.new_session(_client_tls(cluster_dir), 4) as session:
            await load.warm_up(session, base, 4)
            now = time.monotonic
            results = []
            for op in (CREATE, GET, LIST):
                phase = Phase(op, "bench", 10, 5.0, prefix="t")
                results.append(await load.run_phase(
                    session, base, phase, concurrency=4, start_at=now(),
                    indices=range(0, 10, 2), created=created))
    finally:
        await runner.cleanup()
    for result in results:
        assert len(result.latencies) == 5 and result.errors == 0
        assert result.cpu >= 0 and result.finished > 0
    assert sorted(created) == ["t-0", "t-2", "t-4", "t-6", "t-8"]


async def test_phase_counts_unexpected_statuses_as_errors(cluster_dir: Path) -> None:
    async def unavailable(request: web.Request) -> web.Response:
        return web.Response(status=503)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", unavailable)
    runner, base = await _serve(app, cluster_dir)
    created: list[str] = []
    try:
        async with load.new_session(_client_tls(cluster_dir), 1) as session:
            result = await load.run_phase(session, base, Phase(CREATE, "bench", 3, 5.0),
                                          concurrency=1, start_at=time.monotonic(),
                                          indices=range(3), created=created)
    finally:
        await runner.cleanup()
    assert result.errors == 3 and not result.latencies and not created
    assert result.first_error == "HTTP 503 on create"


async def test_watch_events_records_each_watchers_arrivals(cluster_dir: Path) -> None:
    async def stream(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        for name in ("a", "b", "c"):
            await resp.write(b'{"type":"ADDED","object":{"metadata":{"name":"%s"}}}\n'
                             % name.encode())
        await asyncio.sleep(5)
        return resp

    app = web.Application()
    app.router.add_get("/{tail:.*}", stream)
    runner, base = await _serve(app, cluster_dir)
    ready: list[bool] = []
    try:
        async with load.new_session(_client_tls(cluster_dir), 3, read_timeout=None) as session:
            received = await load.watch_events(
                session, base + "/w", watchers=3, expected=3,
                deadline=time.monotonic() + 3, on_ready=lambda: ready.append(True))
    finally:
        await runner.cleanup()
    assert ready == [True]
    assert [[name for name, _ in events] for events in received] == [["a", "b", "c"]] * 3


def test_worker_pool_drives_the_floor_process(cluster_dir: Path) -> None:
    floor = servers.FloorProcess(cluster_dir / "pki", servers.free_port())
    floor.start()
    pool = load.WorkerPool(2, cluster_dir / "kubeconfig.yaml")
    try:
        pool.open(f"https://127.0.0.1:{floor.port}", 4, 2)
        start_at, results = pool.run(Phase(CREATE, "bench", 40, 5.0, prefix="p"), 4, 2)
        row = report.aggregate("create", "floor", 4, start_at, results, 0.0)
    finally:
        pool.close()
        floor.stop()
    assert row.procs == 2 and row.requests == 40 and row.errors == 0
    assert row.rate > 0
