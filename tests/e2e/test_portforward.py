"""`kubectl port-forward` into a pod that really runs on this machine (root only).

A pod serves HTTP with `python3 -m http.server 8080`; kubectl forwards a free
local port to it, over the WebSocket tunnel (kubectl's default) and over plain
SPDY (its fallback, forced with KUBECTL_PORT_FORWARD_WEBSOCKETS=false). Each
test stops its port-forward and checks that nothing stays behind: the local
port is free again and the pod holds no established connection on 8080.
"""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.harness import Cluster, free_port
from tests.e2e.node_agent_support import AGENT_PORT, port_free
from tests.tools.background import Background

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="pods run on this machine's node only as root")

POD_PORT = 8080
# The node agent's port; only one agent per machine can hold it.

@pytest.fixture(scope="module")
def web(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """The cluster, with pod `web` serving HTTP on 8080 and Ready."""
    if not port_free(AGENT_PORT):
        pytest.skip(f"another node agent holds port {AGENT_PORT}: this machine is already a node")
    cluster: Cluster = request.getfixturevalue("cluster")
    # Ready once it serves: without a probe a pod is Ready as its process starts.
    probe = {"tcpSocket": {"port": POD_PORT}, "periodSeconds": 1}
    overrides = {"spec": {"containers": [{
        "name": "web", "image": "python:3", "readinessProbe": probe,
        "command": ["python3", "-m", "http.server", str(POD_PORT)]}]}}
    cluster.kubectl("run", "web", "--image=python:3", f"--overrides={json.dumps(overrides)}")
    cluster.kubectl("wait", "--for=condition=Ready", "pod/web", "--timeout=120s", timeout=150)
    yield cluster
    # Gone before the cluster stops, so its shutdown has no pod left to drain.
    cluster.kubectl("delete", "pod", "web", "--grace-period=1", "--timeout=60s", check=False,
                    timeout=90)


def port_forward(cluster: Cluster, remote: int, *, websockets: bool) -> tuple[Background, int]:
    local = free_port()
    name = f"port-forward-{local}"
    forward = Background(
        cluster.kubectl_argv("port-forward", "--address=127.0.0.1", "pod/web",
                             f"{local}:{remote}"),
        stderr_path=cluster.base_dir / f"{name}.stderr",
        env=cluster.client_env({"KUBECTL_PORT_FORWARD_WEBSOCKETS": str(websockets).lower()}),
    )
    forward.wait_for_line(rf"Forwarding from 127\.0\.0\.1:{local} -> {remote}")
    return forward, local


def http_get(port: int, path: str = "/") -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=20) as resp:
        assert resp.status == 200
        return bytes(resp.read())


def raw_exchange(port: int) -> bytes:
    """Connect, then send only once the peer connection is surely open too."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as conn:
        time.sleep(0.2)
        conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def established_in_pod(cluster: Cluster, port: int) -> int:
    """TCP connections in the pod's network namespace established on `port`."""
    out = cluster.kubectl("exec", "web", "--", "cat", "/proc/net/tcp", "/proc/net/tcp6").stdout
    count = 0
    for line in out.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and fields[1].endswith(f":{port:04X}") and fields[3] == "01":
            count += 1
    return count


def assert_nothing_left(cluster: Cluster, forward: Background, local: int) -> None:
    forward.stop()
    assert forward.returncode is not None
    with socket.socket() as probe:
        # TIME_WAIT entries of the finished connections may remain; a listener may not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", local))
    deadline = time.monotonic() + 20
    while established_in_pod(cluster, POD_PORT):
        assert time.monotonic() < deadline, "connections into the pod outlived port-forward"
        time.sleep(0.5)


@pytest.mark.parametrize("websockets", [True, False], ids=["websocket", "spdy"])
def test_port_forward_serves_on_loopback(web: Cluster, websockets: bool) -> None:
    cluster = web
    forward, local = port_forward(cluster, POD_PORT, websockets=websockets)
    try:
        assert b"Directory listing" in http_get(local)
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(raw_exchange, [local, local]))
        for answer in answers:
            assert answer.startswith(b"HTTP/1.0 200 OK") and b"Directory listing" in answer
        assert "Handling connection for" in "\n".join(forward.lines)
    finally:
        forward.stop()
    assert_nothing_left(cluster, forward, local)


def test_a_closed_port_is_reported(web: Cluster) -> None:
    cluster = web
    forward, local = port_forward(cluster, 9, websockets=True)
    try:
        with pytest.raises(OSError):
            http_get(local)
        forward.wait(30)
        assert "error forwarding port 9 to pod" in forward.stderr
        assert "connect: connection refused" in forward.stderr
    finally:
        forward.stop()
    assert_nothing_left(cluster, forward, local)
