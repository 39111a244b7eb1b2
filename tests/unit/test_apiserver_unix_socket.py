"""The API server's local socket: private to the data dir's owner, named in the
components' kubeconfigs, used by kubi's client in place of TLS, and gone when
the server stops."""

from __future__ import annotations

import stat
from pathlib import Path

import yaml

from kubi.cli.kubeconfig import kubeconfig_for, write_kubeconfig
from kubi.client.client import Client, KubeConfig, Resource
from tests.unit.apiserver_fixtures import started_server

NAMESPACES = Resource("", "v1", "namespaces", False, "Namespace")


async def test_components_reach_the_server_over_its_socket(tmp_path: Path) -> None:
    server, port = await started_server(tmp_path)
    try:
        sock = server.unix_socket
        assert sock == tmp_path / "api.sock"
        assert stat.S_IMODE(sock.stat().st_mode) == 0o600
        path = tmp_path / "cm.kubeconfig"
        write_kubeconfig(kubeconfig_for(server.pki, f"https://127.0.0.1:{port}", "cm",
                                        "system:kube-controller-manager", unix_socket=sock),
                         path)
        # kubectl keeps using `server`; the socket rides in an extension.
        cluster = yaml.safe_load(path.read_text())["clusters"][0]["cluster"]
        assert cluster["server"] == f"https://127.0.0.1:{port}"
        config = KubeConfig.load(path)
        assert config.unix_socket == str(sock)
        async with Client(config) as client:
            names = [ns["metadata"]["name"] for ns in (await client.list(NAMESPACES))["items"]]
            assert "default" in names
            assert client._base == "http://localhost"
    finally:
        await server.stop()
    assert not sock.exists()


async def test_a_missing_socket_falls_back_to_tls(tmp_path: Path) -> None:
    server, port = await started_server(tmp_path)
    try:
        path = tmp_path / "cm.kubeconfig"
        write_kubeconfig(kubeconfig_for(server.pki, f"https://127.0.0.1:{port}", "cm",
                                        "system:kube-controller-manager",
                                        unix_socket=tmp_path / "elsewhere.sock"), path)
        async with Client.from_kubeconfig(path) as client:
            assert (await client.get(NAMESPACES, "default"))["metadata"]["name"] == "default"
            assert client._base == f"https://127.0.0.1:{port}"
    finally:
        await server.stop()
