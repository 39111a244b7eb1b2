"""The components the garbage collection, namespace and node lifecycle e2e tests run.

`python -m tests.e2e.gc_namespace_nodes_support --kubeconfig FILE [--renew NODE]...`
runs, in one process beside `kubi up --no-controllers`: a controller manager
with the ReplicaSet controller, the garbage collector, the namespace,
service account and root CA controllers, node lifecycle (5 s grace period,
1 s monitor period), taint eviction and node IPAM; the scheduler; one
simulated node heartbeating every second; and, for each `--renew NODE`, a
Lease in kube-node-lease renewed every second, as a healthy kubelet would.
It stops cleanly on SIGTERM. `start_components(cluster)` runs it as a
`Background` child and returns once the controllers and the node are up.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import signal
import sys
import uuid
from pathlib import Path

from kubi.api.errors import StatusError
from kubi.api.meta import now_rfc3339_micro
from kubi.client import Client
from kubi.controllers import ControllerFactory, ControllerManager
from kubi.controllers.garbagecollector import garbagecollector_controller
from kubi.controllers.namespace import namespace_controller
from kubi.controllers.nodeipam import nodeipam_controller
from kubi.controllers.nodelifecycle import LEASES, NODE_LEASE_NAMESPACE, nodelifecycle_controller
from kubi.controllers.replicaset import replicaset_controller
from kubi.controllers.rootcacert import ca_pem_from_kubeconfig, root_ca_publisher
from kubi.controllers.serviceaccounts import serviceaccounts_controller
from kubi.controllers.tainteviction import taint_eviction_controller
from kubi.node.sim import SimNodes
from kubi.scheduler.scheduler import Scheduler
from tests.e2e.harness import Cluster
from tests.e2e.statefulset_support import wait_until
from tests.tools.background import Background

REPO_ROOT = Path(__file__).resolve().parents[2]
GRACE_PERIOD = 5.0


def start_components(cluster: Cluster, *, renew: tuple[str, ...] = (),
                     timeout: float = 60.0) -> Background:
    """Run this module's components against `cluster`; return once they are working."""
    argv = [sys.executable, "-m", "tests.e2e.gc_namespace_nodes_support",
            "--kubeconfig", str(cluster.kubeconfig)]
    for name in renew:
        argv += ["--renew", name]
    components = Background(argv, stderr_path=cluster.base_dir / "gc-components.log",
                            env=cluster.client_env({"PYTHONUNBUFFERED": "1"}), cwd=REPO_ROOT)

    def up() -> bool:
        account = cluster.kubectl("get", "serviceaccount", "default", "-n", "default",
                                  check=False)
        out = cluster.kubectl("get", "nodes", "-o", "json", check=False).stdout
        nodes = json.loads(out).get("items", []) if out.strip() else []
        return account.returncode == 0 and any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for node in nodes for c in node.get("status", {}).get("conditions", []))

    try:
        wait_until(up, timeout, what="controllers and a Ready simulated node")
    except BaseException:
        components.stop()
        raise
    return components


async def renew_leases(client: Client, names: list[str], period: float = 1.0) -> None:
    """Keep the named nodes' Leases fresh, creating them when missing."""
    while True:
        for name in names:
            spec = {"holderIdentity": name, "leaseDurationSeconds": 40,
                    "renewTime": now_rfc3339_micro()}
            try:
                await client.patch(LEASES, name, {"spec": spec}, NODE_LEASE_NAMESPACE)
            except StatusError as err:
                if err.code != 404:
                    raise
                await client.create(LEASES, {"metadata": {"name": name}, "spec": spec},
                                    NODE_LEASE_NAMESPACE)
        await asyncio.sleep(period)


async def run(kubeconfig: Path, renew: list[str]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    client = Client.from_kubeconfig(kubeconfig, user_agent="gc-namespace-nodes-e2e")
    controllers: list[ControllerFactory] = [
        replicaset_controller, garbagecollector_controller, namespace_controller,
        serviceaccounts_controller,
        functools.partial(root_ca_publisher, ca_pem=ca_pem_from_kubeconfig(kubeconfig)),
        functools.partial(nodelifecycle_controller, grace_period=GRACE_PERIOD,
                          startup_grace_period=10.0, monitor_period=1.0),
        taint_eviction_controller, nodeipam_controller,
    ]
    manager = ControllerManager(client, identity=f"gc-e2e-{uuid.uuid4()}",
                                controllers=controllers, leader_election=False)
    scheduler = Scheduler(client)
    sim = SimNodes(client, count=1, heartbeat=1.0, start_delay=0.3)
    renewer = asyncio.create_task(renew_leases(client, renew))
    try:
        await sim.start()
        scheduler.start()
        manager.start()
        await stop.wait()
    finally:
        renewer.cancel()
        await asyncio.gather(renewer, return_exceptions=True)
        await manager.stop()
        await scheduler.stop()
        await sim.stop()
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kubeconfig", required=True, type=Path)
    parser.add_argument("--renew", action="append", default=[])
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(run(args.kubeconfig, args.renew))


if __name__ == "__main__":
    main()
