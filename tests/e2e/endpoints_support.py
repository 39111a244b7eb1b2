"""The components an endpoints end-to-end test runs beside `kubi up --no-controllers`.

`python -m tests.e2e.endpoints_support --kubeconfig FILE` runs, in one
process, a controller manager with the Endpoints and EndpointSlice
controllers and what they need around them (ReplicaSet and StatefulSet for
pods, the garbage collector for slices of deleted Services), the scheduler
and two simulated nodes, so pods really go Pending → Running and Ready and
terminate gracefully. It stops cleanly on SIGTERM. `start_components(cluster)`
runs it as a `Background` child and returns once both nodes are Ready.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from kubi.client import Client
from kubi.controllers import ControllerManager
from kubi.controllers.endpoints import endpoints_controller
from kubi.controllers.endpointslice import endpointslice_controller
from kubi.controllers.garbagecollector import garbagecollector_controller
from kubi.controllers.replicaset import replicaset_controller
from kubi.controllers.statefulset import statefulset_controller
from kubi.node.sim import SimNodes
from kubi.scheduler.scheduler import Scheduler
from tests.e2e.harness import Cluster
from tests.tools.background import Background, WaitTimeout

REPO_ROOT = Path(__file__).resolve().parents[2]
NODE_COUNT = 2


def start_components(cluster: Cluster, timeout: float = 60.0) -> Background:
    """Run this module's components against `cluster`; return once its nodes are Ready."""
    components = Background(
        [sys.executable, "-m", "tests.e2e.endpoints_support",
         "--kubeconfig", str(cluster.kubeconfig), "--nodes", str(NODE_COUNT)],
        stderr_path=cluster.base_dir / "endpoints-components.log",
        env=cluster.client_env({"PYTHONUNBUFFERED": "1"}), cwd=REPO_ROOT)

    def nodes_ready() -> bool:
        out = cluster.kubectl("get", "nodes", "-o", "json", check=False).stdout
        nodes = json.loads(out).get("items", []) if out.strip() else []
        ready = [node for node in nodes
                 if any(c.get("type") == "Ready" and c.get("status") == "True"
                        for c in node.get("status", {}).get("conditions", []))]
        return len(ready) >= NODE_COUNT

    try:
        wait_until(nodes_ready, timeout, what="Ready simulated nodes")
    except BaseException:
        components.stop()
        raise
    return components


def wait_until(predicate: Callable[[], bool], timeout: float = 60.0, *,
               what: str = "condition") -> None:
    """Poll `predicate` until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise WaitTimeout(f"no {what} within {timeout:g}s")
        time.sleep(0.2)


async def run(kubeconfig: Path, nodes: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    client = Client.from_kubeconfig(kubeconfig, user_agent="endpoints-e2e")
    manager = ControllerManager(
        client, identity=f"endpoints-e2e-{uuid.uuid4()}", leader_election=False,
        controllers=[endpoints_controller, endpointslice_controller, replicaset_controller,
                     statefulset_controller, garbagecollector_controller])
    scheduler = Scheduler(client)
    sim = SimNodes(client, count=nodes, start_delay=0.3)
    try:
        await sim.start()
        scheduler.start()
        manager.start()
        await stop.wait()
    finally:
        await manager.stop()
        await scheduler.stop()
        await sim.stop()
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kubeconfig", required=True, type=Path)
    parser.add_argument("--nodes", type=int, default=NODE_COUNT)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(run(args.kubeconfig, args.nodes))


if __name__ == "__main__":
    main()
