"""Pod start latency with this machine as the node, beside its floor (root only).

Starts `kubi up` on a private data dir (as root it runs this machine as a
node: the agent, the host runtime and the pod network) and, for 1, 10 and 50
pods created at once, times each pod from its create request to the watch
event that shows it Running and Ready, split where the scheduler binds it,
as upstream's pod startup SLI is measured. The pods opt out of the service
account token (`automountServiceAccountToken: false`); the 50-pod batch is
then measured again with pods as admitted by default, each with a projected
token (one TokenRequest and one more volume per pod), and printed beside.
In the same run and for the same batch sizes it measures the floor
and kubi's runtime alone, with `podstart_raw`'s functions: `unshare` + a veth
+ exec of a process, and HostRuntime without the API or the agent. Then it
reads the agent's RSS with 0 and with 100 running pods. Targets are printed
as PASS or MISS; the exit status is 0 unless the benchmark could not run.

    sudo python bench/podstart.py [--batches 1,10,50] [--rounds 5] [--rss-pods 100]
        [--profile]

`--profile` samples the API server, the components process and the agent
with py-spy during the last batch of the largest size (connection pools
warm) and prints where their time went, with each process's CPU seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from apibench.profiling import PySpy, format_profile
from apibench.report import percentile
from apibench.servers import machine_busy_seconds
from podbench.node import AGENT_PORT, NodeCluster, cpu_by_process, port_free, process_table
from podbench.timeline import PODS, Timeline, Watcher, stages
from podstart_raw import SUBNET, RawPods, kubi_pod, remove_all

from kubi.client.client import Client, Resource
from kubi.node.network import PodNetwork
from kubi.node.runtime.host.runtime import HostRuntime

NAMESPACES = Resource("", "v1", "namespaces", False, "Namespace")
NODES = Resource("", "v1", "nodes", False, "Node")
NAMESPACE = "podstart"
TARGET_P99_MS, TARGET_BATCH = 300.0, 50
UPSTREAM_SLO_MS = 5000.0
WAIT = 120.0
# Each batch starts on a quiet machine: busy under QUIET_BUSY of its cores for
# QUIET_WINDOW seconds, waited for up to QUIET_MAX seconds.
QUIET_BUSY, QUIET_WINDOW, QUIET_MAX = 0.15, 0.2, 3.0


def say(text: str = "") -> None:
    print(text, flush=True)


def pod(name: str, *, token: bool = False) -> dict[str, Any]:
    """The measured pod: one `sleep`. Without `token` it opts out of the service
    account token the API server would otherwise mount (as pods that never call
    the API are told to); with it, it is a pod as admission leaves it by default."""
    spec: dict[str, Any] = {"terminationGracePeriodSeconds": 0,
                            "containers": [{"name": "c", "image": "busybox",
                                            "command": ["sleep", "3600"]}]}
    if not token:
        spec["automountServiceAccountToken"] = False
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NAMESPACE}, "spec": spec}


def line(label: str, seconds: list[float]) -> str:
    ms = [s * 1000 for s in seconds]
    if not ms:
        return f"{label:<52} (no samples)"
    return (f"{label:<52} p50 {percentile(ms, 50):7.1f} ms   p99 {percentile(ms, 99):7.1f} ms"
            f"   max {max(ms):7.1f} ms   (n={len(ms)})")


class PodStarts:
    """Creates batches of pods on the cluster and times them on one watch."""

    def __init__(self, client: Client, cluster: NodeCluster) -> None:
        self.client = client
        self.cluster = cluster
        self.timeline = Timeline()
        self.watcher = Watcher(client, NAMESPACE, self.timeline)
        self.serial = 0

    async def start(self) -> None:
        await self.client.create(NAMESPACES, {"metadata": {"name": NAMESPACE}})
        await self.watcher.start()

    async def warm(self, count: int) -> None:
        """Open `count` connections now, so the batch's creates pay no TLS handshake:
        kubi's own clients keep theirs open too."""
        await asyncio.gather(*(self.client.list(NODES) for _ in range(count)))

    async def batch(self, count: int, *, token: bool = False) -> list[str]:
        """Create `count` pods at once; return their names once all are Running and Ready."""
        await self.warm(count)
        names = [f"p{self.serial + i}" for i in range(count)]
        self.serial += count

        async def create(name: str) -> None:
            self.timeline.times(name).sent = time.perf_counter()
            await self.client.create(PODS, pod(name, token=token), NAMESPACE)

        await asyncio.gather(*(create(n) for n in names))
        await self.timeline.wait(names, "ready", WAIT)
        return names

    async def remove(self, names: list[str]) -> None:
        """Delete the pods and wait until the runtime holds no sandbox any more."""
        await asyncio.gather(*(self.client.delete(PODS, n, NAMESPACE, grace_period_seconds=0)
                               for n in names))
        await self.timeline.wait(names, "deleted", WAIT)
        sandboxes = self.cluster.data_dir / "agent" / "runtime" / "sandboxes"
        deadline = time.monotonic() + WAIT
        while sandboxes.is_dir() and any(sandboxes.iterdir()):
            if time.monotonic() > deadline:
                raise TimeoutError("the runtime kept sandboxes of deleted pods")
            await asyncio.sleep(0.05)

    def records(self, names: list[str]) -> list[Any]:
        return [self.timeline.times(n) for n in names]


class Floor:
    """The floor and the runtime alone, on a bridge and /24 of their own."""

    def __init__(self, root: Path) -> None:
        tag = secrets.token_hex(3)
        self.root = root
        network = PodNetwork(f"{SUBNET}.0/24", root / "network", bridge=f"kubb{tag}")
        self.runtime = HostRuntime(root / "runtime", network, cgroup_root=f"kubb-{tag}")
        self.raw = RawPods(network.bridge)
        self.serial = 0

    async def start(self) -> None:
        await self.runtime.start()

    async def raw_batch(self, count: int) -> list[float]:
        began = time.perf_counter()
        try:
            return list(await asyncio.gather(*(self.raw.start_one(began) for _ in range(count))))
        finally:
            await self.raw.cleanup()

    async def runtime_batch(self, count: int) -> list[float]:
        began = time.perf_counter()
        names = [f"r{self.serial + i}" for i in range(count)]
        self.serial += count
        try:
            return list(await asyncio.gather(*(kubi_pod(self.runtime, n, self.root / "logs", began)
                                               for n in names)))
        finally:
            await remove_all(self.runtime)

    async def close(self) -> None:
        await self.raw.cleanup()
        await self.runtime.destroy_all()


async def machine_quiet() -> None:
    """Wait until the machine has been nearly idle for a moment, so that no
    batch pays for the one before it: the kernel frees network namespaces in
    the background, and a deleted pod's clean-up outlives its API object."""
    cores = os.cpu_count() or 1
    deadline = time.monotonic() + QUIET_MAX
    while time.monotonic() < deadline:
        before = machine_busy_seconds()
        await asyncio.sleep(QUIET_WINDOW)
        if (machine_busy_seconds() - before) / (QUIET_WINDOW * cores) < QUIET_BUSY:
            return


async def node_ready(client: Client, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        nodes = (await client.list(NODES))["items"]
        if any(c.get("type") == "Ready" and c.get("status") == "True"
               for n in nodes for c in n["status"].get("conditions") or []):
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"no Ready node within {timeout:g}s")


async def profiled_batch(starts: PodStarts, cluster: NodeCluster, count: int,
                         work: Path) -> list[str]:
    pids = {"API server": cluster.pid, "components": cluster.components_pid(),
            "agent": cluster.agent_pid()}
    spies = {label: PySpy(pid, work, rate=500) for label, pid in pids.items()}
    for spy in spies.values():
        spy.begin()
    await starts.warm(count)
    roles = {pid: label for label, pid in pids.items()} | {os.getpid(): "benchmark client"}
    before, machine_before = process_table(), machine_busy_seconds()
    began = time.perf_counter()
    names = await starts.batch(count)
    wall = time.perf_counter() - began
    after, machine_after = process_table(), machine_busy_seconds()
    profiles = {label: spy.end(f"{count} pods at once ({label})") for label, spy in spies.items()}
    report_cpu(f"the profiled batch of {count}", wall, machine_after - machine_before,
               cpu_by_process(before, after, roles))
    for profile in profiles.values():
        say(format_profile(profile, top=15))
    return names


class Usage:
    """CPU spent by every process during batches, summed over them."""

    def __init__(self) -> None:
        self.wall = self.machine = 0.0
        self.batches = 0
        self.spent: dict[str, float] = {}

    async def measured(self, starts: PodStarts, cluster: NodeCluster, count: int,
                       *, token: bool = False) -> list[str]:
        await starts.warm(count)
        roles = {cluster.pid: "API server", cluster.components_pid(): "components",
                 cluster.agent_pid(): "agent", os.getpid(): "benchmark client"}
        before, machine_before = process_table(), machine_busy_seconds()
        began = time.perf_counter()
        names = await starts.batch(count, token=token)
        self.wall += time.perf_counter() - began
        self.machine += machine_busy_seconds() - machine_before
        for name, seconds in cpu_by_process(before, process_table(), roles).items():
            self.spent[name] = self.spent.get(name, 0.0) + seconds
        self.batches += 1
        return names


def report_cpu(what: str, wall: float, machine: float, spent: dict[str, float]) -> None:
    say(f"--- CPU during {what}: {wall:.2f} s wall, the machine busy {machine:.2f} CPU s "
        f"of {wall * (os.cpu_count() or 1):.2f} ---")
    for name, seconds in sorted(spent.items(), key=lambda item: -item[1])[:12]:
        if seconds >= 0.005:
            say(f"  {name:<24} {seconds:6.2f} CPU s")


async def measure(args: argparse.Namespace, cluster: NodeCluster, work: Path) -> None:
    batches = [int(b) for b in args.batches.split(",")]
    floor = Floor(work / "floor")
    async with Client.from_kubeconfig(cluster.kubeconfig, user_agent="kubi-bench") as client:
        await node_ready(client)
        starts = PodStarts(client, cluster)
        await starts.start()
        await floor.start()
        try:
            await asyncio.sleep(2)
            idle_rss = cluster.agent_rss_mb()
            cold = await starts.batch(1)
            say(line("first pod after start (cold)", [r.ready - r.sent
                                                      for r in starts.records(cold)]))
            await starts.remove(cold)
            say()
            results: dict[int, list[Any]] = {}
            for count in batches:
                floor_times, runtime_times, records = [], [], []
                usage = Usage()
                for round_ in range(args.rounds):
                    await machine_quiet()
                    floor_times += await floor.raw_batch(count)
                    await machine_quiet()
                    runtime_times += await floor.runtime_batch(count)
                    await machine_quiet()
                    if args.profile and count == max(batches) and round_ == args.rounds - 1:
                        names = await profiled_batch(starts, cluster, count, work)
                    else:
                        names = await usage.measured(starts, cluster, count)
                    records += starts.records(names)
                    await starts.remove(names)
                results[count] = records
                if count == max(batches):
                    report_cpu(f"{usage.batches} unprofiled batches of {count}, summed",
                               usage.wall, usage.machine, usage.spent)
                say(f"{count} pods at once, {args.rounds} rounds:")
                say(line("  floor: unshare + veth + exec", floor_times))
                say(line("  kubi runtime alone (no API, no agent)", runtime_times))
                for label, values in stages(records).items():
                    say(line(f"  kubi: {label}", values))
                ours = [r.ready - r.sent for r in records if r.ready is not None]
                say(f"  ratio p99 kubi / floor {percentile(ours, 99) / percentile(floor_times, 99):.1f}"
                    f", kubi / runtime alone "
                    f"{percentile(ours, 99) / percentile(runtime_times, 99):.1f}\n")
            await report_memory(args.rss_pods, starts, cluster, idle_rss)
            with_token = (await token_batches(args.rounds, starts, cluster)
                          if TARGET_BATCH in batches else [])
            report_targets(results, with_token)
        finally:
            await floor.close()


async def report_memory(count: int, starts: PodStarts, cluster: NodeCluster,
                        idle_rss: float) -> None:
    if count <= 0:
        return
    names: list[str] = []
    while len(names) < count:
        names += await starts.batch(min(50, count - len(names)))
    await asyncio.sleep(3)  # statuses settle, probes and relists run
    busy_rss = cluster.agent_rss_mb()
    runtime = cluster.runtime_memory()
    await starts.remove(names)
    say(f"agent RSS: {idle_rss:.1f} MiB with 0 pods, {busy_rss:.1f} MiB with {count} running "
        f"({(busy_rss - idle_rss) * 1024 / count:.0f} KiB per pod)")
    say(f"runtime processes with {count} pods (launcher and pod shims): {runtime.processes}, "
        f"PSS {runtime.pss_mb:.1f} MiB ({runtime.pss_mb * 1024 / max(1, count):.0f} KiB per pod)\n")


async def token_batches(rounds: int, starts: PodStarts, cluster: NodeCluster) -> list[Any]:
    """The target's batch again with pods as admitted by default: each also gets a
    projected service account token (a TokenRequest and a volume per pod)."""
    usage, records = Usage(), []
    for _ in range(rounds):
        await machine_quiet()
        names = await usage.measured(starts, cluster, TARGET_BATCH, token=True)
        records += starts.records(names)
        await starts.remove(names)
    report_cpu(f"{usage.batches} batches of {TARGET_BATCH} with a token, summed",
               usage.wall, usage.machine, usage.spent)
    say(f"{TARGET_BATCH} pods at once with the default service account token, {rounds} rounds:")
    for label, values in stages(records).items():
        say(line(f"  kubi: {label}", values))
    say()
    return records


def report_targets(results: dict[int, list[Any]], with_token: list[Any]) -> None:
    if TARGET_BATCH not in results:
        return
    for records, what in ((results[TARGET_BATCH], ""),
                          (with_token, " (informational: pods with a token)")):
        ours = [(r.ready - r.sent) * 1000 for r in records if r.ready is not None]
        if not ours:
            continue
        p99 = percentile(ours, 99)
        for goal, label in ((TARGET_P99_MS, "target"), (UPSTREAM_SLO_MS, "upstream SLO")):
            verdict = "PASS" if p99 <= goal else "MISS"
            say(f"{verdict}  {label}: p99 pod start of {TARGET_BATCH} pods at once "
                f"<= {goal:.0f} ms (measured {p99:.1f} ms){what}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", default="1,10,50")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rss-pods", type=int, default=100)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("podstart needs root: kubi up runs this machine as a node only as root")
    if not port_free(AGENT_PORT):
        sys.exit(f"port {AGENT_PORT} is taken: another node agent runs on this machine")
    if args.profile and not shutil.which("py-spy"):
        sys.exit("--profile needs py-spy (pip install py-spy)")
    work = Path(tempfile.mkdtemp(prefix="kubi-podstart-"))
    cluster = NodeCluster(work)
    try:
        ready = cluster.start()
        say(f"kubi up ready in {ready:.2f} s; {os.cpu_count()} CPUs; agent pid "
            f"{cluster.agent_pid()}\n")
        asyncio.run(measure(args, cluster, work))
    finally:
        cluster.stop(timeout=60)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
