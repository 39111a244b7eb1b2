"""Running iproute2's `ip` in batch mode, on the node or inside a pod's netns.

One `ip -batch` process applies several changes for about a millisecond of
CPU; node-wide setup uses it, per-pod changes go through netlink.py. To act inside a pod, the worker thread that spawns `ip` first enters
the pod's network namespace (a thread's namespace is its own, and a child
inherits it), then returns to the node's; these threads belong to a small
private pool so no other work ever runs in a borrowed namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from kubi.node.runtime.host import linux

_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="kubi-ip")
T = TypeVar("T")


class NetworkError(Exception):
    pass


def _run(commands: list[str], netns: str | None, force: bool) -> str:
    argv = ["ip", *(["-force"] if force else []), "-batch", "-"]
    script = "".join(c + "\n" for c in commands).encode()
    with linux.in_netns(netns) if netns else contextlib.nullcontext():
        result = subprocess.run(argv, input=script, capture_output=True, check=False)
    if result.returncode != 0 and not force:
        raise NetworkError(f"ip: {result.stderr.decode(errors='replace').strip()}")
    return result.stderr.decode(errors="replace")


async def ip_batch(commands: list[str], *, netns: str | None = None, force: bool = False) -> str:
    """Apply `commands` (ip subcommands without the leading `ip`); with `force`,
    go on past errors and return them instead of raising."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_pool, _run, commands, netns, force)


async def ip_output(args: list[str]) -> str:
    def run() -> str:
        result = subprocess.run(["ip", *args], capture_output=True, check=False)
        return result.stdout.decode(errors="replace")
    return await asyncio.get_running_loop().run_in_executor(_pool, run)


async def in_worker(fn: Callable[..., T], *args: object) -> T:
    """Run a blocking network call (netlink, setns) on the network's own threads."""
    return await asyncio.get_running_loop().run_in_executor(_pool, fn, *args)
