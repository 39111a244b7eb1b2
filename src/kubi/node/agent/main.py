"""`kubi agent --kubeconfig FILE [--node-name N]`: join a cluster as a node.

As root, pods get their own namespaces on the node bridge: the runtime is
built once the control plane has given the node a podCIDR, from a
`PodNetwork` over that CIDR. Without root, pods are plain processes on the
node's network (no hostname, DNS files, mounts or limits of their own) and
need no podCIDR; the agent says which mode it runs in. The HTTPS endpoint
serves with the given certificate, or a self-signed one made under the data
directory, and trusts client certificates of the kubeconfig's CA.

State lives under the data directory: `runtime/` (the host runtime's
records), `network/` (addresses and what the network created) - both tmpfs
mounts as root: they describe what a reboot ends - `pods/` (per-pod files),
`logs/` (container logs) and `pki/`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from pathlib import Path
from typing import Any

from kubi.client.client import Client
from kubi.node.agent.agent import Agent
from kubi.node.agent.machine import gather
from kubi.node.agent.tls import ca_from_kubeconfig, ensure_self_signed
from kubi.node.runtime.base import Runtime

log = logging.getLogger(__name__)

DEFAULT_PORT = 10250


def default_data_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/kubi/agent")
    return Path.home() / ".local" / "share" / "kubi" / "agent"


async def run(kubeconfig: str | Path, node_name: str | None = None,
              data_dir: str | Path | None = None, *, stop: asyncio.Event | None = None,
              drain: bool = False, tls_cert: str | Path | None = None,
              tls_key: str | Path | None = None, client_ca: str | Path | None = None,
              port: int = DEFAULT_PORT, **options: Any) -> None:
    """Run the agent until `stop` is set or SIGINT/SIGTERM arrives; with `drain`,
    remove every pod and every trace of the runtime from the machine on the way out."""
    from kubi.node.agent.volumes import NodeVolumes
    from kubi.node.network import PodNetwork
    from kubi.node.runtime.host import HostRuntime

    name = (node_name or socket.gethostname()).lower()
    root = Path(data_dir or default_data_dir()).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    machine = gather(root, name)
    if not (tls_cert and tls_key):
        tls_cert, tls_key = ensure_self_signed(root / "pki", name, [machine.internal_ip])
    client_ca = client_ca or ca_from_kubeconfig(kubeconfig, root / "pki")
    isolated = os.geteuid() == 0
    runtimes: list[Any] = []

    async def make_runtime(pod_cidr: str | None) -> Runtime:
        network = PodNetwork(pod_cidr, root / "network") if isolated and pod_cidr else None
        runtime = HostRuntime(root / "runtime", network)
        runtimes.append(runtime)
        return runtime

    if isolated:
        log.warning("node %s: running as root: pods get their own namespaces, addresses "
                    "from the node's podCIDR, DNS files, mounts and cgroup limits", name)
    else:
        log.warning("node %s: running without root: pods are plain processes on the node's "
                    "network, without their own hostname, DNS files, mounts or limits", name)
    client = Client.from_kubeconfig(kubeconfig, user_agent=f"kubi-agent/{name}")
    options.setdefault("volumes", NodeVolumes(client, use_tmpfs=isolated, pods_tmpfs=isolated))
    agent = Agent(client, node_name=name, runtime=make_runtime, data_dir=root, port=port,
                  tls_cert=tls_cert, tls_key=tls_key, client_ca=client_ca, machine=machine,
                  require_pod_cidr=isolated, **options)
    try:
        await agent.start()
        log.info("node %s: agent serving on port %d", name, agent.port)
        await stop.wait()
    finally:
        await agent.stop(drain=drain)
        if drain:
            for runtime in runtimes:
                await runtime.destroy_all()
        await client.close()


def main(kubeconfig: str | Path, node_name: str | None = None,
         data_dir: str | Path | None = None, **options: Any) -> None:
    """Entry point of `kubi agent --kubeconfig FILE [--node-name N]`."""
    asyncio.run(run(kubeconfig, node_name, data_dir, **options))
