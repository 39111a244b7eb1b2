"""`kubi dns --kubeconfig FILE --address 10.43.0.10 --port 53`: serve cluster DNS.

Watches the cluster through the kubeconfig, waits (briefly) for the caches,
then answers on UDP and TCP at the address until SIGINT or SIGTERM. The
address is also this server's own name server address: the Service whose
ClusterIP it is (kube-dns) names it in NS answers. No upstream is used
unless one is given, so names outside the cluster domain are REFUSED.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from kubi.client.client import Client
from kubi.dns.cluster import ClusterDNS
from kubi.dns.server import DNSServer

DEFAULT_ADDRESS = "10.43.0.10"
DEFAULT_PORT = 53


async def run(kubeconfig: str | Path, address: str = DEFAULT_ADDRESS, port: int = DEFAULT_PORT,
              *, domain: str = "cluster.local", upstream: str | None = None,
              stop: asyncio.Event | None = None) -> None:
    """Serve cluster DNS until `stop` is set or SIGINT/SIGTERM arrives."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    client = Client.from_kubeconfig(kubeconfig, user_agent="kubi-dns")
    cluster = ClusterDNS(client, domain=domain, upstream=upstream, nameservers=(address,))
    server = DNSServer(cluster, address, port)
    try:
        await cluster.start()
        await server.start()
        await stop.wait()
    finally:
        await server.stop()
        await cluster.stop()
        await client.close()


def main(kubeconfig: str | Path, address: str = DEFAULT_ADDRESS, port: int = DEFAULT_PORT,
         *, domain: str = "cluster.local", upstream: str | None = None) -> None:
    """Entry point of `kubi dns --kubeconfig FILE --address ADDR --port PORT`."""
    asyncio.run(run(kubeconfig, address, port, domain=domain, upstream=upstream))
