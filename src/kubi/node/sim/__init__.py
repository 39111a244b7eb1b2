"""The `sim` runtime: simulated nodes and pods, as kwok does, for scale and tests.

Two parts, so the node agent can later host the second behind its runtime
interface: node registration and heartbeats (`SimNodes`, on top of
`kubi.node.heartbeat`), and the pod lifecycle (`SimPodLifecycle`, driving the
pure `SimPod` model and writing through `kubi.node.status_manager`).
`main(kubeconfig, count)` runs `kubi sim-node --count N --kubeconfig FILE`
until SIGINT or SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Any

from kubi.client.client import Client
from kubi.node.sim.nodes import SimNodes
from kubi.node.sim.pods import NodeSlot, SimPodLifecycle

__all__ = ["NodeSlot", "SimNodes", "SimPodLifecycle", "main", "run"]

log = logging.getLogger(__name__)


async def run(kubeconfig: str | Path, count: int, *, stop: asyncio.Event | None = None,
              **options: Any) -> None:
    """Run `count` simulated nodes until `stop` is set (or a signal arrives)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    client = Client.from_kubeconfig(kubeconfig, user_agent="kubi-sim-node")
    nodes = SimNodes(client, count=count, **options)
    try:
        await nodes.start()
        log.info("%d simulated nodes registered", count)
        await stop.wait()
    finally:
        await nodes.stop()
        await client.close()


def main(kubeconfig: str | Path, count: int, **options: Any) -> None:
    """Entry point of `kubi sim-node --count N --kubeconfig FILE`."""
    asyncio.run(run(kubeconfig, count, **options))
