"""The components a StatefulSet end-to-end test runs beside `kubi up --no-controllers`.

`python -m tests.e2e.statefulset_support --kubeconfig FILE` runs, in one
process, a controller manager with only the StatefulSet controller, the
scheduler and one simulated node, so pods go Pending → ContainerCreating →
Running and Ready, and deleted pods terminate gracefully, as in the seed's
walkthrough. It stops cleanly on SIGTERM. The helpers below read what tests
compare: pod names, events in order, seed manifests re-homed to a namespace.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import uuid
from pathlib import Path

from kubi.client import Client
from kubi.controllers import ControllerManager
from kubi.controllers.statefulset import statefulset_controller
from kubi.node.sim import SimNodes
from kubi.scheduler.scheduler import Scheduler

SEED_DIR = Path(__file__).resolve().parents[2] / "examples" / "seed"
NGINX_SVC = SEED_DIR / "nginx-svc.yaml"
WEB_STS = SEED_DIR / "web-sts.yaml"
STS_VCT = SEED_DIR / "sts-vct.yaml"


async def run(kubeconfig: Path, nodes: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    client = Client.from_kubeconfig(kubeconfig, user_agent="statefulset-e2e")
    manager = ControllerManager(client, identity=f"sts-e2e-{uuid.uuid4()}",
                                controllers=[statefulset_controller], leader_election=False)
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
    parser.add_argument("--nodes", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(run(args.kubeconfig, args.nodes))


if __name__ == "__main__":
    main()
