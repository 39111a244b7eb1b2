"""Control-plane benchmark: Deployments at scale, and API latency under node heartbeats.

Part 1 starts `kubi up --sim-nodes 100`, creates a 10,000-replica Deployment
and follows its status until every pod is Ready, then changes the image and
follows the rolling update to its end. It prints pods per second end to end,
the time of each milestone, and where the CPU went: the API server process
and the components child (controllers, scheduler, simulated nodes), read from
/proc. Part 2 starts `kubi up --sim-nodes 1000` (heartbeating every 10 s),
stores 30,000 pods bound to those nodes, waits for them to run, then times
single-object calls one at a time (GET and PATCH of a pod, GET of a node) and
prints their p99 and each process's memory. Targets are printed, never
enforced: the exit status is 0 unless the benchmark itself could not run.

    python bench/controlplane.py [--replicas 10000] [--nodes 100]
        [--heartbeat-nodes 1000] [--pods 30000] [--only deploy|heartbeat] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from apibench.report import percentile
from cpbench.attribution import API_RULES, COMPONENT_RULES, Sampler, attribute, format_shares
from cpbench.cluster import SimCluster, Spent

from kubi.api.errors import StatusError
from kubi.client.client import Client, Resource

PODS = Resource("", "v1", "pods", True, "Pod")
NODES = Resource("", "v1", "nodes", False, "Node")
NAMESPACES = Resource("", "v1", "namespaces", False, "Namespace")
DEPLOYMENTS = Resource("apps", "v1", "deployments", True, "Deployment")
NAMESPACE = "bench"
DEPLOYMENT = "scale"
STATUS_POLL = 0.25
PROGRESS_EVERY = 5.0
TARGET_SECONDS, TARGET_RATE = 20.0, 500.0
UPSTREAM_PODS, UPSTREAM_SECONDS = 1000, 50.0
LATENCY_TARGET_MS = 100.0

Obj = dict[str, Any]


def say(text: str = "") -> None:
    print(text, flush=True)


def deployment(replicas: int) -> Obj:
    labels = {"app": DEPLOYMENT}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": DEPLOYMENT, "namespace": NAMESPACE},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                         {"name": "app", "image": "nginx:1.14.2"}]}}}}


def bound_pod(name: str, node: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": "stored"}},
            "spec": {"nodeName": node, "containers": [{"name": "app", "image": "nginx:1.14.2"}]}}


def is_ready(obj: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


async def wait_for(check: Callable[[], Awaitable[bool]], timeout: float, what: str,
                   interval: float = 0.5) -> float:
    """Poll `check` until true; return the seconds it took (raise on timeout)."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"no {what} within {timeout:.0f}s")
        await asyncio.sleep(interval)
    return time.monotonic() - started


async def prepare(client: Client, nodes: int, timeout: float) -> float:
    """Wait for `nodes` Ready nodes and the bench namespace's default ServiceAccount."""

    async def all_ready() -> bool:
        listed = await client.list(NODES, label_selector="kubi.dev/sim=true")
        return sum(is_ready(n) for n in listed["items"]) >= nodes

    took = await wait_for(all_ready, timeout, f"{nodes} Ready nodes", interval=1.0)
    await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                     "metadata": {"name": NAMESPACE}})
    return took


class Follower:
    """Polls the Deployment's status and notes when each count first reaches a goal."""

    def __init__(self, client: Client, replicas: int, started: float) -> None:
        self.client = client
        self.replicas = replicas
        self.started = started
        self.milestones: dict[str, float] = {}
        self.last: Obj = {}
        self.round_trips: list[float] = []

    def summary(self) -> str:
        marks = ", ".join(f"{name} {at:.1f}s" for name, at in self.milestones.items())
        return (f"  milestones: {marks}\n  a GET of the Deployment meanwhile took "
                f"p50 {percentile(self.round_trips, 50):.0f} ms, "
                f"p99 {percentile(self.round_trips, 99):.0f} ms")

    def note(self, name: str, reached: bool) -> None:
        if reached and name not in self.milestones:
            self.milestones[name] = time.monotonic() - self.started

    async def follow(self, done: Callable[[Obj, Obj], bool], timeout: float) -> bool:
        shown = 0.0
        while True:
            began = time.perf_counter()
            obj = await self.client.get(DEPLOYMENTS, DEPLOYMENT, NAMESPACE)
            self.round_trips.append((time.perf_counter() - began) * 1000)
            status, n = obj.get("status") or {}, self.replicas
            self.last = status
            # Counts from before the controller saw the latest spec say nothing yet.
            if status.get("observedGeneration", 0) >= obj["metadata"]["generation"]:
                self.note("all pods of the template created",
                          status.get("updatedReplicas", 0) >= n)
                self.note("as many pods ready", status.get("readyReplicas", 0) >= n
                          and status.get("updatedReplicas", 0) >= n)
            elapsed = time.monotonic() - self.started
            if done(obj, status):
                self.note("done", True)
                return True
            if elapsed - shown >= PROGRESS_EVERY:
                shown = elapsed
                say(f"  {elapsed:6.1f}s  {progress(status)}")
            if elapsed > timeout:
                return False
            await asyncio.sleep(STATUS_POLL)


def progress(status: Obj) -> str:
    return (f"replicas {status.get('replicas', 0)}  updated {status.get('updatedReplicas', 0)}"
            f"  ready {status.get('readyReplicas', 0)}"
            f"  available {status.get('availableReplicas', 0)}")


def rollout_complete(replicas: int) -> Callable[[Obj, Obj], bool]:
    """What `kubectl rollout status` waits for."""

    def complete(obj: Obj, status: Obj) -> bool:
        return (status.get("observedGeneration", 0) >= obj["metadata"]["generation"]
                and status.get("updatedReplicas", 0) == replicas
                and status.get("replicas", 0) == replicas
                and status.get("availableReplicas", 0) == replicas)

    return complete


def rate_line(label: str, pods: int, seconds: float, finished: bool) -> str:
    rate = pods / seconds if seconds else 0.0
    verdict = "PASS" if finished and rate >= TARGET_RATE else "MISS"
    upstream = UPSTREAM_PODS / UPSTREAM_SECONDS
    return (f"{label}: {pods} pods in {seconds:.1f}s = {rate:.0f} pods/s  "
            f"[target ≥ {TARGET_RATE:.0f} pods/s: {verdict}; "
            f"{rate / upstream:.0f}x upstream's {upstream:.0f} pods/s]")


async def timed_phase(cluster: SimCluster, label: str, profile: bool,
                      run: Callable[[], Awaitable[tuple[int, float, bool]]]) -> None:
    samplers = [(name, rules, Sampler(pid, cluster.work / f"{name}-{label[:6]}.txt"))
                for name, rules, pid in (("API server", API_RULES, cluster.pid),
                                         ("components", COMPONENT_RULES,
                                          cluster.components_pid()))] if profile else []
    for _, _, sampler in samplers:
        sampler.begin()
    before = cluster.usage()
    pods, seconds, finished = await run()
    spent = Spent.between(before, cluster.usage())
    say(rate_line(label, pods, seconds, finished))
    say(f"  where the time went: {spent.format()}")
    for name, rules, sampler in samplers:
        say(format_shares(name, attribute(sampler.end(), rules)))


async def deploy_part(args: argparse.Namespace, work: Path) -> None:
    n = args.replicas
    say(f"== part 1: a {n}-replica Deployment on {args.nodes} simulated nodes")
    cluster = SimCluster(work / "deploy", args.nodes)
    try:
        say(f"kubi up --sim-nodes {args.nodes}: ready in {cluster.start():.2f}s")
        async with Client.from_kubeconfig(cluster.kubeconfig, user_agent="kubi-bench") as client:
            took = await prepare(client, args.nodes, args.timeout)
            say(f"{args.nodes} nodes Ready after {took:.1f}s more")

            async def create() -> tuple[int, float, bool]:
                started = time.monotonic()
                await client.create(DEPLOYMENTS, deployment(n))
                follower = Follower(client, n, started)
                finished = await follower.follow(
                    lambda obj, st: st.get("readyReplicas", 0) >= n, args.timeout)
                say(follower.summary())
                ready = follower.last.get("readyReplicas", 0)
                return ready, time.monotonic() - started, finished

            async def roll() -> tuple[int, float, bool]:
                started = time.monotonic()
                await client.patch(DEPLOYMENTS, DEPLOYMENT, {"spec": {"template": {"spec": {
                    "containers": [{"name": "app", "image": "nginx:1.19.2"}]}}}}, NAMESPACE,
                    patch_type="strategic")
                follower = Follower(client, n, started)
                finished = await follower.follow(rollout_complete(n), args.timeout)
                say(follower.summary())
                replaced = min(n, follower.last.get("updatedReplicas", 0))
                return replaced, time.monotonic() - started, finished

            await timed_phase(cluster, "create to all Ready", args.profile, create)
            await timed_phase(cluster, "rolling update (new image)", args.profile, roll)
            for name, (rss, peak) in cluster.memory().items():
                say(f"  {name}: RSS {rss:.0f} MiB (peak {peak:.0f} MiB)")
    finally:
        cluster.stop()


async def timed_calls(call: Callable[[int], Awaitable[object]], seconds: float,
                      limit: int) -> tuple[list[float], int]:
    """Run `call(i)` one at a time for `seconds` (at most `limit` times); latencies in ms."""
    latencies: list[float] = []
    errors = 0
    ends = time.monotonic() + seconds
    for i in range(limit):
        if time.monotonic() > ends:
            break
        began = time.perf_counter()
        try:
            await call(i)
        except StatusError:
            errors += 1
        latencies.append((time.perf_counter() - began) * 1000)
    return latencies, errors


async def store_pods(client: Client, count: int, nodes: list[str]) -> list[str]:
    names = [f"stored-{i:05d}" for i in range(count)]
    gate = asyncio.Semaphore(32)

    async def create(i: int, name: str) -> None:
        async with gate:
            await client.create(PODS, bound_pod(name, nodes[i % len(nodes)]))

    await asyncio.gather(*(create(i, name) for i, name in enumerate(names)))
    return names


async def heartbeat_part(args: argparse.Namespace, work: Path) -> None:
    say(f"== part 2: {args.heartbeat_nodes} simulated nodes heartbeating every 10s, "
        f"{args.pods} pods stored")
    cluster = SimCluster(work / "heartbeat", args.heartbeat_nodes)
    try:
        say(f"kubi up --sim-nodes {args.heartbeat_nodes}: ready in {cluster.start():.2f}s")
        async with Client.from_kubeconfig(cluster.kubeconfig, user_agent="kubi-bench") as client:
            took = await prepare(client, args.heartbeat_nodes, args.timeout)
            say(f"{args.heartbeat_nodes} nodes registered and Ready after {took:.1f}s more")
            nodes = [f"sim-node-{i}" for i in range(args.heartbeat_nodes)]
            started = time.monotonic()
            names = await store_pods(client, args.pods, nodes)
            stored = time.monotonic() - started
            say(f"stored {len(names)} pods bound to the nodes in {stored:.1f}s "
                f"({len(names) / stored:.0f} creates/s)")
            sample = names[:: max(1, len(names) // 100)][-100:] + names[-1:]

            async def sample_running() -> bool:
                pods = await asyncio.gather(*(client.get(PODS, n, NAMESPACE) for n in sample))
                return all(is_ready(p) for p in pods)

            took = await wait_for(sample_running, args.timeout, "running pods", interval=2.0)
            say(f"simulated nodes had them Running {took:.1f}s later "
                f"({len(names) / (stored + took):.0f} pods/s from first create)")
            before = cluster.usage()
            await asyncio.sleep(args.settle)
            say(f"steady state over {args.settle:.0f}s: "
                f"{Spent.between(before, cluster.usage()).format()}")

            calls: dict[str, Callable[[int], Awaitable[object]]] = {
                "GET pod": lambda i: client.get(PODS, random.choice(names), NAMESPACE),
                "PATCH pod": lambda i: client.patch(
                    PODS, random.choice(names), {"metadata": {"annotations": {
                        "bench/touched": str(i)}}}, NAMESPACE),
                "GET node": lambda i: client.get(NODES, random.choice(nodes)),
            }
            before = cluster.usage()
            for label, call in calls.items():
                latencies, errors = await timed_calls(call, args.measure, 5000)
                p99 = percentile(latencies, 99)
                verdict = "PASS" if p99 <= LATENCY_TARGET_MS else "MISS"
                say(f"  {label:9s} n={len(latencies):5d} errors={errors}  "
                    f"p50 {percentile(latencies, 50):6.1f} ms  p99 {p99:6.1f} ms  "
                    f"max {max(latencies):6.1f} ms  [p99 ≤ {LATENCY_TARGET_MS:.0f} ms: "
                    f"{verdict}]")
            say(f"  during the calls: {Spent.between(before, cluster.usage()).format()}")
            for name, (rss, peak) in cluster.memory().items():
                say(f"  {name}: RSS {rss:.0f} MiB (peak {peak:.0f} MiB)")
    finally:
        cluster.stop()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=10_000)
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--heartbeat-nodes", type=int, default=1000)
    parser.add_argument("--pods", type=int, default=30_000)
    parser.add_argument("--only", choices=("deploy", "heartbeat"))
    parser.add_argument("--timeout", type=float, default=150.0,
                        help="give up on a phase after this many seconds (printed as a miss)")
    parser.add_argument("--settle", type=float, default=10.0)
    parser.add_argument("--measure", type=float, default=10.0,
                        help="seconds of calls per kind in part 2")
    parser.add_argument("--profile", action="store_true",
                        help="sample both processes with py-spy during part 1 and say "
                             "which component their main threads spent the time in")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    return parser.parse_args()


async def main(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="kubi-controlplane-"))
    say(f"python {sys.version.split()[0]}, work dir {work}")
    for part, run in (("deploy", deploy_part), ("heartbeat", heartbeat_part)):
        if args.only in (None, part):
            try:
                await run(args, work)
            except (TimeoutError, RuntimeError, StatusError) as exc:
                say(f"  part {part} stopped early: {exc}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
