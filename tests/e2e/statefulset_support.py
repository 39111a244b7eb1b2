"""The components a StatefulSet end-to-end test runs beside `kubi up --no-controllers`.

`python -m tests.e2e.statefulset_support --kubeconfig FILE` runs, in one
process, a controller manager with only the StatefulSet controller, the
scheduler and one simulated node, so pods go Pending → ContainerCreating →
Running and Ready, and deleted pods terminate gracefully, as in the seed's
walkthrough. It stops cleanly on SIGTERM. `start_components(cluster)` runs
it as a `Background` child and waits for the node to be Ready; the other
helpers read what the tests compare.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import signal
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubi.client import Client
from kubi.controllers import ControllerManager
from kubi.controllers.statefulset import statefulset_controller
from kubi.node.sim import SimNodes
from kubi.scheduler.scheduler import Scheduler
from tests.e2e.harness import Cluster
from tests.tools.background import Background, WaitTimeout

SEED_DIR = Path(__file__).resolve().parents[2] / "examples" / "seed"
NGINX_SVC = SEED_DIR / "nginx-svc.yaml"
WEB_STS = SEED_DIR / "web-sts.yaml"
STS_VCT = SEED_DIR / "sts-vct.yaml"
REPO_ROOT = Path(__file__).resolve().parents[2]


def start_components(cluster: Cluster, timeout: float = 60.0) -> Background:
    """Run this module's components against `cluster`; return once its node is Ready."""
    components = Background(
        [sys.executable, "-m", "tests.e2e.statefulset_support",
         "--kubeconfig", str(cluster.kubeconfig)],
        stderr_path=cluster.base_dir / "statefulset-components.log",
        env=cluster.client_env({"PYTHONUNBUFFERED": "1"}), cwd=REPO_ROOT)

    def node_ready() -> bool:
        out = cluster.kubectl("get", "nodes", "-o", "json", check=False).stdout
        nodes = json.loads(out).get("items", []) if out.strip() else []
        return any(c.get("type") == "Ready" and c.get("status") == "True"
                   for node in nodes for c in node.get("status", {}).get("conditions", []))

    try:
        wait_until(node_ready, timeout, what="a Ready simulated node")
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


def get_json(cluster: Cluster, *args: str) -> Any:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


def pod_names(cluster: Cluster, namespace: str) -> list[str]:
    """Every pod in the namespace, terminating ones included."""
    pods = get_json(cluster, "pods", "-n", namespace)["items"]
    return sorted(p["metadata"]["name"] for p in pods)


def first_index(lines: list[str], pattern: str) -> int:
    """The index of the first line matching `pattern` (a regex); fails when none does."""
    regex = re.compile(pattern)
    for index, line in enumerate(lines):
        if regex.search(line):
            return index
    raise AssertionError(f"no line matches /{pattern}/ in:\n" + "\n".join(lines))


async def run(kubeconfig: Path, nodes: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    client = Client.from_kubeconfig(kubeconfig, user_agent="statefulset-e2e")
    manager = ControllerManager(client, identity=f"sts-e2e-{uuid.uuid4()}",
                                controllers=[statefulset_controller], leader_election=False)
    scheduler = Scheduler(client)
    # Containers take a moment to stop, as real ones do: `kubectl delete` must
    # see the old pod terminating before the controller brings its successor.
    sim = SimNodes(client, count=nodes, start_delay=0.3, stop_delay=1.0)
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
