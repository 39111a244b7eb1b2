"""Running the control-plane components that are API clients: the controller
manager, the scheduler, simulated nodes and cluster DNS.

Each component talks to the API server only through the API, so it can run
alone (`kubi controller-manager --kubeconfig FILE`) or beside others in one
process. `kubi up` runs them in one child process next to the API server:
Python executes one thread at a time per process, and a second process puts
the machine's second core to work on controller and scheduling decisions while
the first serves the API.

`Supervisor` keeps that child running: it restarts it if it dies, passes on
shutdown, and asks the kernel to kill it should `kubi up` itself die
(PR_SET_PDEATHSIG), so no orphan outlives the cluster.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import signal
import socket
import sys
import uuid
from pathlib import Path

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


async def run_components(kubeconfig: Path, *, controllers: bool = True,
                         scheduler: bool = False, sim_nodes: int = 0,
                         identity: str | None = None, dns_address: str | None = None) -> None:
    """Run the selected components until SIGINT or SIGTERM.

    `identity` names this instance in leader election. `kubi up` passes a stable
    one, so that after a crash the restarted cluster takes its leases back at
    once instead of waiting for them to expire; standalone instances get a
    unique one, as upstream's do.
    """
    from kubi.client import Client

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    clients: list[Client] = []
    stoppers: list = []
    tasks: list[asyncio.Task] = []
    try:
        if controllers:
            from kubi.controllers import ControllerManager, default_controllers
            from kubi.controllers.rootcacert import ca_pem_from_kubeconfig

            client = Client.from_kubeconfig(kubeconfig, user_agent="kube-controller-manager/kubi")
            clients.append(client)
            factories = default_controllers(ca_pem_from_kubeconfig(kubeconfig))
            manager = ControllerManager(client, identity=identity or _unique_identity(),
                                        controllers=factories)
            tasks.append(manager.start())
            stoppers.append(manager.stop)
        if scheduler:
            from kubi.scheduler.scheduler import Scheduler

            client = Client.from_kubeconfig(kubeconfig, user_agent="kube-scheduler/kubi")
            clients.append(client)
            sched = Scheduler(client, leader_election=True,
                              identity=identity or _unique_identity())
            tasks.append(sched.start())
            stoppers.append(sched.stop)
        if sim_nodes:
            from kubi.node.sim import SimNodes

            client = Client.from_kubeconfig(kubeconfig, user_agent="kubi-sim-node/kubi")
            clients.append(client)
            nodes = SimNodes(client, count=sim_nodes)
            await nodes.start()
            stoppers.append(nodes.stop)
        if dns_address:
            from kubi.dns import ClusterDNS, DNSServer

            client = Client.from_kubeconfig(kubeconfig, user_agent="kubi-dns/kubi")
            clients.append(client)
            cluster_dns = ClusterDNS(client, nameservers=(dns_address,))
            dns_server = DNSServer(cluster_dns, dns_address, 53)
            await cluster_dns.start()
            await dns_server.start()
            stoppers += [cluster_dns.stop, dns_server.stop]
        waiter = asyncio.create_task(stop.wait())
        await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
    finally:
        for stopper in reversed(stoppers):
            try:
                await stopper()
            except Exception:  # keep stopping the others
                log.exception("error while stopping a component")
        for client in clients:
            await client.close()


def _unique_identity() -> str:
    return f"{socket.gethostname()}_{uuid.uuid4()}"


def stable_identity() -> str:
    return f"{socket.gethostname()}_kubi-up"


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the parent process dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except OSError:
        pass


class Supervisor:
    """Keeps one child process of components running while the cluster runs."""

    def __init__(self, argv: list[str], log_path: Path, name: str = "components") -> None:
        self.argv = argv
        self.log_path = log_path
        self.name = name
        self.proc: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"{self.name}-supervisor")

    async def _spawn(self) -> asyncio.subprocess.Process:
        out = open(self.log_path, "ab")
        try:
            return await asyncio.create_subprocess_exec(
                *self.argv, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out,
                preexec_fn=_die_with_parent,
            )
        finally:
            out.close()

    async def _run(self) -> None:
        delay = 0.5
        while not self._stopping:
            self.proc = await self._spawn()
            code = await self.proc.wait()
            if self._stopping:
                return
            log.warning("%s process exited with %s; restarting in %.1fs", self.name, code, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def stop(self, timeout: float = 10.0) -> None:
        self._stopping = True
        proc = self.proc
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass


def components_argv(kubeconfig: Path, *, controllers: bool, sim_nodes: int,
                    dns_address: str | None = None) -> list[str]:
    argv = [sys.executable, "-m", "kubi", "components", "--kubeconfig", str(kubeconfig),
            "--identity", stable_identity()]
    if dns_address:
        argv += ["--dns-address", dns_address]
    if not controllers:
        argv += ["--no-controllers", "--no-scheduler"]
    if sim_nodes:
        argv += ["--sim-nodes", str(sim_nodes)]
    return argv


CLUSTER_DNS_IP = "10.43.0.10"


def add_dns_address() -> bool:
    """Put the cluster DNS address on this machine's loopback device, so pods
    reach it through their default route to the node; True if we added it."""
    import subprocess

    present = subprocess.run(["ip", "-4", "addr", "show", "dev", "lo"], capture_output=True,
                             text=True, check=False).stdout
    if f"{CLUSTER_DNS_IP}/32" in present:
        return False
    done = subprocess.run(["ip", "addr", "add", f"{CLUSTER_DNS_IP}/32", "dev", "lo"],
                          capture_output=True, check=False)
    return done.returncode == 0


def remove_dns_address() -> None:
    import subprocess

    subprocess.run(["ip", "addr", "del", f"{CLUSTER_DNS_IP}/32", "dev", "lo"],
                   capture_output=True, check=False)
