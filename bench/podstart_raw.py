"""Pod start on the host runtime against the machine's own floor (root only).

(a) the floor: what any pod start must pay at least, done with the plainest
tools: `unshare` forks a process into new net/uts/ipc/pid namespaces, one
`ip -batch` adds a veth pair into it and plugs the node end into a bridge,
and one more, run inside the namespace through `nsenter`, sets the address,
brings eth0 up and adds the default route. Timed from spawn until the pod's
interface is configured, sequentially and N at once.
(b) kubi: `run_pod_sandbox` + `create_container` + `start_container` of a
`sleep` on HostRuntime with its pod network, sequentially and N at once
(1, 10, 50), each pod timed from the start of its batch until its container
runs. Prints p50/p99 for both and their ratio. Uses its own bridge, /24 and
cgroup root, and removes everything it made.

    sudo python bench/podstart_raw.py [--iterations 50] [--batches 1,10,50]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

from kubi.node.network import PodNetwork
from kubi.node.runtime.base import ContainerConfig, SandboxConfig
from kubi.node.runtime.host.runtime import HostRuntime

SUBNET = "10.42.251"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def summary(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (f"p50 {percentile(ms, 50):7.1f} ms   p99 {percentile(ms, 99):7.1f} ms   "
            f"max {max(ms):7.1f} ms   (n={len(ms)})")


async def _run(argv: list[str], script: str = "") -> None:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate(script.encode())
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]}: {err.decode().strip()}")


class RawPods:
    """The floor: namespaces, a veth and a process with unshare, ip and nsenter."""

    def __init__(self, bridge: str) -> None:
        self.bridge = bridge
        self.procs: list[asyncio.subprocess.Process] = []
        self.veths: list[str] = []
        self.counter = 0

    async def start_one(self, began: float) -> float:
        index = self.counter
        self.counter += 1
        veth = f"kbr{os.getpid() % 10000}x{index}"
        address = f"{SUBNET}.{200 + index % 50}"
        proc = await asyncio.create_subprocess_exec(
            "unshare", "--net", "--uts", "--ipc", "--pid", "--fork", "--kill-child", "sh", "-c",
            "echo; exec sleep 600", stdout=asyncio.subprocess.PIPE)
        self.procs.append(proc)
        assert proc.stdout is not None
        await proc.stdout.readline()
        self.veths.append(veth)
        await _run(["ip", "-batch", "-"],
                   f"link add {veth} type veth peer name eth0 netns {proc.pid}\n"
                   f"link set {veth} master {self.bridge} up\n")
        await _run(["nsenter", f"--net=/proc/{proc.pid}/ns/net", "ip", "-batch", "-"],
                   f"addr add {address}/24 dev eth0\nlink set eth0 up\n"
                   f"route add default via {SUBNET}.1 dev eth0\n")
        return time.perf_counter() - began

    async def cleanup(self) -> None:
        for proc in self.procs:
            proc.kill()
            await proc.wait()
        if self.veths:
            proc = await asyncio.create_subprocess_exec(
                "ip", "-force", "-batch", "-", stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
            await proc.communicate("".join(f"link del {v}\n" for v in self.veths).encode())
        self.procs.clear()
        self.veths.clear()


async def kubi_pod(runtime: HostRuntime, name: str, log_dir: Path, began: float) -> float:
    sandbox = await runtime.run_pod_sandbox(SandboxConfig(
        name=name, namespace="bench", uid=f"uid-{name}", hostname=name,
        hosts_file="127.0.0.1\tlocalhost\n", resolv_conf="nameserver 10.43.0.10\n"))
    container = await runtime.create_container(sandbox, ContainerConfig(
        name="c", image="node", argv=["sleep", "600"], log_path=str(log_dir / name / "c.log")))
    await runtime.start_container(container)
    return time.perf_counter() - began


async def remove_all(runtime: HostRuntime) -> None:
    for sandbox in await runtime.list_pod_sandboxes():
        await runtime.remove_pod_sandbox(sandbox.id)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--batches", default="1,10,50")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("podstart_raw needs root (namespaces, veths, cgroups)")
    batches = [int(b) for b in args.batches.split(",")]
    tag = secrets.token_hex(3)
    root = Path(tempfile.mkdtemp(prefix="kubi-podstart-"))
    network = PodNetwork(f"{SUBNET}.0/24", root / "network", bridge=f"kubb{tag}")
    runtime = HostRuntime(root / "runtime", network, cgroup_root=f"kubb-{tag}")
    raw = RawPods(network.bridge)
    try:
        await runtime.start()
        print(f"pod start, {os.cpu_count()} CPUs, {args.iterations} sequential iterations\n")

        sequential_raw = []
        for _ in range(args.iterations):
            sequential_raw.append(await raw.start_one(time.perf_counter()))
            await raw.cleanup()
        print(f"floor  sequential        {summary(sequential_raw)}")
        sequential_kubi = []
        for i in range(args.iterations):
            sequential_kubi.append(await kubi_pod(runtime, f"s{i}", root / "logs",
                                                  time.perf_counter()))
            await remove_all(runtime)
        print(f"kubi   sequential        {summary(sequential_kubi)}")
        ratio = percentile(sequential_kubi, 50) / percentile(sequential_raw, 50)
        print(f"       ratio p50 kubi/floor {ratio:.2f}\n")

        for n in batches:
            began = time.perf_counter()
            floor = list(await asyncio.gather(*(raw.start_one(began) for _ in range(n))))
            await raw.cleanup()
            began = time.perf_counter()
            ours = await asyncio.gather(*(kubi_pod(runtime, f"b{n}-{i}", root / "logs", began)
                                          for i in range(n)))
            await remove_all(runtime)
            print(f"floor  {n:3d} at once        {summary(floor)}")
            print(f"kubi   {n:3d} at once        {summary(list(ours))}")
            ratio = percentile(list(ours), 99) / percentile(floor, 99)
            print(f"       ratio p99 kubi/floor {ratio:.2f}\n")
    finally:
        await raw.cleanup()
        await runtime.destroy_all()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
