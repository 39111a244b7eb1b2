"""A real API server in the test's own event loop, on a free loopback port,
with its store in the test's directory, and an admin client for it; or just
its registry, on an in-memory store, for tests below the HTTP layer."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path

from kubi.api import hooks
from kubi.apiserver.cache import WatchCache
from kubi.apiserver.plugins import SERVICE_ACCOUNT
from kubi.apiserver.rest import Registry
from kubi.apiserver.server import APIServer, ServerConfig, bootstrap
from kubi.cli.kubeconfig import write_admin_kubeconfig
from kubi.client.client import Client
from kubi.store import MemoryStore
from kubi.store.sqlite import SqliteStore


async def started_server(data_dir: Path) -> tuple[APIServer, int]:
    """A started server on a free port; the caller stops it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    # No controllers run here, so no `default` ServiceAccount: pods are admitted
    # without one, as upstream's integration tests run kube-apiserver.
    server = APIServer(ServerConfig(data_dir=data_dir, port=port, bind="127.0.0.1",
                                    disabled_admission=(SERVICE_ACCOUNT,)),
                       SqliteStore(str(data_dir / "state.db")))
    await server.start()
    return server, port


@contextlib.asynccontextmanager
async def admin_client(data_dir: Path) -> AsyncIterator[Client]:
    """A client with the admin kubeconfig of a server started for the block."""
    server, port = await started_server(data_dir)
    kubeconfig = data_dir / "kubeconfig.yaml"
    write_admin_kubeconfig(server.pki, kubeconfig, f"https://127.0.0.1:{port}")
    api = Client.from_kubeconfig(kubeconfig)
    try:
        yield api
    finally:
        await api.close()
        await server.stop()


@contextlib.asynccontextmanager
async def memory_registry(
        *, disabled_admission: tuple[str, ...] = (SERVICE_ACCOUNT,)) -> AsyncIterator[Registry]:
    """A bootstrapped registry and watch cache on a MemoryStore, for the block.
    Without controllers no `default` ServiceAccount is made, so by default pods
    are admitted without one."""
    hooks.load()
    store = MemoryStore()
    await store.open()
    cache = WatchCache(store)
    await cache.start()
    reg = Registry(store, cache, disabled_admission=disabled_admission)
    try:
        await bootstrap(reg)
        yield reg
    finally:
        await cache.stop()
        await store.close()
